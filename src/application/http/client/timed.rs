//! A stream whose reads and writes each wait no longer than their
//! timeout, none past the request's deadline, and whose response heads
//! arrive within a read timeout of their first byte.
//!
//! Socket timeouts bound one read or one write; a response head trickled
//! in a byte at a time never trips them. With a deadline set, the socket
//! timeout is cut to the time left before every read and write, and once
//! the deadline has passed they fail with `TimedOut` without touching the
//! socket. A head has a deadline of its own, as a server gives a request
//! head (a slowloris in reverse): once its first byte has come, the rest
//! must follow within one read timeout.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::application::net::{ByteStream, time_left};

/// A client connection's stream, with the limits of the request it
/// carries.
#[derive(Debug)]
pub(super) struct TimedStream<S> {
    inner: S,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    deadline: Option<Instant>,
    head: HeadClock,
}

/// The deadline of the response head being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadClock {
    /// No head is being read (or heads have no time limit).
    Off,
    /// A head is awaited: its first byte starts a clock of this length.
    Armed(Duration),
    /// The head must be complete by then.
    Until(Instant),
}

impl<S: ByteStream> TimedStream<S> {
    pub(super) fn new(inner: S) -> TimedStream<S> {
        TimedStream {
            inner,
            read_timeout: None,
            write_timeout: None,
            deadline: None,
            head: HeadClock::Off,
        }
    }

    /// The socket.
    pub(super) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Sets the limits for a request: `None` timeouts wait forever, a
    /// `None` deadline leaves only the timeouts.
    pub(super) fn set_limits(
        &mut self,
        read_timeout: Option<Duration>,
        write_timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        self.deadline = deadline;
        self.head = HeadClock::Off;
        self.write_timeout = write_timeout;
        if deadline.is_none() {
            self.inner.set_write_timeout(write_timeout)?;
        }
        self.set_read_timeout(read_timeout)
    }

    /// Changes the read timeout alone (to wait briefly for a 100).
    pub(super) fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout = timeout;
        if self.deadline.is_none() {
            self.inner.set_read_timeout(timeout)?;
        }
        Ok(())
    }

    /// A response head is awaited: once its first byte has been read, the
    /// rest must come within `limit` (`None`: no limit).
    pub(super) fn begin_head(&mut self, limit: Option<Duration>) {
        self.head = limit.map_or(HeadClock::Off, HeadClock::Armed);
    }

    /// The head has been read: reads go back to the request's limits.
    pub(super) fn end_head(&mut self) -> io::Result<()> {
        let was_timed = matches!(self.head, HeadClock::Until(_));
        self.head = HeadClock::Off;
        if was_timed && self.deadline.is_none() {
            // `before` cut the socket's timeout for the head.
            self.inner.set_read_timeout(self.read_timeout)?;
        }
        Ok(())
    }

    /// The earlier of the request's deadline and the head's, for a read.
    fn read_deadline(&self) -> Option<Instant> {
        match (self.deadline, self.head) {
            (Some(d), HeadClock::Until(h)) => Some(d.min(h)),
            (None, HeadClock::Until(h)) => Some(h),
            (d, _) => d,
        }
    }

    /// With a `deadline`, sets a socket timeout (with `set`) to `timeout`
    /// cut to the time left.
    fn before(
        &self,
        set: fn(&S, Option<Duration>) -> io::Result<()>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let Some(deadline) = deadline else {
            return Ok(());
        };
        let left = time_left(deadline, timeout).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "the time limit of the request or of the response head passed",
            )
        })?;
        set(&self.inner, Some(left))
    }
}

impl<S: ByteStream> Read for TimedStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.before(S::set_read_timeout, self.read_timeout, self.read_deadline())?;
        let n = self.inner.read(buf)?;
        if let HeadClock::Armed(limit) = self.head {
            if n > 0 {
                self.head = HeadClock::Until(Instant::now() + limit);
            }
        }
        Ok(n)
    }
}

impl<S: ByteStream> Write for TimedStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.before(S::set_write_timeout, self.write_timeout, self.deadline)?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
