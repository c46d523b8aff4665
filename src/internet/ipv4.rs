//! IPv4 datagrams (RFC 791) and address blocks (RFC 4632).
//!
//! [`Ipv4Packet`] is a zero-copy view; [`Ipv4Repr`] is the parsed header.
//! Parsing validates the version, header length, total length against the
//! buffer (RFC 1122 §3.2.1.1–3.2.1.2) and, unless the device verified it, the
//! header checksum. Options are accepted and skipped (RFC 1122 §3.2.1.8
//! requires passing those we do not implement); this stack never emits
//! options.
//!
//! # Example
//!
//! Parse a captured header (a UDP datagram from 192.168.0.1), emit it back,
//! and reject it once a byte is corrupted:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::error::ParseError;
//! use netstrata::internet::ipv4::{HEADER_LEN, Ipv4Cidr, Ipv4Packet, Ipv4Repr, Protocol};
//!
//! let mut bytes = vec![
//!     0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
//!     0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
//! ];
//! bytes.resize(0x73, 0); // the payload
//! let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&bytes[..])?, true)?;
//! assert_eq!(repr.src_addr, Ipv4Addr::new(192, 168, 0, 1));
//! assert_eq!(repr.dst_addr, Ipv4Addr::new(192, 168, 0, 199));
//! assert_eq!((repr.protocol, repr.ttl, repr.payload_len), (Protocol::Udp, 64, 0x73 - 20));
//! assert!(repr.dont_frag && !repr.is_fragment());
//!
//! let mut out = vec![0; repr.total_len()];
//! repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
//! assert_eq!(out[..HEADER_LEN], bytes[..HEADER_LEN]);
//!
//! bytes[8] = 1; // TTL
//! let err = Ipv4Repr::parse(&Ipv4Packet::new_checked(&bytes[..])?, true);
//! assert_eq!(err, Err(ParseError::BadChecksum));
//!
//! let net: Ipv4Cidr = "192.168.0.1/24".parse()?;
//! assert!(net.contains(repr.dst_addr));
//! assert_eq!(net.broadcast(), Some(Ipv4Addr::new(192, 168, 0, 255)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use crate::checksum::{self, Checksum};
use crate::error::{ParseError, check_len};

/// An IPv4 address with a prefix length: an interface address and its
/// directly connected subnet, or a route's destination block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

/// A prefix length above 32 or text that is not `A.B.C.D/N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv4 prefix {0:?}: expected A.B.C.D/N with N at most 32")]
pub struct ParseCidrError(pub String);

impl Ipv4Cidr {
    /// `0.0.0.0/0`: every address (the default route's destination).
    pub const ANY: Ipv4Cidr = Ipv4Cidr {
        address: Ipv4Addr::UNSPECIFIED,
        prefix_len: 0,
    };

    /// `address/prefix_len`; `None` if the prefix length exceeds 32.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Cidr> {
        if prefix_len > 32 {
            None
        } else {
            Some(Ipv4Cidr {
                address,
                prefix_len,
            })
        }
    }

    /// The address part.
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask as an integer.
    pub const fn mask_bits(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        }
    }

    /// The netmask.
    pub const fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.mask_bits())
    }

    /// The network address (host bits zero).
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() & self.mask_bits())
    }

    /// The block itself, with the host bits of the address cleared.
    pub const fn block(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            address: self.network(),
            prefix_len: self.prefix_len,
        }
    }

    /// The directed broadcast address of the subnet (none for /31 and /32,
    /// RFC 3021).
    pub const fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            None
        } else {
            Some(Ipv4Addr::from_bits(
                self.address.to_bits() | !self.mask_bits(),
            ))
        }
    }

    /// Whether `addr` lies in this block.
    pub const fn contains(&self, addr: Ipv4Addr) -> bool {
        (addr.to_bits() ^ self.address.to_bits()) & self.mask_bits() == 0
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = ParseCidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCidrError(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(err)?;
        let address: Ipv4Addr = a.parse().map_err(|_| err())?;
        let prefix_len: u8 = p.parse().map_err(|_| err())?;
        Ipv4Cidr::new(address, prefix_len).ok_or_else(err)
    }
}

/// The protocol carried in a datagram. Unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 1
    Icmp,
    /// 6
    Tcp,
    /// 17
    Udp,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Self {
        match v {
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(p: Protocol) -> u8 {
        match p {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Unknown(v) => write!(f, "protocol {v}"),
        }
    }
}

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Length of a header with the most options.
pub const MAX_HEADER_LEN: usize = 60;
/// The largest datagram (RFC 791).
pub const MAX_DATAGRAM_LEN: usize = 65535;
/// The smallest MTU a link may have: every module forwards a datagram of
/// 68 octets without further fragmentation (RFC 791, "Fragmentation").
pub const MIN_MTU: usize = 68;
/// The default TTL (RFC 1700 / Linux's `ip_default_ttl`).
pub const DEFAULT_TTL: u8 = 64;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 datagram.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

fn addr(b: &[u8], r: core::ops::Range<usize>) -> Ipv4Addr {
    Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3])
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checks; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking that the header length and total
    /// length fields are consistent with it, so no accessor can panic.
    /// The buffer may be longer than the total length (link padding).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, ParseError> {
        let b = buffer.as_ref();
        check_len(b, HEADER_LEN)?;
        let p = Ipv4Packet { buffer };
        let hlen = p.header_len();
        if hlen < HEADER_LEN {
            return Err(ParseError::BadHeaderLength(hlen));
        }
        check_len(p.buffer.as_ref(), hlen)?;
        let total = usize::from(p.total_len());
        if total < hlen {
            return Err(ParseError::BadLength {
                field: total,
                had: p.buffer.as_ref().len(),
            });
        }
        if total > p.buffer.as_ref().len() {
            return Err(ParseError::BadLength {
                field: total,
                had: p.buffer.as_ref().len(),
            });
        }
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        addr(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload, up to the total length (link padding excluded).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn set_be16(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = version_ihl(header_len);
    }

    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        self.set_be16(field::LENGTH, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        self.set_be16(field::IDENT, v);
    }

    /// Sets the flags and fragment offset (in bytes, a multiple of 8).
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        self.set_be16(field::FLG_OFF, frag_field(dont_frag, more_frags, offset));
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, p: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(p);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hlen = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hlen]);
        self.set_checksum(c);
    }
}

/// The version-and-header-length byte for a header of `header_len` bytes.
fn version_ihl(header_len: usize) -> u8 {
    0x40 | ((header_len / 4) as u8 & 0x0f)
}

/// The flags-and-fragment-offset word for an offset in bytes (a multiple
/// of 8).
fn frag_field(dont_frag: bool, more_frags: bool, offset: u16) -> u16 {
    let mut v = (offset >> 3) & OFFSET_MASK;
    if dont_frag {
        v |= FLAG_DF;
    }
    if more_frags {
        v |= FLAG_MF;
    }
    v
}

/// The fields of an IPv4 header (options are not represented).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: Protocol,
    /// Payload length in bytes (of this fragment).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses and validates a checked datagram. With `verify_checksum`
    /// false (the device verified it) the checksum is not checked.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<Ipv4Repr, ParseError> {
        // Re-run the length checks: `packet` may have been built unchecked.
        let checked = Ipv4Packet::new_checked(packet.buffer.as_ref())?;
        if checked.version() != 4 {
            return Err(ParseError::BadVersion(checked.version()));
        }
        if verify_checksum && !checked.verify_checksum() {
            return Err(ParseError::BadChecksum);
        }
        if checked.more_frags() && checked.payload().len() % 8 != 0 {
            return Err(ParseError::Malformed(
                "non-final fragment not a multiple of 8 bytes",
            ));
        }
        if usize::from(checked.frag_offset()) + checked.payload().len() > MAX_DATAGRAM_LEN {
            return Err(ParseError::Malformed("fragment extends past 65535 bytes"));
        }
        Ok(Ipv4Repr {
            src_addr: checked.src_addr(),
            dst_addr: checked.dst_addr(),
            protocol: checked.protocol(),
            payload_len: checked.payload().len(),
            ttl: checked.ttl(),
            tos: checked.tos(),
            ident: checked.ident(),
            dont_frag: checked.dont_frag(),
            more_frags: checked.more_frags(),
            frag_offset: checked.frag_offset(),
        })
    }

    /// Length of the header this emits (no options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole datagram.
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Whether this is a fragment (not a whole datagram).
    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `packet`,
    /// with the checksum unless the device fills it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        fill_checksum: bool,
    ) {
        let total_len = u16::try_from(self.total_len()).unwrap_or(u16::MAX);
        let frag = frag_field(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_tos(self.tos);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        // The checksum of the fields as numbers (RFC 1071), not of the
        // header read back.
        let checksum = if fill_checksum {
            Checksum::new()
                .add_u16(u16::from_be_bytes([version_ihl(HEADER_LEN), self.tos]))
                .add_u16(total_len)
                .add_u16(self.ident)
                .add_u16(frag)
                .add_u16(u16::from_be_bytes([self.ttl, u8::from(self.protocol)]))
                .add_u32(u32::from(self.src_addr))
                .add_u32(u32::from(self.dst_addr))
                .finish()
        } else {
            0
        };
        packet.set_checksum(checksum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A UDP datagram header captured from Linux: 192.168.0.1 -> 192.168.0.199,
    // total length 115, DF, TTL 64, checksum 0xb861.
    const GOLDEN: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn golden_datagram() -> Vec<u8> {
        let mut v = GOLDEN.to_vec();
        v.resize(0x73, 0xaa);
        v
    }

    #[test]
    fn golden_header_reads_every_field_and_emits_identical() {
        let d = golden_datagram();
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.src_addr, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(r.dst_addr, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(r.protocol, Protocol::Udp);
        assert_eq!(r.payload_len, 95);
        assert_eq!(r.ttl, 64);
        assert!(r.dont_frag && !r.more_frags && r.frag_offset == 0);
        assert_eq!(p.checksum(), 0xb861);
        let mut out = vec![0u8; r.total_len()];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
        assert_eq!(out[..20], GOLDEN);
    }

    #[test]
    fn every_truncation_rejected() {
        let d = golden_datagram();
        for n in 0..d.len() {
            assert!(Ipv4Packet::new_checked(&d[..n]).is_err(), "len {n}");
        }
    }

    #[test]
    fn padding_is_not_payload() {
        let mut d = golden_datagram();
        d.extend_from_slice(&[0; 10]);
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn bad_fields_rejected() {
        let mut d = golden_datagram();
        d[11] ^= 1;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&d[..]).unwrap(), true),
            Err(ParseError::BadChecksum)
        );
        assert!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&d[..]).unwrap(), false).is_ok());
        let mut d = golden_datagram();
        d[0] = 0x65;
        assert!(matches!(
            Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&d[..]), false),
            Err(ParseError::BadVersion(6))
        ));
        let mut d = golden_datagram();
        d[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&d[..]).unwrap_err(),
            ParseError::BadHeaderLength(16)
        );
        let mut d = golden_datagram();
        d[3] = 10; // total length shorter than the header
        assert!(Ipv4Packet::new_checked(&d[..]).is_err());
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6: one word of options (NOP NOP NOP EOL).
        let mut d = vec![
            0x46, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 0,
        ];
        d.extend_from_slice(&[1, 2, 3, 4]);
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        p.fill_checksum();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn cidr() {
        let c: Ipv4Cidr = "192.0.2.7/24".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(c.contains(Ipv4Addr::new(192, 0, 2, 200)));
        assert!(!c.contains(Ipv4Addr::new(192, 0, 3, 1)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!("10.0.0.1/32".parse::<Ipv4Cidr>().unwrap().broadcast(), None);
        for bad in ["10.0.0.1", "10.0.0.1/33", "10.0.0/8", "x/1"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err());
        }
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0usize..1500,
            any::<(u8, u8, u16, bool, bool)>(),
            0u16..(0x2000 - 200),
        )
            .prop_map(
                |(s, d, proto, len, (ttl, tos, ident, df, mf), off)| Ipv4Repr {
                    src_addr: Ipv4Addr::from(s),
                    dst_addr: Ipv4Addr::from(d),
                    protocol: Protocol::from(proto),
                    payload_len: if mf { len & !7 } else { len },
                    ttl,
                    tos,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: off << 3,
                },
            )
            .prop_filter("fits in a datagram", |r| {
                usize::from(r.frag_offset) + r.payload_len <= MAX_DATAGRAM_LEN
            })
    }

    proptest! {
        #[test]
        fn round_trip(r in arb_repr()) {
            let mut buf = vec![0u8; r.total_len()];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = Ipv4Repr::parse(&p, true);
                let _ = (p.options(), p.payload(), p.frag_offset());
            }
            let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&data[..]), false);
        }
    }
}
