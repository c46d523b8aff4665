//! What a device does for the stack (`netstrata::link::vnet`): any bytes
//! as a frame of either medium, with any segment size, are readied for a
//! virtio-net device, completed and cut into segments without panicking;
//! the segments tile the payload they were cut from, and each is at most
//! the segment size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::link::Medium;
use netstrata::link::vnet::{VnetHeader, complete_partial, prepare_transmit, segment};

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, m], frame)) = data.split_first_chunk::<3>() else {
        return;
    };
    let size = usize::from(u16::from_le_bytes([a, b]));
    let medium = if m & 1 == 0 {
        Medium::Ethernet
    } else {
        Medium::Ip
    };
    let _ = VnetHeader::parse(frame).map(|h| (h.l4_checksum(), h.to_bytes()));

    let (mut pieces, mut payload) = (0usize, 0usize);
    let n = segment(frame, medium, size, |headers, chunk| {
        assert!(headers.len() <= 14 + 60 + 60);
        assert!(!chunk.is_empty() && chunk.len() <= size);
        pieces += 1;
        payload += chunk.len();
    });
    assert_eq!(n, pieces);
    if n > 0 {
        assert!(n >= 2, "one segment's worth is not cut");
        assert!(payload > size && payload <= frame.len());
    }

    let mut copy = frame.to_vec();
    let header = prepare_transmit(&mut copy, medium, size);
    assert_eq!(copy.len(), frame.len());
    if header.gso_type != 0 {
        assert_eq!(usize::from(header.gso_size), size);
        assert!(usize::from(header.hdr_len) <= copy.len());
        // What the kernel would be given cuts as the stack meant.
        assert!(segment(&copy, medium, size, |_, _| {}) >= 2);
    }
    complete_partial(&mut copy, medium);
});
