//! ARP packets for IPv4 over Ethernet (RFC 826).
//!
//! Only the Ethernet/IPv4 combination (hardware type 1, protocol type
//! 0x0800, lengths 6 and 4) is represented; other combinations parse as
//! [`ParseError::Unsupported`]. The resolution logic lives in
//! [`crate::link::arp_cache`].
//!
//! # Example
//!
//! Parse a request ("who has 192.0.2.2? tell 192.0.2.1") and emit the same
//! packet from its representation:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::link::arp::{ArpPacket, ArpRepr, Operation, PACKET_LEN};
//! use netstrata::link::EthernetAddress;
//!
//! let bytes: [u8; PACKET_LEN] = [
//!     0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet, IPv4, lengths 6 and 4
//!     0x00, 0x01, // request
//!     0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 1, // sender
//!     0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 2, // target
//! ];
//! let repr = ArpRepr::parse(&ArpPacket::new_checked(&bytes[..])?)?;
//! assert_eq!(repr.operation, Operation::Request);
//! assert_eq!(repr.source_hardware_addr, EthernetAddress::local(1));
//! assert_eq!(repr.source_protocol_addr, Ipv4Addr::new(192, 0, 2, 1));
//! assert_eq!(repr.target_protocol_addr, Ipv4Addr::new(192, 0, 2, 2));
//!
//! let mut out = [0u8; PACKET_LEN];
//! repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
//! assert_eq!(out, bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;

use crate::error::{ParseError, check_len};
use crate::link::ethernet::EthernetAddress;

/// ARP operation code. Unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1
    Request,
    /// 2
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(v: Operation) -> u16 {
        match v {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// A zero-copy view of an ARP packet (Ethernet/IPv4 layout).
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

fn ip(b: &[u8], r: core::ops::Range<usize>) -> Ipv4Addr {
    Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3])
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after checking it holds [`PACKET_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>, ParseError> {
        check_len(buffer.as_ref(), PACKET_LEN)?;
        Ok(ArpPacket { buffer })
    }

    /// Hardware type.
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE)
    }
    /// Protocol type.
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE)
    }
    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    pub fn operation(&self) -> Operation {
        Operation::from(be16(self.buffer.as_ref(), field::OPER))
    }
    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SHA]).unwrap_or_default()
    }
    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        ip(self.buffer.as_ref(), field::SPA)
    }
    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::THA]).unwrap_or_default()
    }
    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ip(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn put(&mut self, r: core::ops::Range<usize>, v: &[u8]) {
        self.buffer.as_mut()[r].copy_from_slice(v);
    }
    /// Sets the fixed Ethernet/IPv4 type and length fields.
    pub fn set_ethernet_ipv4(&mut self) {
        self.put(field::HTYPE, &HTYPE_ETHERNET.to_be_bytes());
        self.put(field::PTYPE, &PTYPE_IPV4.to_be_bytes());
        self.buffer.as_mut()[field::HLEN] = 6;
        self.buffer.as_mut()[field::PLEN] = 4;
    }
    /// Sets the operation.
    pub fn set_operation(&mut self, op: Operation) {
        self.put(field::OPER, &u16::from(op).to_be_bytes());
    }
    /// Sets the sender hardware address.
    pub fn set_sender_hardware_addr(&mut self, a: EthernetAddress) {
        self.put(field::SHA, &a.0);
    }
    /// Sets the sender protocol address.
    pub fn set_sender_protocol_addr(&mut self, a: Ipv4Addr) {
        self.put(field::SPA, &a.octets());
    }
    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, a: EthernetAddress) {
        self.put(field::THA, &a.0);
    }
    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.put(field::TPA, &a.octets());
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: Operation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a checked packet; anything but Ethernet/IPv4 is unsupported.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, ParseError> {
        check_len(packet.buffer.as_ref(), PACKET_LEN)?;
        if packet.hardware_type() != HTYPE_ETHERNET || packet.hardware_len() != 6 {
            return Err(ParseError::Unsupported("ARP hardware type"));
        }
        if packet.protocol_type() != PTYPE_IPV4 || packet.protocol_len() != 4 {
            return Err(ParseError::Unsupported("ARP protocol type"));
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.sender_hardware_addr(),
            source_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Length of the packet this emits.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into the first [`PACKET_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.source_hardware_addr);
        packet.set_sender_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // "Who has 198.18.0.2? Tell 198.18.0.1" as sent by Linux.
    const GOLDEN: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 198,
        18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2,
    ];

    #[test]
    fn golden_request() {
        let p = ArpPacket::new_checked(&GOLDEN[..]).unwrap();
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(r.operation, Operation::Request);
        assert_eq!(r.source_hardware_addr.to_string(), "52:54:00:12:34:56");
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(r.target_hardware_addr, EthernetAddress::UNSPECIFIED);
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(198, 18, 0, 2));
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, GOLDEN);
        for n in 0..PACKET_LEN {
            assert!(ArpPacket::new_checked(&GOLDEN[..n]).is_err());
        }
    }

    #[test]
    fn other_hardware_rejected() {
        let mut d = GOLDEN;
        d[1] = 6; // IEEE 802
        assert!(ArpRepr::parse(&ArpPacket::new_unchecked(&d[..])).is_err());
        let mut d = GOLDEN;
        d[5] = 16; // IPv6-sized protocol addresses
        assert!(ArpRepr::parse(&ArpPacket::new_unchecked(&d[..])).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<[u8; 4]>(), tha in any::<[u8; 6]>(), tpa in any::<[u8; 4]>()) {
            let r = ArpRepr {
                operation: Operation::from(op),
                source_hardware_addr: EthernetAddress(sha),
                source_protocol_addr: Ipv4Addr::from(spa),
                target_hardware_addr: EthernetAddress(tha),
                target_protocol_addr: Ipv4Addr::from(tpa),
            };
            let mut buf = [0u8; PACKET_LEN];
            r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = ArpPacket::new_checked(&data[..]) {
                let _ = ArpRepr::parse(&p);
            }
        }
    }
}
