//! The server's threads: one event loop that holds every connection while
//! it waits for a request, and a pool of workers (growing while all are
//! busy) that serve the requests whose heads have arrived.
//!
//! A connection between requests is only data here: its stream, the bytes
//! of a head that has begun, and a deadline. The event loop reads what a
//! [`Poller`] reports in non-blocking mode, and when a whole head has
//! arrived (or a malformed or oversized one) it hands the connection to a
//! worker, which runs the handler and writes the response with blocking
//! I/O, as [`serve_connection`](super::serve_connection) does. The worker
//! gives the connection back when it waits for its next request, or for
//! its lingering close (RFC 9112 §9.6). Deadlines are kept in a heap: the
//! keep-alive timeout of idle connections, the head timeout of heads
//! begun (a slowloris is answered 408), the linger of closing ones.
//!
//! So ten thousand clients that hold a connection open, or trickle a
//! head, cost memory (a few hundred bytes each, beyond their TCP
//! buffers) but no thread; only requests being served occupy workers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::connection::{self, ConnectionEnd, Turn, TurnEnd, closing_error_response, head_ready};
use super::{Context, Shared, lock};
use crate::blocking::{PollWaker, Poller, TcpListener, TcpStream, Token};

/// The listener's token; connections count up from 1.
const LISTENER: Token = Token(0);

/// The largest head read while head memory is short
/// ([`ServerConfig::head_memory`](super::ServerConfig::head_memory)).
const PRESSED_HEAD: usize = 8 * 1024;

/// How much the event loop reads from a connection at a time.
const READ_CHUNK: usize = 16 * 1024;

/// What a connection waits for while it is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The first byte of a request, until the keep-alive timeout.
    Idle,
    /// The rest of a head, until the head timeout.
    Head,
    /// The client's close after ours, discarding what it sends, until the
    /// linger time.
    Linger,
}

/// A connection the event loop holds.
#[derive(Debug)]
struct Parked {
    stream: TcpStream,
    peer: SocketAddr,
    wait: Wait,
    deadline: Instant,
    /// The head received so far (empty, with no allocation, when idle).
    received: Vec<u8>,
    /// Responses written on the connection so far.
    requests: u64,
    /// Bytes thrown away while lingering.
    discarded: u64,
}

/// An instant `t` from now (the server's timeouts are at most a year,
/// `ServerConfig::validate` says so).
fn after(t: Duration) -> Instant {
    Instant::now() + t
}

/// Appends `bytes` to a head buffer, growing it by doubling but never
/// beyond `limit` bytes of capacity.
fn append_bounded(buf: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let needed = buf.len() + bytes.len();
    if needed > buf.capacity() {
        let target = (buf.capacity() * 2)
            .max(needed)
            .max(64)
            .min(limit.max(needed));
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(bytes);
}

/// Whether the bytes `buf[from..]` may have decided the head: a blank
/// line (`\n\n` or `\n\r\n`) ends in them, or a line ends with a bare
/// line feed, which the parser refuses at once (RFC 9112 §2.2 lets a
/// server reject it).
fn worth_parsing(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(2);
    (start..buf.len()).any(|at| {
        buf[at] == b'\n'
            && match at.checked_sub(1).map(|i| buf[i]) {
                Some(b'\r') => at >= 2 && buf[at - 2] == b'\n',
                _ => true,
            }
    })
}

/// What a parked connection does after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Stays parked.
    Wait,
    /// Goes to a worker: a whole head has arrived.
    Dispatch,
    /// Closes, uncounted (a lingering close ended, a failure counted).
    Remove,
    /// Closes, counted.
    End(ConnectionEnd),
    /// Answers this error status and closes lingeringly.
    Reject(u16),
}

#[derive(Debug)]
enum Slot {
    Parked(Parked),
    /// A worker has it.
    Busy,
}

/// A connection for a worker: its head has arrived.
#[derive(Debug)]
struct Job {
    token: Token,
    stream: TcpStream,
    peer: SocketAddr,
    received: Vec<u8>,
    requests: u64,
}

/// What a worker gives back: the connection, or `None` if it failed (an
/// I/O error or a panic, counted by the worker) and is closed.
#[derive(Debug)]
struct Returned {
    token: Token,
    peer: SocketAddr,
    turn: Option<Turn<TcpStream>>,
}

/// The queues between the event loop and the workers.
#[derive(Debug, Default)]
pub(super) struct Pool {
    jobs: Mutex<Jobs>,
    work: Condvar,
    returned: Mutex<Vec<Returned>>,
}

#[derive(Debug, Default)]
struct Jobs {
    queue: VecDeque<Job>,
    /// Workers running, and those of them waiting for a job.
    threads: usize,
    idle: usize,
    /// The event loop has ended: workers end once the queue is empty.
    closed: bool,
}

/// How long a worker beyond [`ServerConfig::workers`] waits for a job
/// before it ends.
///
/// [`ServerConfig::workers`]: super::ServerConfig::workers
const SPARE_WORKER_IDLE: Duration = Duration::from_secs(5);

impl Pool {
    /// Queues a job. True if no worker is free for it and fewer than
    /// `max` run: the caller starts one (counted already).
    fn push(&self, job: Job, max: usize) -> bool {
        let mut jobs = lock(&self.jobs);
        jobs.queue.push_back(job);
        let start = jobs.idle < jobs.queue.len() && jobs.threads < max;
        if start {
            jobs.threads += 1;
        }
        drop(jobs);
        self.work.notify_one();
        start
    }

    /// Counts a worker that is starting.
    fn starting(&self) {
        lock(&self.jobs).threads += 1;
    }

    /// Uncounts a worker that could not start.
    fn not_started(&self) {
        lock(&self.jobs).threads -= 1;
    }

    fn close(&self) {
        lock(&self.jobs).closed = true;
        self.work.notify_all();
    }

    /// The next job; `None` when the worker is to end: the pool closed,
    /// or it is a spare worker (beyond `keep`) that had nothing to do
    /// for a while.
    fn next(&self, keep: usize) -> Option<Job> {
        let mut jobs = lock(&self.jobs);
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                return Some(job);
            }
            if jobs.closed {
                jobs.threads -= 1;
                return None;
            }
            jobs.idle += 1;
            let spare = jobs.threads > keep;
            let timed_out;
            (jobs, timed_out) = if spare {
                let (g, t) = self
                    .work
                    .wait_timeout(jobs, SPARE_WORKER_IDLE)
                    .unwrap_or_else(|p| p.into_inner());
                (g, t.timed_out())
            } else {
                (
                    self.work.wait(jobs).unwrap_or_else(|p| p.into_inner()),
                    false,
                )
            };
            jobs.idle -= 1;
            if timed_out && jobs.queue.is_empty() && jobs.threads > keep {
                jobs.threads -= 1;
                return None;
            }
        }
    }
}

/// Starts a worker thread (counted in the pool already).
pub(super) fn spawn_worker(
    shared: &Arc<Shared>,
    pool: &Arc<Pool>,
    waker: &PollWaker,
) -> io::Result<()> {
    let (shared, pool, waker) = (shared.clone(), pool.clone(), waker.clone());
    thread::Builder::new()
        .name("http-worker".into())
        .spawn(move || work(&shared, &pool, &waker))
        .map(drop)
}

/// Starts the workers a server keeps.
pub(super) fn start_workers(
    shared: &Arc<Shared>,
    pool: &Arc<Pool>,
    waker: &PollWaker,
) -> io::Result<()> {
    for _ in 0..shared.config.workers {
        pool.starting();
        if let Err(e) = spawn_worker(shared, pool, waker) {
            pool.not_started();
            return Err(e);
        }
    }
    Ok(())
}

/// A worker: serves connections whose heads have arrived until the pool
/// closes (or, beyond the workers kept, until it idles).
fn work(shared: &Shared, pool: &Pool, poller_waker: &PollWaker) {
    let ctx = Context {
        config: &shared.config,
        shutdown: &shared.shutdown,
        counters: Some(&shared.counters),
    };
    let counters = &shared.counters;
    while let Some(job) = pool.next(shared.config.workers) {
        let Job {
            token,
            stream,
            peer,
            received,
            requests,
        } = job;
        let served = panic::catch_unwind(AssertUnwindSafe(|| {
            connection::serve_turn(stream, received, peer, &*shared.handler, &ctx, requests)
        }));
        let turn = match served {
            Ok(Ok(turn)) => Some(turn),
            Ok(Err(e)) => {
                log::debug!("{peer}: connection failed: {e}");
                counters.io_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(_) => {
                log::error!("{peer}: connection worker panicked");
                counters.handler_panics.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        lock(&pool.returned).push(Returned { token, peer, turn });
        poller_waker.wake();
    }
}

/// The event loop's state.
pub(super) struct EventLoop {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    poller: Poller,
    listener: Option<TcpListener>,
    /// The listener may have connections waiting.
    acceptable: bool,
    conns: HashMap<Token, Slot>,
    next_token: usize,
    /// Deadlines of parked connections; an entry whose connection has
    /// moved on since is skipped when it comes up.
    timers: BinaryHeap<Reverse<(Instant, Token)>>,
    scratch: Vec<u8>,
    /// For the workers it starts.
    waker: PollWaker,
    /// The capacity of every parked connection's head buffer, against
    /// [`ServerConfig::head_memory`](super::ServerConfig::head_memory).
    head_memory: usize,
}

impl EventLoop {
    pub(super) fn new(
        shared: Arc<Shared>,
        pool: Arc<Pool>,
        poller: Poller,
        listener: TcpListener,
    ) -> io::Result<EventLoop> {
        listener.set_nonblocking(true)?;
        poller.register_listener(&listener, LISTENER)?;
        let waker = poller.waker();
        Ok(EventLoop {
            shared,
            pool,
            poller,
            listener: Some(listener),
            acceptable: true,
            conns: HashMap::new(),
            next_token: LISTENER.0 + 1,
            timers: BinaryHeap::new(),
            scratch: vec![0; READ_CHUNK],
            waker,
            head_memory: 0,
        })
    }

    /// Runs until the server has shut down and every connection has ended,
    /// or the runtime stops; then (or if it panics) drops the connections
    /// left and closes the pool.
    pub(super) fn run(mut self) {
        let mut events = Vec::new();
        loop {
            self.take_returned();
            for token in events.drain(..) {
                if token == LISTENER {
                    self.acceptable = true;
                } else {
                    self.pump(token);
                }
            }
            self.expire(Instant::now());
            // The flag is set before the poller is woken: a shutdown
            // begun after this look ends the next wait at once.
            let shutting_down = self.shared.shutdown.load(Ordering::Acquire);
            if shutting_down {
                self.shut_down();
            } else {
                self.accept();
            }
            self.publish();
            if shutting_down && self.conns.is_empty() {
                break;
            }
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((at, _))| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poller.wait(&mut events, timeout) {
                log::warn!("HTTP server's event loop stops: {e}");
                break;
            }
        }
    }

    /// Stops accepting, and closes the connections that wait for a
    /// request; heads begun and requests being served go on.
    fn shut_down(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.close();
        }
        let idle: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Parked(p) if p.wait == Wait::Idle))
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            self.end(token, ConnectionEnd::Shutdown);
        }
    }

    /// Accepts while connections wait and the limit allows.
    fn accept(&mut self) {
        while self.acceptable && self.conns.len() < self.shared.config.max_connections {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.acceptable = false;
                    return;
                }
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    self.acceptable = false;
                    return;
                }
            };
            self.shared
                .counters
                .accepted
                .fetch_add(1, Ordering::Relaxed);
            log::debug!("HTTP connection from {peer}");
            let token = Token(self.next_token);
            self.next_token += 1;
            // Responses leave in whole writes; Nagle would only hold back
            // their last segment.
            let set_up = stream
                .set_nodelay(true)
                .and_then(|()| self.watch(&stream, token));
            if let Err(e) = set_up {
                log::debug!("{peer}: cannot watch the connection: {e}");
                self.shared
                    .counters
                    .io_errors
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // The registration reports the token: the first read comes with
            // the next events.
            self.park(token, stream, peer, Wait::Idle, Vec::new(), 0);
        }
    }

    /// Holds a connection until its socket changes or `wait` times out.
    fn park(
        &mut self,
        token: Token,
        stream: TcpStream,
        peer: SocketAddr,
        wait: Wait,
        received: Vec<u8>,
        requests: u64,
    ) {
        self.head_memory += received.capacity();
        let config = &self.shared.config;
        let deadline = after(match wait {
            Wait::Idle => config.idle_timeout,
            Wait::Head => config.head_timeout,
            Wait::Linger => config.linger,
        });
        self.schedule(token, deadline);
        self.conns.insert(
            token,
            Slot::Parked(Parked {
                stream,
                peer,
                wait,
                deadline,
                received,
                requests,
                discarded: 0,
            }),
        );
    }

    fn schedule(&mut self, token: Token, deadline: Instant) {
        // Entries outlive the phases they were for; rebuild the heap from
        // the live deadlines before the stale ones pile up.
        if self.timers.len() > 2 * self.conns.len() + 64 {
            self.timers = self
                .conns
                .iter()
                .filter_map(|(t, slot)| match slot {
                    Slot::Parked(p) => Some(Reverse((p.deadline, *t))),
                    Slot::Busy => None,
                })
                .collect();
        }
        self.timers.push(Reverse((deadline, token)));
    }

    /// Takes back the connections the workers are done with.
    fn take_returned(&mut self) {
        let returned = std::mem::take(&mut *lock(&self.pool.returned));
        for Returned { token, peer, turn } in returned {
            let Some(turn) = turn else {
                self.remove(token);
                continue;
            };
            let Turn {
                stream,
                received,
                requests,
                end,
            } = turn;
            let shutting_down = self.shared.shutdown.load(Ordering::Acquire);
            let (wait, received) = match end {
                TurnEnd::Park if received.is_empty() && shutting_down => {
                    self.remove(token);
                    continue;
                }
                TurnEnd::Park if received.is_empty() => (Wait::Idle, received),
                TurnEnd::Park => (Wait::Head, received),
                TurnEnd::Close { end, linger } => {
                    self.shared.counters.count_end(end);
                    if !linger {
                        self.remove(token);
                        continue;
                    }
                    (Wait::Linger, Vec::new())
                }
            };
            // Watched again; the registration reports it once, for what
            // arrived while the worker had it.
            if let Err(e) = self.watch(&stream, token) {
                log::debug!("{peer}: cannot watch the connection: {e}");
                self.remove(token);
                continue;
            }
            self.park(token, stream, peer, wait, received, requests);
        }
    }

    /// Puts a connection in non-blocking mode and watches it; the
    /// registration reports it once.
    fn watch(&self, stream: &TcpStream, token: Token) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        self.poller.register(stream, token)
    }

    /// Reads what a parked connection has received, and acts on it.
    fn pump(&mut self, token: Token) {
        let (next, head_begun) = self.read_parked(token);
        if let Some(deadline) = head_begun {
            self.schedule(token, deadline);
        }
        match next {
            Next::Wait => {}
            Next::Dispatch => self.dispatch(token),
            Next::Remove => self.remove(token),
            Next::End(end) => self.end(token, end),
            Next::Reject(status) => self.reject(token, status),
        }
    }

    /// Reads a parked connection until it would block or must move on;
    /// also says when a head began (its deadline).
    fn read_parked(&mut self, token: Token) -> (Next, Option<Instant>) {
        let Some(Slot::Parked(p)) = self.conns.get_mut(&token) else {
            return (Next::Wait, None);
        };
        let config = &self.shared.config;
        // A head is done, one way or another, by this many bytes.
        let head_limit = config.limits.max_header_bytes + 1;
        let mut head_begun = None;
        loop {
            // Under memory pressure a head may not grow past
            // `PRESSED_HEAD`: a larger one is refused, a usual one served.
            let pressed = self.head_memory >= config.head_memory;
            let cap = if pressed {
                head_limit.min(PRESSED_HEAD)
            } else {
                head_limit
            };
            let want = if p.wait == Wait::Linger {
                self.scratch.len()
            } else {
                cap.saturating_sub(p.received.len()).min(self.scratch.len())
            };
            if want == 0 {
                // Full already: the parser decides, or the pressure.
                let next = if head_ready(&p.received, &config.limits) {
                    Next::Dispatch
                } else {
                    Next::Reject(431)
                };
                return (next, head_begun);
            }
            let n = match p.stream.read(&mut self.scratch[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (Next::Wait, head_begun),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("{}: connection failed: {e}", p.peer);
                    if p.wait != Wait::Linger {
                        self.shared
                            .counters
                            .io_errors
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    return (Next::Remove, head_begun);
                }
            };
            let bytes = &self.scratch[..n];
            let next = match p.wait {
                // The client closed after our close, or sent more than we
                // discard.
                Wait::Linger if n == 0 => Next::Remove,
                Wait::Linger => {
                    p.discarded += n as u64;
                    if p.discarded <= config.max_drain {
                        continue;
                    }
                    Next::Remove
                }
                // The client closed between requests or in a head.
                Wait::Idle | Wait::Head if n == 0 => Next::End(ConnectionEnd::PeerClosed),
                Wait::Idle | Wait::Head => {
                    if p.wait == Wait::Idle {
                        p.wait = Wait::Head;
                        p.deadline = after(config.head_timeout);
                        head_begun = Some(p.deadline);
                    }
                    let before = p.received.capacity();
                    append_bounded(&mut p.received, bytes, head_limit);
                    self.head_memory += p.received.capacity() - before;
                    // Parse only when the head may have ended (a blank
                    // line among the new bytes), reached its limit, or
                    // broke the line rules: a head sent a byte at a time
                    // is parsed once, not once per byte or per line.
                    let from = p.received.len() - n;
                    let ended = worth_parsing(&p.received, from);
                    let full = p.received.len() >= cap;
                    if (ended || full) && head_ready(&p.received, &config.limits) {
                        Next::Dispatch
                    } else if full {
                        log::debug!("{}: head refused under memory pressure", p.peer);
                        Next::Reject(431)
                    } else {
                        continue;
                    }
                }
            };
            return (next, head_begun);
        }
    }

    /// Hands a connection whose head has arrived to a worker.
    fn dispatch(&mut self, token: Token) {
        let Some(p) = self.take(token) else {
            return;
        };
        // A worker has it: its segments need not wake the event loop.
        let handed = self
            .poller
            .deregister(&p.stream)
            .and_then(|()| p.stream.set_nonblocking(false));
        if let Err(e) = handed {
            log::debug!("{}: {e}", p.peer);
            return;
        }
        self.conns.insert(token, Slot::Busy);
        let job = Job {
            token,
            stream: p.stream,
            peer: p.peer,
            received: p.received,
            requests: p.requests,
        };
        if self.pool.push(job, self.shared.config.max_workers) {
            // Every worker is busy: one more, up to the limit.
            if let Err(e) = spawn_worker(&self.shared, &self.pool, &self.waker) {
                log::warn!("cannot start an HTTP worker: {e}");
                self.pool.not_started();
            }
        }
    }

    /// Acts on the deadlines that have passed.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((at, token))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let Some(Slot::Parked(p)) = self.conns.get_mut(&token) else {
                continue;
            };
            if p.deadline != at {
                continue;
            }
            match p.wait {
                Wait::Idle => self.end(token, ConnectionEnd::IdleTimeout),
                Wait::Linger => self.remove(token),
                Wait::Head => {
                    // The head took too long; the client may be gone, so
                    // the answer is a courtesy.
                    log::debug!("{}: request head timed out", p.peer);
                    self.reject(token, 408);
                }
            }
        }
    }

    /// Answers a parked connection's head with an error status, sent if it
    /// fits at once, and closes lingeringly.
    fn reject(&mut self, token: Token, status: u16) {
        let Some(p) = self.take(token) else {
            return;
        };
        // Rendered now, for its Date.
        let _ = (&p.stream).write(&closing_error_response(status));
        self.shared
            .counters
            .requests
            .fetch_add(1, Ordering::Relaxed);
        self.shared
            .counters
            .count_end(ConnectionEnd::Rejected(status));
        if p.stream.shutdown(std::net::Shutdown::Write).is_ok() {
            self.park(
                token,
                p.stream,
                p.peer,
                Wait::Linger,
                Vec::new(),
                p.requests,
            );
        }
    }

    /// Closes a connection for `end`, counting it.
    fn end(&mut self, token: Token, end: ConnectionEnd) {
        if let Some(Slot::Parked(p)) = self.conns.get(&token) {
            log::debug!(
                "{}: connection closed after {} requests: {end:?}",
                p.peer,
                p.requests
            );
        }
        self.shared.counters.count_end(end);
        self.remove(token);
    }

    /// Drops a connection (closing it) and frees its place.
    fn remove(&mut self, token: Token) {
        self.take(token);
    }

    /// Takes a connection out of the table, freeing its place, and its
    /// head buffer out of the head memory: the one place that does. The
    /// connection if it was parked; one a worker has is only forgotten.
    fn take(&mut self, token: Token) -> Option<Parked> {
        match self.conns.remove(&token)? {
            Slot::Parked(p) => {
                self.head_memory -= p.received.capacity();
                Some(p)
            }
            Slot::Busy => None,
        }
    }

    /// Publishes the number of connections, for the stats and for a
    /// shutdown waiting for them to end.
    fn publish(&self) {
        let open = self.conns.len() as u64;
        let mut published = self.shared.published();
        if published.open != open {
            published.open = open;
            drop(published);
            self.shared.changed.notify_all();
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let dropped = self.conns.len();
        self.conns.clear();
        let mut published = self.shared.published();
        published.open = 0;
        published.ended = true;
        drop(published);
        self.shared.changed.notify_all();
        self.pool.close();
        log::debug!("HTTP event loop ended ({dropped} connections dropped)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::http::Limits;

    /// Feeds `input` in the pieces that end at `cuts`, as the event loop
    /// reads it, and says after how many bytes it would hand the head to
    /// a worker (`None`: never).
    fn dispatched_after(input: &[u8], cuts: &[usize], limits: &Limits) -> Option<usize> {
        let limit = limits.max_header_bytes + 1;
        let mut received = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let from = received.len();
            append_bounded(&mut received, &input[start..end], limit);
            assert!(received.capacity() <= limit.max(received.len()));
            start = end;
            let full = received.len() >= limit;
            if (worth_parsing(&received, from) || full) && head_ready(&received, limits) {
                return Some(received.len());
            }
        }
        None
    }

    /// Where parsing after every byte would first find the head ready.
    fn ready_after(input: &[u8], limits: &Limits) -> Option<usize> {
        (1..=input.len()).find(|&n| head_ready(&input[..n], limits))
    }

    #[test]
    fn a_head_is_handed_over_as_soon_as_it_is_whole_however_it_is_cut() {
        let limits = Limits::default();
        let heads: [&[u8]; 6] = [
            b"\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET /x HTTP/1.1\r\nHost: a\r\nX: \r\n\r\nbody",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
        ];
        for input in heads {
            let expected = ready_after(input, &limits);
            assert!(expected.is_some());
            for a in 1..input.len() {
                // The event loop stops reading at the first piece that
                // completes the head, so it sees the head whole at the
                // end of that piece.
                let got = dispatched_after(input, &[a], &limits);
                let piece_end = if expected.unwrap() <= a {
                    a
                } else {
                    input.len()
                };
                assert_eq!(got, Some(piece_end), "{input:?} cut at {a}");
                for b in a + 1..input.len() {
                    let got = dispatched_after(input, &[a, b], &limits);
                    let e = expected.unwrap();
                    let piece_end = [a, b, input.len()].into_iter().find(|&c| c >= e);
                    assert_eq!(got, piece_end, "{input:?} cut at {a}, {b}");
                }
            }
        }
    }

    #[test]
    fn an_endless_head_is_handed_over_at_the_limit_and_no_later() {
        let limits = Limits {
            max_header_bytes: 1000,
            ..Limits::default()
        };
        let mut input = b"GET / HTTP/1.1\r\n".to_vec();
        while input.len() < 3000 {
            input.extend_from_slice(b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let cuts: Vec<usize> = (1..input.len()).step_by(7).collect();
        let got = dispatched_after(&input, &cuts, &limits).expect("handed over");
        assert!((1000..=1001 + 7).contains(&got), "{got}");
    }
}
