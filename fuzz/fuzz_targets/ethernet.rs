//! Ethernet II headers: any bytes parse without panicking, and a parsed
//! header emits back to the same header (and the same 14 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::link::ethernet::{EtherType, EthernetRepr, Frame, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::new_checked(data) else {
        assert!(data.len() < HEADER_LEN, "a whole header was refused");
        return;
    };
    let repr = EthernetRepr::parse(&frame).expect("a checked frame parses");
    assert_eq!(frame.payload(), &data[HEADER_LEN..]);
    // Unknown EtherTypes survive a round trip.
    assert_eq!(EtherType::from(u16::from(repr.ethertype)), repr.ethertype);

    let mut out = [0u8; HEADER_LEN];
    let mut emitted = Frame::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted);
    assert_eq!(&out[..], &data[..HEADER_LEN], "emit changed the header");
    let again = EthernetRepr::parse(&Frame::new_checked(&out[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
    let _ = repr.src_addr.to_string();
    let _ = (repr.dst_addr.is_unicast(), repr.dst_addr.is_multicast());
});
