//! The virtio-net header (virtio 1.2 §5.1.6, `struct virtio_net_hdr`), as a
//! Linux TUN/TAP descriptor opened with `IFF_VNET_HDR` puts in front of
//! every frame, and the checksum work a device does for the stack when it
//! offers checksum offload.
//!
//! With `TUNSETOFFLOAD(TUN_F_CSUM)` the kernel and the stack each leave
//! the transport checksum to the other side's "hardware":
//! - a frame the stack sends goes with `NEEDS_CSUM`: its TCP or UDP
//!   checksum field holds the pseudo-header's sum, `csum_start` says where
//!   the transport header begins and `csum_offset` where its checksum
//!   field lies; the kernel either completes the sum or, delivering the
//!   packet locally, trusts it (`CHECKSUM_PARTIAL`) and never sums it;
//! - a frame the kernel sends may come the same way (its own TCP and UDP
//!   output), or with `DATA_VALID` (already verified), or with neither
//!   (checksums complete, unverified).
//!
//! The stack leaves every checksum to a device that offers transmit
//! offload ([`crate::link::ChecksumOffload`]); the IPv4 header and ICMP
//! checksums, which virtio does not offload, are filled here by
//! [`prepare_transmit`], in software but on headers only (ICMP messages
//! are rare and small). The kernel's word on a received frame travels
//! with it ([`L4Checksum`]); the stack verifies what nobody vouched for.
//!
//! The link layer knows nothing of IP, so the few IPv4 fields needed
//! (header length, total length, fragment, protocol) are read here from
//! their fixed offsets (RFC 791 §3.1), as a NIC's offload engine does.
//!
//! # Example
//!
//! Cut a TCP super-segment (here a bare IPv4 packet, as on a TUN device) into
//! segments of 1000 payload bytes: each has its own sequence number, length
//! and identification.
//!
//! ```
//! use netstrata::link::{vnet, Medium};
//! # fn super_segment(link_header: &[u8]) -> Vec<u8> {
//! #     let mut f = link_header.to_vec();
//! #     let ip = [0x45, 0, 0x0b, 0xe0, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
//! #     f.extend_from_slice(&ip); // IPv4: 3040 bytes, DF, TCP
//! #     let tcp = [0x30, 0x39, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0];
//! #     f.extend_from_slice(&tcp); // TCP: seq 1000, ACK | PSH
//! #     f.extend_from_slice(&[b'x'; 3000]);
//! #     f
//! # }
//!
//! let packet = super_segment(&[]);
//! let mut segments = Vec::new();
//! let n = vnet::segment(&packet, Medium::Ip, 1000, |headers, payload| {
//!     segments.push((headers.to_vec(), payload.len()));
//! });
//! assert_eq!(n, 3);
//! for (i, (headers, len)) in segments.iter().enumerate() {
//!     assert_eq!(*len, 1000);
//!     assert_eq!(headers[2..4], 1040u16.to_be_bytes()); // IPv4 total length
//!     assert_eq!(headers[4..6], (1 + i as u16).to_be_bytes()); // identification
//!     assert_eq!(headers[24..28], (1000 + 1000 * i as u32).to_be_bytes()); // seq
//! }
//! // The virtio-net header round-trips through its wire form.
//! let hdr = vnet::VnetHeader {
//!     flags: vnet::F_NEEDS_CSUM,
//!     csum_start: 34,
//!     csum_offset: 16,
//!     ..Default::default()
//! };
//! assert_eq!(vnet::VnetHeader::parse(&hdr.to_bytes()), Some(hdr));
//! ```

use core::net::Ipv4Addr;

use crate::buf::L4Checksum;
use crate::checksum::{Checksum, fill_transport, ones_complement_sum, transport_checksum};
use crate::link::device::Medium;

/// Length of the header without `num_buffers` (no `VIRTIO_NET_F_MRG_RXBUF`):
/// the size TUN/TAP uses unless told otherwise (`TUNSETVNETHDRSZ`).
pub const HEADER_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is partial.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`: an ordinary frame, not a super-frame.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP super-frame over IPv4, to be cut (or
/// coalesced from) segments of `gso_size` bytes.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_ECN`: the super-frame's segments carry ECN (CWR).
pub const GSO_ECN: u8 = 0x80;

const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTOCOL_UDP: u8 = 17;

/// The fields of a virtio-net header. Multi-byte fields are in the host's
/// byte order: a TUN/TAP descriptor uses the legacy (native-endian) layout
/// unless `TUNSETVNETLE`/`TUNSETVNETBE` says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_NONE`, or the kind of super-frame.
    pub gso_type: u8,
    /// Length of the headers before the payload (GSO only).
    pub hdr_len: u16,
    /// Payload bytes per segment (GSO only).
    pub gso_size: u16,
    /// Where the checksummed range begins, from the frame's start.
    pub csum_start: u16,
    /// Where the checksum field lies, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHeader {
    /// Reads a header from the first [`HEADER_LEN`] bytes of `buf`, or
    /// `None` if it is shorter.
    pub fn parse(buf: &[u8]) -> Option<VnetHeader> {
        let b = buf.first_chunk::<HEADER_LEN>()?;
        let word = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        })
    }

    /// The header's wire form.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        for (i, w) in [
            self.hdr_len,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
        ]
        .into_iter()
        .enumerate()
        {
            b[2 + 2 * i..4 + 2 * i].copy_from_slice(&w.to_ne_bytes());
        }
        b
    }

    /// What a received frame's header says of its transport checksum.
    pub fn l4_checksum(&self) -> L4Checksum {
        if self.flags & F_NEEDS_CSUM != 0 {
            L4Checksum::Partial
        } else if self.flags & F_DATA_VALID != 0 {
            L4Checksum::Verified
        } else {
            L4Checksum::Unverified
        }
    }
}

/// Where the pieces of an IPv4 datagram lie in an Ethernet frame.
struct Ipv4Layout {
    /// The IPv4 header: `ip_start..l4_start`.
    ip_start: usize,
    l4_start: usize,
    /// End of the datagram (the frame may carry padding after it).
    end: usize,
    protocol: u8,
    /// A fragment (more fragments, or an offset): the transport checksum
    /// covers the whole datagram and cannot be computed from this frame.
    fragment: bool,
}

/// Reads the layout of the IPv4 datagram in `frame`, a frame of `medium`
/// (an Ethernet frame, or a TUN's bare packet), if it carries a
/// well-formed one.
fn ipv4_layout(frame: &[u8], medium: Medium) -> Option<Ipv4Layout> {
    if medium == Medium::Ethernet {
        let ethertype = frame.get(12..14)?;
        if u16::from_be_bytes([ethertype[0], ethertype[1]]) != ETHERTYPE_IPV4 {
            return None;
        }
    }
    let ip_start = medium.header_len();
    let ip = frame.get(ip_start..)?;
    let first = *ip.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < ihl || total > ip.len() {
        return None;
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    Some(Ipv4Layout {
        ip_start,
        l4_start: ip_start + ihl,
        end: ip_start + total,
        protocol: ip[9],
        // More fragments (0x2000), or a fragment offset.
        fragment: frag & 0x3fff != 0,
    })
}

/// The source and destination addresses of the IPv4 datagram of `layout`
/// in `frame`.
fn addresses(frame: &[u8], layout: &Ipv4Layout) -> (Ipv4Addr, Ipv4Addr) {
    let ip = &frame[layout.ip_start..];
    (
        [ip[12], ip[13], ip[14], ip[15]].into(),
        [ip[16], ip[17], ip[18], ip[19]].into(),
    )
}

/// The IPv4 pseudo-header's sum for the datagram of `layout` in `frame`.
fn pseudo_header(frame: &[u8], layout: &Ipv4Layout) -> Checksum {
    let (src, dst) = addresses(frame, layout);
    let len = (layout.end - layout.l4_start) as u16;
    let mut sum = Checksum::new();
    sum.add_ipv4_pseudo_header(src, dst, layout.protocol, len);
    sum
}

/// Readies a frame of `medium` the stack sends through a device with
/// checksum offload, and returns its virtio-net header. The IPv4 header checksum is
/// filled, and an ICMP message's; a TCP segment or UDP datagram (not a
/// fragment) gets the pseudo-header's sum in its checksum field and goes
/// as `NEEDS_CSUM`. Any other frame goes as it is, with an empty header.
///
/// A TCP super-segment (`segment_size` > 0, more payload than one
/// segment) goes as `GSO_TCPV4` (with `GSO_ECN` if it carries CWR):
/// the kernel cuts it into segments of `segment_size` payload bytes, or
/// delivers it whole to its own TCP.
///
/// The stack may or may not have filled the checksums (it does under a
/// capture, [`crate::link::PcapWriter`]): they are computed again, and a
/// full transport checksum becomes a partial one, which the receiver
/// completes or trusts the same way.
pub fn prepare_transmit(frame: &mut [u8], medium: Medium, segment_size: usize) -> VnetHeader {
    let Some(layout) = ipv4_layout(frame, medium) else {
        return VnetHeader::default();
    };
    let ip = layout.ip_start;
    frame[ip + 10..ip + 12].fill(0);
    let header = !ones_complement_sum(&frame[ip..layout.l4_start]);
    frame[ip + 10..ip + 12].copy_from_slice(&header.to_be_bytes());
    if layout.fragment {
        return VnetHeader::default();
    }
    let l4 = layout.l4_start..layout.end;
    let Some(t) = transport_checksum(layout.protocol).filter(|t| l4.len() >= t.min_len) else {
        return VnetHeader::default();
    };
    if !t.pseudo_header {
        // ICMP: summed here.
        let (src, dst) = addresses(frame, &layout);
        fill_transport(layout.protocol, src, dst, &mut frame[l4]);
        return VnetHeader::default();
    }
    let partial = pseudo_header(frame, &layout).sum();
    let at = l4.start + t.offset;
    frame[at..at + 2].copy_from_slice(&partial.to_be_bytes());
    let mut header = VnetHeader {
        flags: F_NEEDS_CSUM,
        csum_start: l4.start as u16,
        csum_offset: t.offset as u16,
        ..VnetHeader::default()
    };
    if let Some(tcp) = tcp_layout(frame, &layout)
        && segment_size > 0
        && tcp.payload.len() > segment_size
    {
        header.gso_type = GSO_TCPV4;
        if frame[tcp.flags] & TCP_CWR != 0 {
            header.gso_type |= GSO_ECN;
        }
        header.hdr_len = tcp.payload.start as u16;
        header.gso_size = segment_size as u16;
    }
    header
}

/// The TCP flags byte's CWR bit (RFC 3168 §6.1).
const TCP_CWR: u8 = 0x80;
const TCP_PSH: u8 = 0x08;
const TCP_FIN: u8 = 0x01;
const PROTOCOL_TCP: u8 = 6;

/// Where the pieces of a TCP segment lie in a frame.
struct TcpLayout {
    /// The flags byte.
    flags: usize,
    /// The payload, after the header and its options, to the datagram's
    /// end.
    payload: core::ops::Range<usize>,
}

/// The layout of the TCP segment that the datagram of `layout` carries,
/// if it carries a whole one with a well-formed header length.
fn tcp_layout(frame: &[u8], layout: &Ipv4Layout) -> Option<TcpLayout> {
    if layout.protocol != PROTOCOL_TCP || layout.fragment {
        return None;
    }
    let l4 = layout.l4_start;
    let header = usize::from(frame.get(l4 + 12)? >> 4) * 4;
    if header < 20 || l4 + header > layout.end {
        return None;
    }
    Some(TcpLayout {
        flags: l4 + 13,
        payload: l4 + header..layout.end,
    })
}

/// Cuts a TCP super-segment (a frame of `medium`: an IPv4 datagram whose
/// TCP payload is longer than `segment_size`) into the segments a device
/// with segmentation offload would put on the wire, and hands each to
/// `emit` as its headers and its payload (a slice of `frame`): every
/// segment's IPv4 total length, identification (one more each) and header
/// checksum, sequence number and flags (CWR on the first only, FIN and PSH
/// on the last only) and TCP checksum are its own, as Linux's
/// `tcp_gso_segment` makes them. Returns how many segments it made: 0 if
/// `frame` is not such a super-segment (then nothing is emitted).
pub fn segment(
    frame: &[u8],
    medium: Medium,
    segment_size: usize,
    mut emit: impl FnMut(&[u8], &[u8]),
) -> usize {
    let Some(layout) = ipv4_layout(frame, medium) else {
        return 0;
    };
    let Some(tcp) = tcp_layout(frame, &layout) else {
        return 0;
    };
    if segment_size == 0 || tcp.payload.len() <= segment_size {
        return 0;
    }
    let (ip, l4) = (layout.ip_start, layout.l4_start);
    let hlen = tcp.payload.start;
    // Ethernet, and IPv4 and TCP headers with the most options.
    let mut headers = [0u8; 14 + 60 + 60];
    let headers = &mut headers[..hlen];
    headers.copy_from_slice(&frame[..hlen]);
    let ident = u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]);
    let seq = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]]);
    let flags = frame[tcp.flags];
    let (src, dst) = addresses(frame, &layout);
    let chunks = frame[tcp.payload.clone()].chunks(segment_size);
    let n = chunks.len();
    for (i, chunk) in chunks.enumerate() {
        let total = (hlen - ip + chunk.len()) as u16;
        headers[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
        headers[ip + 4..ip + 6].copy_from_slice(&ident.wrapping_add(i as u16).to_be_bytes());
        headers[ip + 10..ip + 12].fill(0);
        let sum = !ones_complement_sum(&headers[ip..l4]);
        headers[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        let offset = (i * segment_size) as u32;
        headers[l4 + 4..l4 + 8].copy_from_slice(&seq.wrapping_add(offset).to_be_bytes());
        let mut f = flags;
        if i > 0 {
            f &= !TCP_CWR;
        }
        if i + 1 < n {
            f &= !(TCP_FIN | TCP_PSH);
        }
        headers[tcp.flags] = f;
        headers[l4 + 16..l4 + 18].fill(0);
        let mut sum = Checksum::new();
        let len = (hlen - l4 + chunk.len()) as u16;
        sum.add_ipv4_pseudo_header(src, dst, PROTOCOL_TCP, len);
        sum.add_bytes(&headers[l4..]).add_bytes(chunk);
        headers[l4 + 16..l4 + 18].copy_from_slice(&sum.finish().to_be_bytes());
        emit(headers, chunk);
    }
    n
}

/// Completes the partial transport checksum of a received frame of
/// `medium` ([`L4Checksum::Partial`]: the field holds the pseudo-header's sum) as
/// the device would have on the wire, so that the frame reads as valid,
/// in a capture for instance. A frame without a complete, unfragmented
/// TCP or UDP datagram is left as it is.
pub fn complete_partial(frame: &mut [u8], medium: Medium) {
    let Some(layout) = ipv4_layout(frame, medium) else {
        return;
    };
    let l4 = layout.l4_start..layout.end;
    let Some(t) = transport_checksum(layout.protocol)
        .filter(|t| t.pseudo_header && !layout.fragment && l4.len() >= t.min_len)
    else {
        return;
    };
    let at = l4.start + t.offset;
    // The sum over the transport bytes with the pseudo-header's sum in
    // the field is the sum over pseudo-header and bytes with a zero field.
    let mut sum = !ones_complement_sum(&frame[l4]);
    if sum == 0 && layout.protocol == PROTOCOL_UDP {
        // Zero says "no checksum" in UDP (RFC 768).
        sum = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOCOL_ICMP: u8 = 1;

    /// An Ethernet frame carrying an IPv4 datagram of `protocol` with
    /// `l4` as its payload, checksums zero.
    fn frame(protocol: u8, l4: &[u8], frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = (20 + l4.len()) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = protocol;
        ip[12..16].copy_from_slice(&[198, 18, 0, 2]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 1]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    fn transport_sum_ok(f: &[u8]) -> bool {
        let medium = if f[0] >> 4 == 4 {
            Medium::Ip
        } else {
            Medium::Ethernet
        };
        let layout = ipv4_layout(f, medium).unwrap();
        let mut sum = pseudo_header(f, &layout);
        sum.add_bytes(&f[layout.l4_start..layout.end]);
        sum.finish() == 0
    }

    #[test]
    fn headers_round_trip() {
        let h = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: 1,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VnetHeader::parse(&h.to_bytes()), Some(h));
        assert_eq!(VnetHeader::parse(&[0; 9]), None);
        assert_eq!(h.l4_checksum(), L4Checksum::Partial);
        let valid = VnetHeader {
            flags: F_DATA_VALID,
            ..VnetHeader::default()
        };
        assert_eq!(valid.l4_checksum(), L4Checksum::Verified);
        assert_eq!(VnetHeader::default().l4_checksum(), L4Checksum::Unverified);
    }

    #[test]
    fn a_tcp_segment_goes_partial_and_completes_to_the_real_checksum() {
        let mut tcp = vec![0u8; 20 + 37];
        tcp[12] = 5 << 4;
        for (i, b) in tcp[20..].iter_mut().enumerate() {
            *b = i as u8 * 7;
        }
        let mut f = frame(PROTOCOL_TCP, &tcp, 0x4000);
        let h = prepare_transmit(&mut f, Medium::Ethernet, 0);
        assert_eq!(h.flags, F_NEEDS_CSUM);
        assert_eq!((h.csum_start, h.csum_offset), (34, 16));
        // The IPv4 header checksum is complete.
        assert_eq!(ones_complement_sum(&f[14..34]), 0xffff);
        // The field holds the pseudo-header's sum: not yet valid.
        assert!(!transport_sum_ok(&f));
        complete_partial(&mut f, Medium::Ethernet);
        assert!(transport_sum_ok(&f));
    }

    #[test]
    fn a_udp_datagram_goes_partial_with_its_own_field() {
        let mut udp = vec![0u8; 8 + 30];
        udp[4..6].copy_from_slice(&38u16.to_be_bytes());
        udp[8..].fill(0xa5);
        // IP options: the transport header starts later.
        let mut f = frame(PROTOCOL_UDP, &udp, 0);
        f[14] = 0x46;
        f.splice(34..34, [1u8, 1, 1, 0]);
        let total = (24 + udp.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let h = prepare_transmit(&mut f, Medium::Ethernet, 0);
        assert_eq!(
            (h.flags, h.csum_start, h.csum_offset),
            (F_NEEDS_CSUM, 38, 6)
        );
        assert!(!transport_sum_ok(&f));
        complete_partial(&mut f, Medium::Ethernet);
        assert!(transport_sum_ok(&f));
        assert_eq!(ones_complement_sum(&f[14..38]), 0xffff);
    }

    #[test]
    fn a_tun_s_bare_packet_gets_the_same_treatment() {
        let mut tcp = vec![0u8; 20 + 99];
        tcp[12] = 5 << 4;
        tcp[20..].fill(0x3c);
        let mut f = frame(PROTOCOL_TCP, &tcp, 0x4000).split_off(14);
        let h = prepare_transmit(&mut f, Medium::Ip, 0);
        assert_eq!(
            (h.flags, h.csum_start, h.csum_offset),
            (F_NEEDS_CSUM, 20, 16)
        );
        assert_eq!(ones_complement_sum(&f[..20]), 0xffff);
        assert!(!transport_sum_ok(&f));
        complete_partial(&mut f, Medium::Ip);
        assert!(transport_sum_ok(&f));
        // An Ethernet reading of the same bytes finds no IPv4 frame.
        let before = f.clone();
        assert_eq!(
            prepare_transmit(&mut f, Medium::Ethernet, 0),
            VnetHeader::default()
        );
        assert_eq!(f, before);
    }

    #[test]
    fn a_udp_sum_of_zero_is_sent_as_all_ones() {
        // Find a payload whose checksum comes out zero: vary two bytes.
        let mut udp = vec![0u8; 8 + 2];
        udp[4..6].copy_from_slice(&10u16.to_be_bytes());
        let mut found = false;
        for v in 0..=u16::MAX {
            udp[8..10].copy_from_slice(&v.to_be_bytes());
            let mut f = frame(PROTOCOL_UDP, &udp, 0);
            prepare_transmit(&mut f, Medium::Ethernet, 0);
            complete_partial(&mut f, Medium::Ethernet);
            let field = u16::from_be_bytes([f[40], f[41]]);
            assert_ne!(field, 0, "a UDP checksum of zero means none");
            assert!(transport_sum_ok(&f), "payload {v:#x}");
            found |= field == 0xffff;
        }
        assert!(found, "no payload gave a zero sum");
    }

    #[test]
    fn icmp_is_summed_in_full_and_fragments_are_left_to_the_stack() {
        let mut f = frame(PROTOCOL_ICMP, &[8, 0, 0, 0, 1, 2, 3, 4, 5], 0);
        assert_eq!(
            prepare_transmit(&mut f, Medium::Ethernet, 0),
            VnetHeader::default()
        );
        assert_eq!(ones_complement_sum(&f[34..]), 0xffff);

        let mut udp = vec![0u8; 16];
        udp[6] = 0xab;
        let mut f = frame(PROTOCOL_UDP, &udp, 0x2000);
        assert_eq!(
            prepare_transmit(&mut f, Medium::Ethernet, 0),
            VnetHeader::default()
        );
        assert_eq!(ones_complement_sum(&f[14..34]), 0xffff);
        assert_eq!(f[40], 0xab, "a fragment's transport bytes are not touched");
        complete_partial(&mut f, Medium::Ethernet);
        assert_eq!(f[40], 0xab);
    }

    /// A TCP super-segment: a 32-byte header (timestamps), `payload`,
    /// sequence number 1000, identification 7, flags `flags`.
    fn super_segment(payload: &[u8], flags: u8) -> Vec<u8> {
        let mut tcp = vec![0u8; 32];
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = flags | 0x10;
        tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3]);
        tcp.extend_from_slice(payload);
        let mut f = frame(PROTOCOL_TCP, &tcp, 0x4000);
        f[18..20].copy_from_slice(&7u16.to_be_bytes());
        f
    }

    #[test]
    fn a_super_segment_is_cut_as_the_kernel_cuts_it() {
        let payload: Vec<u8> = (0..337u32).map(|i| (i * 13 % 251) as u8).collect();
        let f = super_segment(&payload, TCP_CWR | TCP_PSH | TCP_FIN);
        let mut segments = Vec::new();
        let n = segment(&f, Medium::Ethernet, 100, |h, p| {
            segments.push([h, p].concat())
        });
        assert_eq!((n, segments.len()), (4, 4));
        let mut joined = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let layout = ipv4_layout(s, Medium::Ethernet).unwrap();
            assert_eq!(ones_complement_sum(&s[14..34]), 0xffff, "IPv4 header sum");
            assert!(transport_sum_ok(s), "TCP sum of segment {i}");
            assert_eq!(u16::from_be_bytes([s[18], s[19]]), 7 + i as u16);
            let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
            assert_eq!(seq, 1000 + 100 * i as u32);
            let flags = s[47];
            assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR on the first only");
            assert_eq!(
                flags & (TCP_FIN | TCP_PSH) != 0,
                i == 3,
                "FIN, PSH on the last"
            );
            assert_eq!(flags & 0x10, 0x10, "ACK on all");
            assert_eq!(&s[54..66], &f[54..66], "options copied");
            assert_eq!(layout.end, s.len());
            joined.extend_from_slice(&s[66..]);
        }
        assert_eq!(segments[3].len(), 66 + 37);
        assert_eq!(joined, payload);
        // The same on a TUN's bare packets.
        let bare = f[14..].to_vec();
        let mut sizes = Vec::new();
        assert_eq!(
            segment(&bare, Medium::Ip, 150, |h, p| sizes
                .push((h.len(), p.len()))),
            3
        );
        assert_eq!(sizes, [(52, 150), (52, 150), (52, 37)]);
        // Not a super-segment: nothing.
        assert_eq!(segment(&f, Medium::Ethernet, 337, |_, _| panic!()), 0);
        assert_eq!(segment(&f, Medium::Ethernet, 0, |_, _| panic!()), 0);
        let udp = frame(PROTOCOL_UDP, &[0; 300], 0);
        assert_eq!(segment(&udp, Medium::Ethernet, 100, |_, _| panic!()), 0);
    }

    #[test]
    fn a_super_segment_goes_with_a_gso_header() {
        let mut f = super_segment(&[5; 3000], TCP_PSH);
        let h = prepare_transmit(&mut f, Medium::Ethernet, 1448);
        assert_eq!(
            (
                h.flags,
                h.gso_type,
                h.hdr_len,
                h.gso_size,
                h.csum_start,
                h.csum_offset
            ),
            (F_NEEDS_CSUM, GSO_TCPV4, 66, 1448, 34, 16)
        );
        let mut f = super_segment(&[5; 3000], TCP_CWR);
        let h = prepare_transmit(&mut f, Medium::Ethernet, 1448);
        assert_eq!(h.gso_type, GSO_TCPV4 | GSO_ECN);
        // One segment's worth, or no segment size: an ordinary frame.
        for size in [3000, 0] {
            let mut f = super_segment(&[5; 3000], 0);
            let h = prepare_transmit(&mut f, Medium::Ethernet, size);
            assert_eq!(
                (h.flags, h.gso_type, h.gso_size),
                (F_NEEDS_CSUM, GSO_NONE, 0)
            );
        }
    }

    #[test]
    fn anything_else_goes_as_it_is() {
        let arp = {
            let mut f = vec![0u8; 42];
            f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
            f
        };
        let mut short = frame(PROTOCOL_TCP, &[0; 10], 0);
        let mut truncated = frame(PROTOCOL_TCP, &[0; 30], 0);
        truncated.truncate(40);
        for f in [arp, vec![0u8; 5], short.clone(), truncated] {
            let mut g = f.clone();
            let h = prepare_transmit(&mut g, Medium::Ethernet, 0);
            assert_eq!(h.flags, 0);
            complete_partial(&mut g, Medium::Ethernet);
        }
        // A TCP header too short for its checksum field: no partial sum.
        assert_eq!(prepare_transmit(&mut short, Medium::Ethernet, 0).flags, 0);
    }
}
