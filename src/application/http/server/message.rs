//! What a [`Handler`](super::Handler) sees and returns: [`Request`] with a
//! streaming [`RequestBody`], and [`Response`] with a [`Body`] (RFC 9110
//! §6, §15).

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;

use crate::application::http::{Headers, RequestHead, Version};
use crate::application::is_timeout;

/// A request as a handler sees it: the head, the peer, and the body as a
/// reader.
#[derive(Debug)]
pub struct Request<'a> {
    head: RequestHead,
    target: TargetParts,
    peer: SocketAddr,
    body: RequestBody<'a>,
}

/// Where the path and the query are in the request-target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TargetParts {
    path_start: usize,
    path_end: usize,
    /// The query starts after the `?` at `path_end`.
    has_query: bool,
}

impl TargetParts {
    /// Splits a request-target (RFC 9112 §3.2): origin-form
    /// `/path?query`, absolute-form `http://host/path?query` (whose path
    /// is what follows the authority), or asterisk-form `*`. Any other
    /// form is treated as a path without a query.
    fn of(target: &str) -> TargetParts {
        let path_start = match target.find("://") {
            Some(i) if !target.starts_with('/') => {
                let after = i + 3;
                target[after..]
                    .find(['/', '?'])
                    .map_or(target.len(), |j| after + j)
            }
            _ => 0,
        };
        let (path_end, has_query) = match target[path_start..].find('?') {
            Some(j) => (path_start + j, true),
            None => (target.len(), false),
        };
        TargetParts {
            path_start,
            path_end,
            has_query,
        }
    }
}

impl<'a> Request<'a> {
    /// A request with `head`, from `peer`, whose body is read from `body`
    /// (give `&mut std::io::empty()` for none). The server builds these;
    /// this constructor is for testing handlers without a connection.
    pub fn new(head: RequestHead, peer: SocketAddr, body: &'a mut (dyn Read + 'a)) -> Request<'a> {
        Request::with_body(head, peer, RequestBody::new(body, None, u64::MAX))
    }

    pub(super) fn with_body(
        head: RequestHead,
        peer: SocketAddr,
        body: RequestBody<'a>,
    ) -> Request<'a> {
        Request {
            target: TargetParts::of(&head.target),
            head,
            peer,
            body,
        }
    }

    /// The method (case-sensitive, RFC 9110 §9.1).
    pub fn method(&self) -> &str {
        &self.head.method
    }

    /// The request-target exactly as received (RFC 9112 §3.2).
    pub fn target(&self) -> &str {
        &self.head.target
    }

    /// The path of the target, still percent-encoded: `/a%20b` for
    /// `/a%20b?x=1`, and for an absolute-form target the part after the
    /// authority (`/` if that is empty).
    pub fn path(&self) -> &str {
        let t = self.target;
        match &self.head.target[t.path_start..t.path_end] {
            "" => "/",
            path => path,
        }
    }

    /// The query of the target (after `?`), still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        let t = self.target;
        t.has_query.then(|| &self.head.target[t.path_end + 1..])
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.head.headers
    }

    /// The value of the first header field called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.headers.get(name)
    }

    /// The whole head.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The body, to read (it streams from the connection; nothing is
    /// buffered beyond one read).
    pub fn body(&mut self) -> &mut RequestBody<'a> {
        &mut self.body
    }

    pub(super) fn into_body(self) -> RequestBody<'a> {
        self.body
    }
}

/// Why reading a request body failed, which decides the status the
/// server answers with instead of the handler's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyFailure {
    /// More than the server's maximum body size: 413.
    TooLarge,
    /// Bad chunked framing, or the client closed the connection before
    /// the end of the body: 400.
    Malformed,
    /// A read waited longer than the read timeout: 408.
    TimedOut,
    /// The stream failed.
    Io,
}

impl BodyFailure {
    pub(super) fn status(self) -> u16 {
        match self {
            BodyFailure::TooLarge => 413,
            BodyFailure::TimedOut => 408,
            BodyFailure::Malformed | BodyFailure::Io => 400,
        }
    }
}

/// A request body: `read` returns the content (the chunked coding
/// undone) and 0 at its end.
///
/// Reading more than the server's maximum body size fails with
/// `InvalidData`, and the server then answers 413 (RFC 9110 §15.5.14)
/// whatever the handler returns; any other read error likewise makes the
/// server answer 400 or 408 and close the connection. A request with
/// `Expect: 100-continue` gets its `100 Continue` on the first read.
pub struct RequestBody<'a> {
    reader: &'a mut (dyn Read + 'a),
    length: Option<u64>,
    limit: u64,
    received: u64,
    touched: bool,
    failure: Option<BodyFailure>,
}

impl fmt::Debug for RequestBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("length", &self.length)
            .field("limit", &self.limit)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestBody<'a> {
    pub(super) fn new(
        reader: &'a mut (dyn Read + 'a),
        length: Option<u64>,
        limit: u64,
    ) -> RequestBody<'a> {
        RequestBody {
            reader,
            length,
            limit,
            received: 0,
            touched: false,
            failure: None,
        }
    }

    /// The length the client announced in Content-Length (0 without a
    /// body), or `None` for a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// How many bytes have been read so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The largest body the server accepts.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Reads the rest of the body into a vector (at most
    /// [`limit`](Self::limit) bytes, or the read fails).
    pub fn read_to_vec(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Whether the handler tried to read the body at all.
    pub(super) fn touched(&self) -> bool {
        self.touched
    }

    pub(super) fn failure(&self) -> Option<BodyFailure> {
        self.failure
    }

    fn fail(&mut self, failure: BodyFailure, e: io::Error) -> io::Error {
        self.failure.get_or_insert(failure);
        e
    }
}

impl Read for RequestBody<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        self.touched = true;
        // Ask for one byte past the limit at most, to see it exceeded
        // without reading further.
        let room = self.limit.saturating_sub(self.received).saturating_add(1);
        let want = out.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = match self.reader.read(&mut out[..want]) {
            Ok(n) => n,
            Err(e) => {
                let failure = if is_timeout(&e) {
                    BodyFailure::TimedOut
                } else if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) {
                    BodyFailure::Malformed
                } else {
                    BodyFailure::Io
                };
                return Err(self.fail(failure, e));
            }
        };
        self.received += n as u64;
        if self.received > self.limit {
            let limit = self.limit;
            return Err(self.fail(
                BodyFailure::TooLarge,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("request body larger than {limit} bytes"),
                ),
            ));
        }
        Ok(n)
    }
}

/// A response as a handler returns it.
///
/// The server adds the framing (`Content-Length` or `Transfer-Encoding:
/// chunked`), `Connection`, and `Date` and `Server` unless present;
/// framing and connection fields the handler sets are replaced (see
/// [`serve_connection`](super::serve_connection)).
#[derive(Debug)]
pub struct Response {
    /// The status code (RFC 9110 §15); the server answers 500 instead of
    /// a code outside 200..=599.
    pub status: u16,
    /// The reason phrase; `None` for the standard one.
    pub reason: Option<String>,
    /// The header fields.
    pub headers: Headers,
    /// The content.
    pub body: Body,
}

/// The content of a response.
pub enum Body {
    /// No content (`Content-Length: 0` where a body is allowed).
    Empty,
    /// Content held in memory.
    Bytes(Vec<u8>),
    /// Content read from `reader` as it is sent. With a `length` it is
    /// sent with Content-Length (exactly that many bytes: a reader that
    /// ends early aborts the connection); without, chunked to HTTP/1.1
    /// clients and delimited by closing the connection for HTTP/1.0
    /// ones.
    Stream {
        /// Where the content comes from.
        reader: Box<dyn Read + Send>,
        /// Its length, if known.
        length: Option<u64>,
    },
}

impl Body {
    /// A streamed body.
    pub fn stream(reader: impl Read + Send + 'static, length: Option<u64>) -> Body {
        Body::Stream {
            reader: Box::new(reader),
            length,
        }
    }

    /// The length of the content, if known before sending it.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream { length, .. } => *length,
        }
    }

    /// Whether the content is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream { length, .. } => write!(f, "Stream {{ length: {length:?} }}"),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::Bytes(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(s.into_bytes())
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Body {
        Body::Bytes(s.as_bytes().to_vec())
    }
}

impl Response {
    /// A response with `status` and no content.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: None,
            headers: Headers::new(),
            body: Body::Empty,
        }
    }

    /// `text` as `text/plain; charset=utf-8`.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::bytes(
            status,
            "text/plain; charset=utf-8",
            text.into().into_bytes(),
        )
    }

    /// `html` as `text/html; charset=utf-8`.
    pub fn html(status: u16, html: impl Into<String>) -> Response {
        Response::bytes(status, "text/html; charset=utf-8", html.into().into_bytes())
    }

    /// `content` with a Content-Type.
    pub fn bytes(status: u16, content_type: &str, content: impl Into<Vec<u8>>) -> Response {
        Response::new(status)
            .with_header("Content-Type", content_type)
            .with_body(Body::Bytes(content.into()))
    }

    /// Content streamed from `reader` (see [`Body::Stream`]).
    pub fn stream(
        status: u16,
        content_type: &str,
        reader: impl Read + Send + 'static,
        length: Option<u64>,
    ) -> Response {
        Response::new(status)
            .with_header("Content-Type", content_type)
            .with_body(Body::stream(reader, length))
    }

    /// A short plain-text error page: the status line's text, e.g.
    /// `404 Not Found`.
    pub fn error(status: u16) -> Response {
        Response::text(status, format!("{status} {}\n", reason_phrase(status)))
    }

    /// Adds a header field (not validated here: the server drops fields
    /// that are not valid syntax before sending).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Response {
        self.headers.push(name, value);
        self
    }

    /// Sets the reason phrase.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Response {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the content.
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }
}

/// The reason phrase registered for `status` (RFC 9110 §15, and 429 and
/// 431 from RFC 6585), or `""` for an unregistered code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str) -> (String, Option<String>) {
        let head = RequestHead {
            method: "GET".into(),
            target: target.into(),
            version: Version::Http11,
            headers: Headers::new(),
        };
        let mut empty = io::empty();
        let req = Request::new(head, "192.0.2.1:1000".parse().unwrap(), &mut empty);
        (req.path().to_string(), req.query().map(str::to_string))
    }

    #[test]
    fn target_forms_split_into_path_and_query() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/", "/", None),
            ("/a/b%20c", "/a/b%20c", None),
            ("/a?x=1&y", "/a", Some("x=1&y")),
            ("/?", "/", Some("")),
            ("/a?b?c", "/a", Some("b?c")),
            ("http://example.com/a/b?q", "/a/b", Some("q")),
            ("http://example.com", "/", None),
            ("http://example.com?q", "/", Some("q")),
            ("HTTP://example.com:8080/x", "/x", None),
            ("*", "*", None),
            ("/p://q", "/p://q", None),
        ];
        for &(target, path, query) in cases {
            let (p, q) = request(target);
            assert_eq!(p, path, "{target}");
            assert_eq!(q.as_deref(), query, "{target}");
        }
    }

    #[test]
    fn body_beyond_the_limit_fails_and_is_recorded() {
        let mut data: &[u8] = &[7u8; 100];
        let mut body = RequestBody::new(&mut data, None, 60);
        let err = body.read_to_vec().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(body.failure(), Some(BodyFailure::TooLarge));
        assert!(body.received() <= 61);

        let mut data: &[u8] = &[7u8; 60];
        let mut body = RequestBody::new(&mut data, Some(60), 60);
        assert_eq!(body.read_to_vec().unwrap().len(), 60);
        assert_eq!(body.failure(), None);
        assert!(body.touched());
    }

    #[test]
    fn constructors() {
        let r = Response::text(200, "hi").with_header("X-A", "1");
        assert_eq!(
            r.headers.get("content-type"),
            Some(&b"text/plain; charset=utf-8"[..])
        );
        assert_eq!(r.body.len(), Some(2));
        let r = Response::error(404);
        assert!(matches!(&r.body, Body::Bytes(b) if b == b"404 Not Found\n"));
        let r = Response::stream(200, "application/octet-stream", io::empty(), None);
        assert_eq!(r.body.len(), None);
        assert_eq!(reason_phrase(413), "Content Too Large");
        assert_eq!(reason_phrase(299), "");
    }
}
