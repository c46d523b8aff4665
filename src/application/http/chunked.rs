//! The chunked transfer coding (RFC 9112 §7.1): an incremental decoder and
//! an encoder.
//!
//! Chunk extensions are accepted and ignored (their syntax is checked only
//! for control characters and the leading `;`). Trailer fields are parsed
//! like header fields and kept; merging them into the header section is the
//! caller's business (RFC 9110 §6.5).

use super::parse::{Headers, parse_field_line};
use super::{HttpError, Limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line into `line`.
    SizeLine,
    /// This many data bytes of the current chunk remain.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// Reading a trailer line (or the final empty line) into `line`.
    TrailerLine,
    /// The last chunk and trailer section have been read.
    Done,
    /// An error was found; it is returned again on every call.
    Failed(HttpError),
}

/// Decodes a chunked body incrementally (RFC 9112 §7.1.3).
///
/// Feed it bytes as they arrive with [`decode`](Self::decode); it appends
/// the body data to an output buffer and stops consuming input at the end
/// of the chunked body, so that bytes of a following message stay with the
/// caller. Memory use is bounded by [`Limits::max_chunk_line`] and
/// [`Limits::max_trailer_bytes`] besides the output itself.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    line: Vec<u8>,
    limits: Limits,
    trailer_bytes: usize,
    trailers: Headers,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: State::SizeLine,
            line: Vec::new(),
            limits: *limits,
            trailer_bytes: 0,
            trailers: Headers::new(),
        }
    }

    /// Whether the whole body, trailers included, has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer fields; complete once [`is_done`](Self::is_done).
    pub fn trailers(&self) -> &Headers {
        &self.trailers
    }

    /// Decodes as much of `input` as belongs to the body, appending body
    /// data to `out`, and returns how many bytes of `input` it used (fewer
    /// than `input.len()` only once the body is done).
    ///
    /// After an error the decoder is dead and returns the same error.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        if let State::Failed(err) = self.state {
            return Err(err);
        }
        self.decode_inner(input, out).inspect_err(|&err| {
            self.state = State::Failed(err);
            self.line = Vec::new();
        })
    }

    fn decode_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done | State::Failed(_) => break,
                State::SizeLine | State::TrailerLine => {
                    let rest = &input[pos..];
                    // A field beyond the count limit shows in its first byte.
                    if self.state == State::TrailerLine
                        && self.line.is_empty()
                        && rest[0] != b'\r'
                        && self.trailers.len() >= self.limits.max_header_count
                    {
                        return Err(HttpError::TrailersTooLarge);
                    }
                    let (take, complete) = match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (rest.len(), false),
                    };
                    let (room, err) = if self.state == State::SizeLine {
                        (self.limits.max_chunk_line, HttpError::ChunkLineTooLong)
                    } else {
                        (
                            self.limits
                                .max_trailer_bytes
                                .saturating_sub(self.trailer_bytes),
                            HttpError::TrailersTooLarge,
                        )
                    };
                    // A line still open at the limit can only grow past it.
                    let len = self.line.len() + take;
                    if len > room || (!complete && len >= room) {
                        return Err(err);
                    }
                    self.line.extend_from_slice(&rest[..take]);
                    pos += take;
                    if complete {
                        let line = core::mem::take(&mut self.line);
                        self.finish_line(&line)?;
                    }
                }
                State::Data(remaining) => {
                    let available = input.len() - pos;
                    let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
                    out.extend_from_slice(&input[pos..pos + n]);
                    pos += n;
                    // n <= remaining, so this cannot underflow.
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        State::DataCr
                    } else {
                        State::Data(remaining)
                    };
                }
                State::DataCr | State::DataLf => {
                    let (expected, next) = if self.state == State::DataCr {
                        (b'\r', State::DataLf)
                    } else {
                        (b'\n', State::SizeLine)
                    };
                    if input[pos] != expected {
                        return Err(HttpError::ChunkDataNotTerminated);
                    }
                    pos += 1;
                    self.state = next;
                }
            }
        }
        Ok(pos)
    }

    /// Handles a complete line, LF included.
    fn finish_line(&mut self, line: &[u8]) -> Result<(), HttpError> {
        let content = match line {
            [content @ .., b'\r', b'\n'] => content,
            _ => return Err(HttpError::BadLineEnding),
        };
        if self.state == State::SizeLine {
            let size = parse_chunk_size(content)?;
            self.state = if size == 0 {
                State::TrailerLine
            } else {
                State::Data(size)
            };
            return Ok(());
        }
        self.trailer_bytes += line.len();
        if content.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        if self.trailers.len() >= self.limits.max_header_count {
            return Err(HttpError::TrailersTooLarge);
        }
        parse_field_line(content, &mut self.trailers)
    }
}

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1, §7.1.1), CRLF removed.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::InvalidChunkSize);
    }
    let mut size: u64 = 0;
    for &d in &line[..digits] {
        // A hex digit, checked above.
        let value = u64::from(char::from(d).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(value))
            .ok_or(HttpError::ChunkSizeOverflow)?;
    }
    let ext = &line[digits..];
    if ext.is_empty() {
        return Ok(size);
    }
    // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
    let after_bws = ext.iter().position(|&b| b != b' ' && b != b'\t');
    match after_bws.map(|i| ext[i]) {
        Some(b';') => {}
        _ => return Err(HttpError::InvalidChunkSize),
    }
    if !ext.iter().all(|&b| super::parse::is_field_byte(b)) {
        return Err(HttpError::InvalidChunkExtension);
    }
    Ok(size)
}

/// Appends `data` as one chunk: size in hex, CRLF, data, CRLF. Empty `data`
/// writes nothing, since a zero-size chunk would end the body (use
/// [`encode_last_chunk`] for that).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, the trailer fields and the final CRLF that end a
/// chunked body.
pub fn encode_last_chunk(trailers: &Headers, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    trailers.write_to(out);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::http::{BodyKind, Status, parse_response, response_body_kind};
    use proptest::prelude::*;

    /// A chunked response with a trailer (the example from MDN).
    const CHUNKED_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n\r\n7\r\nMozilla\r\n11\r\nDeveloper Network\r\n0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n";

    fn decode_all(
        body: &[u8],
        limits: &Limits,
    ) -> Result<(Vec<u8>, ChunkedDecoder, usize), HttpError> {
        let mut decoder = ChunkedDecoder::new(limits);
        let mut out = Vec::new();
        let n = decoder.decode(body, &mut out)?;
        Ok((out, decoder, n))
    }

    fn decode_err(body: &[u8]) -> HttpError {
        decode_all(body, &Limits::default()).expect_err("decoding should fail")
    }

    #[test]
    fn chunked_response_with_trailers() {
        let Ok(Status::Complete(head, n)) = parse_response(CHUNKED_RESPONSE, &Limits::default())
        else {
            panic!("head should parse");
        };
        assert_eq!(response_body_kind(&head, "GET"), Ok(BodyKind::Chunked));
        let body = &CHUNKED_RESPONSE[n..];
        let (out, decoder, used) = decode_all(body, &Limits::default()).unwrap();
        assert_eq!(out, b"MozillaDeveloper Network");
        assert!(decoder.is_done());
        assert_eq!(used, body.len());
        assert_eq!(
            decoder.trailers().get("expires"),
            Some(&b"Wed, 21 Oct 2015 07:28:00 GMT"[..])
        );
        // Split at every byte boundary: same output.
        for i in 0..=body.len() {
            let mut decoder = ChunkedDecoder::new(&Limits::default());
            let mut out = Vec::new();
            assert_eq!(decoder.decode(&body[..i], &mut out), Ok(i));
            assert_eq!(decoder.decode(&body[i..], &mut out), Ok(body.len() - i));
            assert_eq!(out, b"MozillaDeveloper Network");
            assert!(decoder.is_done());
            assert_eq!(decoder.trailers().len(), 1);
        }
    }

    #[test]
    fn stops_at_end_of_body_and_ignores_extensions() {
        let body =
            b"5;name=value\r\nhello\r\n6 ; a ; b=\"q\"\r\n world\r\n0;x\r\n\r\nHTTP/1.1 200 OK";
        let (out, decoder, used) = decode_all(body, &Limits::default()).unwrap();
        assert_eq!(out, b"hello world");
        assert!(decoder.is_done());
        assert_eq!(&body[used..], b"HTTP/1.1 200 OK");
        let (out, _, _) =
            decode_all(b"00000A\r\n0123456789\r\n0\r\n\r\n", &Limits::default()).unwrap();
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn malformed_chunks_rejected() {
        use HttpError::*;
        assert_eq!(decode_err(b"g\r\n"), InvalidChunkSize);
        assert_eq!(decode_err(b"\r\n"), InvalidChunkSize);
        assert_eq!(decode_err(b"-1\r\n"), InvalidChunkSize);
        assert_eq!(decode_err(b"0x5\r\n"), InvalidChunkSize);
        assert_eq!(decode_err(b"5 \r\n"), InvalidChunkSize);
        assert_eq!(decode_err(b" 5\r\n"), InvalidChunkSize);
        assert_eq!(decode_err(b"5;a\x00\r\n"), InvalidChunkExtension);
        assert_eq!(decode_err(b"5\n"), BadLineEnding);
        assert_eq!(decode_err(b"5\r\nhello\n"), ChunkDataNotTerminated);
        assert_eq!(decode_err(b"5\r\nhelloX"), ChunkDataNotTerminated);
        assert_eq!(decode_err(b"5\r\nhello\rX"), ChunkDataNotTerminated);
        assert_eq!(decode_err(b"3\r\nhello\r\n"), ChunkDataNotTerminated);
        assert_eq!(decode_err(b"10000000000000000\r\n"), ChunkSizeOverflow);
        assert_eq!(
            decode_err(b"0\r\nExpires : x\r\n\r\n"),
            WhitespaceBeforeColon
        );
        assert_eq!(decode_err(b"0\r\nA: b\r\n c\r\n\r\n"), ObsFold);
        assert_eq!(decode_err(b"0\r\nA: b\n"), BadLineEnding);
        assert_eq!(decode_err(b"0\r\n\n"), BadLineEnding);
    }

    #[test]
    fn huge_chunk_size_accepted_and_streams() {
        let mut decoder = ChunkedDecoder::new(&Limits::default());
        let mut out = Vec::new();
        assert_eq!(decoder.decode(b"FFFFFFFFFFFFFFFF\r\nabc", &mut out), Ok(21));
        assert_eq!(out, b"abc");
        assert!(!decoder.is_done());
    }

    #[test]
    fn errors_are_sticky() {
        let mut decoder = ChunkedDecoder::new(&Limits::default());
        let mut out = Vec::new();
        assert_eq!(
            decoder.decode(b"z\r\n", &mut out),
            Err(HttpError::InvalidChunkSize)
        );
        assert_eq!(
            decoder.decode(b"0\r\n\r\n", &mut out),
            Err(HttpError::InvalidChunkSize)
        );
        assert!(!decoder.is_done());
    }

    #[test]
    fn chunk_line_limit() {
        let limits = Limits {
            max_chunk_line: 8,
            ..Limits::default()
        };
        assert!(decode_all(b"5;abc\r\nhello\r\n0\r\n\r\n", &limits).is_ok());
        assert!(decode_all(b"5;abcd\r\nhello\r\n0\r\n\r\n", &limits).is_ok());
        assert_eq!(
            decode_all(b"5;abcde\r\n", &limits).err(),
            Some(HttpError::ChunkLineTooLong)
        );
        // Detected before the line ends, across calls: 8 bytes without an
        // LF cannot be a line of 8 bytes or fewer.
        let mut decoder = ChunkedDecoder::new(&limits);
        let mut out = Vec::new();
        assert_eq!(decoder.decode(b"0000", &mut out), Ok(4));
        assert_eq!(decoder.decode(b"000", &mut out), Ok(3));
        assert_eq!(
            decoder.decode(b"0", &mut out),
            Err(HttpError::ChunkLineTooLong)
        );
    }

    #[test]
    fn trailer_limits() {
        let limits = Limits {
            max_trailer_bytes: 16,
            max_header_count: 2,
            ..Limits::default()
        };
        // "A: 1\r\nB: 2\r\n\r\n" is 14 bytes.
        let (_, decoder, _) = decode_all(b"0\r\nA: 1\r\nB: 2\r\n\r\n", &limits).unwrap();
        assert_eq!(decoder.trailers().len(), 2);
        assert_eq!(
            decode_all(b"0\r\nA: 1\r\nB: 2\r\nC", &limits).err(),
            Some(HttpError::TrailersTooLarge)
        );
        assert_eq!(
            decode_all(b"0\r\nA: 1\r\nB: 2\r\nC:\r\n\r\n", &limits).err(),
            Some(HttpError::TrailersTooLarge)
        );
        // Bytes: detected while the line is still partial.
        assert_eq!(
            decode_all(b"0\r\nA: 1234567890123", &limits).err(),
            Some(HttpError::TrailersTooLarge)
        );
        assert_eq!(HttpError::TrailersTooLarge.status(), 431);
    }

    #[test]
    fn encoder_output() {
        let mut out = Vec::new();
        encode_chunk(b"", &mut out);
        assert!(out.is_empty());
        encode_chunk(&[b'x'; 26], &mut out);
        let mut trailers = Headers::new();
        trailers.push("Expires", "never");
        encode_last_chunk(&trailers, &mut out);
        let mut expected = b"1A\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 26]);
        expected.extend_from_slice(b"\r\n0\r\nExpires: never\r\n\r\n");
        assert_eq!(out, expected);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            sizes in proptest::collection::vec(1usize..300, 1..10),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
            trailer_values in proptest::collection::vec("[a-z0-9 ]{0,10}", 0..4),
        ) {
            let mut encoded = Vec::new();
            let mut rest = &data[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                encode_chunk(chunk, &mut encoded);
                rest = tail;
            }
            let mut trailers = Headers::new();
            for (i, v) in trailer_values.iter().enumerate() {
                trailers.push(format!("T{i}"), v.trim().as_bytes());
            }
            encode_last_chunk(&trailers, &mut encoded);
            let body_len = encoded.len();
            encoded.extend_from_slice(b"GET / HTTP/1.1\r\n");

            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (encoded.len() + 1)).collect();
            cuts.push(encoded.len());
            cuts.sort_unstable();
            let mut decoder = ChunkedDecoder::new(&Limits::default());
            let mut out = Vec::new();
            let mut used = 0;
            let mut from = 0;
            for cut in cuts {
                used += decoder.decode(&encoded[from..cut], &mut out).unwrap();
                from = cut;
            }
            prop_assert!(decoder.is_done());
            prop_assert_eq!(used, body_len);
            prop_assert_eq!(out, data);
            prop_assert_eq!(decoder.trailers(), &trailers);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cut in any::<usize>(),
        ) {
            let limits = Limits {
                max_chunk_line: 12,
                max_trailer_bytes: 40,
                max_header_count: 2,
                ..Limits::default()
            };
            let cut = cut % (data.len() + 1);
            let mut decoder = ChunkedDecoder::new(&limits);
            let mut out = Vec::new();
            if let Ok(n) = decoder.decode(&data[..cut], &mut out) {
                prop_assert!(n <= cut);
                let _ = decoder.decode(&data[cut..], &mut out);
            }
            prop_assert!(out.len() <= data.len());
        }

        #[test]
        fn near_miss_bodies_never_panic(
            parts in proptest::collection::vec("0|1|5|a|F|;|=|\r\n|\r|\n| |:|x|hello", 0..40),
        ) {
            let data = parts.concat().into_bytes();
            let mut decoder = ChunkedDecoder::new(&Limits::default());
            let mut out = Vec::new();
            let _ = decoder.decode(&data, &mut out);
        }
    }
}
