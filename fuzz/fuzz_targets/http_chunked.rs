//! The chunked transfer coding's incremental decoder.
//!
//! Input: one byte that seeds the split points and picks the limits, then
//! the chunked body. The body is decoded in one call and again in pieces
//! cut at seeded points; both must agree on the data, the trailers, how
//! many bytes were used and whether it failed (incremental decoding cannot
//! depend on how the bytes arrived). A body decoded whole re-encodes to
//! bytes that decode to the same data and trailers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::application::http::{
    ChunkedDecoder, HttpError, Limits, encode_chunk, encode_last_chunk,
};
use netstrata_fuzz::{Input, SplitMix};

/// What a decoder made of a whole input.
#[derive(Debug, PartialEq)]
struct Outcome {
    data: Vec<u8>,
    /// Bytes used, when it did not fail (after a failure, how many bytes
    /// earlier calls used depends on the pieces).
    used: Option<usize>,
    done: bool,
    error: Option<HttpError>,
}

/// Feeds `body` in pieces whose lengths come from `split` (`None`: all
/// at once), as a caller reading a socket does: each call gets what
/// arrived and was not used yet.
fn decode(limits: &Limits, body: &[u8], mut split: Option<SplitMix>) -> (Outcome, ChunkedDecoder) {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut data = Vec::new();
    let mut used = 0;
    let mut arrived = 0;
    let mut error = None;
    while arrived < body.len() || used < arrived {
        let piece = match split.as_mut() {
            Some(s) => 1 + s.below(16.min(body.len() - arrived).max(1)),
            None => body.len(),
        };
        arrived = (arrived + piece).min(body.len());
        let offered = arrived - used;
        match decoder.decode(&body[used..arrived], &mut data) {
            Ok(n) => {
                assert!(n <= offered);
                used += n;
                if n < offered {
                    // Fewer bytes used than offered: only at the end.
                    assert!(decoder.is_done(), "stopped short before the end");
                }
                if decoder.is_done() {
                    break;
                }
            }
            Err(e) => {
                // A dead decoder stays dead.
                assert_eq!(decoder.decode(b"0\r\n\r\n", &mut Vec::new()), Err(e));
                error = Some(e);
                used = 0;
                break;
            }
        }
    }
    let done = decoder.is_done();
    let used = error.is_none().then_some(used);
    (
        Outcome {
            data,
            used,
            done,
            error,
        },
        decoder,
    )
}

fuzz_target!(|bytes: &[u8]| {
    let mut input = Input::new(bytes);
    let seed = input.u8();
    let body = input.rest();
    let limits = if seed & 0x80 == 0 {
        Limits::default()
    } else {
        // Small limits, so that the limit checks are at the edges often.
        Limits {
            max_request_line: 64,
            max_header_count: 1 + usize::from(seed & 3),
            max_header_bytes: 256,
            max_chunk_line: 4 + usize::from(seed & 0x1f),
            max_trailer_bytes: 8 + usize::from(seed & 0x3f),
        }
    };
    let (whole, decoder) = decode(&limits, body, None);
    let (pieces, _) = decode(&limits, body, Some(SplitMix::new(u64::from(seed))));
    assert_eq!(
        whole, pieces,
        "decoding in pieces differs from decoding whole"
    );

    if whole.done {
        let mut encoded = Vec::new();
        encode_chunk(&whole.data, &mut encoded);
        encode_last_chunk(decoder.trailers(), &mut encoded);
        // Writing normalises trailer fields (`a:b` becomes `a: b`), so the
        // re-encoded trailers may not fit the limits the original did.
        let roomy = Limits {
            max_header_count: usize::MAX,
            max_trailer_bytes: usize::MAX,
            ..Limits::default()
        };
        let mut again = ChunkedDecoder::new(&roomy);
        let mut data = Vec::new();
        let used = again
            .decode(&encoded, &mut data)
            .expect("an encoded body decodes");
        assert_eq!(used, encoded.len(), "re-encoded body not used whole");
        assert!(again.is_done());
        assert_eq!(data, whole.data);
        assert_eq!(again.trailers(), decoder.trailers());
    }
});
