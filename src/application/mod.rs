//! The application layer: DNS and HTTP/1.1.
//!
//! Planned: a DNS stub resolver and responder (RFC 1035) and an HTTP/1.1
//! client and server (RFC 9110, RFC 9112), written against the socket API
//! only. Nothing is implemented here yet.
