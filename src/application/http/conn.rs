//! HTTP/1.1 over a byte stream: reading heads and bodies from a buffered
//! connection, writing chunked bodies (RFC 9112 §6, §7).
//!
//! [`Connection`] wraps any `Read + Write` stream (a netstrata
//! [`TcpStream`](crate::blocking::TcpStream), a `std::net::TcpStream`, an
//! in-memory pipe in tests) with one receive buffer. It reads message
//! heads with the push parsers of this module's parent, and hands out a
//! [`BodyReader`] that reads exactly the body the framing says, leaving
//! any bytes after it (a pipelined request, the next response) in the
//! buffer for the next head. Both the client and the server are built on
//! it.
//!
//! Body bytes are not copied through the buffer when they need not be: a
//! Content-Length or close-delimited body is read straight into the
//! caller's slice once the buffered bytes are used up.

use std::io::{self, Read, Write};

use super::parse::{Headers, RequestHead, ResponseHead};
use super::{
    BodyKind, ChunkedDecoder, HttpError, Limits, Status, encode_chunk, encode_last_chunk,
    parse_request, parse_response,
};

/// How much the receive buffer asks the stream for at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why a message could not be read from a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The stream failed (a timeout is an `io::Error` of kind `WouldBlock`
    /// or `TimedOut`).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a valid HTTP/1.1 message, or exceed the limits.
    #[error("malformed message: {0}")]
    Http(#[from] HttpError),
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message")]
    UnexpectedEof,
}

impl ReadError {
    /// Whether this is a read timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ReadError::Io(e) if crate::application::is_timeout(e))
    }
}

/// A buffered HTTP connection over a byte stream.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    /// Received bytes; `buf[pos..]` are not consumed yet.
    buf: Vec<u8>,
    pos: usize,
    limits: Limits,
}

impl<S: Read + Write> Connection<S> {
    /// A connection over `stream`, parsing with `limits`.
    pub fn new(stream: S, limits: Limits) -> Connection<S> {
        Connection {
            stream,
            buf: Vec::new(),
            pos: 0,
            limits,
        }
    }

    /// A connection over `stream` whose first bytes, `received`, were
    /// read from it already (by an event loop that waited for a whole
    /// head).
    pub(crate) fn with_received(stream: S, limits: Limits, received: Vec<u8>) -> Connection<S> {
        Connection {
            stream,
            buf: received,
            pos: 0,
            limits,
        }
    }

    /// The stream and the bytes received but not consumed (in a buffer
    /// that holds no more than they need).
    pub(crate) fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.buffered().to_vec();
        (self.stream, rest)
    }

    /// The bytes received and not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The stream, to set timeouts or write on.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably: responses and requests are written here.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, giving up the connection (and any bytes buffered but
    /// not yet consumed).
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// The parser limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether bytes have been received and not consumed: the start of a
    /// pipelined request, or stray bytes after a response.
    pub fn has_buffered(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Reads a request head (RFC 9112 §3). `Ok(None)` means the peer
    /// closed the connection cleanly before sending any byte of one.
    pub fn read_request_head(&mut self) -> Result<Option<RequestHead>, ReadError> {
        let limits = self.limits;
        self.read_head(|buf| parse_request(buf, &limits))
    }

    /// Reads a response head (RFC 9112 §4). A closed connection before
    /// any byte of it is [`ReadError::UnexpectedEof`] too: a client that
    /// sent a request expects an answer.
    pub fn read_response_head(&mut self) -> Result<ResponseHead, ReadError> {
        let limits = self.limits;
        self.read_head(|buf| parse_response(buf, &limits))?
            .ok_or(ReadError::UnexpectedEof)
    }

    fn read_head<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<Status<T>, HttpError>,
    ) -> Result<Option<T>, ReadError> {
        // Re-parse only when a line has been completed since the last
        // try: a head sent a byte at a time then costs a parse per line
        // (bounded by the header count limit), not one per byte.
        let mut try_parse = self.has_buffered();
        loop {
            if try_parse {
                if let Status::Complete(head, used) = parse(&self.buf[self.pos..])? {
                    self.pos += used;
                    return Ok(Some(head));
                }
            }
            let before = self.buf.len() - self.pos;
            let n = self.fill()?;
            let start = self.pos + before;
            try_parse = self.buf[start..start + n].contains(&b'\n')
                || self.buf.len() - self.pos > self.limits.max_header_bytes;
            if n == 0 {
                return if self.has_buffered() {
                    Err(ReadError::UnexpectedEof)
                } else {
                    Ok(None)
                };
            }
        }
    }

    /// Reads more bytes from the stream into the buffer; 0 at end of
    /// stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let result = loop {
            match self.stream.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(len + *result.as_ref().unwrap_or(&0));
        result
    }

    /// A reader for a body framed as `kind`, starting right after the
    /// head just read. Read it to the end (or call
    /// [`BodyReader::drain`]) before reading the next head.
    pub fn body(&mut self, kind: BodyKind) -> BodyReader<'_, S> {
        let cursor = BodyCursor::new(kind, &self.limits);
        BodyReader { conn: self, cursor }
    }

    /// Copies from the buffer, or failing that from the stream, into
    /// `out`.
    fn read_buffered(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.has_buffered() {
            let n = out.len().min(self.buf.len() - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        loop {
            match self.stream.read(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done,
}

/// How far the reading of one body has got, kept apart from the
/// connection it is read from: [`BodyReader`] pairs it with a borrowed
/// connection, the client's response with one it owns.
#[derive(Debug)]
pub(super) struct BodyCursor {
    state: BodyState,
    /// Decoded chunk data not yet handed out.
    decoded: Vec<u8>,
    decoded_pos: usize,
    trailers: Option<Headers>,
}

impl BodyCursor {
    /// The start of a body framed as `kind`.
    pub(super) fn new(kind: BodyKind, limits: &Limits) -> BodyCursor {
        let state = match kind {
            BodyKind::None | BodyKind::ContentLength(0) => BodyState::Done,
            BodyKind::ContentLength(n) => BodyState::Length(n),
            BodyKind::Chunked => BodyState::Chunked(Box::new(ChunkedDecoder::new(limits))),
            BodyKind::CloseDelimited => BodyState::UntilClose,
        };
        BodyCursor {
            state,
            decoded: Vec::new(),
            decoded_pos: 0,
            trailers: None,
        }
    }

    /// Whether the whole body has been read.
    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, BodyState::Done) && self.decoded_pos == self.decoded.len()
    }

    /// The trailer fields of a chunked body, once it has been read to the
    /// end.
    pub(super) fn trailers(&self) -> Option<&Headers> {
        self.trailers.as_ref()
    }

    /// Reads body bytes from `conn` into `out`; 0 at the end of the body.
    pub(super) fn read<S: Read + Write>(
        &mut self,
        conn: &mut Connection<S>,
        out: &mut [u8],
    ) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.state {
            BodyState::Done => Ok(0),
            BodyState::Length(left) => {
                let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = conn.read_buffered(&mut out[..want])?;
                if n == 0 {
                    return Err(truncated());
                }
                let left = left - n as u64;
                self.state = if left == 0 {
                    BodyState::Done
                } else {
                    BodyState::Length(left)
                };
                Ok(n)
            }
            BodyState::UntilClose => {
                let n = conn.read_buffered(out)?;
                if n == 0 {
                    self.state = BodyState::Done;
                }
                Ok(n)
            }
            BodyState::Chunked(_) => self.read_chunked(conn, out),
        }
    }

    fn read_chunked<S: Read + Write>(
        &mut self,
        conn: &mut Connection<S>,
        out: &mut [u8],
    ) -> io::Result<usize> {
        loop {
            if self.decoded_pos < self.decoded.len() {
                let n = out.len().min(self.decoded.len() - self.decoded_pos);
                out[..n].copy_from_slice(&self.decoded[self.decoded_pos..self.decoded_pos + n]);
                self.decoded_pos += n;
                return Ok(n);
            }
            let BodyState::Chunked(decoder) = &mut self.state else {
                return Ok(0);
            };
            if decoder.is_done() {
                self.trailers = Some(decoder.trailers().clone());
                self.state = BodyState::Done;
                return Ok(0);
            }
            self.decoded.clear();
            self.decoded_pos = 0;
            if !conn.has_buffered() && conn.fill()? == 0 {
                return Err(truncated());
            }
            let used = decoder
                .decode(&conn.buf[conn.pos..], &mut self.decoded)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            conn.pos += used;
        }
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before the end of the body",
    )
}

/// Reads and discards the rest of `body`, but no more than `limit` bytes
/// of it; returns whether it ended within the limit.
pub(super) fn drain_body(body: &mut impl Read, limit: u64) -> io::Result<bool> {
    let mut scratch = [0u8; 8192];
    let mut total = 0u64;
    while total <= limit {
        let n = body.read(&mut scratch)?;
        if n == 0 {
            return Ok(true);
        }
        total += n as u64;
    }
    Ok(false)
}

/// Reads all of `body` into a vector, or `None` if it is longer than
/// `limit` (having read `limit + 1` bytes of it).
pub(super) fn read_body_bounded(body: &mut impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    body.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= limit).then_some(out))
}

/// Reads one message body from a [`Connection`], undoing the chunked
/// coding; `read` returns 0 at the end of the body.
///
/// A malformed chunked body, or a connection closed before the framing
/// says the body ends, is an `io::Error` of kind `InvalidData` (wrapping
/// the [`HttpError`]) or `UnexpectedEof`.
#[derive(Debug)]
pub struct BodyReader<'a, S> {
    conn: &'a mut Connection<S>,
    cursor: BodyCursor,
}

impl<S: Read + Write> BodyReader<'_, S> {
    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.cursor.is_done()
    }

    /// The trailer fields of a chunked body, once it has been read to the
    /// end.
    pub fn trailers(&self) -> Option<&Headers> {
        self.cursor.trailers()
    }

    /// Reads and discards the rest of the body, but no more than `limit`
    /// bytes of it; returns whether the body ended within the limit (if
    /// not, the connection is no longer usable for another message).
    pub fn drain(&mut self, limit: u64) -> io::Result<bool> {
        drain_body(self, limit)
    }

    /// Reads the whole body into a vector, failing with `InvalidData` if
    /// it is longer than `limit`.
    pub fn read_to_vec(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        read_body_bounded(self, limit)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body longer than {limit} bytes"),
            )
        })
    }
}

impl<S: Read + Write> Read for BodyReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.cursor.read(self.conn, out)
    }
}

/// Writes a body in the chunked transfer coding (RFC 9112 §7.1),
/// coalescing small writes into chunks of up to 16 KiB.
///
/// Call [`finish`](Self::finish) to write the last chunk; dropping the
/// writer without it leaves the body unterminated (which a peer sees as a
/// truncated message, the right outcome for an aborted response).
#[derive(Debug)]
pub struct ChunkedWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
    out: Vec<u8>,
}

/// The chunk size [`ChunkedWriter`] coalesces writes up to.
const CHUNK_SIZE: usize = 16 * 1024;

impl<W: Write> ChunkedWriter<W> {
    /// A writer that encodes into `inner`.
    pub fn new(inner: W) -> ChunkedWriter<W> {
        ChunkedWriter {
            inner,
            pending: Vec::new(),
            out: Vec::new(),
        }
    }

    fn emit_pending(&mut self) -> io::Result<()> {
        self.out.clear();
        encode_chunk(&self.pending, &mut self.out);
        self.pending.clear();
        self.inner.write_all(&self.out)
    }

    /// Writes any buffered data as a chunk, then the last chunk with
    /// `trailers`, and returns the inner writer.
    pub fn finish(mut self, trailers: &Headers) -> io::Result<W> {
        self.emit_pending()?;
        self.out.clear();
        encode_last_chunk(trailers, &mut self.out);
        self.inner.write_all(&self.out)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_SIZE - self.pending.len());
        self.pending.extend_from_slice(&data[..n]);
        if self.pending.len() == CHUNK_SIZE {
            self.emit_pending()?;
        }
        Ok(n)
    }

    /// Sends buffered data as a chunk now.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.emit_pending()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::application::http::{request_body_kind, response_body_kind};

    /// A stream that returns its input in pieces of fixed sizes and
    /// records what is written to it.
    #[derive(Debug, Default)]
    pub(crate) struct Pieces {
        pub input: Vec<u8>,
        pub pos: usize,
        pub piece: usize,
        pub written: Vec<u8>,
    }

    impl Pieces {
        pub(crate) fn new(input: &[u8], piece: usize) -> Pieces {
            Pieces {
                input: input.to_vec(),
                pos: 0,
                piece: piece.max(1),
                written: Vec::new(),
            }
        }
    }

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.piece).min(self.input.len() - self.pos);
            out[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Pieces {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const PIPELINED: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n\
GET /c HTTP/1.1\r\nHost: x\r\n\r\n";

    fn read_all_requests(piece: usize) -> Vec<(String, Vec<u8>)> {
        let mut conn = Connection::new(Pieces::new(PIPELINED, piece), Limits::default());
        let mut out = Vec::new();
        while let Some(head) = conn.read_request_head().unwrap() {
            let kind = request_body_kind(&head).unwrap();
            let mut body = conn.body(kind);
            let data = body.read_to_vec(1 << 20).unwrap();
            assert!(body.is_done());
            if head.target == "/b" {
                assert_eq!(body.trailers().unwrap().get("x-t"), Some(&b"1"[..]));
            }
            out.push((head.target, data));
        }
        out
    }

    #[test]
    fn pipelined_requests_in_any_pieces() {
        let expected = vec![
            ("/a".to_string(), b"hello".to_vec()),
            ("/b".to_string(), b"abcde".to_vec()),
            ("/c".to_string(), Vec::new()),
        ];
        for piece in [1, 2, 3, 7, 16, 64, 4096] {
            assert_eq!(read_all_requests(piece), expected, "piece {piece}");
        }
    }

    #[test]
    fn eof_mid_head_and_mid_body() {
        let mut conn = Connection::new(Pieces::new(b"GET / HTTP/1.1\r\nHo", 4), Limits::default());
        assert!(matches!(
            conn.read_request_head(),
            Err(ReadError::UnexpectedEof)
        ));
        let mut conn = Connection::new(
            Pieces::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 4),
            Limits::default(),
        );
        let head = conn.read_response_head().unwrap();
        let kind = response_body_kind(&head, "GET").unwrap();
        let err = conn.body(kind).read_to_vec(100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn close_delimited_body_and_limits() {
        let msg = b"HTTP/1.0 200 OK\r\n\r\nall of the rest";
        let mut conn = Connection::new(Pieces::new(msg, 5), Limits::default());
        let head = conn.read_response_head().unwrap();
        let kind = response_body_kind(&head, "GET").unwrap();
        assert_eq!(kind, BodyKind::CloseDelimited);
        assert_eq!(
            conn.body(kind).read_to_vec(100).unwrap(),
            b"all of the rest"
        );
        let mut conn = Connection::new(Pieces::new(msg, 5), Limits::default());
        conn.read_response_head().unwrap();
        let err = conn.body(kind).read_to_vec(4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn bad_chunk_is_invalid_data() {
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let mut conn = Connection::new(Pieces::new(msg, 100), Limits::default());
        let head = conn.read_response_head().unwrap();
        let err = conn.body(BodyKind::Chunked).read_to_vec(100).unwrap_err();
        assert_eq!(head.status, 200);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<HttpError>());
        assert_eq!(inner, Some(&HttpError::InvalidChunkSize));
    }

    #[test]
    fn oversized_head_is_an_error_not_a_buffer() {
        let mut msg = b"GET / HTTP/1.1\r\n".to_vec();
        while msg.len() < 200_000 {
            msg.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut conn = Connection::new(Pieces::new(&msg, 1000), Limits::default());
        assert!(matches!(conn.read_request_head(), Err(ReadError::Http(_))));
        assert!(conn.buf.len() < 100_000);
    }

    #[test]
    fn chunked_writer_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut w = ChunkedWriter::new(Vec::new());
        for piece in data.chunks(999) {
            w.write_all(piece).unwrap();
        }
        let mut trailers = Headers::new();
        trailers.push("X-Sum", "42");
        let encoded = w.finish(&trailers).unwrap();
        let mut msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        msg.extend_from_slice(&encoded);
        let mut conn = Connection::new(Pieces::new(&msg, 1500), Limits::default());
        conn.read_response_head().unwrap();
        let mut body = conn.body(BodyKind::Chunked);
        assert_eq!(body.read_to_vec(1 << 20).unwrap(), data);
        assert_eq!(body.trailers().unwrap().get("x-sum"), Some(&b"42"[..]));
        // 100 000 bytes: six full 16 KiB chunks, then 1696 (0x6A0) bytes.
        assert!(encoded.starts_with(b"4000\r\n"));
        let header_at = 6 * (6 + 0x4000 + 2);
        assert!(encoded[header_at..].starts_with(b"6A0\r\n"));
    }
}
