//! The server's limits and timeouts.

use std::time::Duration;

use crate::application::http::Limits;

/// Limits and timeouts of the server, against slow and abusive clients
/// as much as for resource control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Limits on request heads and chunked bodies (request line, header
    /// count and size, chunk lines, trailers).
    pub limits: Limits,
    /// How long a connection may wait for the first byte of a request,
    /// the first included: the keep-alive timeout (default 15 s). It
    /// ends the connection quietly.
    pub idle_timeout: Duration,
    /// How long a head may take from its first byte to its last (default
    /// 10 s), however steadily the bytes trickle in: what stops a
    /// slowloris. It is answered 408 and the connection closed.
    pub head_timeout: Duration,
    /// How long one read of a body may wait (default 30 s); the request
    /// then fails with 408.
    pub read_timeout: Duration,
    /// How long one write may wait for the client to make room (default
    /// 30 s); the connection then fails.
    pub write_timeout: Duration,
    /// The slowest a client may send a request body or take a response,
    /// in bytes per second on average (default 1024; `None`: no limit).
    /// Each exchange may wait on the client for one read timeout (for
    /// the body) or write timeout (for the response), plus a second per
    /// `min_rate` bytes moved; past that, the body fails with 408 or the
    /// response is cut off, and the connection closes. The timeouts alone
    /// bound one read or write, so a client trickling a byte per timeout
    /// period (slow POST, slow read) would otherwise hold its thread for
    /// as long as the body or the response lasts. Time the handler
    /// spends between reads does not count.
    pub min_rate: Option<u64>,
    /// Requests served on one connection before it is closed (default
    /// 1000); the last response says `Connection: close`.
    pub max_requests_per_connection: u64,
    /// Largest request body accepted (default 8 MiB). A larger
    /// Content-Length is answered 413 before the body is read; a chunked
    /// body that grows past it fails the handler's read and is answered
    /// 413.
    pub max_body_size: u64,
    /// How much of a body the handler left unread the server reads and
    /// discards to keep the connection (default 256 KiB); more closes
    /// it. The same bound applies to what a client sends after the
    /// server decided to close.
    pub max_drain: u64,
    /// How long discarding may take: an unread body before the next
    /// request, and the lingering close of RFC 9112 §9.6 that keeps a
    /// closing connection readable until the client has seen the
    /// response (default 2 s).
    pub linger: Duration,
    /// Connections open at once in a [`Server`](super::Server) (default
    /// 16,384), idle or not. At the limit the server stops accepting, and
    /// new connections wait in the listener's backlog until one closes.
    pub max_connections: usize,
    /// Worker threads a [`Server`](super::Server) keeps (default 16). A
    /// worker serves a request from the end of its head to the end of
    /// the response; connections waiting for a request need none.
    pub workers: usize,
    /// Most worker threads at once (default 512). When every worker is
    /// busy (a handler that blocks, a slow body, a slow reader of the
    /// response) and a request is ready, another starts, up to this;
    /// those beyond [`ServerConfig::workers`] end after 5 s without
    /// work. It bounds how many slow clients it takes to hold every
    /// request waiting, as the thread-per-connection design's connection
    /// limit did.
    pub max_workers: usize,
    /// Bytes of request heads the event loop holds at once, over all the
    /// connections still receiving one (default 32 MiB). Past it, a head
    /// that grows beyond 8 KiB is answered 431 and its connection
    /// closed, while usual heads are still read and served: heads then
    /// hold at most this plus 8 KiB per connection, where each could
    /// otherwise hold [`Limits::max_header_bytes`].
    pub head_memory: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(15),
            head_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            min_rate: Some(1024),
            max_requests_per_connection: 1000,
            max_body_size: 8 * 1024 * 1024,
            max_drain: 256 * 1024,
            linger: Duration::from_secs(2),
            max_connections: 16 * 1024,
            workers: 16,
            max_workers: 512,
            head_memory: 32 * 1024 * 1024,
        }
    }
}

/// Why a [`ServerConfig`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A timeout is zero.
    #[error("{0} must not be zero")]
    ZeroTimeout(&'static str),
    /// `max_workers` is below `workers`.
    #[error("max_workers must be at least workers")]
    MaxWorkers,
    /// A timeout is longer than [`ServerConfig::MAX_TIMEOUT`].
    #[error("{0} must not exceed a year")]
    TooLong(&'static str),
    /// `max_connections`, `workers`, `max_requests_per_connection` or
    /// `min_rate` is zero.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
}

impl ServerConfig {
    /// The longest timeout accepted (a year): longer ones are mistakes,
    /// and would overflow the clock's deadlines.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

    /// Checks that every timeout, count and rate is positive, and every
    /// timeout at most [`ServerConfig::MAX_TIMEOUT`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, t) in [
            ("idle_timeout", self.idle_timeout),
            ("head_timeout", self.head_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("linger", self.linger),
        ] {
            if t.is_zero() {
                return Err(ConfigError::ZeroTimeout(name));
            }
            if t > Self::MAX_TIMEOUT {
                return Err(ConfigError::TooLong(name));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::ZeroCount("max_connections"));
        }
        if self.workers == 0 {
            return Err(ConfigError::ZeroCount("workers"));
        }
        if self.max_workers < self.workers {
            return Err(ConfigError::MaxWorkers);
        }
        if self.max_requests_per_connection == 0 {
            return Err(ConfigError::ZeroCount("max_requests_per_connection"));
        }
        if self.min_rate == Some(0) {
            return Err(ConfigError::ZeroCount("min_rate"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        let c = ServerConfig {
            head_timeout: Duration::ZERO,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ZeroTimeout("head_timeout")));
        let c = ServerConfig {
            idle_timeout: Duration::MAX,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::TooLong("idle_timeout")));
        let c = ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ZeroCount("max_connections")));
        let c = ServerConfig {
            max_workers: 15,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::MaxWorkers));
        let c = ServerConfig {
            min_rate: Some(0),
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ZeroCount("min_rate")));
        let c = ServerConfig {
            min_rate: None,
            ..ServerConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}
