//! One connection, from its first request to its close (RFC 9112 §9):
//! read a head, check it, run the handler, frame and write the response,
//! and decide whether the connection goes on.

use std::io::{self, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use super::date::format_http_date;
use super::message::{Body, Request, RequestBody, Response, reason_phrase};
use super::wire::{Expired, Phase, Wire, WireControl};
use super::{Counters, Handler, ServerConfig};
use crate::application::http::parse::{content_length, is_field_byte, is_tchar};
use crate::application::http::{
    BodyKind, ChunkedWriter, Connection, Headers, Limits, ReadError, RequestHead, ResponseHead,
    Status, Version, parse_request, request_body_kind,
};
use crate::application::net::ByteStream;

/// The `Server` field the server sends (RFC 9110 §10.2.4).
const SERVER_NAME: &str = "netstrata";

/// The size of the buffer responses are written through, so that a head
/// and a small body leave in one write.
const WRITE_BUFFER: usize = 16 * 1024;

/// What one connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Responses written (error responses from the server included).
    pub requests: u64,
    /// Bytes received.
    pub bytes_read: u64,
    /// Bytes sent.
    pub bytes_written: u64,
    /// Why the connection ended.
    pub end: ConnectionEnd,
}

/// Why a connection ended (without an I/O error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEnd {
    /// The client closed the connection between requests (or in the
    /// middle of a head).
    PeerClosed,
    /// The exchange said so: `Connection: close` from either side, an
    /// HTTP/1.0 client without keep-alive, or a response delimited by
    /// closing.
    Close,
    /// [`ServerConfig::max_requests_per_connection`] were served.
    MaxRequests,
    /// No request came within [`ServerConfig::idle_timeout`].
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The server answered with this error status itself and closed: a
    /// malformed head (400, 414, 431, 501, 505), a request it will not
    /// serve (400 without Host, 417, 413, 501 for CONNECT), a head that
    /// took too long (408), or a body that failed (400, 408, 413).
    Rejected(u16),
    /// The handler left more of the body unread than the server drains,
    /// or never read a body the client was waiting to send (`Expect:
    /// 100-continue`).
    UnreadBody,
    /// The handler panicked; it was answered 500.
    HandlerPanic,
}

/// What the connection does after an exchange.
enum Outcome {
    KeepAlive,
    Close { end: ConnectionEnd, linger: bool },
}

fn close(end: ConnectionEnd, linger: bool) -> Outcome {
    Outcome::Close { end, linger }
}

/// What a connection shares with the server that runs it.
pub(super) struct Context<'a> {
    pub(super) config: &'a ServerConfig,
    pub(super) shutdown: &'a AtomicBool,
    pub(super) counters: Option<&'a Counters>,
}

/// Serves HTTP/1.1 on one connection until it ends, and says why.
///
/// Per request (RFC 9110, RFC 9112):
/// - a malformed head is answered with [`HttpError::status`]
///   (400, 414, 431, 501, 505) and the connection closed, as is an
///   HTTP/1.1 request without exactly one Host field (400, §3.2), a
///   request-target of a form the method does not take (400), CONNECT
///   (501), an expectation other than `100-continue` (417), and a
///   Content-Length over [`ServerConfig::max_body_size`] (413, before
///   any of the body is read);
/// - `Expect: 100-continue` is answered `100 Continue` when the handler
///   first reads the body (RFC 9110 §10.1.1); a handler that answers
///   without reading gets its response sent and the connection closed;
/// - a handler's panic is caught and answered 500, and the connection
///   closed;
/// - the response carries `Date` (RFC 9110 §6.6.1) and `Server` unless
///   the handler set them; the server frames it itself (RFC 9112 §6):
///   `Content-Length` for a body of known length, chunked for one of
///   unknown length to an HTTP/1.1 client, and for an HTTP/1.0 client
///   no framing and a close. `Content-Length`, `Transfer-Encoding`,
///   `Connection` and `Keep-Alive` fields from the handler are dropped
///   (a `Connection: close` from it closes the connection; a HEAD or 304
///   response with an empty body states the length in the handler's
///   Content-Length, if that is one decimal number), and so are fields
///   that are not valid syntax;
/// - responses to HEAD carry the fields a GET would get, Content-Length
///   included, and no body; 1xx, 204 and 304 responses never have a body
///   (RFC 9110 §6.4.1);
/// - a body the handler did not finish is read and discarded, up to
///   [`ServerConfig::max_drain`] within [`ServerConfig::linger`], before
///   the next request; otherwise the connection closes.
///
/// The connection persists (RFC 9112 §9.3) for HTTP/1.1 unless either
/// side says `Connection: close`, and for HTTP/1.0 only if the client
/// sent `Connection: keep-alive` and the response length is known (the
/// response then says `Connection: keep-alive`). Pipelined requests are
/// answered in order. A connection that closes after a request closes
/// lingeringly (RFC 9112 §9.6): the write side is shut down and what the
/// client still sends is read and discarded, up to `max_drain` within
/// `linger`, so that its unread bytes do not make the close a reset that
/// destroys the response.
///
/// A request body and a response must each move at
/// [`ServerConfig::min_rate`] on average (after a grace of one read or
/// write timeout): a slower body is answered 408, a slower response cut
/// off.
///
/// Returns an error only if the stream fails (a reset, a write that
/// times out, a response taken too slowly); timeouts of the client's
/// reads end the connection with a [`ConnectionEnd`] reason.
///
/// [`HttpError::status`]: crate::application::http::HttpError::status
pub fn serve_connection<S: ByteStream, H: Handler + ?Sized>(
    stream: S,
    peer: SocketAddr,
    handler: &H,
    config: &ServerConfig,
) -> io::Result<ConnectionStats> {
    let never = AtomicBool::new(false);
    let ctx = Context {
        config,
        shutdown: &never,
        counters: None,
    };
    serve(stream, peer, handler, &ctx)
}

pub(super) fn serve<S: ByteStream, H: Handler + ?Sized>(
    stream: S,
    peer: SocketAddr,
    handler: &H,
    ctx: &Context<'_>,
) -> io::Result<ConnectionStats> {
    let config = ctx.config;
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Responses leave in whole writes (see `WRITE_BUFFER`); Nagle would
    // only hold back their last segment.
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("{peer}: cannot turn Nagle off: {e}");
    }
    let control = WireControl::new();
    let wire = Wire::new(stream, &control, config);
    let mut conn = Connection::new(wire, config.limits);
    let mut requests = 0;
    let (end, linger) = loop {
        match exchange(&mut conn, &control, peer, handler, ctx, &mut requests)? {
            Outcome::KeepAlive => continue,
            Outcome::Close { end, linger } => break (end, linger),
        }
    };
    let mut wire = conn.into_stream();
    if linger {
        linger_close(&mut wire, &control, config);
    }
    log::debug!("{peer}: connection closed after {requests} requests: {end:?}");
    Ok(ConnectionStats {
        requests,
        bytes_read: wire.bytes_read,
        bytes_written: wire.bytes_written,
        end,
    })
}

/// How a [`Turn`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TurnEnd {
    /// The connection persists and waits for the rest of a request: it
    /// goes back to the event loop until a whole head has arrived.
    Park,
    /// The connection ends. With `linger`, the write side is shut down
    /// already and what the client still sends is to be discarded (RFC
    /// 9112 §9.6) before it closes.
    Close { end: ConnectionEnd, linger: bool },
}

/// What a worker hands back after serving a connection for a while.
#[derive(Debug)]
pub(super) struct Turn<S> {
    pub(super) stream: S,
    /// Bytes received and not used yet: the start of the next request.
    pub(super) received: Vec<u8>,
    /// Responses written on the connection so far.
    pub(super) requests: u64,
    pub(super) end: TurnEnd,
}

/// Whether `received` holds enough to act on without waiting: a whole
/// request head, or a head that is malformed or too large already.
pub(super) fn head_ready(received: &[u8], limits: &Limits) -> bool {
    !received.is_empty() && !matches!(parse_request(received, limits), Ok(Status::Partial))
}

/// Serves the requests whose heads have arrived (`received` holds at
/// least one whole head, as [`head_ready`] says), on a worker of the
/// event-driven [`Server`](super::Server): each exchange as [`serve`]
/// runs it, until the connection closes or waits for a head that has
/// not arrived in full. Waiting for heads is the event loop's work, so
/// that an idle or slow client holds no thread.
pub(super) fn serve_turn<S: ByteStream, H: Handler + ?Sized>(
    stream: S,
    received: Vec<u8>,
    peer: SocketAddr,
    handler: &H,
    ctx: &Context<'_>,
    mut requests: u64,
) -> io::Result<Turn<S>> {
    let config = ctx.config;
    let control = WireControl::new();
    let wire = Wire::new(stream, &control, config);
    let mut conn = Connection::with_received(wire, config.limits, received);
    let end = loop {
        match exchange(&mut conn, &control, peer, handler, ctx, &mut requests)? {
            Outcome::KeepAlive if head_ready(conn.buffered(), &config.limits) => continue,
            Outcome::KeepAlive => break TurnEnd::Park,
            Outcome::Close { end, linger } => break TurnEnd::Close { end, linger },
        }
    };
    let (mut wire, received) = conn.into_parts();
    let end = match end {
        TurnEnd::Close { end, linger: true } => TurnEnd::Close {
            end,
            linger: begin_linger(&mut wire),
        },
        other => other,
    };
    Ok(Turn {
        stream: wire.into_inner(),
        received,
        requests,
        end,
    })
}

/// One request and its response.
fn exchange<S: ByteStream, H: Handler + ?Sized>(
    conn: &mut Connection<Wire<'_, S>>,
    control: &WireControl,
    peer: SocketAddr,
    handler: &H,
    ctx: &Context<'_>,
    requests: &mut u64,
) -> io::Result<Outcome> {
    let config = ctx.config;
    let shutting_down = || ctx.shutdown.load(Ordering::Acquire);
    if shutting_down() && !conn.has_buffered() {
        return Ok(close(ConnectionEnd::Shutdown, false));
    }
    control.begin_exchange();
    let now = Instant::now();
    control.set_phase(if conn.has_buffered() {
        Phase::Head {
            deadline: now + config.head_timeout,
        }
    } else {
        Phase::Idle {
            deadline: now + config.idle_timeout,
        }
    });
    let head = match conn.read_request_head() {
        Ok(Some(head)) => head,
        Ok(None) | Err(ReadError::UnexpectedEof) => {
            return Ok(close(ConnectionEnd::PeerClosed, false));
        }
        Err(ReadError::Http(e)) => {
            log::debug!("{peer}: malformed request: {e}");
            return reject(conn, ctx, requests, e.status(), Version::Http11);
        }
        Err(e) if e.is_timeout() => {
            return Ok(match control.expired() {
                Some(Expired::Idle) => close(ConnectionEnd::IdleTimeout, false),
                _ => {
                    // The head took too long; the client may be gone,
                    // so the answer is a courtesy.
                    log::debug!("{peer}: request head timed out");
                    let _ = reject(conn, ctx, requests, 408, Version::Http11);
                    close(ConnectionEnd::Rejected(408), true)
                }
            });
        }
        Err(ReadError::Io(e)) => return Err(e),
    };
    control.set_phase(Phase::Body);
    let version = head.version;
    let checked = match check_request(&head, config) {
        Ok(checked) => checked,
        Err(status) => {
            log::debug!(
                "{peer}: {} {} refused with {status}",
                head.method,
                head.target
            );
            return reject(conn, ctx, requests, status, version);
        }
    };
    let keep_alive_requested = match version {
        Version::Http11 => !has_token(&head.headers, "connection", "close"),
        Version::Http10 => {
            has_token(&head.headers, "connection", "keep-alive")
                && !has_token(&head.headers, "connection", "close")
        }
    };
    let is_head = head.method == "HEAD";
    let label = log::log_enabled!(log::Level::Debug)
        .then(|| format!("{} {}", head.method, head.target))
        .unwrap_or_default();

    // The handler.
    let continue_pending = checked.expect_continue && !conn.has_buffered();
    control.set_continue_pending(continue_pending);
    let mut reader = conn.body(checked.kind);
    let length = match checked.kind {
        BodyKind::ContentLength(n) => Some(n),
        BodyKind::Chunked | BodyKind::CloseDelimited => None,
        BodyKind::None => Some(0),
    };
    let body = RequestBody::new(&mut reader, length, config.max_body_size);
    let mut request = Request::with_body(head, peer, body);
    let result = panic::catch_unwind(AssertUnwindSafe(|| handler.handle(&mut request)));
    let body = request.into_body();
    let (failure, touched) = (body.failure(), body.touched());
    let (mut response, mut end) = match (result, failure) {
        (Err(_), _) => {
            log::error!("{peer}: handler panicked on {label}");
            (Response::error(500), Some(ConnectionEnd::HandlerPanic))
        }
        (Ok(_), Some(failure)) => {
            let status = failure.status();
            log::debug!("{peer}: request body failed ({failure:?}): {status}");
            (
                Response::error(status),
                Some(ConnectionEnd::Rejected(status)),
            )
        }
        (Ok(response), None) => (response, None),
    };

    // What the handler left of the body.
    if end.is_none() && !reader.is_done() {
        if continue_pending && !touched {
            // The client waits for a 100 Continue that will not come.
            end = Some(ConnectionEnd::UnreadBody);
        } else {
            control.set_phase(Phase::Discard {
                deadline: Instant::now() + config.linger,
            });
            if !matches!(reader.drain(config.max_drain), Ok(true)) {
                end = Some(ConnectionEnd::UnreadBody);
            }
        }
    }
    drop(reader);
    control.set_continue_pending(false);
    control.set_phase(Phase::Body);

    // Whether the connection goes on.
    response = checked_response(response, peer);
    let plan = Plan::new(is_head, version, &response);
    if end.is_none() {
        let handler_closes = has_token(&response.headers, "connection", "close");
        end = if !keep_alive_requested || handler_closes || !plan.delimited {
            Some(ConnectionEnd::Close)
        } else if *requests + 1 >= config.max_requests_per_connection {
            Some(ConnectionEnd::MaxRequests)
        } else if shutting_down() {
            Some(ConnectionEnd::Shutdown)
        } else {
            None
        };
    }
    let persistent = end.is_none();
    let status = response.status;
    write_response(conn.stream_mut(), response, &plan, persistent, version)?;
    count_request(ctx, requests);
    log::debug!("{peer}: {label} -> {status}");
    Ok(match end {
        None => Outcome::KeepAlive,
        Some(end) => close(end, true),
    })
}

fn count_request(ctx: &Context<'_>, requests: &mut u64) {
    *requests += 1;
    if let Some(c) = ctx.counters {
        c.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Answers a request the server refuses with `status`, closing.
fn reject<S: ByteStream>(
    conn: &mut Connection<Wire<'_, S>>,
    ctx: &Context<'_>,
    requests: &mut u64,
    status: u16,
    version: Version,
) -> io::Result<Outcome> {
    let response = Response::error(status);
    let plan = Plan::new(false, version, &response);
    write_response(conn.stream_mut(), response, &plan, false, version)?;
    count_request(ctx, requests);
    Ok(close(ConnectionEnd::Rejected(status), true))
}

/// What the checks before the handler found.
struct Checked {
    kind: BodyKind,
    expect_continue: bool,
}

/// Checks a request before its handler runs; `Err` is the status to
/// refuse it with.
fn check_request(head: &RequestHead, config: &ServerConfig) -> Result<Checked, u16> {
    let kind = request_body_kind(head).map_err(|e| e.status())?;
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in 1.0.
    let hosts = head.headers.get_all("host").count();
    let host_ok = match head.version {
        Version::Http11 => hosts == 1,
        Version::Http10 => hosts <= 1,
    };
    if !host_ok || !head.headers.get_all("host").all(is_valid_host) {
        return Err(400);
    }
    // RFC 9112 §3.2.3, §3.2.4: authority-form is for CONNECT only (not
    // implemented: no tunnels), asterisk-form for OPTIONS only.
    if head.method == "CONNECT" {
        return Err(501);
    }
    let target = head.target.as_str();
    let form_ok = target.starts_with('/')
        || (target == "*" && head.method == "OPTIONS")
        || is_http_absolute_form(target);
    if !form_ok {
        return Err(400);
    }
    // RFC 9110 §10.1.1: 100-continue is the only expectation; an
    // HTTP/1.0 request's is ignored.
    let mut expect_continue = false;
    if head.version == Version::Http11 {
        for value in head.headers.get_all("expect") {
            for member in list_members(value) {
                if member.eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    return Err(417);
                }
            }
        }
    }
    if let BodyKind::ContentLength(n) = kind {
        if n > config.max_body_size {
            return Err(413);
        }
    }
    Ok(Checked {
        kind,
        expect_continue: expect_continue && kind != BodyKind::None,
    })
}

/// `http://` or `https://` (any case) followed by something.
fn is_http_absolute_form(target: &str) -> bool {
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    (lower(7).as_deref() == Some("http://") && target.len() > 7)
        || (lower(8).as_deref() == Some("https://") && target.len() > 8)
}

/// A Host value: uri-host [":" port] (RFC 9110 §7.2), checked for its
/// character set only (reg-name, IPv4 or a bracketed IPv6 literal). HTTP/1.0
/// clients may send it empty.
fn is_valid_host(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b))
}

/// The members of a comma-separated list field value (RFC 9110 §5.6.1),
/// trimmed, empty ones skipped.
fn list_members(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|m| m.trim_ascii())
        .filter(|m| !m.is_empty())
}

/// Whether a list field `name` has the member `token` (case-insensitive).
fn has_token(headers: &Headers, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .flat_map(list_members)
        .any(|m| m.eq_ignore_ascii_case(token.as_bytes()))
}

/// How a response's content is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No content and no framing field: 1xx, 204, 304 (RFC 9110 §6.4.1).
    NoContent,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`, for an HTTP/1.1 client.
    Chunked,
    /// No framing field: the content runs to the close (an HTTP/1.0
    /// client and a length not known in advance).
    UntilClose,
}

/// How to send one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    framing: Framing,
    /// Whether the content is sent (not for HEAD).
    send_body: bool,
    /// The length the handler stated for content it does not send (HEAD,
    /// 304), written instead of the framing's.
    stated_length: Option<u64>,
    /// Whether the client can tell where the response ends without a
    /// close.
    delimited: bool,
}

impl Plan {
    fn new(is_head: bool, version: Version, response: &Response) -> Plan {
        let status = response.status;
        let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::NoContent
        } else {
            match (response.body.len(), version) {
                (Some(n), _) => Framing::Length(n),
                (None, Version::Http11) => Framing::Chunked,
                (None, Version::Http10) => Framing::UntilClose,
            }
        };
        // A HEAD (or 304) response may state the length the content would
        // have (RFC 9110 §8.6) without the handler producing it; a value
        // that is not one decimal number is dropped.
        let stated_length = if (is_head || status == 304) && matches!(response.body, Body::Empty) {
            content_length(&response.headers).ok().flatten()
        } else {
            None
        };
        Plan {
            framing,
            send_body: !is_head && framing != Framing::NoContent,
            stated_length,
            delimited: is_head || framing != Framing::UntilClose,
        }
    }
}

/// The response with a status the server can send, and without fields
/// that would break the message: those are logged and dropped.
fn checked_response(mut response: Response, peer: SocketAddr) -> Response {
    if !(200..=599).contains(&response.status) {
        log::warn!(
            "{peer}: handler returned status {}; answering 500",
            response.status
        );
        return Response::error(500);
    }
    if let Some(reason) = &response.reason {
        if !reason.bytes().all(is_field_byte) {
            log::warn!("{peer}: invalid reason phrase {reason:?} replaced");
            response.reason = None;
        }
    }
    let mut valid = Headers::new();
    for (name, value) in response.headers.iter() {
        let name_ok = !name.is_empty() && name.bytes().all(is_tchar);
        if name_ok && value.iter().all(|&b| is_field_byte(b)) {
            valid.push(name, value);
        } else {
            // A CR or LF here would let a value start a new field or a
            // new response (response splitting).
            log::warn!("{peer}: invalid response field {name:?} dropped");
        }
    }
    response.headers = valid;
    response
}

/// Writes `response` as `plan` says, through one buffer.
fn write_response<W: Write>(
    out: W,
    response: Response,
    plan: &Plan,
    persistent: bool,
    version: Version,
) -> io::Result<()> {
    let Response {
        status,
        reason,
        headers: handler_headers,
        body,
    } = response;
    let mut headers = Headers::new();
    for (name, value) in handler_headers.iter() {
        let framing_field = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f));
        if !framing_field {
            headers.push(name, value);
        }
    }
    if !headers.contains("date") {
        headers.push("Date", format_http_date(SystemTime::now()));
    }
    if !headers.contains("server") {
        headers.push("Server", SERVER_NAME);
    }
    match (plan.stated_length, plan.framing) {
        (Some(n), _) | (None, Framing::Length(n)) => headers.push("Content-Length", n.to_string()),
        (None, Framing::Chunked) => headers.push("Transfer-Encoding", "chunked"),
        _ => {}
    }
    if !persistent {
        headers.push("Connection", "close");
    } else if version == Version::Http10 {
        headers.push("Connection", "keep-alive");
    }
    let reason = reason.unwrap_or_else(|| reason_phrase(status).to_string());
    let head = ResponseHead {
        version: Version::Http11,
        status,
        reason: reason.into_bytes(),
        headers,
    };
    let mut bytes = Vec::new();
    head.write_to(&mut bytes);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, out);
    out.write_all(&bytes)?;
    if plan.send_body {
        // A panicking body reader is the handler's bug: it costs this
        // connection (the response is cut short), not the server.
        panic::catch_unwind(AssertUnwindSafe(|| {
            write_body(&mut out, body, plan.framing)
        }))
        .unwrap_or_else(|_| Err(io::Error::other("response body reader panicked")))?;
    }
    out.flush()
}

fn write_body<W: Write>(out: &mut W, body: Body, framing: Framing) -> io::Result<()> {
    match (body, framing) {
        (Body::Empty, _) => Ok(()),
        (Body::Bytes(b), Framing::Chunked) => {
            let mut w = ChunkedWriter::new(out);
            w.write_all(&b)?;
            w.finish(&Headers::new()).map(drop)
        }
        (Body::Bytes(b), _) => out.write_all(&b),
        (Body::Stream { mut reader, .. }, Framing::Length(n)) => {
            let copied = io::copy(&mut (&mut reader).take(n), out)?;
            if copied < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("response body ended after {copied} of {n} bytes"),
                ));
            }
            Ok(())
        }
        (Body::Stream { mut reader, .. }, Framing::Chunked) => {
            let mut w = ChunkedWriter::new(out);
            io::copy(&mut reader, &mut w)?;
            w.finish(&Headers::new()).map(drop)
        }
        (Body::Stream { mut reader, .. }, _) => io::copy(&mut reader, out).map(drop),
    }
}

/// What the event loop sends, before a lingering close, to a client
/// whose head it refuses: the error `status` (408 when the head took
/// longer than [`ServerConfig::head_timeout`]) with `Connection: close`.
pub(super) fn closing_error_response(status: u16) -> Vec<u8> {
    let response = Response::error(status);
    let plan = Plan::new(false, Version::Http11, &response);
    let mut out = Vec::new();
    // Writing into a vector cannot fail.
    let _ = write_response(&mut out, response, &plan, false, Version::Http11);
    out
}

/// Starts a lingering close: sends what is buffered and shuts the write
/// side down. False if the connection failed meanwhile.
fn begin_linger<S: ByteStream>(wire: &mut Wire<'_, S>) -> bool {
    wire.flush().is_ok() && wire.stream().shutdown_write().is_ok()
}

/// Closes lingeringly (RFC 9112 §9.6): shut the write side so the client
/// sees the end of the response, then read and discard what it still
/// sends until it closes, `max_drain` bytes or `linger` pass. Closing
/// with its bytes unread would send a reset, which may destroy the
/// response before the client has read it.
fn linger_close<S: ByteStream>(
    wire: &mut Wire<'_, S>,
    control: &WireControl,
    config: &ServerConfig,
) {
    if !begin_linger(wire) {
        return;
    }
    control.set_phase(Phase::Discard {
        deadline: Instant::now() + config.linger,
    });
    let mut scratch = [0u8; 4096];
    let mut discarded = 0u64;
    while discarded <= config.max_drain {
        match wire.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => discarded += n as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::http::conn::tests::Pieces;
    use crate::application::http::server::test_stream::TestStream;
    use crate::application::http::{Limits, ReadError, response_body_kind};
    use std::time::Duration;

    const PEER: &str = "192.0.2.9:4000";

    /// A stream reading `input` `piece` bytes at a time.
    fn fake(
        input: &[u8],
        piece: usize,
    ) -> TestStream<impl FnMut(&mut [u8], Option<Duration>) -> io::Result<usize>> {
        let mut pieces = Pieces::new(input, piece);
        TestStream::new(move |out: &mut [u8], _| pieces.read(out))
    }

    /// Serves `input` (read `piece` bytes at a time) with `handler`;
    /// returns what was written and the stats.
    fn serve_bytes(
        input: &[u8],
        piece: usize,
        config: &ServerConfig,
        handler: &dyn Handler,
    ) -> (Vec<u8>, ConnectionStats) {
        let mut fake = fake(input, piece);
        let stats = serve_connection(&mut fake, PEER.parse().unwrap(), handler, config).unwrap();
        (fake.written, stats)
    }

    /// An answered response.
    #[derive(Debug)]
    struct Answer {
        head: ResponseHead,
        body: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.head
                .headers
                .get(name)
                .map(|v| std::str::from_utf8(v).unwrap())
        }
    }

    /// Parses the responses in `written`, to requests with `methods`.
    fn answers(written: &[u8], methods: &[&str]) -> Vec<Answer> {
        let mut conn = Connection::new(Pieces::new(written, 1 << 20), Limits::default());
        let mut out = Vec::new();
        for method in methods {
            let head = match conn.read_response_head() {
                Ok(head) => head,
                Err(ReadError::UnexpectedEof) => break,
                Err(e) => panic!("bad response: {e}"),
            };
            let kind = response_body_kind(&head, method).unwrap();
            let body = conn.body(kind).read_to_vec(1 << 24).unwrap();
            out.push(Answer { head, body });
        }
        assert!(!conn.has_buffered(), "bytes after the responses");
        out
    }

    /// Echoes method, path, query and body; `/stream` streams with no
    /// known length, `/panic` panics, `/ignore` leaves the body unread.
    fn echo(req: &mut Request<'_>) -> Response {
        match req.path() {
            "/panic" => panic!("handler panic (expected by the test)"),
            "/ignore" => return Response::text(200, "ignored"),
            "/stream" => {
                let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
                return Response::stream(
                    200,
                    "application/octet-stream",
                    io::Cursor::new(data),
                    None,
                );
            }
            _ => {}
        }
        let body = match req.body().read_to_vec() {
            Ok(b) => b,
            Err(_) => return Response::error(400),
        };
        let text = format!(
            "{} {} {:?} {}",
            req.method(),
            req.path(),
            req.query(),
            String::from_utf8_lossy(&body)
        );
        Response::text(200, text)
    }

    fn config() -> ServerConfig {
        ServerConfig::default()
    }

    #[test]
    fn pipelined_requests_answered_in_order() {
        let input = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n\
POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
GET /d HTTP/1.1\r\nHost: h\r\n\r\n";
        for piece in [1, 7, 64, 100_000] {
            let (written, stats) = serve_bytes(input, piece, &config(), &echo);
            let a = answers(&written, &["GET", "POST", "POST", "GET"]);
            let bodies: Vec<_> = a.iter().map(|a| String::from_utf8_lossy(&a.body)).collect();
            assert_eq!(
                bodies,
                [
                    "GET /a Some(\"x=1\") ",
                    "POST /b None hello",
                    "POST /c None abc",
                    "GET /d None "
                ],
                "piece {piece}"
            );
            assert!(a.iter().all(|a| a.header("connection").is_none()));
            assert_eq!(stats.requests, 4);
            assert_eq!(stats.end, ConnectionEnd::PeerClosed);
            assert_eq!(stats.bytes_read, input.len() as u64);
            assert_eq!(stats.bytes_written, written.len() as u64);
        }
    }

    #[test]
    fn date_server_and_framing_fields() {
        let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let handler = |_: &mut Request<'_>| {
            Response::text(200, "hi")
                .with_header("Content-Length", "999")
                .with_header("Transfer-Encoding", "gzip")
                .with_header("X-Split", "a\r\nSet-Cookie: evil")
                .with_header("X-Nul", "a\0b")
                .with_header("X-Split\r\nSet-Cookie", "evil")
                .with_reason("OK\r\nSet-Cookie: evil")
                .with_header("Bad Name", "x")
                .with_header("X-Good", "yes")
        };
        let (written, _) = serve_bytes(input, 1000, &config(), &handler);
        let a = &answers(&written, &["GET"])[0];
        assert_eq!(a.head.version, Version::Http11);
        assert_eq!(a.head.reason, b"OK");
        assert_eq!(a.header("content-length"), Some("2"));
        assert_eq!(a.head.headers.get_all("content-length").count(), 1);
        assert!(a.header("transfer-encoding").is_none());
        assert!(a.header("x-split").is_none() && a.header("set-cookie").is_none());
        assert!(a.header("x-nul").is_none());
        assert_eq!(a.head.headers.len(), 5, "{:?}", a.head.headers);
        assert!(a.header("bad name").is_none());
        assert_eq!(a.header("x-good"), Some("yes"));
        assert_eq!(a.header("server"), Some("netstrata"));
        let date = a.header("date").unwrap();
        assert_eq!(date.len(), 29, "{date}");
        assert!(
            date.ends_with(" GMT") && date.as_bytes()[3] == b',',
            "{date}"
        );
    }

    #[test]
    fn keep_alive_rules_for_1_0_and_1_1() {
        let get = |version: &str, conn: &str, path: &str| {
            let mut input = format!("GET {path} {version}\r\nHost: h\r\n{conn}\r\n").into_bytes();
            input.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n");
            let (written, stats) = serve_bytes(&input, 1000, &config(), &echo);
            let a = answers(&written, &["GET", "GET"]);
            let connection = a[0].header("connection").map(str::to_string);
            (a.len(), connection, stats.end)
        };
        use ConnectionEnd::*;
        // HTTP/1.1 persists by default.
        assert_eq!(get("HTTP/1.1", "", "/"), (2, None, PeerClosed));
        assert_eq!(
            get("HTTP/1.1", "Connection: close\r\n", "/"),
            (1, Some("close".into()), Close)
        );
        // HTTP/1.0 persists only when asked, and with a known length.
        assert_eq!(get("HTTP/1.0", "", "/"), (1, Some("close".into()), Close));
        assert_eq!(
            get("HTTP/1.0", "Connection: Keep-Alive\r\n", "/"),
            (2, Some("keep-alive".into()), PeerClosed)
        );
        assert_eq!(
            get("HTTP/1.0", "Connection: keep-alive\r\n", "/stream"),
            (1, Some("close".into()), Close)
        );
    }

    #[test]
    fn unknown_length_is_chunked_for_1_1_and_close_delimited_for_1_0() {
        let expected: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let input =
            b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\nGET /stream HTTP/1.1\r\nHost: h\r\n\r\n";
        let (written, _) = serve_bytes(input, 1000, &config(), &echo);
        let a = answers(&written, &["GET", "GET"]);
        assert_eq!(a.len(), 2);
        for a in &a {
            assert_eq!(a.header("transfer-encoding"), Some("chunked"));
            assert!(a.header("content-length").is_none());
            assert!(a.body == expected);
        }
        // The chunks are whole 16 KiB pieces, then the rest, then the end.
        let body_at = written.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(written[body_at..].starts_with(b"4000\r\n"));

        let input = b"GET /stream HTTP/1.0\r\n\r\n";
        let (written, stats) = serve_bytes(input, 1000, &config(), &echo);
        let a = answers(&written, &["GET"]);
        assert!(a[0].header("transfer-encoding").is_none());
        assert_eq!(a[0].header("connection"), Some("close"));
        assert!(a[0].body == expected);
        assert_eq!(stats.end, ConnectionEnd::Close);
    }

    #[test]
    fn head_gets_the_fields_of_get_without_a_body() {
        let input = b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: h\r\n\r\n\
GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let (written, stats) = serve_bytes(input, 1000, &config(), &echo);
        let a = answers(&written, &["HEAD", "HEAD", "GET"]);
        assert_eq!(a.len(), 3);
        // The length of "HEAD /x None ", the body a GET-like answer has.
        assert_eq!(a[0].header("content-length"), Some("13"));
        assert!(a[0].body.is_empty());
        assert_eq!(a[1].header("transfer-encoding"), Some("chunked"));
        assert!(a[1].body.is_empty());
        assert_eq!(a[2].body, b"GET /x None ");
        assert_eq!(stats.end, ConnectionEnd::PeerClosed);

        // A HEAD handler may state the length without producing a body.
        let handler =
            |_: &mut Request<'_>| Response::new(200).with_header("Content-Length", "1234");
        let (written, _) = serve_bytes(
            b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            1000,
            &config(),
            &handler,
        );
        assert_eq!(
            answers(&written, &["HEAD"])[0].header("content-length"),
            Some("1234")
        );
        // ...but only a length: a field that is not one decimal number is
        // not passed on (RFC 9110 §8.6).
        for (stated, sent) in [
            (&["abc"][..], "0"),
            (&["12, 12"], "12"),
            (&["1", "2"], "0"),
            (&["-1"], "0"),
        ] {
            let handler = move |_: &mut Request<'_>| {
                let mut r = Response::new(200);
                for v in stated {
                    r = r.with_header("Content-Length", *v);
                }
                r
            };
            let (written, _) = serve_bytes(
                b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
                1000,
                &config(),
                &handler,
            );
            let a = &answers(&written, &["HEAD"])[0];
            let lengths: Vec<_> = a.head.headers.get_all("content-length").collect();
            assert_eq!(lengths, [sent.as_bytes()], "{stated:?}");
        }
        let handler = |_: &mut Request<'_>| Response::new(304).with_header("Content-Length", "x");
        let (written, _) = serve_bytes(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            1000,
            &config(),
            &handler,
        );
        assert_eq!(
            answers(&written, &["GET"])[0].header("content-length"),
            None
        );
    }

    #[test]
    fn no_body_for_204_and_304_and_no_1xx_final_status() {
        let handler = |req: &mut Request<'_>| {
            let status = req.path()[1..].parse().unwrap();
            Response::text(status, "must not be sent")
        };
        let input = b"GET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\n\
GET /101 HTTP/1.1\r\nHost: h\r\n\r\nGET /600 HTTP/1.1\r\nHost: h\r\n\r\n";
        let (written, _) = serve_bytes(input, 1000, &config(), &handler);
        let a = answers(&written, &["GET"; 4]);
        let statuses: Vec<u16> = a.iter().map(|a| a.head.status).collect();
        assert_eq!(statuses, [204, 304, 500, 500]);
        assert!(a[0].header("content-length").is_none() && a[0].body.is_empty());
        assert!(a[1].header("content-length").is_none() && a[1].body.is_empty());
    }

    #[test]
    fn expect_100_continue() {
        let head =
            b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        let mut input = head.to_vec();
        input.extend_from_slice(b"dataGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        // Read the head alone first, so the body has not arrived yet.
        let (written, stats) = serve_bytes(&input, head.len(), &config(), &echo);
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert!(written.starts_with(interim));
        let a = answers(&written[interim.len()..], &["POST", "GET"]);
        assert_eq!(a[0].body, b"POST /e None data");
        assert_eq!(a[1].body, b"GET /next None ");
        assert_eq!(stats.requests, 2);

        // A body that arrived with the head needs no 100 Continue.
        let (written, _) = serve_bytes(&input, 100_000, &config(), &echo);
        assert!(written.starts_with(b"HTTP/1.1 200 OK"));

        // A handler that answers without reading: no 100, and the
        // connection closes (the client may never send the body).
        let ignoring = b"POST /ignore HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        let (written, stats) = serve_bytes(ignoring, 1000, &config(), &echo);
        let a = answers(&written, &["POST"]);
        assert_eq!(a[0].body, b"ignored");
        assert_eq!(a[0].header("connection"), Some("close"));
        assert_eq!(stats.end, ConnectionEnd::UnreadBody);

        // Too large: 413 at once, no 100.
        let config = ServerConfig {
            max_body_size: 3,
            ..config()
        };
        let (written, stats) = serve_bytes(head, head.len(), &config, &echo);
        let a = answers(&written, &["POST"]);
        assert_eq!(a[0].head.status, 413);
        assert_eq!(a[0].header("connection"), Some("close"));
        assert_eq!(stats.end, ConnectionEnd::Rejected(413));

        // Expect in HTTP/1.0 is ignored; another expectation is 417.
        let input = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx";
        let (written, _) = serve_bytes(input, 1000, &ServerConfig::default(), &echo);
        assert!(written.starts_with(b"HTTP/1.1 200 OK"));
        let input = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx";
        let (written, _) = serve_bytes(input, 1000, &ServerConfig::default(), &echo);
        assert_eq!(answers(&written, &["POST"])[0].head.status, 417);
    }

    #[test]
    fn malformed_and_refused_requests_get_their_status_and_close() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(9000));
        let many_fields = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(101));
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
            (b"GET\t/ HTTP/1.1\r\n\r\n", 400),
            (long_target.as_bytes(), 414),
            (many_fields.as_bytes(), 431),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                501,
            ),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501),
            (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ];
        for &(input, status) in cases {
            let mut input = input.to_vec();
            input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
            let (written, stats) = serve_bytes(&input, 1000, &config(), &echo);
            let a = answers(&written, &["GET", "GET"]);
            let text = String::from_utf8_lossy(&input[..40.min(input.len())]).into_owned();
            assert_eq!(a.len(), 1, "{text}");
            assert_eq!(a[0].head.status, status, "{text}");
            assert_eq!(a[0].header("connection"), Some("close"), "{text}");
            assert_eq!(stats.end, ConnectionEnd::Rejected(status), "{text}");
        }
        // Accepted forms: OPTIONS *, absolute-form, HTTP/1.0 without Host.
        let input =
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\nGET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n\
GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        let (written, _) = serve_bytes(input, 1000, &config(), &echo);
        let a = answers(&written, &["OPTIONS", "GET", "GET"]);
        assert_eq!(a[0].body, b"OPTIONS * None ");
        assert_eq!(a[1].body, b"GET /p Some(\"q\") ");
        assert_eq!(a[2].head.status, 200);
    }

    /// Framing a front end might read differently (RFC 9112 §6.1, §6.3,
    /// §11.2): each is refused and the connection closed, so that the
    /// request after it is never read as one.
    #[test]
    fn smuggling_attempts_are_refused_and_close() {
        let post = |fields: &str| {
            format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\n0\r\n\r\n").into_bytes()
        };
        let cases: &[(Vec<u8>, u16)] = &[
            (post("Transfer-Encoding: chunked, identity\r\n"), 400),
            (post("Transfer-Encoding: identity\r\n"), 400),
            (
                post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
                400,
            ),
            (
                post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
                400,
            ),
            (
                post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
                400,
            ),
            (post("Transfer-Encoding : chunked\r\n"), 400),
            (post("Transfer-Encoding:\r\n chunked\r\n"), 400),
            (post("Transfer-Encoding: \x0bchunked\r\n"), 400),
            (post("Transfer-Encoding: chunked\x00\r\n"), 400),
            (post("Transfer-Encoding: chunked\rX: y\r\n"), 400),
            (post("Content-Length: +3\r\n"), 400),
            (post("Content-Length: 3\r\nContent-Length: 4\r\n"), 400),
            (post("Content-Length: 3 4\r\n"), 400),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
                400,
            ),
            (post("Transfer-Encoding: chunked\r\n\r\n+0"), 400),
            (post("Transfer-Encoding: chunked\r\n\r\n0x0"), 400),
            (post("Transfer-Encoding: chunked\r\n\r\n 0"), 400),
        ];
        for (input, status) in cases {
            let mut input = input.clone();
            input.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
            let (written, stats) = serve_bytes(&input, 1000, &config(), &echo);
            let text = String::from_utf8_lossy(&input).into_owned();
            let a = answers(&written, &["POST", "GET"]);
            assert_eq!(a.len(), 1, "{text:?}");
            assert_eq!(a[0].head.status, *status, "{text:?}");
            assert_eq!(a[0].header("connection"), Some("close"), "{text:?}");
            assert!(matches!(stats.end, ConnectionEnd::Rejected(_)), "{text:?}");
        }
        // Trailer fields do not frame anything: a Content-Length among
        // them changes neither this body nor where the next request starts.
        let input = b"POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked \r\n\r\n\
3\r\nabc\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n\
GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        let (written, stats) = serve_bytes(input, 7, &config(), &echo);
        let a = answers(&written, &["POST", "GET"]);
        assert_eq!(a[0].body, b"POST /t None abc");
        assert_eq!(a[1].body, b"GET /next None ");
        assert_eq!(stats.end, ConnectionEnd::PeerClosed);
    }

    #[test]
    fn chunked_body_over_the_limit_is_413() {
        let config = ServerConfig {
            max_body_size: 10,
            ..config()
        };
        let input = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n";
        let (written, stats) = serve_bytes(input, 1000, &config, &echo);
        let a = answers(&written, &["POST"]);
        assert_eq!(a[0].head.status, 413);
        assert_eq!(stats.end, ConnectionEnd::Rejected(413));
        // Bad chunk framing fails the read: 400.
        let input = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let (written, stats) = serve_bytes(input, 1000, &ServerConfig::default(), &echo);
        assert_eq!(answers(&written, &["POST"])[0].head.status, 400);
        assert_eq!(stats.end, ConnectionEnd::Rejected(400));
    }

    #[test]
    fn unread_bodies_are_drained_within_a_bound() {
        let mut input =
            b"POST /ignore HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n".to_vec();
        input.extend_from_slice(&[b'z'; 1000]);
        input.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
        let (written, stats) = serve_bytes(&input, 300, &config(), &echo);
        let a = answers(&written, &["POST", "GET"]);
        assert_eq!(a[1].body, b"GET /after None ");
        assert_eq!(stats.requests, 2);

        let config = ServerConfig {
            max_drain: 100,
            ..config()
        };
        let (written, stats) = serve_bytes(&input, 300, &config, &echo);
        let a = answers(&written, &["POST", "GET"]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].header("connection"), Some("close"));
        assert_eq!(stats.end, ConnectionEnd::UnreadBody);
    }

    #[test]
    fn handler_panic_is_500_and_closes() {
        let input = b"GET /panic HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let (written, stats) = serve_bytes(input, 1000, &config(), &echo);
        let a = answers(&written, &["GET", "GET"]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].head.status, 500);
        assert_eq!(a[0].header("connection"), Some("close"));
        assert_eq!(stats.end, ConnectionEnd::HandlerPanic);
    }

    #[test]
    fn max_requests_per_connection() {
        let config = ServerConfig {
            max_requests_per_connection: 2,
            ..config()
        };
        let input = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n".repeat(3);
        let (written, stats) = serve_bytes(&input, 1000, &config, &echo);
        let a = answers(&written, &["GET"; 3]);
        assert_eq!(a.len(), 2);
        assert!(a[0].header("connection").is_none());
        assert_eq!(a[1].header("connection"), Some("close"));
        assert_eq!(stats.end, ConnectionEnd::MaxRequests);
    }

    #[test]
    fn handler_may_close_and_stream_with_known_length() {
        let handler = |req: &mut Request<'_>| {
            if req.path() == "/short" {
                // Claims 10 bytes, has 3: the connection must fail.
                return Response::stream(200, "text/plain", &b"abc"[..], Some(10));
            }
            Response::stream(200, "text/plain", &b"abcdef"[..], Some(4))
                .with_header("Connection", "close")
        };
        let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let (written, stats) = serve_bytes(input, 1000, &config(), &handler);
        let a = answers(&written, &["GET", "GET"]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].body, b"abcd");
        assert_eq!(a[0].header("connection"), Some("close"));
        assert_eq!(stats.end, ConnectionEnd::Close);

        let mut fake = fake(b"GET /short HTTP/1.1\r\nHost: h\r\n\r\n", 1000);
        let err =
            serve_connection(&mut fake, PEER.parse().unwrap(), &handler, &config()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    const MS: Duration = Duration::from_millis(1);

    /// A client that trickles a body a byte per 10 ms (100 B/s, each read
    /// well within the read timeout) is cut off with 408 by the minimum
    /// rate of 1000 B/s, not served for as long as it likes; one that
    /// sends at once is served however long the handler dawdles between
    /// reads.
    #[test]
    fn a_body_slower_than_min_rate_is_cut_off() {
        let config = ServerConfig {
            read_timeout: 30 * MS,
            min_rate: Some(1000),
            linger: 50 * MS,
            ..config()
        };
        let head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n";
        let (mut pos, mut body_left) = (0, 100);
        let mut trickle = TestStream::new(move |out: &mut [u8], _| {
            if pos < head.len() {
                out[..head.len()].copy_from_slice(head);
                pos = head.len();
                return Ok(head.len());
            }
            if body_left == 0 {
                return Ok(0);
            }
            std::thread::sleep(10 * MS);
            body_left -= 1;
            out[0] = b'x';
            Ok(1)
        });
        let start = Instant::now();
        let stats = serve_connection(&mut trickle, PEER.parse().unwrap(), &echo, &config).unwrap();
        assert_eq!(stats.end, ConnectionEnd::Rejected(408));
        assert_eq!(answers(&trickle.written, &["POST"])[0].head.status, 408);
        assert!(start.elapsed() < 500 * MS, "{:?}", start.elapsed());

        let dawdling = |req: &mut Request<'_>| {
            let mut body = Vec::new();
            let mut piece = [0u8; 10];
            loop {
                match req.body().read(&mut piece) {
                    Ok(0) => break,
                    Ok(n) => body.extend_from_slice(&piece[..n]),
                    Err(_) => return Response::error(400),
                }
                std::thread::sleep(10 * MS);
            }
            Response::text(200, format!("{} bytes", body.len()))
        };
        let mut input = head.to_vec();
        input.extend_from_slice(&[b'x'; 100]);
        let (written, stats) = serve_bytes(&input, 100_000, &config, &dawdling);
        assert_eq!(answers(&written, &["POST"])[0].body, b"100 bytes");
        assert_eq!(stats.end, ConnectionEnd::PeerClosed);
    }

    /// A client that takes the response a byte per 5 ms (each write well
    /// within the write timeout) is cut off by the minimum rate.
    #[test]
    fn a_response_taken_slower_than_min_rate_is_cut_off() {
        let config = ServerConfig {
            write_timeout: 20 * MS,
            min_rate: Some(1000),
            ..config()
        };
        let input = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let start = Instant::now();
        let mut slow = fake(input, 1000).with_slow_writes(1, 5 * MS);
        let err = serve_connection(&mut slow, PEER.parse().unwrap(), &echo, &config).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            slow.written.len() < 40,
            "{} bytes taken",
            slow.written.len()
        );
        assert!(start.elapsed() < 500 * MS, "{:?}", start.elapsed());
        // Every write waits the write timeout at most, less once the
        // client has used up its time.
        let timeouts = slow.write_timeouts.borrow().clone();
        assert_eq!(timeouts.first(), Some(&(20 * MS)));
        assert!(timeouts.iter().all(|&t| t <= 20 * MS), "{timeouts:?}");
        assert!(timeouts.last() < Some(&(20 * MS)), "{timeouts:?}");
        // Without the limit it is served, slowly.
        let config = ServerConfig {
            min_rate: None,
            ..config
        };
        let mut slow = fake(input, 1000).with_slow_writes(16, 5 * MS);
        serve_connection(&mut slow, PEER.parse().unwrap(), &echo, &config).unwrap();
        assert_eq!(answers(&slow.written, &["GET"])[0].body, b"GET /x None ");
    }

    #[test]
    fn framing_plan() {
        let plan = |is_head, version, status, body: Body| {
            let r = Response::new(status).with_body(body);
            let p = Plan::new(is_head, version, &r);
            (p.framing, p.send_body, p.delimited)
        };
        let unknown = || Body::stream(io::empty(), None);
        use Framing::*;
        use Version::*;
        assert_eq!(
            plan(false, Http11, 200, Body::Empty),
            (Length(0), true, true)
        );
        assert_eq!(plan(false, Http11, 200, unknown()), (Chunked, true, true));
        assert_eq!(
            plan(false, Http10, 200, unknown()),
            (UntilClose, true, false)
        );
        assert_eq!(
            plan(true, Http10, 200, unknown()),
            (UntilClose, false, true)
        );
        assert_eq!(
            plan(true, Http11, 200, "abc".into()),
            (Length(3), false, true)
        );
        assert_eq!(
            plan(false, Http11, 204, "abc".into()),
            (NoContent, false, true)
        );
        assert_eq!(
            plan(false, Http10, 304, unknown()),
            (NoContent, false, true)
        );
    }
}
