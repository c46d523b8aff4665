//! UDP datagrams: any bytes parse without panicking; a parsed header
//! emits, with the payload behind it and the checksum filled, to a
//! datagram that parses, checksum verified, to the same header.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netstrata::transport::udp::packet::HEADER_LEN;
use netstrata::transport::udp::{UdpPacket, UdpRepr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = packet.verify_checksum(SRC, DST);
    let Ok(repr) = UdpRepr::parse(&packet, SRC, DST, false) else {
        return;
    };
    let payload = packet.payload();
    assert_eq!(payload.len(), repr.payload_len);

    let mut out = vec![0u8; repr.buffer_len()];
    out[HEADER_LEN..].copy_from_slice(payload);
    repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), SRC, DST, true);
    let emitted = UdpPacket::new_checked(&out[..]).expect("an emitted datagram is whole");
    let again = UdpRepr::parse(&emitted, SRC, DST, true).expect("an emitted datagram verifies");
    assert_eq!(again, repr);
    assert_eq!(emitted.payload(), payload);
});
