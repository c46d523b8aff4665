//! HTTP/1.1 heads: any bytes parse as a request and as a response
//! without panicking; a complete head writes back to bytes that parse to
//! the same head; a prefix of a complete head is never an error nor
//! complete (incremental parsing cannot depend on how the bytes arrived);
//! and body framing is decided without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::application::http::{
    HttpError, Limits, Status, parse_request, parse_response, request_body_kind, response_body_kind,
};

/// Whether re-parsing a written head of `written` bytes may fail with
/// `e` although the original `used` bytes parsed: writing normalises
/// (`name:value` becomes `name: value`), which can push a head that was
/// at a limit over it.
fn grew_past_limit(e: &HttpError, written: usize, used: usize) -> bool {
    written > used
        && matches!(
            e,
            HttpError::HeadersTooLarge | HttpError::UriTooLong | HttpError::StatusLineTooLong
        )
}

/// Cut points to try below a complete head of `len` bytes: the byte before
/// its end, and one derived from the input.
fn cuts(len: usize, data: &[u8]) -> [usize; 2] {
    let mixed = data
        .iter()
        .fold(len, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
    [len - 1, mixed % len]
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(Status::Complete(head, used)) = parse_request(data, &limits) {
        assert!(used <= data.len());
        for cut in cuts(used, data) {
            match parse_request(&data[..cut], &limits) {
                Ok(Status::Partial) => {}
                other => panic!("prefix {cut} of a {used}-byte request head gave {other:?}"),
            }
        }
        let _ = request_body_kind(&head);
        let mut out = Vec::new();
        head.write_to(&mut out);
        match parse_request(&out, &limits) {
            Ok(Status::Complete(again, n)) => {
                assert_eq!(n, out.len());
                assert_eq!(again, head);
            }
            Err(e) if grew_past_limit(&e, out.len(), used) => {}
            other => panic!("a written request head parsed as {other:?}"),
        }
    }
    if let Ok(Status::Complete(head, used)) = parse_response(data, &limits) {
        assert!(used <= data.len());
        for cut in cuts(used, data) {
            match parse_response(&data[..cut], &limits) {
                Ok(Status::Partial) => {}
                other => panic!("prefix {cut} of a {used}-byte response head gave {other:?}"),
            }
        }
        for method in ["GET", "HEAD", "CONNECT"] {
            let _ = response_body_kind(&head, method);
        }
        let mut out = Vec::new();
        head.write_to(&mut out);
        match parse_response(&out, &limits) {
            Ok(Status::Complete(again, n)) => {
                assert_eq!(n, out.len());
                assert_eq!(again, head);
            }
            Err(e) if grew_past_limit(&e, out.len(), used) => {}
            other => panic!("a written response head parsed as {other:?}"),
        }
    }
});
