//! ARP packets: any bytes parse without panicking, and a parsed
//! Ethernet/IPv4 packet emits back to the same 28 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::link::arp::{ArpPacket, ArpRepr, Operation, PACKET_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    // The accessors cannot panic on a checked packet.
    let _ = (
        packet.hardware_type(),
        packet.protocol_type(),
        packet.operation(),
    );
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    assert_eq!(Operation::from(u16::from(repr.operation)), repr.operation);
    let mut out = [0u8; PACKET_LEN];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
    // Only Ethernet/IPv4 parses, and every field is kept, so the bytes
    // come back exactly.
    assert_eq!(&out[..], &data[..PACKET_LEN], "emit changed the packet");
    let again = ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
});
