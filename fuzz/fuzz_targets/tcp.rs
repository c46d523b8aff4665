//! TCP segments with options: any bytes parse without panicking, the
//! option iterator ends, and a parsed header emits (in Linux's option
//! layout, checksum filled) to a segment that parses, checksum verified,
//! to the same header — less the SACK blocks that no longer fit beside
//! the other options.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netstrata::transport::tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = (packet.verify_checksum(SRC, DST), packet.urgent_pointer());
    // Every step of the iterator consumes a byte.
    let options = packet.options();
    assert!(TcpOptions::new(options).count() <= options.len());
    let Ok(repr) = TcpRepr::parse(&packet, SRC, DST, false) else {
        return;
    };
    assert_eq!(repr.payload_len, packet.payload().len());
    assert!(
        !repr.flags.contains(TcpFlags::ACK),
        "ACK lives in ack_number"
    );
    let _ = repr.to_string();

    // What emit keeps: the SACK blocks that fit.
    let mut expected = repr;
    let kept = repr.sack_block_count();
    for slot in expected.sack_ranges.iter_mut().skip(kept) {
        *slot = None;
    }
    let header_len = repr.header_len();
    assert!(header_len % 4 == 0 && (20..=60).contains(&header_len));
    let mut out = vec![0u8; repr.buffer_len()];
    out[header_len..].copy_from_slice(packet.payload());
    repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), SRC, DST, true);
    let emitted = TcpPacket::new_checked(&out[..]).expect("an emitted header is whole");
    assert_eq!(emitted.header_len(), header_len);
    let again = TcpRepr::parse(&emitted, SRC, DST, true).expect("an emitted segment verifies");
    assert_eq!(again, expected);
    assert_eq!(emitted.payload(), packet.payload());
});
