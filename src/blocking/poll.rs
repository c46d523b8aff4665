//! Readiness of many sockets on one thread: what epoll, in edge-triggered
//! mode, is to the kernel's sockets.
//!
//! A [`Poller`] watches TCP streams and listeners of one [`Runtime`],
//! each under a [`Token`] the caller chooses. After every poll of the
//! interface the runtime's thread hands the poller the tokens of the
//! sockets the stack names as changed
//! ([`TcpSockets::take_events`](crate::transport::tcp::TcpSockets::take_events)):
//! data or the end of the stream arrived, room to send opened, a
//! connection is waiting to be accepted, an error ended the connection.
//! [`Poller::wait`] returns them. A socket that has not changed costs
//! nothing, so one thread can watch ten thousand idle connections.
//!
//! Readiness is an edge: a token is reported once per change, and the
//! caller reads (or accepts) in [non-blocking
//! mode](TcpStream::set_nonblocking) until `WouldBlock` before it waits
//! again. A socket is also reported once when it is registered, since it
//! may be ready already. A token may be reported when nothing is left to
//! read (a change the caller already consumed): a read then says
//! `WouldBlock`. Changes made locally are not reported (a
//! `shutdown(Read)`, a listener closed from another thread): the thread
//! that makes them tells the poller's thread itself, with a
//! [`PollWaker`].
//!
//! ```
//! use std::io::{ErrorKind, Read, Write};
//! use netstrata::blocking::{Poller, Runtime, TcpListener, TcpStream, Token};
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::{Interface, InterfaceConfig};
//!
//! let net = MemoryNetwork::new(1500);
//! let runtime = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let iface = Interface::new(InterfaceConfig::new(EthernetAddress::local(n), cidr), port.capabilities());
//!     Runtime::on_memory_port(iface, port)
//! };
//! let (client, server) = (runtime(1)?, runtime(2)?);
//! let listener = TcpListener::bind(&server, "192.0.2.2:7")?;
//! listener.set_nonblocking(true)?;
//! let poller = Poller::new(&server);
//! poller.register_listener(&listener, Token(0))?;
//!
//! let mut c = TcpStream::connect(&client, "192.0.2.2:7")?;
//! c.write_all(b"hello")?;
//!
//! let (mut events, mut accepted, mut got) = (Vec::new(), None, Vec::new());
//! while got.len() < 5 {
//!     poller.wait(&mut events, Some(std::time::Duration::from_secs(5)))?;
//!     for token in events.drain(..) {
//!         if token == Token(0) {
//!             // Reported at registration too, when nothing may wait yet.
//!             match listener.accept() {
//!                 Ok((s, _)) => {
//!                     s.set_nonblocking(true)?;
//!                     poller.register(&s, Token(1))?;
//!                     accepted = Some(s);
//!                 }
//!                 Err(e) if e.kind() == ErrorKind::WouldBlock => {}
//!                 Err(e) => return Err(e.into()),
//!             }
//!         } else if let Some(s) = accepted.as_mut() {
//!             let mut buf = [0; 16];
//!             loop {
//!                 match s.read(&mut buf) {
//!                     Ok(n) => got.extend_from_slice(&buf[..n]),
//!                     Err(e) if e.kind() == ErrorKind::WouldBlock => break,
//!                     Err(e) => return Err(e.into()),
//!                 }
//!             }
//!         }
//!     }
//! }
//! assert_eq!(got, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};

use super::{Runtime, Shared, TcpListener, TcpStream, lock};
use crate::iface::Interface;
use crate::transport::tcp::{ListenerHandle, TcpEvent, TcpHandle};

/// The caller's name for a socket watched by a [`Poller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// The tokens a poller has to report, and whether its waiter was woken.
#[derive(Debug, Default)]
struct ReadyList {
    tokens: Vec<Token>,
    /// The tokens in `tokens`: each is reported once however often its
    /// socket changes before the waiter takes the list.
    queued: HashSet<Token>,
    woken: bool,
}

/// A poller's side that the runtime's thread fills.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    list: Mutex<ReadyList>,
    cond: Condvar,
}

impl Ready {
    fn push(&self, token: Token) {
        let mut list = lock(&self.list);
        if list.queued.insert(token) {
            list.tokens.push(token);
        }
    }

    fn wake(&self) {
        lock(&self.list).woken = true;
        self.cond.notify_all();
    }

    fn notify(&self) {
        self.cond.notify_all();
    }
}

/// Who watches which socket: kept with the interface, under its lock.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    tcp: HashMap<TcpHandle, (Arc<Ready>, Token)>,
    listeners: HashMap<ListenerHandle, (Arc<Ready>, Token)>,
    /// Every poller of the runtime, woken when it stops.
    pollers: Vec<Weak<Ready>>,
    events: Vec<TcpEvent>,
}

impl Registry {
    /// Hands the tokens of the sockets that changed to their pollers, and
    /// adds the pollers that got some to `notify` (once each).
    pub(crate) fn signal(&mut self, iface: &mut Interface, notify: &mut Vec<Arc<Ready>>) {
        iface.tcp().take_events(&mut self.events);
        for event in self.events.drain(..) {
            let watcher = match event {
                TcpEvent::Connection(h) => self.tcp.get(&h),
                TcpEvent::Listener(l) => self.listeners.get(&l),
            };
            if let Some((ready, token)) = watcher {
                ready.push(*token);
                if !notify.iter().any(|r| Arc::ptr_eq(r, ready)) {
                    notify.push(ready.clone());
                }
            }
        }
    }

    /// Forgets a connection that is being closed.
    pub(crate) fn forget(&mut self, handle: TcpHandle) {
        self.tcp.remove(&handle);
    }

    /// Forgets a listener that is being closed.
    pub(crate) fn forget_listener(&mut self, handle: ListenerHandle) {
        self.listeners.remove(&handle);
    }

    /// Wakes every poller: the runtime stopped.
    pub(crate) fn wake_all(&mut self) {
        for ready in self.pollers.iter().filter_map(Weak::upgrade) {
            ready.wake();
        }
    }
}

/// Notifies the pollers [`Registry::signal`] named (after the stack's lock
/// is released).
pub(crate) fn notify_all(notify: &mut Vec<Arc<Ready>>) {
    for ready in notify.drain(..) {
        ready.notify();
    }
}

/// Waits for any of many sockets of one [`Runtime`] to change; see the
/// [module documentation](self).
#[derive(Debug)]
pub struct Poller {
    ready: Arc<Ready>,
    shared: Arc<Shared>,
}

/// Makes a [`Poller::wait`] return early, from any thread.
#[derive(Debug, Clone)]
pub struct PollWaker(Arc<Ready>);

impl PollWaker {
    /// Ends the poller's current or next wait.
    pub fn wake(&self) {
        self.0.wake();
    }
}

impl Poller {
    /// A poller for sockets of `rt`.
    pub fn new(rt: &Runtime) -> Poller {
        Poller::on(rt.shared().clone())
    }

    /// A poller for sockets of the runtime `listener` belongs to.
    pub(crate) fn for_listener(listener: &TcpListener) -> Poller {
        Poller::on(listener.parts().0.clone())
    }

    fn on(shared: Arc<Shared>) -> Poller {
        let ready = Arc::new(Ready::default());
        let mut g = shared.lock();
        g.registry.pollers.retain(|p| p.strong_count() > 0);
        g.registry.pollers.push(Arc::downgrade(&ready));
        drop(g);
        Poller { ready, shared }
    }

    fn check_runtime(&self, other: &Arc<Shared>) -> io::Result<()> {
        if Arc::ptr_eq(&self.shared, other) {
            Ok(())
        } else {
            Err(io::Error::new(
                ErrorKind::InvalidInput,
                "the socket belongs to another runtime than the poller",
            ))
        }
    }

    /// Watches `stream` under `token`, replacing any earlier registration
    /// of it (with this or another poller). The token is reported once at
    /// once. Fails with `InvalidInput` for a stream of another runtime
    /// and `NotConnected` for one already released by the stack.
    pub fn register(&self, stream: &TcpStream, token: Token) -> io::Result<()> {
        let (shared, handle) = stream.parts();
        self.check_runtime(shared)?;
        let mut g = self.shared.lock();
        g.iface.tcp().state(handle).map_err(super::tcp_error)?;
        g.registry.tcp.insert(handle, (self.ready.clone(), token));
        drop(g);
        self.ready.push(token);
        self.ready.notify();
        Ok(())
    }

    /// Stops watching `stream` (a stream not watched is no error).
    /// Dropping the last clone of a stream does this too.
    pub fn deregister(&self, stream: &TcpStream) -> io::Result<()> {
        let (shared, handle) = stream.parts();
        self.check_runtime(shared)?;
        self.shared.lock().registry.forget(handle);
        Ok(())
    }

    /// Watches `listener` under `token`: it is reported when connections
    /// wait to be accepted. Fails as [`Poller::register`] does, and with
    /// `NotConnected` for a closed listener.
    pub fn register_listener(&self, listener: &TcpListener, token: Token) -> io::Result<()> {
        let (shared, handle) = listener.parts();
        self.check_runtime(shared)?;
        let mut g = self.shared.lock();
        if listener.is_closed() {
            return Err(io::Error::new(ErrorKind::NotConnected, "listener closed"));
        }
        g.registry
            .listeners
            .insert(handle, (self.ready.clone(), token));
        drop(g);
        self.ready.push(token);
        self.ready.notify();
        Ok(())
    }

    /// Stops watching `listener`. Closing it does this too.
    pub fn deregister_listener(&self, listener: &TcpListener) -> io::Result<()> {
        let (shared, handle) = listener.parts();
        self.check_runtime(shared)?;
        self.shared.lock().registry.forget_listener(handle);
        Ok(())
    }

    /// A handle that makes [`Poller::wait`] return early, for another
    /// thread that has work for the poller's thread.
    pub fn waker(&self) -> PollWaker {
        PollWaker(self.ready.clone())
    }

    /// Waits until a watched socket changes, the [`PollWaker`] is called,
    /// or `timeout` passes (`None`: no limit), and moves the tokens
    /// reported into `events` (which it clears first). Returns at once if
    /// tokens are pending. Fails with `NotConnected` once the runtime has
    /// stopped.
    pub fn wait(
        &self,
        events: &mut Vec<Token>,
        timeout: Option<std::time::Duration>,
    ) -> io::Result<()> {
        events.clear();
        let deadline = super::deadline(timeout);
        let mut list = lock(&self.ready.list);
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    ErrorKind::NotConnected,
                    "the runtime has stopped",
                ));
            }
            if !list.tokens.is_empty() || list.woken {
                list.woken = false;
                list.queued.clear();
                events.append(&mut list.tokens);
                return Ok(());
            }
            list = match deadline {
                None => self
                    .ready
                    .cond
                    .wait(list)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(());
                    }
                    self.ready
                        .cond
                        .wait_timeout(list, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0)
                }
            };
        }
    }
}
