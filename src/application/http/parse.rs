//! Message heads (RFC 9112 §2–§5) and body framing (RFC 9112 §6).

use super::{HttpError, Limits};

/// The outcome of parsing a head from a buffer that may not hold all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// The buffer ends before the head does; call again with more bytes.
    Partial,
    /// The head, and how many bytes of the buffer it used (through the
    /// empty line that ends it).
    Complete(T, usize),
}

/// An HTTP/1.x version (RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1. A received `HTTP/1.x` with x > 1 is read as 1.1 (RFC 9110
    /// §2.5).
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The header (or trailer) fields of a message, in the order received.
///
/// Names keep their case; lookups ignore it (RFC 9110 §5.1). Values are
/// bytes, because a field value may carry obs-text (RFC 9110 §5.5), and are
/// stored with leading and trailing whitespace removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// No fields.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Appends a field. Nothing is validated: the caller supplies a token
    /// name and a value without CR, LF or NUL.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.entries.push((name.into(), value.into()));
    }

    /// The value of the first field called `name` (case-insensitively).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The values of every field called `name` (case-insensitively), in
    /// order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether a field called `name` is present (case-insensitively).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every field as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes each field as `name: value CRLF` (RFC 9112 §5).
    pub(super) fn write_to(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.entries {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A request line and header fields (RFC 9112 §3, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, a case-sensitive token (`GET`, `POST`, ...).
    pub method: String,
    /// The request-target exactly as received.
    pub target: String,
    /// The HTTP version.
    pub version: Version,
    /// The header fields.
    pub headers: Headers,
}

impl RequestHead {
    /// Appends the head, through its final empty line, to `out`.
    ///
    /// The head is written as given: a method or field that is not valid
    /// syntax produces a message a strict peer rejects.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// A status line and header fields (RFC 9112 §4, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The HTTP version.
    pub version: Version,
    /// The status code, 100..=599.
    pub status: u16,
    /// The reason phrase (possibly empty); clients should ignore it.
    pub reason: Vec<u8>,
    /// The header fields.
    pub headers: Headers,
}

impl ResponseHead {
    /// Appends the head, through its final empty line, to `out`. The
    /// space after the status code is always written, even with an empty
    /// reason (RFC 9112 §4).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.push(b' ');
        // Three digits for a valid code; `{:03}` keeps it three for 0..=99.
        out.extend_from_slice(format!("{:03}", self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.reason);
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    None,
    /// Exactly this many bytes follow the head.
    ContentLength(u64),
    /// The chunked transfer coding; decode with
    /// [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
    /// The body runs until the server closes the connection (responses
    /// only).
    CloseDelimited,
}

/// tchar (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// token: one or more tchar (RFC 9110 §5.6.2).
pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// field-vchar, SP or HTAB (RFC 9110 §5.5): anything but CTLs other than
/// HTAB.
pub(super) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Finds the end of the line that starts at `start`, looking only at
/// `buf[..limit]`. Returns the end of the line's content and the start of
/// the next line, or `None` if no LF is there yet.
fn find_line(buf: &[u8], start: usize, limit: usize) -> Result<Option<(usize, usize)>, HttpError> {
    let end = buf.len().min(limit);
    if start >= end {
        return Ok(None);
    }
    match buf[start..end].iter().position(|&b| b == b'\n') {
        None => Ok(None),
        Some(i) => {
            let lf = start + i;
            if lf == start || buf[lf - 1] != b'\r' {
                return Err(HttpError::BadLineEnding);
            }
            Ok(Some((lf - 1, lf + 1)))
        }
    }
}

/// Parses one `field-name ":" OWS field-value OWS` line, CRLF removed
/// (RFC 9112 §5).
pub(super) fn parse_field_line(line: &[u8], headers: &mut Headers) -> Result<(), HttpError> {
    if line.first().copied().is_some_and(is_ows) {
        return Err(HttpError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::InvalidHeaderName)?;
    let name = &line[..colon];
    if name.last().copied().is_some_and(is_ows) {
        return Err(HttpError::WhitespaceBeforeColon);
    }
    if !is_token(name) {
        return Err(HttpError::InvalidHeaderName);
    }
    let value = trim_ows(&line[colon + 1..]);
    if !value.iter().all(|&b| is_field_byte(b)) {
        return Err(HttpError::InvalidHeaderValue);
    }
    // A token is ASCII, so this conversion cannot fail.
    let name = String::from_utf8_lossy(name).into_owned();
    headers.push(name, value);
    Ok(())
}

fn parse_version(v: &[u8]) -> Result<Version, HttpError> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                (b'1', _) => Ok(Version::Http11),
                _ => Err(HttpError::UnsupportedVersion),
            }
        }
        _ => Err(HttpError::InvalidVersion),
    }
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3).
fn parse_request_line(line: &[u8]) -> Result<(String, String, Version), HttpError> {
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(HttpError::InvalidRequestLine)?;
    let method = &line[..sp1];
    if !is_token(method) {
        return Err(HttpError::InvalidMethod);
    }
    let rest = &line[sp1 + 1..];
    let sp2 = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(HttpError::InvalidRequestLine)?;
    let target = &rest[..sp2];
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(HttpError::InvalidTarget);
    }
    let version = parse_version(&rest[sp2 + 1..])?;
    // Both are ASCII, so the conversions cannot fail.
    Ok((
        String::from_utf8_lossy(method).into_owned(),
        String::from_utf8_lossy(target).into_owned(),
        version,
    ))
}

/// `HTTP-version SP status-code SP [ reason-phrase ]` (RFC 9112 §4). A
/// missing space after the code is tolerated when the reason is empty, as
/// many servers send `HTTP/1.1 200` bare.
fn parse_status_line(line: &[u8]) -> Result<(Version, u16, Vec<u8>), HttpError> {
    if line.len() < 12 || line[8] != b' ' {
        return Err(HttpError::InvalidStatusLine);
    }
    let version = parse_version(&line[..8])?;
    let code = &line[9..12];
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidStatusLine);
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(HttpError::InvalidStatusLine);
    }
    let reason = match &line[12..] {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(HttpError::InvalidStatusLine),
    };
    if !reason.iter().all(|&b| is_field_byte(b)) {
        return Err(HttpError::InvalidStatusLine);
    }
    Ok((version, status, reason.to_vec()))
}

/// The shared head parser: finds the start line and the fields, enforcing
/// every limit as soon as the buffer shows it exceeded.
fn parse_head<S>(
    buf: &[u8],
    limits: &Limits,
    start_line_too_long: HttpError,
    parse_start_line: impl Fn(&[u8]) -> Result<S, HttpError>,
) -> Result<Option<(S, Headers, usize)>, HttpError> {
    let head_limit = limits.max_header_bytes;
    let line_limit = limits.max_request_line.min(head_limit);
    let too_long = |buffered: usize, limit: usize, err: HttpError| {
        if buffered >= limit {
            Err(err)
        } else {
            Ok(None)
        }
    };
    let start_err = if limits.max_request_line <= head_limit {
        start_line_too_long
    } else {
        HttpError::HeadersTooLarge
    };
    let Some((start_end, mut pos)) = find_line(buf, 0, line_limit)? else {
        return too_long(buf.len(), line_limit, start_err);
    };
    let start_line = parse_start_line(&buf[..start_end])?;
    let mut headers = Headers::new();
    loop {
        if let Some(&first) = buf.get(pos) {
            if is_ows(first) {
                return Err(HttpError::ObsFold);
            }
            if first != b'\r' && first != b'\n' && headers.len() >= limits.max_header_count {
                return Err(HttpError::TooManyHeaders);
            }
        }
        let Some((line_end, next)) = find_line(buf, pos, head_limit)? else {
            return too_long(buf.len(), head_limit, HttpError::HeadersTooLarge);
        };
        if line_end == pos {
            return Ok(Some((start_line, headers, next)));
        }
        parse_field_line(&buf[pos..line_end], &mut headers)?;
        pos = next;
    }
}

/// Parses a request head from the start of `buf` (RFC 9112 §3, §5).
///
/// Returns [`Status::Partial`] while the head is incomplete and within
/// `limits`; an error as soon as it is malformed or exceeds them.
///
/// One empty line before the request line is skipped, as RFC 9112 §2.2
/// asks of a server (a client may send a CRLF after a request's body);
/// a second is an error.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Status<RequestHead>, HttpError> {
    let skipped = if buf.starts_with(b"\r\n") { 2 } else { 0 };
    let Some(((method, target, version), headers, consumed)) = parse_head(
        &buf[skipped..],
        limits,
        HttpError::UriTooLong,
        parse_request_line,
    )?
    else {
        return Ok(Status::Partial);
    };
    let consumed = skipped + consumed;
    let head = RequestHead {
        method,
        target,
        version,
        headers,
    };
    Ok(Status::Complete(head, consumed))
}

/// Parses a response head from the start of `buf` (RFC 9112 §4, §5).
///
/// Returns [`Status::Partial`] while the head is incomplete and within
/// `limits`; an error as soon as it is malformed or exceeds them.
pub fn parse_response(buf: &[u8], limits: &Limits) -> Result<Status<ResponseHead>, HttpError> {
    let Some(((version, status, reason), headers, consumed)) =
        parse_head(buf, limits, HttpError::StatusLineTooLong, parse_status_line)?
    else {
        return Ok(Status::Partial);
    };
    let head = ResponseHead {
        version,
        status,
        reason,
        headers,
    };
    Ok(Status::Complete(head, consumed))
}

/// The Content-Length of a message, if any: every field, and every element
/// of a comma-separated list, must be the same decimal number (RFC 9112
/// §6.3 rule 5, RFC 9110 §8.6).
pub(super) fn content_length(headers: &Headers) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for value in headers.get_all("content-length") {
        for element in value.split(|&b| b == b',') {
            let digits = trim_ows(element);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::InvalidContentLength);
            }
            let mut n: u64 = 0;
            for &d in digits {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or(HttpError::InvalidContentLength)?;
            }
            match length {
                Some(prev) if prev != n => return Err(HttpError::InvalidContentLength),
                _ => length = Some(n),
            }
        }
    }
    Ok(length)
}

/// The transfer codings named in every Transfer-Encoding field, in order,
/// lower-cased, parameters dropped, empty list elements skipped (RFC 9110
/// §5.6.1). `None` when there is no such field.
fn transfer_codings(headers: &Headers) -> Option<Vec<Vec<u8>>> {
    if !headers.contains("transfer-encoding") {
        return None;
    }
    let mut codings = Vec::new();
    for value in headers.get_all("transfer-encoding") {
        for element in value.split(|&b| b == b',') {
            let name = element.split(|&b| b == b';').next().unwrap_or(&[]);
            let name = trim_ows(name);
            if !name.is_empty() {
                codings.push(name.to_ascii_lowercase());
            }
        }
    }
    Some(codings)
}

/// What the Transfer-Encoding fields of a message say.
struct TransferEncoding {
    /// chunked is the final coding (and appears only there).
    chunked_last: bool,
    /// How many codings are listed.
    count: usize,
}

/// Checks the Transfer-Encoding fields the same way for requests and
/// responses; `None` when there are none.
fn check_transfer_encoding(
    version: Version,
    headers: &Headers,
) -> Result<Option<TransferEncoding>, HttpError> {
    let Some(codings) = transfer_codings(headers) else {
        return Ok(None);
    };
    if version == Version::Http10 {
        return Err(HttpError::TransferEncodingInHttp10);
    }
    if headers.contains("content-length") {
        return Err(HttpError::ContentLengthWithTransferEncoding);
    }
    let chunked_count = codings
        .iter()
        .filter(|c| c.as_slice() == b"chunked")
        .count();
    let last_is_chunked = codings.last().is_some_and(|c| c.as_slice() == b"chunked");
    if chunked_count > 1 || (chunked_count == 1 && !last_is_chunked) {
        return Err(HttpError::ChunkedNotFinal);
    }
    Ok(Some(TransferEncoding {
        chunked_last: last_is_chunked,
        count: codings.len(),
    }))
}

/// How the body of `head` is delimited (RFC 9112 §6.3).
///
/// A request has a body only if it carries Transfer-Encoding or
/// Content-Length. Transfer-Encoding must be exactly `chunked` (another
/// coding is [`HttpError::UnsupportedTransferCoding`], 501; chunked not
/// last is [`HttpError::ChunkedNotFinal`], 400). Transfer-Encoding together
/// with Content-Length, or in HTTP/1.0, is rejected.
pub fn request_body_kind(head: &RequestHead) -> Result<BodyKind, HttpError> {
    if let Some(te) = check_transfer_encoding(head.version, &head.headers)? {
        return if !te.chunked_last {
            Err(HttpError::ChunkedNotFinal)
        } else if te.count > 1 {
            Err(HttpError::UnsupportedTransferCoding)
        } else {
            Ok(BodyKind::Chunked)
        };
    }
    Ok(match content_length(&head.headers)? {
        Some(n) => BodyKind::ContentLength(n),
        None => BodyKind::None,
    })
}

/// How the body of a response to a request with `request_method` is
/// delimited (RFC 9112 §6.3).
///
/// Responses to HEAD, 1xx, 204 and 304 have no body, nor does a 2xx
/// answer to CONNECT (the connection becomes a tunnel). Otherwise
/// Transfer-Encoding with chunked last is [`BodyKind::Chunked`] (other
/// codings are left to the caller to undo); Transfer-Encoding without
/// chunked, or no framing at all, is [`BodyKind::CloseDelimited`].
/// Transfer-Encoding together with Content-Length or in HTTP/1.0, and
/// chunked anywhere but last or more than once, are rejected.
pub fn response_body_kind(
    head: &ResponseHead,
    request_method: &str,
) -> Result<BodyKind, HttpError> {
    let status = head.status;
    if request_method == "HEAD"
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (request_method == "CONNECT" && (200..300).contains(&status))
    {
        return Ok(BodyKind::None);
    }
    if let Some(te) = check_transfer_encoding(head.version, &head.headers)? {
        return Ok(if te.chunked_last {
            BodyKind::Chunked
        } else {
            BodyKind::CloseDelimited
        });
    }
    Ok(match content_length(&head.headers)? {
        Some(n) => BodyKind::ContentLength(n),
        None => BodyKind::CloseDelimited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CURL_GET: &[u8] =
        b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

    fn req(buf: &[u8]) -> Result<Status<RequestHead>, HttpError> {
        parse_request(buf, &Limits::default())
    }

    fn resp(buf: &[u8]) -> Result<Status<ResponseHead>, HttpError> {
        parse_response(buf, &Limits::default())
    }

    fn complete<T>(s: Result<Status<T>, HttpError>) -> (T, usize) {
        match s {
            Ok(Status::Complete(head, n)) => (head, n),
            other => panic!("expected a complete head, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn curl_get() {
        let (head, n) = complete(req(CURL_GET));
        assert_eq!(n, CURL_GET.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/index.html");
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.headers.len(), 3);
        assert_eq!(head.headers.get("host"), Some(&b"example.com"[..]));
        assert_eq!(head.headers.get("USER-AGENT"), Some(&b"curl/8.5.0"[..]));
        assert_eq!(head.headers.get("accept"), Some(&b"*/*"[..]));
        assert_eq!(head.headers.get("missing"), None);
        assert_eq!(request_body_kind(&head), Ok(BodyKind::None));
        for i in 0..CURL_GET.len() {
            assert_eq!(req(&CURL_GET[..i]), Ok(Status::Partial), "prefix {i}");
        }
        let mut out = Vec::new();
        head.write_to(&mut out);
        assert_eq!(out, CURL_GET);
    }

    #[test]
    fn post_with_body() {
        let msg = b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":\"hello\"}";
        let (head, n) = complete(req(msg));
        assert_eq!(head.method, "POST");
        assert_eq!(request_body_kind(&head), Ok(BodyKind::ContentLength(13)));
        assert_eq!(&msg[n..], b"{\"a\":\"hello\"}");
    }

    #[test]
    fn response_heads() {
        let msg = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let (head, n) = complete(resp(msg));
        assert_eq!(n, msg.len());
        assert_eq!((head.version, head.status), (Version::Http11, 404));
        assert_eq!(head.reason, b"Not Found");
        assert_eq!(
            response_body_kind(&head, "GET"),
            Ok(BodyKind::ContentLength(0))
        );
        let mut out = Vec::new();
        head.write_to(&mut out);
        assert_eq!(out, msg);

        // No reason phrase, with and without the space.
        for msg in [&b"HTTP/1.0 200 \r\n\r\n"[..], b"HTTP/1.0 200\r\n\r\n"] {
            let (head, _) = complete(resp(msg));
            assert_eq!((head.version, head.status), (Version::Http10, 200));
            assert!(head.reason.is_empty());
            assert_eq!(
                response_body_kind(&head, "GET"),
                Ok(BodyKind::CloseDelimited)
            );
        }
        // obs-text in a reason phrase is kept as bytes.
        let (head, _) = complete(resp(b"HTTP/1.1 200 \xe9t\xe9\r\n\r\n"));
        assert_eq!(head.reason, b"\xe9t\xe9");
    }

    #[test]
    fn field_values_trimmed_and_versions() {
        let (head, _) = complete(req(b"GET * HTTP/1.2\r\nX:  a b \t\r\nY:\r\n\r\n"));
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.headers.get("x"), Some(&b"a b"[..]));
        assert_eq!(head.headers.get("y"), Some(&b""[..]));
        let (head, _) = complete(req(b"OPTIONS * HTTP/1.0\r\n\r\n"));
        assert_eq!(head.version, Version::Http10);
        assert!(head.headers.is_empty());
    }

    #[test]
    fn pipelined_requests() {
        let mut buf = Vec::new();
        buf.extend_from_slice(CURL_GET);
        buf.extend_from_slice(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        buf.extend_from_slice(b"DELETE /b HTTP/1.1\r\n\r\n");
        buf.extend_from_slice(b"GET /c HT");
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Status::Complete(head, n) = req(&buf[pos..]).unwrap() {
            pos += n;
            if let BodyKind::ContentLength(len) = request_body_kind(&head).unwrap() {
                assert_eq!(&buf[pos..pos + len as usize], b"hello");
                pos += len as usize;
            }
            seen.push(head.target);
        }
        assert_eq!(seen, ["/index.html", "/a", "/b"]);
        assert_eq!(&buf[pos..], b"GET /c HT");
    }

    #[test]
    fn one_empty_line_before_the_request_line_is_skipped() {
        // RFC 9112 §2.2: what a client may send after a request's body.
        let buf = b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nnext";
        let (head, used) = complete(req(buf));
        assert_eq!((head.method.as_str(), head.target.as_str()), ("GET", "/"));
        assert_eq!(&buf[used..], b"next");
        assert!(matches!(req(b"\r\n"), Ok(Status::Partial)));
        assert!(matches!(req(b"\r\nGET / HT"), Ok(Status::Partial)));
    }

    #[test]
    fn malformed_requests_rejected() {
        use HttpError::*;
        let cases: &[(&[u8], HttpError)] = &[
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", WhitespaceBeforeColon),
            (
                b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",
                WhitespaceBeforeColon,
            ),
            (b"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\n: x\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\nHost: x\r\n\r\n", BadLineEnding),
            (b"GET / HTTP/1.1\r\nHost: x\n\r\n", BadLineEnding),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\n", BadLineEnding),
            (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", InvalidRequestLine),
            (b"GET / HTTP/1.1\r\n\n", BadLineEnding),
            (b"G@T / HTTP/1.1\r\n\r\n", InvalidMethod),
            (b" GET / HTTP/1.1\r\n\r\n", InvalidMethod),
            (b"GET  / HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET /\x7f HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET /\xff HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET / HTTP/1.1 \r\n\r\n", InvalidVersion),
            (b"GET /  HTTP/1.1\r\n\r\n", InvalidVersion),
            (b"GET / http/1.1\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/1.10\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/11\r\n\r\n", InvalidVersion),
            (b"GET /\r\n\r\n", InvalidRequestLine),
            (b"GET / HTTP/2.0\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/0.9\r\n\r\n", UnsupportedVersion),
        ];
        for (msg, err) in cases {
            assert_eq!(
                req(msg),
                Err(*err),
                "{}",
                String::from_utf8_lossy(msg).escape_debug()
            );
        }
        assert_eq!(UnsupportedVersion.status(), 505);
    }

    #[test]
    fn malformed_responses_rejected() {
        use HttpError::*;
        let cases: &[(&[u8], HttpError)] = &[
            (b"HTTP/1.1 20 OK\r\n\r\n", InvalidStatusLine),
            (b"HTTP/1.1 2000 OK\r\n\r\n", InvalidStatusLine),
            (b"HTTP/1.1 099 OK\r\n\r\n", InvalidStatusLine),
            (b"HTTP/1.1 600 OK\r\n\r\n", InvalidStatusLine),
            (b"HTTP/1.1  200 OK\r\n\r\n", InvalidStatusLine),
            (b"HTTP/1.1 200 O\x01K\r\n\r\n", InvalidStatusLine),
            (b"HTTP/1.1\r\n\r\n", InvalidStatusLine),
            (b"HTTQ/1.1 200 OK\r\n\r\n", InvalidVersion),
            (b"HTTP/3.0 200 OK\r\n\r\n", UnsupportedVersion),
            (b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", WhitespaceBeforeColon),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", ObsFold),
        ];
        for (msg, err) in cases {
            assert_eq!(
                resp(msg),
                Err(*err),
                "{}",
                String::from_utf8_lossy(msg).escape_debug()
            );
        }
    }

    #[test]
    fn request_line_limit() {
        let limits = Limits {
            max_request_line: 32,
            ..Limits::default()
        };
        // "GET / HTTP/1.1\r\n" is 16 bytes plus the path padding.
        let line = |len: usize| format!("GET /{} HTTP/1.1\r\n", "x".repeat(len - 16));
        let ok = line(32) + "\r\n";
        assert!(matches!(
            parse_request(ok.as_bytes(), &limits),
            Ok(Status::Complete(..))
        ));
        let long = line(33) + "\r\n";
        assert_eq!(
            parse_request(long.as_bytes(), &limits),
            Err(HttpError::UriTooLong)
        );
        // A partial line already past the limit errors rather than waiting.
        assert_eq!(parse_request(&[b'a'; 31], &limits), Ok(Status::Partial));
        assert_eq!(
            parse_request(&[b'a'; 32], &limits),
            Err(HttpError::UriTooLong)
        );
        assert_eq!(HttpError::UriTooLong.status(), 414);
        // The same limit bounds a status line.
        assert_eq!(
            parse_response(&[b'a'; 32], &limits),
            Err(HttpError::StatusLineTooLong)
        );
    }

    #[test]
    fn header_count_limit() {
        let limits = Limits {
            max_header_count: 3,
            ..Limits::default()
        };
        let three = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
        let mut ok = three.to_vec();
        ok.extend_from_slice(b"\r\n");
        let (head, _) = complete(parse_request(&ok, &limits));
        assert_eq!(head.headers.len(), 3);
        assert_eq!(parse_request(three, &limits), Ok(Status::Partial));
        // The first byte of a fourth field is enough.
        let mut four = three.to_vec();
        four.push(b'D');
        assert_eq!(
            parse_request(&four, &limits),
            Err(HttpError::TooManyHeaders)
        );
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        let four = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_eq!(
            parse_response(four, &limits),
            Err(HttpError::TooManyHeaders)
        );
    }

    #[test]
    fn header_bytes_limit() {
        let limits = Limits {
            max_header_bytes: 64,
            ..Limits::default()
        };
        // 16 + 2 bytes of request line and end, 46 bytes for one field.
        let head = |value_len: usize| {
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(value_len)).into_bytes()
        };
        let ok = head(64 - 16 - 2 - 5);
        assert_eq!(ok.len(), 64);
        assert!(matches!(
            parse_request(&ok, &limits),
            Ok(Status::Complete(_, 64))
        ));
        let big = head(64 - 16 - 2 - 5 + 1);
        assert_eq!(
            parse_request(&big, &limits),
            Err(HttpError::HeadersTooLarge)
        );
        // Partial heads: up to 63 bytes wait, 64 without the end error.
        assert_eq!(parse_request(&big[..63], &limits), Ok(Status::Partial));
        assert_eq!(
            parse_request(&big[..64], &limits),
            Err(HttpError::HeadersTooLarge)
        );
        // A request line limit above the head limit reports the head limit.
        let mut line = b"GET /".to_vec();
        line.resize(100, b'x');
        assert_eq!(
            parse_request(&line, &limits),
            Err(HttpError::HeadersTooLarge)
        );
        assert_eq!(HttpError::HeadersTooLarge.status(), 431);
    }

    fn head_with(version: Version, fields: &[(&str, &str)]) -> RequestHead {
        let mut headers = Headers::new();
        for (n, v) in fields {
            headers.push(*n, v.as_bytes());
        }
        RequestHead {
            method: "POST".into(),
            target: "/".into(),
            version,
            headers,
        }
    }

    #[test]
    fn request_framing() {
        type Case = (
            Version,
            &'static [(&'static str, &'static str)],
            Result<BodyKind, HttpError>,
        );
        use BodyKind::*;
        use HttpError::*;
        use Version::*;
        let cases: &[Case] = &[
            (Http11, &[], Ok(None)),
            (Http11, &[("Content-Length", "0")], Ok(ContentLength(0))),
            (Http11, &[("content-length", "42")], Ok(ContentLength(42))),
            (
                Http11,
                &[("Content-Length", "42, 42")],
                Ok(ContentLength(42)),
            ),
            (
                Http11,
                &[("Content-Length", "42"), ("Content-Length", "42")],
                Ok(ContentLength(42)),
            ),
            (
                Http11,
                &[("Content-Length", "42"), ("Content-Length", "43")],
                Err(InvalidContentLength),
            ),
            (
                Http11,
                &[("Content-Length", "42,43")],
                Err(InvalidContentLength),
            ),
            (Http11, &[("Content-Length", "")], Err(InvalidContentLength)),
            (
                Http11,
                &[("Content-Length", "+4")],
                Err(InvalidContentLength),
            ),
            (
                Http11,
                &[("Content-Length", "0x10")],
                Err(InvalidContentLength),
            ),
            (
                Http11,
                &[("Content-Length", "18446744073709551615")],
                Ok(ContentLength(u64::MAX)),
            ),
            (
                Http11,
                &[("Content-Length", "18446744073709551616")],
                Err(InvalidContentLength),
            ),
            (Http11, &[("Transfer-Encoding", "chunked")], Ok(Chunked)),
            (Http11, &[("Transfer-Encoding", " Chunked ")], Ok(Chunked)),
            (Http11, &[("Transfer-Encoding", ", chunked,")], Ok(Chunked)),
            (
                Http11,
                &[("Transfer-Encoding", "gzip, chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                Http11,
                &[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked"),
                ],
                Err(UnsupportedTransferCoding),
            ),
            (
                Http11,
                &[("Transfer-Encoding", "chunked, gzip")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[("Transfer-Encoding", "gzip")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[("Transfer-Encoding", "chunked, chunked")],
                Err(ChunkedNotFinal),
            ),
            (
                Http11,
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Err(ContentLengthWithTransferEncoding),
            ),
            (
                Http10,
                &[("Transfer-Encoding", "chunked")],
                Err(TransferEncodingInHttp10),
            ),
            (Http10, &[("Content-Length", "3")], Ok(ContentLength(3))),
        ];
        for (version, fields, expected) in cases {
            assert_eq!(
                request_body_kind(&head_with(*version, fields)),
                *expected,
                "{fields:?}"
            );
        }
        assert_eq!(UnsupportedTransferCoding.status(), 501);
        assert_eq!(ContentLengthWithTransferEncoding.status(), 400);
    }

    #[test]
    fn response_framing() {
        let resp = |status: u16, fields: &[(&str, &str)]| {
            let RequestHead { headers, .. } = head_with(Version::Http11, fields);
            ResponseHead {
                version: Version::Http11,
                status,
                reason: Vec::new(),
                headers,
            }
        };
        let cl = [("Content-Length", "10")];
        let te = [("Transfer-Encoding", "chunked")];
        assert_eq!(
            response_body_kind(&resp(200, &cl), "GET"),
            Ok(BodyKind::ContentLength(10))
        );
        assert_eq!(
            response_body_kind(&resp(200, &cl), "HEAD"),
            Ok(BodyKind::None)
        );
        for status in [100, 101, 199, 204, 304] {
            assert_eq!(
                response_body_kind(&resp(status, &te), "GET"),
                Ok(BodyKind::None)
            );
        }
        assert_eq!(
            response_body_kind(&resp(200, &[]), "CONNECT"),
            Ok(BodyKind::None)
        );
        assert_eq!(
            response_body_kind(&resp(200, &te), "GET"),
            Ok(BodyKind::Chunked)
        );
        let gzip_chunked = [("Transfer-Encoding", "gzip, chunked")];
        assert_eq!(
            response_body_kind(&resp(200, &gzip_chunked), "GET"),
            Ok(BodyKind::Chunked)
        );
        let chunked_gzip = [("Transfer-Encoding", "chunked, gzip")];
        assert_eq!(
            response_body_kind(&resp(200, &chunked_gzip), "GET"),
            Err(HttpError::ChunkedNotFinal)
        );
        let gzip = [("Transfer-Encoding", "gzip")];
        assert_eq!(
            response_body_kind(&resp(200, &gzip), "GET"),
            Ok(BodyKind::CloseDelimited)
        );
        assert_eq!(
            response_body_kind(&resp(200, &[]), "GET"),
            Ok(BodyKind::CloseDelimited)
        );
        let both = [("Transfer-Encoding", "chunked"), ("Content-Length", "3")];
        assert_eq!(
            response_body_kind(&resp(200, &both), "GET"),
            Err(HttpError::ContentLengthWithTransferEncoding)
        );
        let bad = [("Content-Length", "1, 2")];
        assert_eq!(
            response_body_kind(&resp(200, &bad), "GET"),
            Err(HttpError::InvalidContentLength)
        );
    }

    fn field_byte() -> impl Strategy<Value = u8> {
        prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
    }

    fn arb_headers() -> impl Strategy<Value = Headers> {
        let field = (
            "[-!#$%&'*+.^_`|~0-9A-Za-z]{1,16}",
            proptest::collection::vec(field_byte(), 0..24),
        );
        proptest::collection::vec(field, 0..10).prop_map(|fields| {
            let mut headers = Headers::new();
            for (name, value) in fields {
                headers.push(name, trim_ows(&value));
            }
            headers
        })
    }

    fn arb_version() -> impl Strategy<Value = Version> {
        prop_oneof![Just(Version::Http10), Just(Version::Http11)]
    }

    fn arb_request() -> impl Strategy<Value = RequestHead> {
        (
            "[-!#$%&'*+.^_`|~0-9A-Za-z]{1,12}",
            "[!-~]{1,40}",
            arb_version(),
            arb_headers(),
        )
            .prop_map(|(method, target, version, headers)| RequestHead {
                method,
                target,
                version,
                headers,
            })
    }

    fn arb_response() -> impl Strategy<Value = ResponseHead> {
        (
            arb_version(),
            100u16..600,
            proptest::collection::vec(field_byte(), 0..20),
            arb_headers(),
        )
            .prop_map(|(version, status, reason, headers)| ResponseHead {
                version,
                status,
                reason,
                headers,
            })
    }

    /// Feeds `bytes` as a connection would, appending one piece at a time
    /// and parsing after each; returns the first non-partial result.
    fn feed_in_pieces<T>(
        bytes: &[u8],
        cuts: &[usize],
        parse: impl Fn(&[u8]) -> Result<Status<T>, HttpError>,
    ) -> Result<Status<T>, HttpError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut buffered = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buffered.extend_from_slice(&bytes[from..cut]);
            from = cut;
            match parse(&buffered) {
                Ok(Status::Partial) => {}
                other => return other,
            }
        }
        Ok(Status::Partial)
    }

    proptest! {
        #[test]
        fn request_round_trip_at_every_split(
            head in arb_request(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
            tail in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut bytes = Vec::new();
            head.write_to(&mut bytes);
            let len = bytes.len();
            for i in 0..len {
                prop_assert_eq!(req(&bytes[..i]), Ok(Status::Partial));
            }
            bytes.extend_from_slice(&tail);
            let whole = req(&bytes);
            prop_assert_eq!(&whole, &Ok(Status::Complete(head, len)));
            prop_assert_eq!(feed_in_pieces(&bytes, &cuts, req), whole);
        }

        #[test]
        fn response_round_trip_at_every_split(
            head in arb_response(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut bytes = Vec::new();
            head.write_to(&mut bytes);
            for i in 0..bytes.len() {
                prop_assert_eq!(resp(&bytes[..i]), Ok(Status::Partial));
            }
            let whole = resp(&bytes);
            prop_assert_eq!(&whole, &Ok(Status::Complete(head, bytes.len())));
            prop_assert_eq!(feed_in_pieces(&bytes, &cuts, resp), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let small = Limits {
                max_request_line: 24,
                max_header_count: 3,
                max_header_bytes: 80,
                ..Limits::default()
            };
            for limits in [Limits::default(), small] {
                if let Ok(Status::Complete(head, n)) = parse_request(&data, &limits) {
                    prop_assert!(n <= data.len());
                    let _ = request_body_kind(&head);
                }
                if let Ok(Status::Complete(head, n)) = parse_response(&data, &limits) {
                    prop_assert!(n <= data.len());
                    let _ = response_body_kind(&head, "GET");
                }
            }
        }

        #[test]
        fn near_miss_messages_never_panic(
            parts in proptest::collection::vec(
                "GET|HTTP/1\\.1|HTTP/1\\.0|200| |/|\r\n|\r|\n|:|a|\t|,|0|Content-Length|Transfer-Encoding|chunked",
                0..40,
            ),
        ) {
            let data = parts.concat().into_bytes();
            if let Ok(Status::Complete(head, _)) = req(&data) {
                let _ = request_body_kind(&head);
            }
            if let Ok(Status::Complete(head, _)) = resp(&data) {
                let _ = response_body_kind(&head, "HEAD");
            }
        }
    }
}
