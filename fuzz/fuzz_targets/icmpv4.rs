//! ICMPv4 messages: any bytes parse without panicking; a parsed message
//! emits to bytes that parse, checksum verified, to the same message.
//! The quote of an error is also run through `quoted_addrs_and_ports`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::internet::icmpv4::{
    Icmpv4Message, Icmpv4Packet, Icmpv4Repr, quoted_addrs_and_ports,
};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.verify_checksum(),
        packet.rest_of_header(),
        packet.gateway(),
    );
    let Ok(repr) = Icmpv4Repr::parse(&packet, false) else {
        return;
    };
    assert_eq!(
        Icmpv4Message::from(u8::from(repr.msg_type())),
        repr.msg_type()
    );
    assert_eq!(
        repr.buffer_len(),
        data.len(),
        "the whole buffer is the message"
    );
    if let Some(quote) = repr.invoking()
        && let Some(q) = quoted_addrs_and_ports(quote)
    {
        assert!(q.transport.len() <= quote.len());
    }
    let _ = repr.echo_reply();

    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), true);
    let emitted = Icmpv4Packet::new_checked(&out[..]).expect("an emitted message is whole");
    let again = Icmpv4Repr::parse(&emitted, true).expect("an emitted message verifies");
    assert_eq!(again, repr);
});
