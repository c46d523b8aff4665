//! The server's threads: one event loop that holds every connection while
//! it waits for a request, and a fixed pool of workers that serve the
//! requests whose heads have arrived.
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
use std::time::Instant;

use super::connection::{self, ConnectionEnd, Turn, TurnEnd, head_ready, head_timeout_response};
use super::{Context, Shared, lock};
use crate::blocking::{Poller, TcpListener, TcpStream, Token};

/// The listener's token; connections count up from 1.
const LISTENER: Token = Token(0);

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
    /// The event loop has ended: workers end once the queue is empty.
    closed: bool,
}

impl Pool {
    fn push(&self, job: Job) {
        lock(&self.jobs).queue.push_back(job);
        self.work.notify_one();
    }

    pub(super) fn close(&self) {
        lock(&self.jobs).closed = true;
        self.work.notify_all();
    }

    fn next(&self) -> Option<Job> {
        let mut jobs = lock(&self.jobs);
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                return Some(job);
            }
            if jobs.closed {
                return None;
            }
            jobs = self.work.wait(jobs).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A worker: serves connections whose heads have arrived until the pool
/// closes.
pub(super) fn work(shared: &Shared, pool: &Pool, poller_waker: &crate::blocking::PollWaker) {
    let ctx = Context {
        config: &shared.config,
        shutdown: &shared.shutdown,
        counters: Some(&shared.counters),
    };
    let counters = &shared.counters;
    while let Some(job) = pool.next() {
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
    /// The response to a head that took too long.
    timeout_response: Vec<u8>,
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
            timeout_response: head_timeout_response(),
        })
    }

    /// Runs until the server has shut down and every connection has ended,
    /// or the runtime stops; then closes the pool.
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
        let dropped = self.conns.len();
        self.conns.clear();
        self.publish();
        self.pool.close();
        log::debug!("HTTP event loop ended ({dropped} connections dropped)");
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
                .and_then(|()| stream.set_nonblocking(true))
                .and_then(|()| self.poller.register(&stream, token));
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
        let config = &self.shared.config;
        let deadline = Instant::now()
            + match wait {
                Wait::Idle => config.idle_timeout,
                Wait::Head => config.head_timeout,
                Wait::Linger => config.linger,
            };
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
            match end {
                TurnEnd::Park => {
                    if received.is_empty() && self.shared.shutdown.load(Ordering::Acquire) {
                        self.remove(token);
                        continue;
                    }
                    let wait = if received.is_empty() {
                        Wait::Idle
                    } else {
                        Wait::Head
                    };
                    if let Err(e) = stream.set_nonblocking(true) {
                        log::debug!("{peer}: {e}");
                        self.remove(token);
                        continue;
                    }
                    self.park(token, stream, peer, wait, received, requests);
                }
                TurnEnd::Close { end, linger } => {
                    self.shared.counters.count_end(end);
                    if !linger || stream.set_nonblocking(true).is_err() {
                        self.remove(token);
                        continue;
                    }
                    self.park(token, stream, peer, Wait::Linger, Vec::new(), requests);
                }
            }
            // Whatever arrived while the worker had it was not reported.
            self.pump(token);
        }
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
        }
    }

    /// Reads a parked connection until it would block or must move on;
    /// also says when a head began (its deadline).
    fn read_parked(&mut self, token: Token) -> (Next, Option<Instant>) {
        let Some(Slot::Parked(p)) = self.conns.get_mut(&token) else {
            return (Next::Wait, None);
        };
        let config = &self.shared.config;
        let mut head_begun = None;
        loop {
            let n = match p.stream.read(&mut self.scratch) {
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
                        p.deadline = Instant::now() + config.head_timeout;
                        head_begun = Some(p.deadline);
                    }
                    p.received.extend_from_slice(bytes);
                    // Parse again only when a line ended (or the head
                    // outgrew the limit): a head sent a byte at a time
                    // costs a parse per line, not one per byte.
                    let line_ended = bytes.contains(&b'\n');
                    let too_long = p.received.len() > config.limits.max_header_bytes;
                    if !((line_ended || too_long) && head_ready(&p.received, &config.limits)) {
                        continue;
                    }
                    Next::Dispatch
                }
            };
            return (next, head_begun);
        }
    }

    /// Hands a connection whose head has arrived to a worker.
    fn dispatch(&mut self, token: Token) {
        let Some(slot) = self.conns.get_mut(&token) else {
            return;
        };
        let Slot::Parked(p) = std::mem::replace(slot, Slot::Busy) else {
            return;
        };
        if let Err(e) = p.stream.set_nonblocking(false) {
            log::debug!("{}: {e}", p.peer);
            self.remove(token);
            return;
        }
        self.pool.push(Job {
            token,
            stream: p.stream,
            peer: p.peer,
            received: p.received,
            requests: p.requests,
        });
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
                    // the answer is a courtesy, sent if it fits at once.
                    log::debug!("{}: request head timed out", p.peer);
                    let _ = p.stream.write(&self.timeout_response);
                    self.shared
                        .counters
                        .requests
                        .fetch_add(1, Ordering::Relaxed);
                    self.shared.counters.count_end(ConnectionEnd::Rejected(408));
                    let shut = p.stream.shutdown(std::net::Shutdown::Write);
                    let Some(Slot::Parked(p)) = self.conns.remove(&token) else {
                        continue;
                    };
                    if shut.is_ok() {
                        self.park(
                            token,
                            p.stream,
                            p.peer,
                            Wait::Linger,
                            Vec::new(),
                            p.requests,
                        );
                    } else {
                        self.publish();
                    }
                }
            }
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
        self.conns.remove(&token);
    }

    /// Publishes the number of connections, for the stats and for a
    /// shutdown waiting for them to end.
    fn publish(&self) {
        let n = self.conns.len() as u64;
        let mut active = self.shared.active();
        if *active != n {
            *active = n;
            drop(active);
            self.shared.changed.notify_all();
        }
    }
}
