//! The server's side of a connection's byte stream: deadlines that span
//! many reads, a minimum transfer rate, and the interim `100 Continue`.
//!
//! A read timeout alone does not stop a slowloris: a client that sends a
//! head one byte per second never lets a 30-second read timeout expire.
//! [`Wire`] therefore tracks a deadline per phase of the exchange and
//! shrinks the read timeout before each read so that no read waits past
//! it. Bodies and responses, whose size has no fixed time bound, are held
//! to [`ServerConfig::min_rate`] instead (a [`Pace`] each): a client that
//! trickles a body, or takes a response, a byte per timeout period
//! (slow POST, slow read) is cut off, not served for years.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::ServerConfig;
use crate::application::is_timeout;
use crate::application::net::ByteStream;

/// The interim response to `Expect: 100-continue` (RFC 9110 §15.2.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the stream is waiting for, which decides how long a read may
/// block.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    /// The first byte of a request, until `deadline` (the keep-alive
    /// timeout). The first byte starts [`Phase::Head`].
    Idle { deadline: Instant },
    /// The rest of a head, which must be complete by `deadline`; each read
    /// also waits no longer than the read timeout.
    Head { deadline: Instant },
    /// A body: each read waits up to the read timeout.
    Body,
    /// Bytes read only to be thrown away, until `deadline`: a body the
    /// handler left unread, or what a client sends after the server
    /// decided to close (RFC 9112 §9.6).
    Discard { deadline: Instant },
}

/// Which limit a timed-out read ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// The keep-alive timeout passed with no request.
    Idle,
    /// The head did not arrive within the head timeout.
    Head,
    /// One read waited longer than the read timeout.
    Read,
    /// Discarding took too long.
    Discard,
    /// The client sent a body, or took the response, more slowly than
    /// [`ServerConfig::min_rate`] allows.
    TooSlow,
}

/// How long a transfer has waited on the client, against how long it may:
/// a grace period (one read or write timeout) plus a second for every
/// `min_rate` bytes moved. Only the time spent blocked on the client
/// counts, not the handler's own time between reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Pace {
    waited: Duration,
    moved: u64,
}

impl Pace {
    /// What is left of the time allowed; `None` means no limit.
    fn left(&self, grace: Duration, min_rate: Option<u64>) -> Option<Duration> {
        let rate = u128::from(min_rate?.max(1));
        let earned_ns = u128::from(self.moved) * 1_000_000_000 / rate;
        let earned = Duration::from_nanos(u64::try_from(earned_ns).unwrap_or(u64::MAX));
        Some(grace.saturating_add(earned).saturating_sub(self.waited))
    }

    fn record(&mut self, waited: Duration, moved: usize) {
        self.waited = self.waited.saturating_add(waited);
        self.moved = self.moved.saturating_add(moved as u64);
    }
}

/// The state of a [`Wire`] that the connection loop changes while the
/// wire itself is borrowed by a body reader: it lives beside the
/// connection and the wire refers to it.
#[derive(Debug)]
pub(super) struct WireControl {
    phase: Cell<Phase>,
    expired: Cell<Option<Expired>>,
    continue_pending: Cell<bool>,
    /// The request body's reads (in [`Phase::Body`]).
    body_pace: Cell<Pace>,
    /// The response's writes (the `100 Continue` included).
    response_pace: Cell<Pace>,
}

impl WireControl {
    pub(super) fn new() -> WireControl {
        WireControl {
            phase: Cell::new(Phase::Body),
            expired: Cell::new(None),
            continue_pending: Cell::new(false),
            body_pace: Cell::new(Pace::default()),
            response_pace: Cell::new(Pace::default()),
        }
    }

    /// Starts an exchange: its body and its response each get a fresh
    /// [`Pace`].
    pub(super) fn begin_exchange(&self) {
        self.body_pace.set(Pace::default());
        self.response_pace.set(Pace::default());
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
        self.expired.set(None);
    }

    /// Which limit the last failed read ran into, if it timed out.
    pub(super) fn expired(&self) -> Option<Expired> {
        self.expired.get()
    }

    /// Sends `100 Continue` before the next read from the stream: the
    /// client waits for it before sending the body (RFC 9110 §10.1.1), so
    /// it goes out only once the handler reads, and never if the handler
    /// answers without reading.
    pub(super) fn set_continue_pending(&self, pending: bool) {
        self.continue_pending.set(pending);
    }
}

/// A [`ByteStream`] with per-phase deadlines and a minimum rate.
#[derive(Debug)]
pub(super) struct Wire<'a, S> {
    inner: S,
    control: &'a WireControl,
    read_timeout: Duration,
    head_timeout: Duration,
    write_timeout: Duration,
    min_rate: Option<u64>,
    /// The read timeout last set on `inner`.
    applied: Option<Duration>,
    /// The write timeout last set on `inner`.
    applied_write: Option<Duration>,
    pub(super) bytes_read: u64,
    pub(super) bytes_written: u64,
}

impl<'a, S: ByteStream> Wire<'a, S> {
    /// A wire with the timeouts and the rate of `config`.
    pub(super) fn new(inner: S, control: &'a WireControl, config: &ServerConfig) -> Wire<'a, S> {
        Wire {
            inner,
            control,
            read_timeout: config.read_timeout,
            head_timeout: config.head_timeout,
            write_timeout: config.write_timeout,
            min_rate: config.min_rate,
            applied: None,
            applied_write: None,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// The stream, giving up the wire.
    pub(super) fn into_inner(self) -> S {
        self.inner
    }

    pub(super) fn stream(&self) -> &S {
        &self.inner
    }

    /// The read timeout and what its expiry means, for a read now; or the
    /// limit already passed.
    fn next_wait(&self, now: Instant) -> Result<(Duration, Option<Expired>), Expired> {
        let until = |deadline: Instant, kind: Expired, cap: Duration, cap_kind| {
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                Err(kind)
            } else if left <= cap {
                Ok((left, Some(kind)))
            } else {
                Ok((cap, cap_kind))
            }
        };
        match self.control.phase.get() {
            Phase::Idle { deadline } => until(deadline, Expired::Idle, Duration::MAX, None),
            Phase::Head { deadline } => until(
                deadline,
                Expired::Head,
                self.read_timeout,
                Some(Expired::Read),
            ),
            Phase::Body => {
                let pace = self.control.body_pace.get();
                match pace.left(self.read_timeout, self.min_rate) {
                    None => Ok((self.read_timeout, Some(Expired::Read))),
                    Some(left) => until(
                        now + left,
                        Expired::TooSlow,
                        self.read_timeout,
                        Some(Expired::Read),
                    ),
                }
            }
            Phase::Discard { deadline } => until(
                deadline,
                Expired::Discard,
                self.read_timeout,
                Some(Expired::Read),
            ),
        }
    }

    fn apply_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        // Zero means "no timeout" to neither std nor netstrata: it is an
        // error. A millisecond is the finest step either honours.
        let timeout = timeout.max(Duration::from_millis(1));
        if self.applied != Some(timeout) {
            self.inner.set_read_timeout(Some(timeout))?;
            self.applied = Some(timeout);
        }
        Ok(())
    }

    /// Sets the write timeout for a write now: the configured one, cut to
    /// what the response's [`Pace`] has left; fails if that is nothing.
    fn apply_write_timeout(&mut self) -> io::Result<()> {
        let pace = self.control.response_pace.get();
        let timeout = match pace.left(self.write_timeout, self.min_rate) {
            Some(left) if left.is_zero() => return Err(self.expire(Expired::TooSlow)),
            Some(left) => left.min(self.write_timeout),
            None => self.write_timeout,
        }
        .max(Duration::from_millis(1));
        if self.applied_write != Some(timeout) {
            self.inner.set_write_timeout(Some(timeout))?;
            self.applied_write = Some(timeout);
        }
        Ok(())
    }

    fn expire(&mut self, kind: Expired) -> io::Error {
        self.control.expired.set(Some(kind));
        let what = match kind {
            Expired::Idle => "keep-alive timeout",
            Expired::Head => "request head timeout",
            Expired::Read => "read timeout",
            Expired::Discard => "discarding took too long",
            Expired::TooSlow => "client slower than the minimum rate",
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

impl<S: ByteStream> Read for Wire<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.control.continue_pending.replace(false) {
            self.write_all(CONTINUE)?;
            self.flush()?;
        }
        loop {
            let (timeout, on_timeout) = match self.next_wait(Instant::now()) {
                Ok(wait) => wait,
                Err(kind) => return Err(self.expire(kind)),
            };
            self.apply_read_timeout(timeout)?;
            let started = Instant::now();
            let read = self.inner.read(buf);
            if let Phase::Body = self.control.phase.get() {
                let mut pace = self.control.body_pace.get();
                pace.record(started.elapsed(), *read.as_ref().unwrap_or(&0));
                self.control.body_pace.set(pace);
            }
            match read {
                Ok(n) => {
                    if n > 0 {
                        if let Phase::Idle { .. } = self.control.phase.get() {
                            let deadline = Instant::now() + self.head_timeout;
                            self.control.phase.set(Phase::Head { deadline });
                        }
                    }
                    self.bytes_read += n as u64;
                    return Ok(n);
                }
                Err(e) if is_timeout(&e) => match on_timeout {
                    Some(kind) => return Err(self.expire(kind)),
                    None => continue,
                },
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: ByteStream> Write for Wire<'_, S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.apply_write_timeout()?;
        let started = Instant::now();
        let written = self.inner.write(data);
        let mut pace = self.control.response_pace.get();
        pace.record(started.elapsed(), *written.as_ref().unwrap_or(&0));
        self.control.response_pace.set(pace);
        let n = written?;
        self.bytes_written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::application::http::server::test_stream::TestStream;

    /// A stream on which every read waits its timeout out.
    fn silent() -> TestStream<impl FnMut(&mut [u8], Option<Duration>) -> io::Result<usize>> {
        TestStream::new(|_: &mut [u8], timeout: Option<Duration>| {
            std::thread::sleep(timeout.unwrap_or(Duration::from_secs(1)));
            Err(io::ErrorKind::WouldBlock.into())
        })
    }

    const MS: Duration = Duration::from_millis(1);

    /// Read timeout 30 ms, head timeout 10 ms.
    fn timeouts() -> ServerConfig {
        ServerConfig {
            read_timeout: 30 * MS,
            head_timeout: 10 * MS,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn pace_allows_a_grace_period_plus_a_second_per_min_rate_bytes() {
        let mut pace = Pace::default();
        let grace = 30 * MS;
        assert_eq!(pace.left(grace, None), None);
        assert_eq!(pace.left(grace, Some(1000)), Some(grace));
        pace.record(20 * MS, 0);
        assert_eq!(pace.left(grace, Some(1000)), Some(10 * MS));
        // 5 bytes at 1000 B/s earn 5 ms.
        pace.record(Duration::ZERO, 5);
        assert_eq!(pace.left(grace, Some(1000)), Some(15 * MS));
        pace.record(40 * MS, 0);
        assert_eq!(pace.left(grace, Some(1000)), Some(Duration::ZERO));
        // Huge counts saturate rather than overflow.
        pace.record(Duration::MAX, usize::MAX);
        assert_eq!(pace.left(grace, Some(1)), Some(Duration::ZERO));
    }

    #[test]
    fn head_deadline_caps_the_read_timeout() {
        let control = WireControl::new();
        let mut silent = silent();
        let wire = Wire::new(&mut silent, &control, &timeouts());
        let now = Instant::now();
        control.set_phase(Phase::Head {
            deadline: now + 100 * MS,
        });
        // Far from the deadline, a read waits the read timeout...
        assert_eq!(wire.next_wait(now), Ok((30 * MS, Some(Expired::Read))));
        // ...near it, only what is left of the head's time...
        let late = now + 90 * MS;
        assert_eq!(wire.next_wait(late), Ok((10 * MS, Some(Expired::Head))));
        // ...and past it, nothing.
        assert_eq!(wire.next_wait(now + 100 * MS), Err(Expired::Head));
    }

    #[test]
    fn an_idle_read_times_out_at_the_deadline() {
        let control = WireControl::new();
        let mut silent = silent();
        let mut wire = Wire::new(&mut silent, &control, &timeouts());
        let start = Instant::now();
        control.set_phase(Phase::Idle {
            deadline: start + 250 * MS,
        });
        control.set_continue_pending(true);
        let err = wire.read(&mut [0u8; 8]).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(control.expired(), Some(Expired::Idle));
        assert!(waited >= 240 * MS && waited < 2000 * MS, "{waited:?}");
        // One read, waiting for the whole time; the 100 Continue went
        // first.
        let timeouts = silent.read_timeouts.borrow().clone();
        assert_eq!(timeouts.len(), 1);
        assert!(
            timeouts[0] <= 250 * MS && timeouts[0] > 200 * MS,
            "{timeouts:?}"
        );
        assert_eq!(silent.written, CONTINUE);
    }
}
