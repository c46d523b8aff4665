//! Idle persistent connections (RFC 9112 §9.3), kept for reuse by the
//! next request to the same host and port.
//!
//! The pool holds at most `max_idle` connections in all, evicting the one
//! idle longest; a connection idle for `idle_timeout` or more is closed
//! rather than reused (servers close idle connections too, typically
//! after 5 to 75 seconds), and so is one whose stream says the peer has
//! closed it or sent something ([`ByteStream::is_idle_open`]). The newest
//! connection for a key is reused first. The pool is small, so a linear
//! scan finds a key.
//!
//! Time is passed in (`now`), so that tests can move it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::timed::TimedStream;
use super::url::Host;
use crate::application::http::Connection;
use crate::application::net::ByteStream;

/// What a connection is reused for: the same host (as written in the
/// URL, so a name and its address are different keys) and port.
pub(super) type PoolKey = (Host, u16);

#[derive(Debug)]
struct Idle<S> {
    key: PoolKey,
    conn: Connection<TimedStream<S>>,
    since: Instant,
}

/// Idle connections, shared by a client and its responses (which hand
/// their connection back once their body has been read).
#[derive(Debug)]
pub(super) struct Pool<S> {
    idle: Mutex<Vec<Idle<S>>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl<S: ByteStream> Pool<S> {
    pub(super) fn new(max_idle: usize, idle_timeout: Duration) -> Pool<S> {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// Whether connections are kept at all.
    pub(super) fn is_enabled(&self) -> bool {
        self.max_idle > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle<S>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the newest usable idle connection for `key`, closing the
    /// expired and dead ones met on the way.
    pub(super) fn take(&self, key: &PoolKey, now: Instant) -> Option<Connection<TimedStream<S>>> {
        let mut closed = Vec::new();
        let found = {
            let mut idle = self.lock();
            self.expire(&mut idle, now, &mut closed);
            loop {
                let Some(i) = idle.iter().rposition(|c| &c.key == key) else {
                    break None;
                };
                let entry = idle.remove(i);
                if entry.conn.stream().get_ref().is_idle_open() {
                    break Some(entry.conn);
                }
                log::debug!("pooled connection to {}:{} was closed", key.0, key.1);
                closed.push(entry);
            }
        };
        // Closing a connection may send a FIN: outside the lock.
        drop(closed);
        found
    }

    /// Keeps `conn` for reuse, evicting the connection idle longest if
    /// the pool is full.
    pub(super) fn put(&self, key: PoolKey, conn: Connection<TimedStream<S>>, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        let mut closed = Vec::new();
        {
            let mut idle = self.lock();
            self.expire(&mut idle, now, &mut closed);
            if idle.len() >= self.max_idle {
                // Entries are in the order they were put: the first is
                // the oldest.
                closed.push(idle.remove(0));
            }
            idle.push(Idle {
                key,
                conn,
                since: now,
            });
        }
        drop(closed);
    }

    fn expire(&self, idle: &mut Vec<Idle<S>>, now: Instant, closed: &mut Vec<Idle<S>>) {
        let timeout = self.idle_timeout;
        let (keep, expired): (Vec<_>, Vec<_>) = std::mem::take(idle)
            .into_iter()
            .partition(|c| now.saturating_duration_since(c.since) < timeout);
        *idle = keep;
        closed.extend(expired);
    }

    /// The number of idle connections (expired ones included until the
    /// next take or put).
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::http::Limits;
    use std::io::{self, Read, Write};
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A stream whose only property is an id and whether it is open.
    #[derive(Debug)]
    struct Stub {
        id: u32,
        open: Arc<AtomicBool>,
    }

    impl Read for Stub {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }
    impl Write for Stub {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl ByteStream for Stub {
        fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn set_nodelay(&self, _: bool) -> io::Result<()> {
            Ok(())
        }
        fn shutdown_write(&self) -> io::Result<()> {
            Ok(())
        }
        fn is_idle_open(&self) -> bool {
            self.open.load(Ordering::SeqCst)
        }
    }

    fn conn(id: u32) -> (Connection<TimedStream<Stub>>, Arc<AtomicBool>) {
        let open = Arc::new(AtomicBool::new(true));
        let stub = Stub {
            id,
            open: open.clone(),
        };
        (
            Connection::new(TimedStream::new(stub), Limits::default()),
            open,
        )
    }

    fn key(n: u8, port: u16) -> PoolKey {
        (Host::Ipv4(Ipv4Addr::new(192, 0, 2, n)), port)
    }

    #[test]
    fn reuse_by_key_newest_first() {
        let pool = Pool::new(8, Duration::from_secs(30));
        let t0 = Instant::now();
        pool.put(key(1, 80), conn(1).0, t0);
        pool.put(key(1, 80), conn(2).0, t0);
        pool.put(key(1, 81), conn(3).0, t0);
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.take(&key(1, 80), t0).unwrap().stream().get_ref().id, 2);
        assert_eq!(pool.take(&key(1, 80), t0).unwrap().stream().get_ref().id, 1);
        assert!(pool.take(&key(1, 80), t0).is_none());
        assert!(pool.take(&key(2, 81), t0).is_none());
        assert_eq!(pool.take(&key(1, 81), t0).unwrap().stream().get_ref().id, 3);
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn bounded_expiring_and_dead_connections_are_closed() {
        let pool = Pool::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        pool.put(key(1, 80), conn(1).0, t0);
        pool.put(key(2, 80), conn(2).0, t0 + Duration::from_secs(1));
        // Full: the oldest (1) goes.
        pool.put(key(3, 80), conn(3).0, t0 + Duration::from_secs(2));
        assert_eq!(pool.len(), 2);
        assert!(pool.take(&key(1, 80), t0).is_none());
        // 2 is idle 10 s at t0 + 11: expired; 3 is not.
        let later = t0 + Duration::from_secs(11);
        assert!(pool.take(&key(2, 80), later).is_none());
        assert_eq!(pool.len(), 1);
        assert_eq!(
            pool.take(&key(3, 80), later).unwrap().stream().get_ref().id,
            3
        );
        // A connection the peer closed while idle is not handed out.
        let (c, open) = conn(4);
        pool.put(key(4, 80), c, t0);
        open.store(false, Ordering::SeqCst);
        assert!(pool.take(&key(4, 80), t0).is_none());
        assert_eq!(pool.len(), 0);
        // A pool of size 0 keeps nothing.
        let none = Pool::new(0, Duration::from_secs(10));
        none.put(key(1, 80), conn(5).0, t0);
        assert_eq!(none.len(), 0);
    }
}
