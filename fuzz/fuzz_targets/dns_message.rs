//! DNS messages: any bytes parse without panicking or running long; a
//! parsed message emits (names compressed) to bytes that parse to the
//! same message and emit to the same bytes again; and a size-limited emit
//! keeps a prefix of each section, fits its limit when it can, and parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::application::dns::Message;

/// Whether `a` is a prefix of `b`.
fn is_prefix<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() <= b.len() && a == &b[..a.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let bytes = message.emit().expect("a parsed message emits");
    let again = Message::parse(&bytes).expect("an emitted message parses");
    assert_eq!(again, message);
    let bytes_again = again.emit().expect("a re-parsed message emits");
    assert_eq!(bytes_again, bytes, "emit is not a fixed point");

    // A limit derived from the input, from "header only" to "all of it".
    let limit = 12 + data.len().wrapping_mul(7919) % (bytes.len() + 1);
    let cut = message
        .emit_truncated(limit)
        .expect("a parsed message emits truncated");
    let cut = Message::parse(&cut).expect("a truncated message parses");
    assert!(is_prefix(&cut.questions, &message.questions));
    assert!(is_prefix(&cut.answers, &message.answers));
    assert!(is_prefix(&cut.authorities, &message.authorities));
    assert!(is_prefix(&cut.additionals, &message.additionals));
    let dropped = cut.questions.len() < message.questions.len()
        || cut.answers.len() < message.answers.len()
        || cut.authorities.len() < message.authorities.len();
    if dropped {
        assert!(cut.header.tc, "records dropped without TC");
    }
});
