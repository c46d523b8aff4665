//! HTTP/1.1 (RFC 9112): a pure, incremental codec for the message syntax,
//! connections over any byte stream, and a client.
//!
//! The codec turns bytes into message heads and message bodies and back,
//! with no I/O: the caller owns the buffers and the connection.
//!
//! - [`parse_request`] and [`parse_response`] are push parsers in the style
//!   of httparse: hand them everything received so far and they answer
//!   [`Status::Partial`] or [`Status::Complete`] with the parsed head and
//!   the number of bytes it used; the rest of the buffer (a body, or the
//!   next pipelined request) is left to the caller. They re-parse from the
//!   start on every call, which is cheap because [`Limits`] bounds the head.
//! - [`request_body_kind`] and [`response_body_kind`] decide how the body
//!   is framed (RFC 9112 §6).
//! - [`ChunkedDecoder`] decodes the chunked transfer coding incrementally
//!   (RFC 9112 §7.1), and [`encode_chunk`] / [`encode_last_chunk`] write it.
//! - [`RequestHead::write_to`] and [`ResponseHead::write_to`] serialise
//!   heads.
//! - [`Connection`] puts the codec on a `Read + Write` stream: it reads
//!   heads and hands out a [`BodyReader`] for the body, keeping pipelined
//!   bytes for the next message; [`ChunkedWriter`] writes a chunked body.
//! - [`client`] is an HTTP/1.1 client on [`Connection`], over any
//!   [`Network`](crate::application::net::Network): URLs, name resolution,
//!   persistent connections with an idle pool, retries, redirects and
//!   timeouts.
//! - [`server`] is an HTTP/1.1 server on that: a [`Handler`](server::Handler)
//!   trait, [`serve_connection`](server::serve_connection) for one
//!   connection over any byte stream, and a threaded
//!   [`Server`](server::Server) with limits against abusive clients and
//!   graceful shutdown; [`StaticFiles`] serves a directory.
//!
//! Parsing is strict, because leniency in framing is what request
//! smuggling feeds on:
//! - lines end with CRLF; a bare LF or a bare CR is an error (RFC 9112 §2.2
//!   allows a recipient to accept a bare LF; this parser does not);
//! - leading empty lines before a request line are not skipped (§2.2
//!   "SHOULD ignore"; we reject them as a malformed request line);
//! - whitespace between a field name and its colon is rejected (§5.1), and
//!   so is obs-fold, line folding of field values (§5.2);
//! - a message with both Transfer-Encoding and Content-Length is rejected,
//!   request or response (§6.1 allows a recipient to let Transfer-Encoding
//!   win; we choose the safe option), and so is Transfer-Encoding in an
//!   HTTP/1.0 message (§6.1).
//!
//! Every limit is checked as soon as the buffer shows it is exceeded, so a
//! peer cannot make the caller buffer an unbounded head.
//!
//! Not implemented here: most of the semantics of RFC 9110 (caching,
//! conditional requests, ranges, content codings); what the client and
//! the server do implement is listed in [`client`] and [`server`].
//!
//! # Example
//!
//! Parse a request as it arrives, decide how its body is framed, and decode
//! a chunked body; then write a response head:
//!
//! ```
//! use netstrata::application::http::{
//!     BodyKind, ChunkedDecoder, Headers, Limits, ResponseHead, Status, Version, encode_chunk,
//!     parse_request, request_body_kind,
//! };
//!
//! let limits = Limits::default();
//! let wire = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
//!     5\r\nhello\r\n0\r\n\r\n";
//! assert_eq!(parse_request(&wire[..20], &limits)?, Status::Partial);
//! let Status::Complete(head, used) = parse_request(wire, &limits)? else { unreachable!() };
//! assert_eq!((head.method.as_str(), head.target.as_str()), ("POST", "/upload"));
//! assert_eq!(head.headers.get("host"), Some(&b"a"[..])); // names match in any case
//! assert_eq!(request_body_kind(&head)?, BodyKind::Chunked);
//!
//! let mut body = Vec::new();
//! let mut chunked = ChunkedDecoder::new(&limits);
//! assert_eq!(chunked.decode(&wire[used..], &mut body)?, wire.len() - used);
//! assert!(chunked.is_done());
//! assert_eq!(body, b"hello");
//! let mut again = Vec::new();
//! encode_chunk(b"hello", &mut again);
//! assert_eq!(again, b"5\r\nhello\r\n");
//!
//! let mut headers = Headers::new();
//! headers.push("Content-Length", "0");
//! let response = ResponseHead {
//!     version: Version::Http11,
//!     status: 204,
//!     reason: b"No Content".to_vec(),
//!     headers,
//! };
//! let mut out = Vec::new();
//! response.write_to(&mut out);
//! assert_eq!(out, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chunked;
pub mod client;
mod conn;
mod parse;
pub mod server;
mod static_files;

pub use chunked::{ChunkedDecoder, encode_chunk, encode_last_chunk};
pub use client::{Client, ClientError, Url};
pub use conn::{BodyReader, ChunkedWriter, Connection, ReadError};
pub use parse::{
    BodyKind, Headers, RequestHead, ResponseHead, Status, Version, parse_request, parse_response,
    request_body_kind, response_body_kind,
};
pub use static_files::StaticFiles;

/// Limits on what a parser accepts, so that a peer cannot make it buffer
/// without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, CRLF included (default 8 KiB). Exceeding it is
    /// [`HttpError::UriTooLong`]; for a response it bounds the status line
    /// ([`HttpError::StatusLineTooLong`]).
    pub max_request_line: usize,
    /// Most header fields in a head, or trailer fields after a chunked body
    /// (default 100).
    pub max_header_count: usize,
    /// Largest head, start line and final empty line included (default
    /// 64 KiB).
    pub max_header_bytes: usize,
    /// Longest chunk-size line, extensions and CRLF included (default
    /// 4 KiB).
    pub max_chunk_line: usize,
    /// Largest trailer section, final empty line included (default 16 KiB).
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_header_count: 100,
            max_header_bytes: 64 * 1024,
            max_chunk_line: 4 * 1024,
            max_trailer_bytes: 16 * 1024,
        }
    }
}

/// Why an HTTP message could not be parsed or framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A line ended in a bare LF, or a bare CR appeared where a line
    /// should end (RFC 9112 §2.2).
    #[error("line not terminated by CRLF")]
    BadLineEnding,
    /// The method is not a token (RFC 9112 §3.1).
    #[error("invalid method")]
    InvalidMethod,
    /// The request line does not have three parts separated by single
    /// spaces (RFC 9112 §3).
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The request-target is empty or holds a forbidden byte (RFC 9112
    /// §3.2).
    #[error("invalid request target")]
    InvalidTarget,
    /// The HTTP-version is not `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3).
    #[error("malformed HTTP version")]
    InvalidVersion,
    /// The HTTP major version is not 1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// The status line is malformed or the code is outside 100..=599
    /// (RFC 9112 §4).
    #[error("malformed status line")]
    InvalidStatusLine,
    /// A field name is empty or not a token, or the colon is missing
    /// (RFC 9112 §5).
    #[error("invalid header field name")]
    InvalidHeaderName,
    /// Whitespace between a field name and the colon (RFC 9112 §5.1).
    #[error("whitespace between header name and colon")]
    WhitespaceBeforeColon,
    /// A field value holds a control character (RFC 9110 §5.5).
    #[error("invalid header field value")]
    InvalidHeaderValue,
    /// A line starts with whitespace: obs-fold, or whitespace after the
    /// start line (RFC 9112 §5.2, §2.2).
    #[error("obsolete line folding")]
    ObsFold,
    /// The request line is longer than [`Limits::max_request_line`].
    #[error("request line too long")]
    UriTooLong,
    /// The status line is longer than [`Limits::max_request_line`].
    #[error("status line too long")]
    StatusLineTooLong,
    /// The head is larger than [`Limits::max_header_bytes`].
    #[error("header section too large")]
    HeadersTooLarge,
    /// The head has more than [`Limits::max_header_count`] fields.
    #[error("too many header fields")]
    TooManyHeaders,
    /// Content-Length is not a decimal number, overflows, or appears with
    /// differing values (RFC 9112 §6.3).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Both Transfer-Encoding and Content-Length are present (RFC 9112
    /// §6.1); rejected as a possible smuggling attempt.
    #[error("both Transfer-Encoding and Content-Length")]
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
    /// In a request, chunked is not the final transfer coding, or chunked
    /// is applied more than once (RFC 9112 §6.3, §7).
    #[error("chunked is not the final transfer coding exactly once")]
    ChunkedNotFinal,
    /// A request uses a transfer coding other than chunked (RFC 9112
    /// §6.1).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// A chunk-size is missing or not hexadecimal (RFC 9112 §7.1).
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk-size does not fit in 64 bits.
    #[error("chunk size overflows")]
    ChunkSizeOverflow,
    /// A chunk extension holds a control character.
    #[error("invalid chunk extension")]
    InvalidChunkExtension,
    /// A chunk-size line is longer than [`Limits::max_chunk_line`].
    #[error("chunk size line too long")]
    ChunkLineTooLong,
    /// Chunk data is not followed by CRLF (RFC 9112 §7.1).
    #[error("chunk data not followed by CRLF")]
    ChunkDataNotTerminated,
    /// The trailer section exceeds [`Limits::max_trailer_bytes`] or
    /// [`Limits::max_header_count`].
    #[error("trailer section too large")]
    TrailersTooLarge,
}

impl HttpError {
    /// The status code a server answers a request that failed this way
    /// with (RFC 9110 §15): 400, 414, 431, 501 or 505.
    ///
    /// Errors that only arise in responses map to 400; a client sends no
    /// status, it closes the connection.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::UriTooLong => 414,
            HttpError::HeadersTooLarge
            | HttpError::TooManyHeaders
            | HttpError::TrailersTooLarge => 431,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::UnsupportedVersion => 505,
            _ => 400,
        }
    }
}
