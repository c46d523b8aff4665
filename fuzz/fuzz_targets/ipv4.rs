//! IPv4 headers: any bytes parse without panicking; a parsed header
//! emits (options dropped, checksum filled) to a datagram that parses,
//! checksum verified, to the same representation and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::internet::ipv4::{HEADER_LEN, Ipv4Packet, Ipv4Repr, Protocol};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    // No accessor can panic on a checked packet.
    let _ = (packet.options(), packet.verify_checksum(), packet.ttl());
    let payload = packet.payload();
    assert!(payload.len() + packet.header_len() <= data.len());
    let verified = Ipv4Repr::parse(&packet, true);
    let Ok(repr) = Ipv4Repr::parse(&packet, false) else {
        assert!(verified.is_err(), "parsed with the checksum, not without");
        return;
    };
    assert_eq!(repr.payload_len, payload.len());
    assert_eq!(Protocol::from(u8::from(repr.protocol)), repr.protocol);

    let mut out = vec![0u8; repr.total_len()];
    out[HEADER_LEN..].copy_from_slice(payload);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
    let emitted = Ipv4Packet::new_checked(&out[..]).expect("an emitted header is whole");
    let again = Ipv4Repr::parse(&emitted, true).expect("an emitted header parses");
    assert_eq!(again, repr);
    assert_eq!(emitted.payload(), payload);
});
