//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! - [`Input`]: reads a fuzzer's byte string as a stream of small
//!   decisions, yielding zeros once it runs dry, so that every target
//!   accepts every input and the fuzzer can grow an input one decision at
//!   a time.
//! - [`stream_byte`]: the content of byte `k` of a TCP stream in the
//!   stateful targets. Every copy of a byte (original, retransmission,
//!   overlapping segment) then carries the same value, and what the
//!   receiver reassembles can be checked byte for byte.
//! - [`SplitMix`]: a tiny deterministic generator for choices derived
//!   from a seed byte (split points), so that a crash replays exactly.
//! - [`fix_checksums`]: recomputes the IPv4 and transport checksums of a
//!   frame, so that mutated frames get past checksum verification.

use std::net::Ipv4Addr;

use netstrata::internet::icmpv4::Icmpv4Packet;
use netstrata::internet::ipv4::{Ipv4Packet, Protocol};
use netstrata::link::ethernet::{EtherType, Frame};
use netstrata::transport::tcp::TcpPacket;
use netstrata::transport::udp::UdpPacket;

/// A cursor over fuzzer bytes. Reads past the end give zeros (and empty
/// slices), never a failure.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian (as on the wire).
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A boolean from the low bit of the next byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// The next `n` bytes, or fewer if the input ends first.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A record with a two-byte big-endian length prefix: the pcap-like
    /// framing the stateful targets use to cut an input into frames or
    /// datagrams.
    pub fn record(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16());
        self.bytes(len)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// A time step in milliseconds from one byte: the low six bits scaled by
/// 1, 16, 256 or 4096 (the high two bits), so that one byte spans 0 ms to
/// about four minutes: delayed ACKs, RTOs, TIME-WAIT and ARP ageing are
/// all within reach.
pub fn time_step_millis(b: u8) -> u64 {
    u64::from(b & 0x3f) << (4 * u32::from(b >> 6))
}

/// Byte `k` of a TCP stream in the stateful targets (`k` counts from the
/// first data byte, modulo 2^32 like sequence numbers). Not periodic at
/// small strides, so that an off-by-some shift in reassembly shows.
pub fn stream_byte(k: u32) -> u8 {
    let x = k.wrapping_mul(0x9e37_79b1);
    ((x >> 24) ^ (x >> 11) ^ k) as u8
}

/// SplitMix64: a seeded sequence of well-mixed numbers.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Recomputes, in place, the IPv4 header checksum of an Ethernet frame
/// carrying IPv4 and, for an unfragmented TCP, UDP or ICMP datagram, its
/// transport checksum. Frames that do not parse that far are left alone.
pub fn fix_checksums(frame: &mut [u8]) {
    let Ok(f) = Frame::new_checked(&*frame) else {
        return;
    };
    if f.ethertype() != EtherType::Ipv4 {
        return;
    }
    let ip_bytes = &mut frame[netstrata::link::ethernet::HEADER_LEN..];
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut *ip_bytes) else {
        return;
    };
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let fragment = ip.more_frags() || ip.frag_offset() != 0;
    let (hlen, total) = (ip.header_len(), usize::from(ip.total_len()));
    let protocol = ip.protocol();
    if fragment {
        return;
    }
    fix_transport_checksum(protocol, &mut ip_bytes[hlen..total], src, dst);
}

fn fix_transport_checksum(protocol: Protocol, payload: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    match protocol {
        Protocol::Tcp => {
            if let Ok(mut p) = TcpPacket::new_checked(payload) {
                p.fill_checksum(src, dst);
            }
        }
        Protocol::Udp => {
            if let Ok(mut p) = UdpPacket::new_checked(payload) {
                p.fill_checksum(src, dst);
            }
        }
        Protocol::Icmp => {
            if let Ok(mut p) = Icmpv4Packet::new_checked(payload) {
                p.fill_checksum();
            }
        }
        _ => {}
    }
}
