//! UDP datagrams (RFC 768) over IPv4.
//!
//! [`UdpPacket`] is a zero-copy view over a datagram (the IPv4 payload);
//! [`UdpRepr`] is the parsed header. The payload is never copied: on
//! receive it stays in the buffer ([`UdpPacket::payload`]), and on transmit
//! the payload is written first and the header pushed in front of it, then
//! [`UdpRepr::emit`] fills the header and the checksum in place.
//!
//! The checksum covers the IPv4 pseudo-header, the header and the payload
//! (RFC 768, "Fields"). A received checksum of zero means the sender
//! computed none and is accepted (RFC 768; RFC 1122 §4.1.3.4 lets a host
//! refuse such datagrams, this one does not). A computed checksum of zero
//! is sent as 0xFFFF, its one's-complement equivalent.
//!
//! Deliberately not here: IPv6 (zero checksums are forbidden there, and
//! jumbograms use a zero length field), UDP-Lite (RFC 3828), and any
//! payload format.
//!
//! # Example
//!
//! A DNS query's UDP header, parsed with its checksum verified, and emitted
//! back:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::transport::udp::{UdpPacket, UdpRepr};
//!
//! let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
//! let mut bytes = vec![0xc0, 0x00, 0x00, 0x35, 0x00, 0x0d, 0x00, 0x00];
//! bytes.extend_from_slice(b"query");
//! let mut packet = UdpPacket::new_checked(&mut bytes[..])?;
//! packet.fill_checksum(src, dst);
//! let repr = UdpRepr::parse(&packet, src, dst, true)?;
//! assert_eq!((repr.src_port, repr.dst_port, repr.payload_len), (49152, 53, 5));
//! assert_eq!(packet.payload(), b"query");
//! assert!(UdpRepr::parse(&packet, src, Ipv4Addr::new(192, 0, 2, 3), true).is_err());
//!
//! let mut out = bytes.clone();
//! out[..8].fill(0);
//! repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), src, dst, true);
//! assert_eq!(out, bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;

use crate::checksum::Checksum;
use crate::error::{ParseError, check_len};

/// The IP protocol number of UDP.
pub const PROTOCOL: u8 = 17;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The largest payload the 16-bit length field can describe. IPv4 allows
/// 20 bytes less (its total length counts its own header).
pub const MAX_PAYLOAD: usize = u16::MAX as usize - HEADER_LEN;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short
    /// buffer or an inconsistent length field. Prefer
    /// [`UdpPacket::new_checked`].
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`UdpPacket::check_len`], so that no accessor
    /// can panic.
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, ParseError> {
        let p = UdpPacket { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds a whole header and that the length
    /// field is at least the header and at most the buffer (RFC 768: the
    /// length counts header and data). Bytes past the length field (link
    /// padding) are allowed and ignored.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let buf = self.buffer.as_ref();
        check_len(buf, HEADER_LEN)?;
        let field = usize::from(self.len());
        if field < HEADER_LEN || field > buf.len() {
            return Err(ParseError::BadLength {
                field,
                had: buf.len(),
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Source port (zero if the sender expects no reply).
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// The length field: header plus payload, in bytes.
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// Whether the length field describes a datagram with no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field (zero: none was computed).
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The datagram as far as the length field reaches: header and payload,
    /// without trailing padding.
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// The payload, as long as the length field says (trailing bytes in the
    /// buffer are not part of it).
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[field::PAYLOAD..]
    }

    /// Whether the checksum verifies for a datagram from `src` to `dst`: it
    /// does if it is zero (none computed) or if the pseudo-header, header
    /// and payload sum to all ones.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let mut c = Checksum::new();
        c.add_ipv4_pseudo_header(src, dst, PROTOCOL, self.len());
        c.add_bytes(self.datagram());
        c.finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.set_u16_at(field::SRC_PORT, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_u16_at(field::DST_PORT, v);
    }

    /// Sets the length field (header plus payload).
    pub fn set_len(&mut self, v: u16) {
        self.set_u16_at(field::LENGTH, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16_at(field::CHECKSUM, v);
    }

    /// The payload, as long as the length field says, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }

    /// Computes the checksum for a datagram from `src` to `dst` over the
    /// pseudo-header and the datagram as far as the length field reaches,
    /// and writes it (a computed zero is written as 0xFFFF, RFC 768).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let mut c = Checksum::new();
        c.add_ipv4_pseudo_header(src, dst, PROTOCOL, self.len());
        c.add_bytes(self.datagram());
        self.set_checksum(on_the_wire(&c));
    }
}

/// The checksum field for a datagram whose sum is `c`: a computed zero is
/// sent as 0xFFFF, since zero means "no checksum" (RFC 768).
fn on_the_wire(c: &Checksum) -> u16 {
    match c.finish() {
        0 => 0xffff,
        s => s,
    }
}

/// The fields of a UDP header. The payload stays in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of the payload in bytes (the length field minus the header).
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses and validates a datagram that came from `src` to `dst`: the
    /// header is whole, the length field is at least 8 and at most the
    /// buffer, the checksum verifies when `verify_checksum` is true (a zero
    /// checksum always does), and the destination port is not zero.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<UdpRepr, ParseError> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(ParseError::BadChecksum);
        }
        if packet.dst_port() == 0 {
            return Err(ParseError::Malformed("UDP destination port 0"));
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Length of the header: always [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole datagram: header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `packet`,
    /// whose buffer already holds the `payload_len` bytes of payload after
    /// them, and the checksum for a datagram from `src` to `dst` when
    /// `fill_checksum` is true (zero, "none", otherwise: for a device that
    /// offloads it).
    ///
    /// # Panics
    ///
    /// If `payload_len` exceeds [`MAX_PAYLOAD`] or the buffer is shorter
    /// than [`UdpRepr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        fill_checksum: bool,
    ) {
        let Ok(len) = u16::try_from(self.payload_len.saturating_add(HEADER_LEN)) else {
            panic!(
                "UDP payload of {} bytes exceeds MAX_PAYLOAD",
                self.payload_len
            );
        };
        assert!(
            packet.buffer.as_ref().len() >= usize::from(len),
            "UDP buffer shorter than header + payload"
        );
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        // The header's words are summed as numbers, not read back; only
        // the payload is read.
        let checksum = if fill_checksum {
            let payload = &packet.buffer.as_ref()[HEADER_LEN..usize::from(len)];
            on_the_wire(
                Checksum::new()
                    .add_ipv4_pseudo_header(src, dst, PROTOCOL, len)
                    .add_u16(self.src_port)
                    .add_u16(self.dst_port)
                    .add_u16(len)
                    .add_bytes(payload),
            )
        } else {
            0
        };
        packet.set_checksum(checksum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::PacketBuf;
    use proptest::prelude::*;

    const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

    // A DNS query (example.com A, with an EDNS OPT record) that Linux sent
    // from 127.0.0.1:40000 to 127.0.0.1:53, captured on loopback. Loopback
    // leaves the checksum to "offload" (the field held 0xfe43, the bare
    // pseudo-header sum, see `partial_checksum_rejected`); 0x6b33 is the
    // full checksum, computed independently in Python.
    const DNS_QUERY: [u8; 48] = [
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x30, 0x6b, 0x33, 0x1a, 0x2b, 0x01, 0x20, //
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, 0x65, 0x78, 0x61, //
        0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, //
        0x01, 0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    fn parse(buf: &[u8]) -> Result<UdpRepr, ParseError> {
        UdpRepr::parse(&UdpPacket::new_unchecked(buf), LOCALHOST, LOCALHOST, true)
    }

    #[test]
    fn golden_dns_query() {
        let p = UdpPacket::new_checked(&DNS_QUERY[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 48);
        assert_eq!(p.checksum(), 0x6b33);
        assert!(p.verify_checksum(LOCALHOST, LOCALHOST));
        assert_eq!(&p.payload()[12..25], b"\x07example\x03com\x00");
        let r = parse(&DNS_QUERY).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 40000,
                dst_port: 53,
                payload_len: 40
            }
        );
        // Emitted the way the stack sends: payload first, header pushed in
        // front of it.
        let mut buf = PacketBuf::from_payload(64, &DNS_QUERY[8..]);
        buf.push_header(r.header_len());
        r.emit(
            &mut UdpPacket::new_unchecked(buf.data_mut()),
            LOCALHOST,
            LOCALHOST,
            true,
        );
        assert_eq!(buf.data(), &DNS_QUERY[..]);
    }

    #[test]
    fn checksum_depends_on_addresses() {
        let other = Ipv4Addr::new(127, 0, 0, 2);
        let p = UdpPacket::new_checked(&DNS_QUERY[..]).unwrap();
        assert!(!p.verify_checksum(LOCALHOST, other));
        assert_eq!(
            UdpRepr::parse(&p, other, LOCALHOST, true),
            Err(ParseError::BadChecksum)
        );
        assert!(UdpRepr::parse(&p, other, LOCALHOST, false).is_ok());
    }

    #[test]
    fn partial_checksum_rejected() {
        let mut partial = DNS_QUERY;
        partial[6..8].copy_from_slice(&[0xfe, 0x43]);
        assert_eq!(parse(&partial), Err(ParseError::BadChecksum));
    }

    #[test]
    fn every_truncation_rejected() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&DNS_QUERY[..n]).unwrap_err(),
                ParseError::Truncated {
                    needed: HEADER_LEN,
                    had: n
                }
            );
            assert!(parse(&DNS_QUERY[..n]).is_err());
        }
        for n in HEADER_LEN..DNS_QUERY.len() {
            let err = ParseError::BadLength { field: 48, had: n };
            assert_eq!(UdpPacket::new_checked(&DNS_QUERY[..n]).unwrap_err(), err);
            assert_eq!(parse(&DNS_QUERY[..n]), Err(err));
        }
    }

    #[test]
    fn length_field_checked() {
        for field in [0u16, 1, 7, 49, 0xffff] {
            let mut b = DNS_QUERY;
            b[4..6].copy_from_slice(&field.to_be_bytes());
            assert_eq!(
                UdpPacket::new_checked(&b[..]).unwrap_err(),
                ParseError::BadLength {
                    field: field.into(),
                    had: 48
                }
            );
        }
        // Length 8: an empty datagram is fine.
        let mut b = [0x12, 0x34, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00];
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(p.is_empty() && p.payload().is_empty());
        let r = UdpRepr {
            src_port: 0x1234,
            dst_port: 7,
            payload_len: 0,
        };
        r.emit(
            &mut UdpPacket::new_unchecked(&mut b[..]),
            LOCALHOST,
            LOCALHOST,
            true,
        );
        assert_eq!(parse(&b), Ok(r));
    }

    #[test]
    fn trailing_bytes_ignored() {
        let mut padded = DNS_QUERY.to_vec();
        padded.extend_from_slice(&[0xee; 6]);
        let p = UdpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &DNS_QUERY[8..]);
        assert_eq!(parse(&padded), parse(&DNS_QUERY));
    }

    #[test]
    fn corrupted_checksum_rejected() {
        for i in (0..DNS_QUERY.len()).filter(|i| !(4..6).contains(i)) {
            let mut bad = DNS_QUERY;
            bad[i] ^= 0x04;
            assert_eq!(parse(&bad), Err(ParseError::BadChecksum), "byte {i}");
        }
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut b = DNS_QUERY;
        b[6..8].copy_from_slice(&[0, 0]);
        assert!(parse(&b).is_ok());
        let r = parse(&DNS_QUERY).unwrap();
        let mut out = DNS_QUERY;
        r.emit(
            &mut UdpPacket::new_unchecked(&mut out[..]),
            LOCALHOST,
            LOCALHOST,
            false,
        );
        assert_eq!(out, b);
    }

    #[test]
    fn computed_zero_sent_as_all_ones() {
        // Put the checksum of the datagram into a payload word: the sum of
        // everything then is all ones and the checksum computes to zero.
        let r = UdpRepr {
            src_port: 1000,
            dst_port: 2000,
            payload_len: 4,
        };
        let mut b = [0u8; 12];
        r.emit(
            &mut UdpPacket::new_unchecked(&mut b[..]),
            LOCALHOST,
            LOCALHOST,
            true,
        );
        let c = [b[6], b[7]];
        b[8..10].copy_from_slice(&c);
        r.emit(
            &mut UdpPacket::new_unchecked(&mut b[..]),
            LOCALHOST,
            LOCALHOST,
            true,
        );
        assert_eq!(&b[6..8], &[0xff, 0xff]);
        assert_eq!(parse(&b), Ok(r));
    }

    #[test]
    fn dst_port_zero_rejected() {
        let mut b = [0x12, 0x34, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00];
        assert_eq!(
            parse(&b),
            Err(ParseError::Malformed("UDP destination port 0"))
        );
        b[3] = 1;
        assert!(parse(&b).is_ok());
        // Source port 0 is allowed (RFC 768: "optional").
        b[0] = 0;
        b[1] = 0;
        assert!(parse(&b).is_ok());
    }

    proptest! {
        #[test]
        fn round_trip(
            src_port in any::<u16>(),
            dst_port in 1..=u16::MAX,
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            fill in any::<bool>(),
            padding in 0..8usize,
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let r = UdpRepr { src_port, dst_port, payload_len: payload.len() };
            let mut buf = vec![0u8; HEADER_LEN];
            buf.extend_from_slice(&payload);
            buf.resize(buf.len() + padding, 0xa5);
            r.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst, fill);
            let p = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p, src, dst, true), Ok(r));
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(p.checksum() == 0, !fill);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            mut data in proptest::collection::vec(any::<u8>(), 0..100),
            length in any::<prop::sample::Index>(),
            plausible_length in any::<bool>(),
            verify in any::<bool>(),
        ) {
            // Random length fields are almost never in range: make half of
            // them plausible (anything up to a little past the buffer).
            if plausible_length && data.len() >= HEADER_LEN {
                let field = length.index(data.len() + 3) as u16;
                data[4..6].copy_from_slice(&field.to_be_bytes());
            }
            let _ = UdpRepr::parse(&UdpPacket::new_unchecked(&data[..]), LOCALHOST, LOCALHOST, verify);
            if let Ok(p) = UdpPacket::new_checked(&data[..]) {
                let _ = (p.src_port(), p.dst_port(), p.checksum(), p.payload(), p.is_empty());
                let _ = p.verify_checksum(LOCALHOST, LOCALHOST);
            }
        }
    }
}
