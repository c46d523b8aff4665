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
//!
//! # Example
//!
//! The codecs need no network at all: a DNS response and an HTTP request
//! head, each parsed from its bytes.
//!
//! ```
//! use netstrata::application::dns::{Message, Rcode};
//! use netstrata::application::http::{Limits, Status, parse_request};
//!
//! let nxdomain = [0xab, 0xcd, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0]; // QR RD RA, RCODE 3
//! let dns = Message::parse(&nxdomain)?;
//! assert_eq!((dns.header.id, dns.header.rcode), (0xabcd, Rcode::NxDomain));
//!
//! let get = b"GET /index.html HTTP/1.1\r\nHost: demo.test\r\n\r\n";
//! let Status::Complete(head, used) = parse_request(get, &Limits::default())? else {
//!     unreachable!("the head is whole")
//! };
//! assert_eq!((head.target.as_str(), used), ("/index.html", get.len()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
