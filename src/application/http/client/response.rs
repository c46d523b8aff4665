//! A response whose body is read from the connection as the caller asks
//! for it, and whose connection goes back to the pool when the body has
//! been read to its end.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use super::pool::{Pool, PoolKey};
use super::timed::TimedStream;
use super::url::Url;
use super::{ClientError, Phase};
use crate::application::http::conn::{BodyCursor, drain_body, read_body_bounded};
use crate::application::http::{BodyKind, Connection, Headers, ResponseHead, Version};
use crate::application::net::ByteStream;

/// An HTTP response: the status line and header fields, and a body to
/// read, either streamed (`Read`, [`copy_to`](Self::copy_to)) or whole
/// with a size limit ([`read_to_vec`](Self::read_to_vec)).
///
/// The connection is handed back to the client's pool the moment the body
/// has been read to its end, when it may be kept (RFC 9112 §9.3); a
/// response dropped before that closes it. The responses to HEAD, and
/// 204 and 304 responses, have no body (RFC 9110 §6.4.1).
#[derive(Debug)]
pub struct Response<S: ByteStream> {
    head: ResponseHead,
    url: Url,
    kind: BodyKind,
    body: Body<S>,
}

/// The body's side: the connection while the body is being read.
#[derive(Debug)]
pub(super) struct Body<S: ByteStream> {
    /// `None` once the body is read (and the connection kept or closed),
    /// or after a read failed.
    conn: Option<Connection<TimedStream<S>>>,
    cursor: BodyCursor,
    /// Where the connection goes when the body ends, if it may be kept.
    keep: Option<(Arc<Pool<S>>, PoolKey)>,
    failed: bool,
}

impl<S: ByteStream> Body<S> {
    pub(super) fn new(
        conn: Connection<TimedStream<S>>,
        kind: BodyKind,
        keep: Option<(Arc<Pool<S>>, PoolKey)>,
    ) -> Body<S> {
        let cursor = BodyCursor::new(kind, conn.limits());
        let mut body = Body {
            conn: Some(conn),
            cursor,
            keep,
            failed: false,
        };
        if body.cursor.is_done() {
            body.release();
        }
        body
    }

    /// Hands the connection back to the pool, if it may be kept and holds
    /// nothing unread; otherwise closes it.
    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((pool, key))) = (conn, self.keep.take()) {
            if conn.has_buffered() {
                log::debug!("bytes after the response body: closing the connection");
            } else {
                pool.put(key, conn, Instant::now());
            }
        }
    }
}

impl<S: ByteStream> Read for Body<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier read of this body failed"));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        match self.cursor.read(conn, out) {
            Ok(n) => {
                if self.cursor.is_done() {
                    self.release();
                }
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                self.conn = None;
                Err(e)
            }
        }
    }
}

impl<S: ByteStream> Response<S> {
    pub(super) fn new(head: ResponseHead, url: Url, kind: BodyKind, body: Body<S>) -> Self {
        Response {
            head,
            url,
            kind,
            body,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase, as sent (possibly empty; RFC 9112 §4 says to
    /// ignore it).
    pub fn reason(&self) -> &[u8] {
        &self.head.reason
    }

    /// The server's HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.head.headers
    }

    /// The whole head.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The status line, as `HTTP/1.1 200 OK`.
    pub fn status_line(&self) -> String {
        let mut line = format!("{} {}", self.head.version.as_str(), self.head.status);
        if !self.head.reason.is_empty() {
            line.push(' ');
            line.push_str(&String::from_utf8_lossy(&self.head.reason));
        }
        line
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.head.status)
    }

    /// The URL that answered: the one requested, or the last redirect's.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How the body is delimited ([`BodyKind::None`] for HEAD, 1xx, 204
    /// and 304).
    pub fn body_kind(&self) -> BodyKind {
        self.kind
    }

    /// The trailer fields of a chunked body, once it has been read to the
    /// end.
    pub fn trailers(&self) -> Option<&Headers> {
        self.body.cursor.trailers()
    }

    /// Reads the whole body, failing with [`ClientError::BodyTooLarge`] if
    /// it is longer than `limit` bytes (at once when Content-Length says
    /// so).
    pub fn read_to_vec(&mut self, limit: u64) -> Result<Vec<u8>, ClientError> {
        if matches!(self.kind, BodyKind::ContentLength(n) if n > limit) {
            return Err(ClientError::BodyTooLarge(limit));
        }
        read_body_bounded(&mut self.body, limit)
            .map_err(body_error)?
            .ok_or(ClientError::BodyTooLarge(limit))
    }

    /// Streams the rest of the body into `out` (a file, stdout) without
    /// holding it in memory, and returns how many bytes it wrote. A
    /// failure to write is [`ClientError::Output`].
    pub fn copy_to(&mut self, out: &mut impl Write) -> Result<u64, ClientError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match self.body.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(body_error(e)),
            };
            out.write_all(&buf[..n]).map_err(ClientError::Output)?;
            total += n as u64;
        }
    }

    /// Reads and drops up to `limit` bytes of the body so that the
    /// connection can be reused; a longer body, or an error, closes it.
    pub(super) fn discard(mut self, limit: u64) {
        if !matches!(self.kind, BodyKind::ContentLength(n) if n > limit) {
            let _ = drain_body(&mut self.body, limit);
        }
    }
}

impl<S: ByteStream> Read for Response<S> {
    /// Reads body bytes; 0 at the end of the body. Errors are as
    /// [`BodyReader`](crate::application::http::BodyReader)'s, and a
    /// timeout is `WouldBlock` or `TimedOut`.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.body.read(out)
    }
}

/// What a failed body read means.
fn body_error(e: io::Error) -> ClientError {
    if crate::application::is_timeout(&e) {
        return ClientError::Timeout(Phase::Body);
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ClientError::Closed(Phase::Body);
    }
    let http = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::application::http::HttpError>())
        .copied();
    match http {
        Some(h) => ClientError::MalformedResponse(h),
        None => ClientError::Io {
            phase: Phase::Body,
            source: e,
        },
    }
}
