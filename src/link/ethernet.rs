//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894).
//!
//! [`Frame`] is a zero-copy view over a buffer; [`EthernetRepr`] is the
//! parsed header. The frame check sequence is not seen by software and is
//! not handled here; neither are 802.1Q tags or 802.3 length-framed frames
//! (EtherType values below 0x0600 parse as [`EtherType::Unknown`]).
//!
//! # Example
//!
//! Parse the header of a broadcast ARP frame, then emit it back:
//!
//! ```
//! use netstrata::link::ethernet::{EthernetRepr, Frame, HEADER_LEN};
//! use netstrata::link::{EtherType, EthernetAddress};
//!
//! let bytes = [
//!     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
//!     0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
//!     0x08, 0x06, // EtherType: ARP
//!     0xde, 0xad, // payload
//! ];
//! let frame = Frame::new_checked(&bytes[..])?;
//! let repr = EthernetRepr::parse(&frame)?;
//! assert_eq!(repr.dst_addr, EthernetAddress::BROADCAST);
//! assert_eq!(repr.src_addr, "02:00:00:00:00:01".parse()?);
//! assert_eq!(repr.ethertype, EtherType::Arp);
//! assert_eq!(frame.payload(), &[0xde, 0xad]);
//!
//! let mut out = [0u8; 16];
//! repr.emit(&mut Frame::new_unchecked(&mut out[..]));
//! assert_eq!(out[..HEADER_LEN], bytes[..HEADER_LEN]);
//! assert!(Frame::new_checked(&bytes[..13]).is_err()); // truncated
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::str::FromStr;

use crate::error::{ParseError, check_len};

/// A 48-bit IEEE MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// 00:00:00:00:00:00 (the "unknown" target of an ARP request).
    pub const UNSPECIFIED: EthernetAddress = EthernetAddress([0; 6]);

    /// The address from a byte slice of length 6; `None` otherwise.
    pub fn from_bytes(b: &[u8]) -> Option<EthernetAddress> {
        <[u8; 6]>::try_from(b).ok().map(EthernetAddress)
    }

    /// The six octets.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this may be used as a station's own address (unicast, not
    /// all zeros).
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::UNSPECIFIED
    }

    /// A locally administered unicast address derived from `n` (for tests
    /// and simulations): 02:00:xx:xx:xx:xx.
    pub fn local(n: u32) -> EthernetAddress {
        let b = n.to_be_bytes();
        EthernetAddress([0x02, 0x00, b[0], b[1], b[2], b[3]])
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A MAC address that could not be parsed from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets separated by ':'")]
pub struct ParseMacError(pub String);

impl FromStr for EthernetAddress {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(EthernetAddress(out))
    }
}

/// The protocol carried in a frame. Unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800
    Ipv4,
    /// 0x0806
    Arp,
    /// 0x86DD (recognised so it can be counted, not handled)
    Ipv6,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86DD => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86DD,
            EtherType::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Length of an Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Smallest frame on the wire without the FCS; shorter frames are padded.
pub const MIN_FRAME_LEN: usize = 60;

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length; accessors may panic on
    /// a short buffer. Prefer [`Frame::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after checking it holds a whole header, so that no
    /// accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, ParseError> {
        check_len(buffer.as_ref(), HEADER_LEN)?;
        Ok(Frame { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION]).unwrap_or_default()
    }

    /// Source address.
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE]).unwrap_or_default()
    }

    /// EtherType.
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Everything after the header (including any padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// Everything after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// Protocol of the payload.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<EthernetRepr, ParseError> {
        check_len(frame.buffer.as_ref(), HEADER_LEN)?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Length of the header this emits.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `frame`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A captured ARP request frame header from a Linux host.
    const GOLDEN: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06,
    ];

    #[test]
    fn golden_header() {
        let f = Frame::new_checked(&GOLDEN[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.dst_addr, EthernetAddress::BROADCAST);
        assert_eq!(r.src_addr.to_string(), "52:54:00:12:34:56");
        assert_eq!(r.ethertype, EtherType::Arp);
        let mut out = [0u8; 14];
        r.emit(&mut Frame::new_unchecked(&mut out[..]));
        assert_eq!(out, GOLDEN);
        for n in 0..HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&GOLDEN[..n]).unwrap_err(),
                ParseError::Truncated { needed: 14, had: n }
            );
        }
    }

    #[test]
    fn mac_text() {
        let m: EthernetAddress = "02:00:0a:0B:0c:ff".parse().unwrap();
        assert_eq!(m, EthernetAddress([2, 0, 10, 11, 12, 255]));
        assert!(m.is_unicast());
        for bad in [
            "",
            "02:00:0a:0b:0c",
            "02:00:0a:0b:0c:ff:01",
            "zz:00:00:00:00:00",
            "123:0:0:0:0:0",
        ] {
            assert!(bad.parse::<EthernetAddress>().is_err(), "{bad}");
        }
    }

    fn arb_repr() -> impl Strategy<Value = EthernetRepr> {
        (any::<[u8; 6]>(), any::<[u8; 6]>(), any::<u16>()).prop_map(|(s, d, t)| EthernetRepr {
            src_addr: EthernetAddress(s),
            dst_addr: EthernetAddress(d),
            ethertype: EtherType::from(t),
        })
    }

    proptest! {
        #[test]
        fn round_trip(r in arb_repr()) {
            let mut buf = [0u8; HEADER_LEN];
            r.emit(&mut Frame::new_unchecked(&mut buf[..]));
            let parsed = EthernetRepr::parse(&Frame::new_checked(&buf[..]).unwrap()).unwrap();
            prop_assert_eq!(parsed, r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = Frame::new_checked(&data[..]) {
                let _ = EthernetRepr::parse(&f);
                let _ = f.payload();
            }
        }
    }
}
