//! The application layer: DNS and HTTP/1.1.
//!
//! - [`dns`]: the DNS message codec (RFC 1035 §4, with the record types of
//!   RFC 3596 and RFC 2782 and SOA for RFC 2308).
//! - [`http`]: HTTP/1.1 message syntax (RFC 9112): an incremental parser for
//!   request and response heads with limits, body framing, and the chunked
//!   transfer coding.
//!
//! Both are pure codecs without I/O. Planned on top of them, written
//! against the socket API only: a DNS stub resolver and responder, and an
//! HTTP/1.1 client and server (RFC 9110).

pub mod dns;
pub mod http;
