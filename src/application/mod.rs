//! The application layer: DNS and HTTP/1.1.
//!
//! [`dns`] holds the DNS message codec (RFC 1035 §4). Planned: a DNS stub
//! resolver and responder on top of it, and an HTTP/1.1 client and server
//! (RFC 9110, RFC 9112), written against the socket API only.

pub mod dns;
