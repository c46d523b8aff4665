//! The application layer: DNS and HTTP/1.1, on the socket API only.
//!
//! - [`dns`]: the DNS message codec (RFC 1035 §4, with the record types of
//!   RFC 3596 and RFC 2782, and SOA for RFC 2308), a stub resolver (UDP
//!   with TCP fallback, CNAME chains, a TTL cache with negative caching)
//!   and an authoritative responder for a static zone.
//! - [`net`]: the socket traits (datagram socket, byte stream, listener,
//!   network) the protocols are written against, for netstrata and std.
//! - [`http`]: HTTP/1.1 (RFC 9110, RFC 9112): an incremental parser for
//!   request and response heads with limits, body framing, the chunked
//!   transfer coding, connections over any `Read + Write` stream, and a
//!   client (URLs, name resolution, persistent connections, redirects).
//!
//! The protocol logic is generic over small traits (datagram sockets,
//! `Read + Write` streams), implemented for netstrata's sockets and for
//! `std::net`'s, so it runs on either.

pub mod dns;
pub mod http;
pub mod net;

/// Whether an I/O error means a timeout passed (std gives `WouldBlock` or
/// `TimedOut` depending on the platform; netstrata gives `WouldBlock`).
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
