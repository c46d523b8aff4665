//! Blocking, `std::net`-like sockets on a background runtime.
//!
//! [`Runtime`] owns an [`Interface`] and drives it from a thread of its own:
//! it polls the interface when a frame arrives or a deadline comes, and
//! otherwise sleeps — on the device (a [`Sleeper`]: a memory port's waker,
//! a TAP file descriptor) and on a wake-up that socket calls trigger. An
//! idle stack uses no CPU. This is the one place in netstrata that reads
//! a clock (`std::time::Instant`, converted to the core's
//! [`crate::time::Instant`]) and starts a thread.
//!
//! On top of it, [`TcpListener`], [`TcpStream`] and [`UdpSocket`] follow
//! `std::net`'s names, signatures and error kinds as closely as fits (every
//! error is an [`std::io::Error`] with the matching [`ErrorKind`]), and
//! [`Runtime::ping`] sends an ICMP echo. Sockets are `Send + Sync` and can
//! be used from many threads at once; dropping a [`TcpStream`] closes it
//! gracefully (FIN after the queued data); dropping the runtime stops the
//! thread cleanly.
//!
//! All sockets of a runtime share one lock around the interface: simple
//! and adequate for the socket counts a user-space stack serves; a
//! sharded design would be the next step if contention showed.
//!
//! ```
//! use std::io::{Read, Write};
//! use netstrata::blocking::{Runtime, TcpListener, TcpStream};
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
//! let echo = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut s, _) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     s.read_exact(&mut buf)?;
//!     s.write_all(&buf)
//! });
//! let mut c = TcpStream::connect(&client, "192.0.2.2:7")?;
//! c.write_all(b"hello")?;
//! let mut got = [0; 5];
//! c.read_exact(&mut got)?;
//! assert_eq!(&got, b"hello");
//! echo.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod poll;
mod tcp;
mod udp;

pub use poll::{PollWaker, Poller, Token};

pub(crate) use tcp::tcp_error;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(feature = "tokio")]
pub(crate) use udp::udp_error;

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::iface::Interface;
use crate::internet::ping::{EchoReply, PingError, PingEvent};
use crate::link::{Device, MemoryPort};
use crate::time::{Duration, Instant};

/// A function that wakes the runtime's thread.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// How the runtime's thread sleeps between polls.
pub trait Sleeper: Send {
    /// Blocks until the device may have a frame, [`Sleeper::waker`]'s
    /// function is called, or `timeout` passes (`None`: no timeout).
    fn sleep(&mut self, timeout: Option<Duration>);
    /// A function that ends a [`Sleeper::sleep`] early, from any thread.
    fn waker(&self) -> Waker;
}

/// A flag and a condition variable: the sleeper of in-memory devices.
#[derive(Debug, Default)]
pub struct Parker {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Parker {
    /// A parker with no wake-up pending.
    pub fn new() -> Arc<Parker> {
        Arc::new(Parker::default())
    }

    /// Wakes the sleeper (now, or at its next sleep).
    pub fn unpark(&self) {
        *lock(&self.flag) = true;
        self.cond.notify_one();
    }
}

/// Sleeps on a [`Parker`].
#[derive(Debug, Clone)]
pub struct ParkSleeper(Arc<Parker>);

impl ParkSleeper {
    /// A sleeper for a memory port: frames queued for the port wake it.
    pub fn for_memory_port(port: &MemoryPort) -> ParkSleeper {
        let parker = Parker::new();
        let p = parker.clone();
        port.set_waker(Box::new(move || p.unpark()));
        ParkSleeper(parker)
    }
}

impl Sleeper for ParkSleeper {
    fn sleep(&mut self, timeout: Option<Duration>) {
        let mut woken = lock(&self.0.flag);
        if !*woken {
            woken = match timeout {
                Some(t) => match self.0.cond.wait_timeout(woken, t) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                },
                None => match self.0.cond.wait(woken) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
            };
        }
        *woken = false;
    }

    fn waker(&self) -> Waker {
        let p = self.0.clone();
        Arc::new(move || p.unpark())
    }
}

#[cfg(target_os = "linux")]
impl Sleeper for crate::link::TapSleeper {
    fn sleep(&mut self, timeout: Option<Duration>) {
        if let Err(e) = self.wait(timeout) {
            // The interface went away: don't spin on it.
            log::warn!("TAP wait failed: {e}");
            std::thread::sleep(
                timeout
                    .unwrap_or(Duration::from_millis(100))
                    .min(Duration::from_millis(100)),
            );
        }
    }

    fn waker(&self) -> Waker {
        let w = crate::link::TapSleeper::waker(self);
        Arc::new(move || w.wake())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The interface and the runtime's clock, behind the lock.
pub(crate) struct Stack {
    pub(crate) iface: Interface,
    epoch: std::time::Instant,
    /// The sockets [`Poller`]s watch.
    pub(crate) registry: poll::Registry,
}

impl Stack {
    pub(crate) fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

impl core::fmt::Debug for Shared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    stack: Mutex<Stack>,
    /// Signalled after every poll of the interface: sockets may be ready.
    changed: Condvar,
    wake: Waker,
    stop: AtomicBool,
    /// Times the runtime's thread has woken up and polled.
    rounds: AtomicU64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Stack> {
        lock(&self.stack)
    }

    /// Wakes the runtime's thread to poll now (after a call that queued
    /// something to send).
    pub(crate) fn kick(&self) {
        (self.wake)();
    }

    /// Runs `f` on the stack until it returns `Some`, waiting for the
    /// interface to change in between, at most until `deadline`.
    pub(crate) fn wait_for<T>(
        &self,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&mut Stack) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        let mut g = self.lock();
        loop {
            if let Some(r) = f(&mut g) {
                drop(g);
                self.kick();
                return r;
            }
            if self.stop.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    ErrorKind::NotConnected,
                    "the runtime has stopped",
                ));
            }
            g = match deadline {
                None => self.changed.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(ErrorKind::WouldBlock, "timed out"));
                    }
                    self.changed
                        .wait_timeout(g, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0)
                }
            };
        }
    }
}

/// Drives an interface on a thread; the sockets of this module use it.
pub struct Runtime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// Most frames one poll round may take before the runtime looks at the
/// clock again.
const POLL_ROUNDS: usize = 64;

impl Runtime {
    /// Starts a runtime driving `iface` on `device`, sleeping with
    /// `sleeper`.
    pub fn new<D, S>(iface: Interface, device: D, sleeper: S) -> io::Result<Runtime>
    where
        D: Device + Send + 'static,
        S: Sleeper + 'static,
    {
        let shared = Arc::new(Shared {
            stack: Mutex::new(Stack {
                iface,
                epoch: std::time::Instant::now(),
                registry: poll::Registry::default(),
            }),
            changed: Condvar::new(),
            wake: sleeper.waker(),
            stop: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("netstrata".into())
            .spawn(move || drive(s, device, sleeper))?;
        Ok(Runtime {
            shared,
            thread: Some(thread),
        })
    }

    /// A runtime on a port of an in-memory network.
    pub fn on_memory_port(iface: Interface, port: MemoryPort) -> io::Result<Runtime> {
        let sleeper = ParkSleeper::for_memory_port(&port);
        Runtime::new(iface, port, sleeper)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs `f` with the interface locked (counters, routes, ARP...).
    pub fn with_interface<T>(&self, f: impl FnOnce(&mut Interface, Instant) -> T) -> T {
        let mut g = self.shared.lock();
        let now = g.now();
        let r = f(&mut g.iface, now);
        drop(g);
        self.shared.kick();
        r
    }

    /// How many times the runtime's thread has woken up to poll: an idle
    /// runtime does not wake at all until a timer or a frame is due.
    pub fn poll_rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Relaxed)
    }

    /// The interface's IPv4 address.
    pub fn ipv4_addr(&self) -> Ipv4Addr {
        self.shared.lock().iface.ipv4_addr()
    }

    /// Sends one ICMP echo request of `size` data bytes to `dst` and waits
    /// up to `timeout` for the reply.
    pub fn ping(
        &self,
        dst: Ipv4Addr,
        seq: u16,
        size: usize,
        timeout: Duration,
    ) -> io::Result<EchoReply> {
        let handle = {
            let mut g = self.shared.lock();
            let h = g
                .iface
                .ping()
                .open(timeout)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if let Err(e) = g.iface.ping().send(h, dst, seq, size) {
                let _ = g.iface.ping().close(h);
                return Err(io::Error::new(ErrorKind::InvalidInput, e.to_string()));
            }
            h
        };
        self.shared.kick();
        // The socket's own timeout produces the Timeout event; the
        // deadline here is a backstop.
        let deadline = std::time::Instant::now() + timeout + Duration::from_secs(1);
        let r = self.shared.wait_for(Some(deadline), |s| {
            let event = match s.iface.ping().recv(handle) {
                Ok(event) => event,
                Err(PingError::WouldBlock) => return None,
                Err(e) => return Some(Err(io::Error::new(ErrorKind::NotConnected, e))),
            };
            Some(match event {
                PingEvent::Reply(r) => Ok(r),
                PingEvent::Timeout { .. } => {
                    Err(io::Error::new(ErrorKind::TimedOut, "no echo reply"))
                }
                PingEvent::Error { reporter, kind } => Err(io::Error::new(
                    ErrorKind::HostUnreachable,
                    format!("{reporter} reports {kind:?}"),
                )),
                PingEvent::SendFailed { error, .. } => Err(io::Error::new(
                    ErrorKind::HostUnreachable,
                    error.to_string(),
                )),
            })
        });
        let _ = self.shared.lock().iface.ping().close(handle);
        r
    }

    /// Stops the thread; sockets still open fail from now on with
    /// `NotConnected`. Dropping the runtime does the same.
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.kick();
        self.shared.changed.notify_all();
        self.shared.lock().registry.wake_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn drive<D: Device, S: Sleeper>(shared: Arc<Shared>, mut device: D, mut sleeper: S) {
    let mut notify = Vec::new();
    loop {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        shared.rounds.fetch_add(1, Ordering::Relaxed);
        let timeout = {
            let mut g = shared.lock();
            let mut busy = false;
            for _ in 0..POLL_ROUNDS {
                let now = g.now();
                if !g.iface.poll(now, &mut device) {
                    break;
                }
                busy = true;
            }
            let now = g.now();
            let next = [g.iface.poll_at(now), device.poll_at()]
                .into_iter()
                .flatten()
                .min();
            let Stack {
                iface, registry, ..
            } = &mut *g;
            registry.signal(iface, &mut notify);
            drop(g);
            shared.changed.notify_all();
            poll::notify_all(&mut notify);
            if busy {
                Some(Duration::ZERO)
            } else {
                next.map(|t| t.saturating_duration_since(now))
            }
        };
        match timeout {
            Some(t) if t.is_zero() => continue,
            t => sleeper.sleep(t),
        }
    }
    shared.changed.notify_all();
}

/// The read and write timeouts of a socket, shared by its clones (as
/// duplicated descriptors share `SO_RCVTIMEO` and `SO_SNDTIMEO`). `None`
/// blocks forever.
#[derive(Debug, Default)]
pub(crate) struct Timeouts(Mutex<[Option<std::time::Duration>; 2]>);

impl Timeouts {
    const READ: usize = 0;
    const WRITE: usize = 1;

    pub(crate) fn read(&self) -> Option<std::time::Duration> {
        lock(&self.0)[Self::READ]
    }

    pub(crate) fn write(&self) -> Option<std::time::Duration> {
        lock(&self.0)[Self::WRITE]
    }

    pub(crate) fn set_read(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.set(Self::READ, t)
    }

    pub(crate) fn set_write(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.set(Self::WRITE, t)
    }

    /// A zero duration is an error, as in std.
    fn set(&self, which: usize, t: Option<std::time::Duration>) -> io::Result<()> {
        if t.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(ErrorKind::InvalidInput, "zero timeout"));
        }
        lock(&self.0)[which] = t;
        Ok(())
    }
}

/// The first IPv4 address of `addr`, or the error std would give.
pub(crate) fn first_v4(addr: impl ToSocketAddrs) -> io::Result<SocketAddrV4> {
    addr.to_socket_addrs()?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidInput,
                "no IPv4 address to use (netstrata speaks IPv4)",
            )
        })
}

/// A deadline `timeout` from now, if any.
/// A timeout too long to be an instant is none.
pub(crate) fn deadline(timeout: Option<std::time::Duration>) -> Option<std::time::Instant> {
    timeout.and_then(|t| std::time::Instant::now().checked_add(t))
}
