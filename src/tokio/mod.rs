//! An async adapter for tokio (feature `tokio`): an [`Interface`] driven by
//! a task, and sockets whose calls are futures.
//!
//! [`Stack`] owns the interface. A driver task, spawned on the current
//! tokio runtime, polls it when the device may have a frame (a TAP or TUN
//! file descriptor watched through [`::tokio::io::unix::AsyncFd`], or an
//! in-memory port's waker), when a socket call queued something, or when
//! the interface's next deadline comes (a tokio timer): it never polls in
//! a loop. Time is tokio's clock, so `tokio::time::pause` drives it too.
//!
//! After each poll the driver wakes the tasks waiting on the sockets the
//! stack names as changed ([`crate::transport::tcp::TcpSockets::take_events`]
//! and its UDP twin), and no others: ten thousand idle connections cost
//! nothing per poll.
//!
//! On top: [`TcpListener`] (`accept().await`), [`TcpStream`]
//! ([`::tokio::io::AsyncRead`] and [`::tokio::io::AsyncWrite`], and
//! [`TcpStream::into_split`]) and [`UdpSocket`] (`send_to` and `recv_from`
//! awaited). They work on the current-thread and the multi-thread
//! runtime, and with what builds on tokio's I/O traits: hyper through
//! hyper-util's `TokioIo`, for one (see `tests/tokio.rs` and
//! `examples/hyper.rs`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::tokio::{Stack, TcpListener, TcpStream};
//! use netstrata::{Interface, InterfaceConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let net = MemoryNetwork::new(1500);
//! let host = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let iface = Interface::new(InterfaceConfig::new(EthernetAddress::local(n), cidr), port.capabilities());
//!     Stack::on_memory(iface, port)
//! };
//! let (a, b) = (host(1), host(2));
//! let listener = TcpListener::bind(&b, "192.0.2.2:7".parse().unwrap())?;
//! tokio::spawn(async move {
//!     let (mut s, _) = listener.accept().await.unwrap();
//!     let mut buf = [0; 5];
//!     s.read_exact(&mut buf).await.unwrap();
//!     s.write_all(&buf).await.unwrap();
//! });
//! let mut c = TcpStream::connect(&a, "192.0.2.2:7".parse().unwrap()).await?;
//! c.write_all(b"hello").await?;
//! let mut echo = [0; 5];
//! c.read_exact(&mut echo).await?;
//! assert_eq!(&echo, b"hello");
//! # Ok(())
//! # }
//! ```

mod tcp;
mod udp;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use ::tokio::io::unix::AsyncFd;
use ::tokio::sync::Notify;

use crate::iface::Interface;
use crate::link::{AsyncDevice, Device, MemoryPort};
use crate::time::Instant;
use crate::transport::tcp::{ListenerHandle, TcpEvent, TcpHandle};
use crate::transport::udp::UdpHandle;

/// Polls in a row while each does work, before the driver yields to other
/// tasks (as the blocking runtime does).
const POLL_ROUNDS: usize = 8;

/// An interface driven by a tokio task. Cheap to clone; the task ends
/// when the last clone, and every socket made on it, is dropped.
#[derive(Debug, Clone)]
pub struct Stack {
    shared: Arc<Shared>,
}

/// What the driver task and the sockets share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the driver: a socket call queued something to send.
    kick: Notify,
    /// Time zero of the interface's clock.
    epoch: ::tokio::time::Instant,
}

/// The interface and the tasks waiting on its sockets.
#[derive(Debug)]
struct State {
    iface: Interface,
    wakers: Wakers,
    /// The driver stopped on a device error: every call fails.
    dead: bool,
}

/// Who waits for what: the tasks waiting on each socket, removed when
/// woken. Several may wait on one socket (a reader and a writer, two
/// accept loops, a reader that gave up and one that did not); a change to
/// the socket wakes every one, and each looks again at what it waits for.
#[derive(Debug, Default)]
struct Wakers {
    tcp: HashMap<TcpHandle, Vec<Waker>>,
    listeners: HashMap<ListenerHandle, Vec<Waker>>,
    udp: HashMap<UdpHandle, Vec<Waker>>,
}

/// Adds `waker` to those waiting, unless it is there already.
fn add_waker(wakers: &mut Vec<Waker>, waker: &Waker) {
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The interface's time now.
    fn now(&self) -> Instant {
        let elapsed = ::tokio::time::Instant::now() - self.epoch;
        Instant::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of an interface time.
    fn deadline(&self, at: Instant) -> ::tokio::time::Instant {
        self.epoch + std::time::Duration::from_micros(at.total_micros())
    }
}

/// The driver's scratch lists, kept between polls.
#[derive(Debug, Default)]
struct Scratch {
    tcp: Vec<TcpEvent>,
    udp: Vec<UdpHandle>,
    /// Taken under the lock, woken after it.
    wake: Vec<Waker>,
}

impl State {
    /// Takes the wakers of the tasks waiting on the sockets the stack
    /// names as changed.
    fn take_changed(&mut self, scratch: &mut Scratch) {
        self.iface.tcp().take_events(&mut scratch.tcp);
        for event in scratch.tcp.drain(..) {
            match event {
                TcpEvent::Connection(h) => {
                    if let Some(w) = self.wakers.tcp.remove(&h) {
                        scratch.wake.extend(w);
                    }
                }
                TcpEvent::Listener(l) => {
                    if let Some(w) = self.wakers.listeners.remove(&l) {
                        scratch.wake.extend(w);
                    }
                }
            }
        }
        self.iface.udp().take_events(&mut scratch.udp);
        for h in scratch.udp.drain(..) {
            if let Some(w) = self.wakers.udp.remove(&h) {
                scratch.wake.extend(w);
            }
        }
    }

    /// Takes every waker: the stack is dead and every call fails.
    fn take_all(&mut self, scratch: &mut Scratch) {
        let w = std::mem::take(&mut self.wakers);
        scratch.wake.extend(w.tcp.into_values().flatten());
        scratch.wake.extend(w.listeners.into_values().flatten());
        scratch.wake.extend(w.udp.into_values().flatten());
    }

    /// Fails a call on a stack whose driver stopped.
    fn check_alive(&self) -> io::Result<()> {
        if self.dead {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stack's device failed; its driver stopped",
            ));
        }
        Ok(())
    }
}

/// How long the driver goes on after the last user dropped the stack,
/// for what they sent to leave and their connections to close (a kernel
/// finishes orphaned connections the same way).
const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// How the driver learns that the device may have a frame.
enum Source<D: Device + AsRawFd> {
    /// A file descriptor in tokio's reactor (TAP, TUN).
    Fd(AsyncFd<D>),
    /// A device that calls a waker (an in-memory port).
    Waker(MemoryPort, Arc<Notify>),
}

impl Stack {
    /// Drives `iface` on an in-memory port. Spawns the driver task on the
    /// current tokio runtime (panics outside one, as `tokio::spawn` does).
    pub fn on_memory(iface: Interface, port: MemoryPort) -> Stack {
        let stack = Stack::new(iface);
        let frames = Arc::new(Notify::new());
        let n = frames.clone();
        port.set_waker(Box::new(move || n.notify_one()));
        let source: Source<NoFd> = Source::Waker(port, frames);
        ::tokio::spawn(drive(stack.shared.clone(), source));
        stack
    }

    /// Drives `iface` on a device with a non-blocking file descriptor: a
    /// [`crate::link::TapDevice`] or a [`crate::link::TunDevice`]. Fails
    /// if tokio's reactor does not take the descriptor; panics outside a
    /// tokio runtime.
    pub fn on_fd<D: AsyncDevice + Send + 'static>(
        iface: Interface,
        device: D,
    ) -> io::Result<Stack> {
        let stack = Stack::new(iface);
        let fd = device.into_async_fd()?;
        ::tokio::spawn(drive(stack.shared.clone(), Source::Fd(fd)));
        Ok(stack)
    }

    fn new(iface: Interface) -> Stack {
        Stack {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    iface,
                    wakers: Wakers::default(),
                    dead: false,
                }),
                kick: Notify::new(),
                epoch: ::tokio::time::Instant::now(),
            }),
        }
    }

    /// Runs `f` on the interface (to read counters, add routes, use the
    /// sans-IO socket tables directly); the driver polls it afterwards.
    pub fn with_interface<T>(&self, f: impl FnOnce(&mut Interface) -> T) -> T {
        let r = f(&mut self.shared.lock().iface);
        self.shared.kick.notify_one();
        r
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The driver looks at who still holds the stack.
        self.shared.kick.notify_one();
    }
}

/// The driver task: poll, wake the tasks whose sockets changed, wait for
/// a frame, a socket call or the next deadline. Ends when nothing but the
/// driver holds the stack and what its users sent has left (at most
/// [`LINGER`] later), or when the device fails.
async fn drive<D: Device + AsRawFd>(shared: Arc<Shared>, mut source: Source<D>) {
    let mut scratch = Scratch::default();
    let mut orphaned_at = None;
    loop {
        let (busy, next) = {
            let mut state = shared.lock();
            let mut busy = false;
            for _ in 0..POLL_ROUNDS {
                let now = shared.now();
                let worked = match &mut source {
                    Source::Fd(fd) => state.iface.poll(now, fd.get_mut()),
                    Source::Waker(port, _) => state.iface.poll(now, port),
                };
                if !worked {
                    break;
                }
                busy = true;
            }
            state.take_changed(&mut scratch);
            if Arc::strong_count(&shared) == 1 {
                // No user left: what they sent still leaves, and their
                // connections close, for at most LINGER.
                let since = *orphaned_at.get_or_insert_with(::tokio::time::Instant::now);
                let finished = state.iface.tcp().connection_count() == 0
                    && !state.iface.udp().has_pending_tx();
                if finished || since.elapsed() >= LINGER {
                    log::debug!("tokio stack: no user left, the driver ends");
                    return;
                }
            }
            let device_at = match &source {
                Source::Fd(fd) => fd.get_ref().poll_at(),
                Source::Waker(port, _) => port.poll_at(),
            };
            let next = [state.iface.poll_at(shared.now()), device_at]
                .into_iter()
                .flatten()
                .min();
            (busy, next)
        };
        scratch.wake.drain(..).for_each(Waker::wake);
        if busy || next.is_some_and(|t| t <= shared.now()) {
            // More to do at once: let other tasks run first, then go on.
            ::tokio::task::yield_now().await;
            continue;
        }
        let sleep = async {
            match next {
                Some(t) => ::tokio::time::sleep_until(shared.deadline(t)).await,
                None => std::future::pending().await,
            }
        };
        match &mut source {
            Source::Fd(fd) => {
                ::tokio::select! {
                    ready = fd.readable_mut() => match ready {
                        // Cleared before the poll reads: a frame that comes
                        // after the read sets it again.
                        Ok(mut guard) => guard.clear_ready(),
                        Err(e) => {
                            log::warn!("tokio stack: the device's descriptor failed: {e}");
                            let mut state = shared.lock();
                            state.dead = true;
                            state.take_all(&mut scratch);
                            drop(state);
                            scratch.wake.drain(..).for_each(Waker::wake);
                            return;
                        }
                    },
                    _ = shared.kick.notified() => {}
                    _ = sleep => {}
                }
            }
            Source::Waker(_, frames) => {
                ::tokio::select! {
                    _ = frames.notified() => {}
                    _ = shared.kick.notified() => {}
                    _ = sleep => {}
                }
            }
        }
    }
}

/// The descriptor type of a stack on an in-memory port, which has none.
enum NoFd {}

impl AsRawFd for NoFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match *self {}
    }
}

impl Device for NoFd {
    fn capabilities(&self) -> crate::link::DeviceCaps {
        match *self {}
    }
    fn receive(&mut self, _: Instant) -> Option<crate::buf::PacketBuf> {
        match *self {}
    }
    fn transmit(
        &mut self,
        _: Instant,
        _: crate::buf::PacketBuf,
    ) -> Result<(), crate::link::DeviceError> {
        match *self {}
    }
}
