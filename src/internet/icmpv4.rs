//! ICMP for IPv4 (RFC 792), as required of hosts by RFC 1122 §3.2.2.
//!
//! [`Icmpv4Packet`] is a zero-copy view over an ICMP message (the IPv4
//! payload); [`Icmpv4Repr`] is the parsed message. The messages this stack
//! acts on are interpreted: echo request and reply (RFC 792 p.14), destination
//! unreachable (RFC 792 p.4, with the next-hop MTU of RFC 1191 §4 for
//! "fragmentation needed") and time exceeded (RFC 792 p.6). Every other
//! message parses as [`Icmpv4Repr::Other`], kept raw so that it survives a
//! round trip.
//!
//! An error message quotes the datagram that caused it (the "invoking"
//! datagram: its IPv4 header and the first bytes of its payload). The quote
//! is kept as raw bytes; [`quoted_addrs_and_ports`] reads the few fields a
//! transport layer needs to find the socket concerned, defensively, since
//! the quote comes from the network. When sending an error, quote as much
//! of the invoking datagram as fits in 576 bytes (RFC 1812 §4.3.2.3, which
//! RFC 1122 §3.2.2 allows: "at least the first 8 data octets"), i.e. at
//! most [`MAX_QUOTE`] bytes; [`Icmpv4Repr::dst_unreachable`] and
//! [`Icmpv4Repr::time_exceeded`] clip to that.
//!
//! Deliberately not here: the policy of when to send or not send an error
//! (RFC 1122 §3.2.2: never about an ICMP error, a broadcast, a non-initial
//! fragment...), which belongs to the IPv4 layer; the extension structures
//! of RFC 4884 (the length byte is ignored and emitted as zero); timestamp,
//! address-mask and router-discovery messages (parsed as `Other`).
//!
//! # Example
//!
//! Parse an echo request, emit its reply, and read the socket an error is
//! about from the datagram it quotes:
//!
//! ```
//! use netstrata::internet::icmpv4::{
//!     DstUnreachable, Icmpv4Packet, Icmpv4Repr, quoted_addrs_and_ports,
//! };
//!
//! let request = [8, 0, 0x8f, 0x93, 0x00, 0x01, 0x00, 0x02, b'h', b'i'];
//! let repr = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&request[..])?, true)?;
//! assert!(matches!(repr, Icmpv4Repr::EchoRequest { ident: 1, seq_no: 2, data: b"hi" }));
//!
//! let reply = repr.echo_reply().unwrap();
//! let mut out = vec![0; reply.buffer_len()];
//! reply.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), true);
//! assert_eq!(out, [0, 0, 0x97, 0x93, 0x00, 0x01, 0x00, 0x02, b'h', b'i']);
//!
//! // A port unreachable quoting a UDP datagram from 192.0.2.1:5353 to 192.0.2.2:53.
//! let mut quoted = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
//! quoted.extend_from_slice(&[0x14, 0xe9, 0, 53, 0, 8, 0, 0]);
//! let error = Icmpv4Repr::dst_unreachable(DstUnreachable::PortUnreachable, 0, &quoted);
//! let about = quoted_addrs_and_ports(error.invoking().unwrap()).unwrap();
//! assert_eq!((about.protocol, about.src_port, about.dst_port), (17, 5353, 53));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;

use crate::checksum::checksum;
use crate::error::{ParseError, check_len};

/// The type of an ICMP message (RFC 792). Unknown values survive a round
/// trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    /// 0: echo reply.
    EchoReply,
    /// 3: destination unreachable.
    DstUnreachable,
    /// 5: redirect.
    Redirect,
    /// 8: echo request.
    EchoRequest,
    /// 11: time exceeded.
    TimeExceeded,
    /// 12: parameter problem.
    ParamProblem,
    /// Anything else (source quench, timestamp, ...).
    Unknown(u8),
}

impl Icmpv4Message {
    /// Whether this is an ICMP error message (RFC 1122 §3.2.2: destination
    /// unreachable, redirect, source quench, time exceeded, parameter
    /// problem). No ICMP error is ever sent about one of these.
    pub fn is_error(self) -> bool {
        matches!(u8::from(self), 3 | 4 | 5 | 11 | 12)
    }
}

impl From<u8> for Icmpv4Message {
    fn from(v: u8) -> Self {
        match v {
            0 => Icmpv4Message::EchoReply,
            3 => Icmpv4Message::DstUnreachable,
            5 => Icmpv4Message::Redirect,
            8 => Icmpv4Message::EchoRequest,
            11 => Icmpv4Message::TimeExceeded,
            12 => Icmpv4Message::ParamProblem,
            other => Icmpv4Message::Unknown(other),
        }
    }
}

impl From<Icmpv4Message> for u8 {
    fn from(v: Icmpv4Message) -> u8 {
        match v {
            Icmpv4Message::EchoReply => 0,
            Icmpv4Message::DstUnreachable => 3,
            Icmpv4Message::Redirect => 5,
            Icmpv4Message::EchoRequest => 8,
            Icmpv4Message::TimeExceeded => 11,
            Icmpv4Message::ParamProblem => 12,
            Icmpv4Message::Unknown(other) => other,
        }
    }
}

/// The code of a destination-unreachable message (RFC 792 p.4, RFC 1122
/// §3.2.2.1, RFC 1812 §5.2.7.1). Unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: net unreachable.
    NetUnreachable,
    /// 1: host unreachable.
    HostUnreachable,
    /// 2: protocol unreachable.
    ProtoUnreachable,
    /// 3: port unreachable.
    PortUnreachable,
    /// 4: fragmentation needed and DF set (the message carries the next-hop
    /// MTU, RFC 1191 §4).
    FragRequired,
    /// 5: source route failed.
    SrcRouteFailed,
    /// 6: destination network unknown.
    DstNetUnknown,
    /// 7: destination host unknown.
    DstHostUnknown,
    /// 8: source host isolated.
    SrcHostIsolated,
    /// 9: communication with the destination network administratively
    /// prohibited.
    NetProhibited,
    /// 10: communication with the destination host administratively
    /// prohibited.
    HostProhibited,
    /// 11: network unreachable for the type of service.
    NetUnreachableTos,
    /// 12: host unreachable for the type of service.
    HostUnreachableTos,
    /// 13: communication administratively prohibited (RFC 1812).
    CommProhibited,
    /// 14: host precedence violation (RFC 1812).
    HostPrecedenceViolation,
    /// 15: precedence cutoff in effect (RFC 1812).
    PrecedenceCutoff,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for DstUnreachable {
    fn from(v: u8) -> Self {
        use DstUnreachable::*;
        match v {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtoUnreachable,
            3 => PortUnreachable,
            4 => FragRequired,
            5 => SrcRouteFailed,
            6 => DstNetUnknown,
            7 => DstHostUnknown,
            8 => SrcHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachableTos,
            12 => HostUnreachableTos,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            other => Unknown(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(v: DstUnreachable) -> u8 {
        use DstUnreachable::*;
        match v {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtoUnreachable => 2,
            PortUnreachable => 3,
            FragRequired => 4,
            SrcRouteFailed => 5,
            DstNetUnknown => 6,
            DstHostUnknown => 7,
            SrcHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachableTos => 11,
            HostUnreachableTos => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
            Unknown(other) => other,
        }
    }
}

/// The code of a time-exceeded message (RFC 792 p.6). Unknown values
/// survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: time to live exceeded in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragReassemblyExceeded,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for TimeExceeded {
    fn from(v: u8) -> Self {
        match v {
            0 => TimeExceeded::TtlExpired,
            1 => TimeExceeded::FragReassemblyExceeded,
            other => TimeExceeded::Unknown(other),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(v: TimeExceeded) -> u8 {
        match v {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragReassemblyExceeded => 1,
            TimeExceeded::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// The second 32-bit word, whose meaning depends on the type.
    pub const REST_OF_HEADER: Range<usize> = 4..8;
    /// Echo request / reply (RFC 792 p.14).
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo request / reply (RFC 792 p.14).
    pub const ECHO_SEQ_NO: Range<usize> = 6..8;
    /// Destination unreachable, code 4 (RFC 1191 §4).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// Parameter problem (RFC 792 p.8).
    pub const POINTER: usize = 4;
    /// Redirect (RFC 792 p.12).
    pub const GATEWAY: Range<usize> = 4..8;
    pub const DATA: usize = 8;
}

/// Length of the ICMP header (type, code, checksum, and the 4-byte rest of
/// header).
pub const HEADER_LEN: usize = field::DATA;

/// The most bytes of an invoking datagram that an error message quotes: as
/// much as keeps the error within 576 bytes (RFC 1812 §4.3.2.3), given a
/// 20-byte IPv4 header and the 8-byte ICMP header in front of the quote.
pub const MAX_QUOTE: usize = 576 - 20 - HEADER_LEN;

/// A zero-copy view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on
    /// a short buffer. Prefer [`Icmpv4Packet::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after checking it holds a whole header, so that no
    /// accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>, ParseError> {
        check_len(buffer.as_ref(), HEADER_LEN)?;
        Ok(Icmpv4Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code (its meaning depends on the type).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        self.u16_at(field::ECHO_SEQ_NO)
    }

    /// The next-hop MTU of a "fragmentation needed" message (RFC 1191 §4);
    /// zero from routers that predate RFC 1191.
    pub fn next_hop_mtu(&self) -> u16 {
        self.u16_at(field::NEXT_HOP_MTU)
    }

    /// The octet at which a parameter problem was found (RFC 792 p.8).
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// The gateway address of a redirect (RFC 792 p.12).
    pub fn gateway(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::GATEWAY];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The second 32-bit word of the header, whatever it means for this
    /// type.
    pub fn rest_of_header(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::REST_OF_HEADER];
        [b[0], b[1], b[2], b[3]]
    }

    /// Everything after the header: echo data, or the quoted invoking
    /// datagram of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// Whether the checksum over the whole buffer (the whole message)
    /// verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn set_u16_at(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, t: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = u8::from(t);
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16_at(field::CHECKSUM, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_u16_at(field::ECHO_IDENT, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set_u16_at(field::ECHO_SEQ_NO, v);
    }

    /// Sets the next-hop MTU of a "fragmentation needed" message.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.set_u16_at(field::NEXT_HOP_MTU, v);
    }

    /// Sets the whole second 32-bit word of the header.
    pub fn set_rest_of_header(&mut self, v: [u8; 4]) {
        self.buffer.as_mut()[field::REST_OF_HEADER].copy_from_slice(&v);
    }

    /// Everything after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Computes the checksum over the whole buffer and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The fields of an invoking datagram quoted in an ICMP error that a
/// transport layer needs to find the connection concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedDatagram<'a> {
    /// Source address of the invoking datagram (normally this host).
    pub src_addr: Ipv4Addr,
    /// Destination address of the invoking datagram.
    pub dst_addr: Ipv4Addr,
    /// Its IP protocol number (6 TCP, 17 UDP, ...).
    pub protocol: u8,
    /// The first 16 bits of its payload: the source port for UDP and TCP.
    pub src_port: u16,
    /// The next 16 bits: the destination port for UDP and TCP.
    pub dst_port: u16,
    /// The quoted start of its payload (at least 8 bytes; for TCP this
    /// holds the sequence number, which RFC 5927 §4.1 says to check).
    pub transport: &'a [u8],
}

/// Reads the addresses, protocol and ports of the invoking datagram quoted
/// in an ICMP error (RFC 792: "Internet Header + 64 bits of Original Data
/// Datagram").
///
/// `None` unless the quote is a plausible IPv4 header (version 4, header
/// length at least 20 bytes and all present) followed by at least 8 bytes
/// of payload, from a first fragment (a later fragment carries no transport
/// header). The quoted checksums are not verified: the sender may have
/// left them to offload, and a router may have rewritten fields.
pub fn quoted_addrs_and_ports(invoking: &[u8]) -> Option<QuotedDatagram<'_>> {
    const MIN_IPV4_HEADER: usize = 20;
    if invoking.len() < MIN_IPV4_HEADER {
        return None;
    }
    let version = invoking[0] >> 4;
    let header_len = usize::from(invoking[0] & 0x0f) * 4;
    if version != 4 || header_len < MIN_IPV4_HEADER {
        return None;
    }
    let fragment_offset = u16::from_be_bytes([invoking[6], invoking[7]]) & 0x1fff;
    if fragment_offset != 0 {
        return None;
    }
    // The quote may be clipped below the total length, and may carry
    // link padding past it; keep what is both quoted and in the datagram.
    let total_len = usize::from(u16::from_be_bytes([invoking[2], invoking[3]]));
    let end = total_len.min(invoking.len());
    if end < header_len + 8 {
        return None;
    }
    let transport = &invoking[header_len..end];
    let addr = |at: usize| {
        Ipv4Addr::new(
            invoking[at],
            invoking[at + 1],
            invoking[at + 2],
            invoking[at + 3],
        )
    };
    Some(QuotedDatagram {
        src_addr: addr(12),
        dst_addr: addr(16),
        protocol: invoking[9],
        src_port: u16::from_be_bytes([transport[0], transport[1]]),
        dst_port: u16::from_be_bytes([transport[2], transport[3]]),
        transport,
    })
}

/// A parsed ICMPv4 message.
///
/// Data and quotes borrow from the buffer parsed; [`Icmpv4Repr::emit`]
/// copies them into the buffer emitted into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8, code 0; RFC 792 p.14).
    EchoRequest {
        /// Identifier (matches replies to requests, like a port).
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, returned unchanged in the reply (RFC 1122 §3.2.2.6).
        data: &'a [u8],
    },
    /// Echo reply (type 0, code 0; RFC 792 p.14).
    EchoReply {
        /// Identifier of the request.
        ident: u16,
        /// Sequence number of the request.
        seq_no: u16,
        /// Data of the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3; RFC 792 p.4).
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// The next-hop MTU for [`DstUnreachable::FragRequired`] (RFC 1191
        /// §4); the field is unused, and zero when sent, for other codes.
        next_hop_mtu: u16,
        /// The quoted invoking datagram: its IPv4 header and the start of
        /// its payload. See [`quoted_addrs_and_ports`].
        invoking: &'a [u8],
    },
    /// Time exceeded (type 11; RFC 792 p.6).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted invoking datagram.
        invoking: &'a [u8],
    },
    /// Any other message (or code), kept raw: redirect, parameter problem,
    /// an echo with a nonzero code, unknown types.
    Other {
        /// The type.
        msg_type: Icmpv4Message,
        /// The code.
        code: u8,
        /// The second 32-bit word of the header.
        rest_of_header: [u8; 4],
        /// Everything after the header.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses and validates a message: the buffer must hold at least the
    /// header, and, when `verify_checksum` is true, the checksum over the
    /// whole buffer (RFC 792: "the ICMP message starting with the ICMP
    /// Type") must verify. The buffer must be exactly the message (the
    /// IPv4 payload, trimmed to the IPv4 total length).
    ///
    /// Echo messages with a nonzero code and types other than echo,
    /// destination unreachable and time exceeded parse as
    /// [`Icmpv4Repr::Other`]. The quote of an error is not validated here
    /// (see [`quoted_addrs_and_ports`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        verify_checksum: bool,
    ) -> Result<Icmpv4Repr<'a>, ParseError> {
        let buffer: &'a T = packet.buffer;
        let buf: &'a [u8] = buffer.as_ref();
        check_len(buf, HEADER_LEN)?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(ParseError::BadChecksum);
        }
        let data = &buf[field::DATA..];
        let code = packet.msg_code();
        Ok(match (packet.msg_type(), code) {
            (Icmpv4Message::EchoRequest, 0) => Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            (Icmpv4Message::EchoReply, 0) => Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            (Icmpv4Message::DstUnreachable, code) => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::from(code),
                next_hop_mtu: packet.next_hop_mtu(),
                invoking: data,
            },
            (Icmpv4Message::TimeExceeded, code) => Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::from(code),
                invoking: data,
            },
            (msg_type, code) => Icmpv4Repr::Other {
                msg_type,
                code,
                rest_of_header: packet.rest_of_header(),
                data,
            },
        })
    }

    /// A destination-unreachable error about `invoking` (the invoking
    /// datagram from its IPv4 header on, trimmed to its total length),
    /// quoting at most [`MAX_QUOTE`] bytes of it. `next_hop_mtu` should be
    /// zero unless `reason` is [`DstUnreachable::FragRequired`].
    pub fn dst_unreachable(
        reason: DstUnreachable,
        next_hop_mtu: u16,
        invoking: &'a [u8],
    ) -> Icmpv4Repr<'a> {
        Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            invoking: &invoking[..invoking.len().min(MAX_QUOTE)],
        }
    }

    /// A time-exceeded error about `invoking`, quoting at most
    /// [`MAX_QUOTE`] bytes of it.
    pub fn time_exceeded(reason: TimeExceeded, invoking: &'a [u8]) -> Icmpv4Repr<'a> {
        Icmpv4Repr::TimeExceeded {
            reason,
            invoking: &invoking[..invoking.len().min(MAX_QUOTE)],
        }
    }

    /// The reply to an echo request: the same identifier, sequence number
    /// and data (RFC 1122 §3.2.2.6). `None` for any other message.
    pub fn echo_reply(&self) -> Option<Icmpv4Repr<'a>> {
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => Some(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            _ => None,
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        match self {
            Icmpv4Repr::EchoRequest { .. } => Icmpv4Message::EchoRequest,
            Icmpv4Repr::EchoReply { .. } => Icmpv4Message::EchoReply,
            Icmpv4Repr::DstUnreachable { .. } => Icmpv4Message::DstUnreachable,
            Icmpv4Repr::TimeExceeded { .. } => Icmpv4Message::TimeExceeded,
            Icmpv4Repr::Other { msg_type, .. } => *msg_type,
        }
    }

    /// The message code.
    pub fn code(&self) -> u8 {
        match self {
            Icmpv4Repr::EchoRequest { .. } | Icmpv4Repr::EchoReply { .. } => 0,
            Icmpv4Repr::DstUnreachable { reason, .. } => u8::from(*reason),
            Icmpv4Repr::TimeExceeded { reason, .. } => u8::from(*reason),
            Icmpv4Repr::Other { code, .. } => *code,
        }
    }

    /// The quoted invoking datagram of a destination-unreachable or
    /// time-exceeded error.
    pub fn invoking(&self) -> Option<&'a [u8]> {
        match *self {
            Icmpv4Repr::DstUnreachable { invoking, .. }
            | Icmpv4Repr::TimeExceeded { invoking, .. } => Some(invoking),
            _ => None,
        }
    }

    /// What follows the header: echo data, a quote, or raw data.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::Other { data, .. } => data,
            Icmpv4Repr::DstUnreachable { invoking, .. }
            | Icmpv4Repr::TimeExceeded { invoking, .. } => invoking,
        }
    }

    /// Length of the header: always [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole message [`Icmpv4Repr::emit`] writes: header and
    /// data.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the whole message (header and a copy of the data) into the
    /// first [`Icmpv4Repr::buffer_len`] bytes of `packet`, and the checksum
    /// over those bytes when `fill_checksum` is true (zero otherwise, for a
    /// device that offloads it). Unused header fields are written as zero.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`Icmpv4Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv4Packet<T>,
        fill_checksum: bool,
    ) {
        let len = self.buffer_len();
        let buf = &mut packet.buffer.as_mut()[..len];
        let mut p = Icmpv4Packet::new_unchecked(&mut *buf);
        p.set_msg_type(self.msg_type());
        p.set_msg_code(self.code());
        p.set_checksum(0);
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable { next_hop_mtu, .. } => {
                p.set_rest_of_header([0; 4]);
                p.set_next_hop_mtu(next_hop_mtu);
            }
            Icmpv4Repr::TimeExceeded { .. } => p.set_rest_of_header([0; 4]),
            Icmpv4Repr::Other { rest_of_header, .. } => p.set_rest_of_header(rest_of_header),
        }
        p.data_mut().copy_from_slice(self.data());
        if fill_checksum {
            p.fill_checksum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on Linux 6.x loopback: `ping -c1 127.0.0.1` (iputils
    // 20221126) sends ident 0x191f, seq 1, and 56 bytes of data: a 16-byte
    // struct timeval (little-endian tv_sec, tv_usec) then bytes 0x10..=0x37
    // (each byte is its offset in the data).
    const ECHO_REQUEST: [u8; 64] = [
        0x08, 0x00, 0xc3, 0xb7, 0x19, 0x1f, 0x00, 0x01, 0xe3, 0x20, 0x07, 0x6b, //
        0x00, 0x00, 0x00, 0x00, 0x71, 0xc9, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, //
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, //
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, //
        0x34, 0x35, 0x36, 0x37,
    ];

    // The kernel's reply to it, from the same capture.
    const ECHO_REPLY: [u8; 64] = [
        0x00, 0x00, 0xcb, 0xb7, 0x19, 0x1f, 0x00, 0x01, 0xe3, 0x20, 0x07, 0x6b, //
        0x00, 0x00, 0x00, 0x00, 0x71, 0xc9, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, //
        0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, //
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, //
        0x34, 0x35, 0x36, 0x37,
    ];

    // Captured on Linux loopback: the kernel's port unreachable for a DNS
    // query (example.com A, with an EDNS OPT record) sent from
    // 127.0.0.1:40000 to 127.0.0.1:53 where nothing listens. It quotes the
    // whole 68-byte datagram. The quoted UDP checksum (0xfe43) is only the
    // pseudo-header sum: loopback leaves UDP checksums to "offload".
    const PORT_UNREACHABLE: [u8; 76] = [
        0x03, 0x03, 0x68, 0x30, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x44, //
        0x6d, 0x22, 0x40, 0x00, 0x40, 0x11, 0xcf, 0x84, 0x7f, 0x00, 0x00, 0x01, //
        0x7f, 0x00, 0x00, 0x01, 0x9c, 0x40, 0x00, 0x35, 0x00, 0x30, 0xfe, 0x43, //
        0x1a, 0x2b, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, //
        0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00,
    ];

    fn parse(buf: &[u8]) -> Result<Icmpv4Repr<'_>, ParseError> {
        Icmpv4Repr::parse(&Icmpv4Packet::new_checked(buf)?, true)
    }

    fn emit(r: &Icmpv4Repr<'_>) -> Vec<u8> {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), true);
        out
    }

    #[test]
    fn golden_echo_request_and_reply() {
        let p = Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0xc3b7);
        assert!(p.verify_checksum());
        let r = parse(&ECHO_REQUEST).unwrap();
        let Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = r
        else {
            panic!("not an echo request: {r:?}");
        };
        assert_eq!((ident, seq_no, data.len()), (0x191f, 1, 56));
        for (i, b) in data.iter().enumerate().skip(16) {
            assert_eq!(usize::from(*b), i);
        }
        assert_eq!(r.buffer_len(), 64);
        assert_eq!(emit(&r), ECHO_REQUEST);

        let reply = r.echo_reply().unwrap();
        assert_eq!(emit(&reply), ECHO_REPLY);
        assert_eq!(parse(&ECHO_REPLY).unwrap(), reply);
        assert_eq!(reply.echo_reply(), None);
    }

    #[test]
    fn golden_port_unreachable() {
        let p = Icmpv4Packet::new_checked(&PORT_UNREACHABLE[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::DstUnreachable);
        assert!(p.msg_type().is_error());
        assert_eq!(p.checksum(), 0x6830);
        let r = parse(&PORT_UNREACHABLE).unwrap();
        assert_eq!(
            r,
            Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::PortUnreachable,
                next_hop_mtu: 0,
                invoking: &PORT_UNREACHABLE[8..],
            }
        );
        let q = quoted_addrs_and_ports(r.invoking().unwrap()).unwrap();
        assert_eq!(q.src_addr, Ipv4Addr::LOCALHOST);
        assert_eq!(q.dst_addr, Ipv4Addr::LOCALHOST);
        assert_eq!(q.protocol, 17);
        assert_eq!((q.src_port, q.dst_port), (40000, 53));
        assert_eq!(q.transport.len(), 48);
        assert_eq!(emit(&r), PORT_UNREACHABLE);
        // Built as a sender would, from the invoking datagram.
        let built =
            Icmpv4Repr::dst_unreachable(DstUnreachable::PortUnreachable, 0, &PORT_UNREACHABLE[8..]);
        assert_eq!(emit(&built), PORT_UNREACHABLE);
    }

    #[test]
    fn every_truncation_rejected() {
        for golden in [&ECHO_REQUEST[..], &ECHO_REPLY[..], &PORT_UNREACHABLE[..]] {
            for n in 0..HEADER_LEN {
                assert_eq!(
                    Icmpv4Packet::new_checked(&golden[..n]).unwrap_err(),
                    ParseError::Truncated {
                        needed: HEADER_LEN,
                        had: n
                    }
                );
                // parse checks too, even on an unchecked view.
                assert!(
                    Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&golden[..n]), false).is_err()
                );
            }
            // ICMP has no length field: the checksum catches the rest, except
            // where only trailing zero bytes were cut (they add nothing to
            // the sum), which no receiver can tell.
            for n in HEADER_LEN..golden.len() {
                if golden[n..].iter().all(|&b| b == 0) {
                    assert!(parse(&golden[..n]).is_ok(), "{n}");
                } else {
                    assert_eq!(parse(&golden[..n]), Err(ParseError::BadChecksum), "{n}");
                }
            }
        }
    }

    #[test]
    fn corrupted_checksum_rejected() {
        for golden in [&ECHO_REQUEST[..], &ECHO_REPLY[..], &PORT_UNREACHABLE[..]] {
            for i in 0..golden.len() {
                let mut bad = golden.to_vec();
                bad[i] ^= 0x01;
                assert_eq!(parse(&bad), Err(ParseError::BadChecksum), "byte {i}");
                // Without verification (checksum offloaded) it parses.
                let p = Icmpv4Packet::new_checked(&bad[..]).unwrap();
                assert!(Icmpv4Repr::parse(&p, false).is_ok());
            }
        }
    }

    #[test]
    fn checksum_not_filled_is_zero() {
        let r = parse(&ECHO_REQUEST).unwrap();
        let mut out = [0xaa; 64];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), false);
        assert_eq!(&out[2..4], &[0, 0]);
        assert_eq!(&out[4..], &ECHO_REQUEST[4..]);
    }

    #[test]
    fn large_echo() {
        // An echo of a 4000-byte ping (fragmented on the wire, reassembled
        // before it gets here).
        let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        let req = Icmpv4Repr::EchoRequest {
            ident: 7,
            seq_no: 9,
            data: &data,
        };
        let wire = emit(&req);
        assert_eq!(wire.len(), 4008);
        let parsed = parse(&wire).unwrap();
        assert_eq!(parsed, req);
        let reply = emit(&parsed.echo_reply().unwrap());
        assert_eq!(reply[0], 0);
        assert_eq!(&reply[4..], &wire[4..]);
    }

    #[test]
    fn frag_required_carries_mtu() {
        let quote = &PORT_UNREACHABLE[8..];
        let r = Icmpv4Repr::dst_unreachable(DstUnreachable::FragRequired, 1400, quote);
        let wire = emit(&r);
        assert_eq!(&wire[..2], &[3, 4]);
        assert_eq!(&wire[4..8], &[0, 0, 0x05, 0x78]);
        let p = Icmpv4Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(parse(&wire).unwrap(), r);
    }

    #[test]
    fn time_exceeded_round_trip() {
        let quote = &PORT_UNREACHABLE[8..];
        let r = Icmpv4Repr::time_exceeded(TimeExceeded::TtlExpired, quote);
        let wire = emit(&r);
        assert_eq!(&wire[..2], &[11, 0]);
        assert_eq!(&wire[4..8], &[0; 4]);
        assert_eq!(parse(&wire).unwrap(), r);
        // Unused bytes are ignored on receive.
        let mut odd = wire.clone();
        odd[4] = 0xff;
        let mut p = Icmpv4Packet::new_unchecked(&mut odd[..]);
        p.fill_checksum();
        assert_eq!(parse(&odd).unwrap(), r);
    }

    #[test]
    fn quotes_are_clipped() {
        let big = vec![0x45; 1400];
        let r = Icmpv4Repr::dst_unreachable(DstUnreachable::HostUnreachable, 0, &big);
        assert_eq!(r.invoking().unwrap().len(), MAX_QUOTE);
        assert_eq!(r.buffer_len() + 20, 576);
        let r = Icmpv4Repr::time_exceeded(TimeExceeded::FragReassemblyExceeded, &big[..30]);
        assert_eq!(r.invoking().unwrap().len(), 30);
    }

    #[test]
    fn other_messages_kept_raw() {
        // A redirect to 10.0.0.1 (type 5 code 1), an echo with code 3, and
        // a timestamp request (type 13).
        for (t, code, rest) in [
            (5, 1, [10, 0, 0, 1]),
            (8, 3, [0, 1, 0, 2]),
            (13, 0, [1, 2, 3, 4]),
        ] {
            let r = Icmpv4Repr::Other {
                msg_type: Icmpv4Message::from(t),
                code,
                rest_of_header: rest,
                data: &[1, 2, 3],
            };
            let wire = emit(&r);
            assert_eq!(wire[0], t);
            assert_eq!(parse(&wire).unwrap(), r);
        }
        let p = Icmpv4Packet::new_unchecked(&[5u8, 1, 0, 0, 10, 0, 0, 1][..]);
        assert_eq!(p.gateway(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.pointer(), 10);
    }

    #[test]
    fn quote_parsing_is_defensive() {
        let quote = &PORT_UNREACHABLE[8..];
        // Every truncation below header + 8 bytes is refused.
        for n in 0..28 {
            assert_eq!(quoted_addrs_and_ports(&quote[..n]), None, "{n}");
        }
        let q = quoted_addrs_and_ports(&quote[..28]).unwrap();
        assert_eq!((q.src_port, q.dst_port, q.transport.len()), (40000, 53, 8));
        // Link padding past the total length is not part of the transport.
        let mut padded = quote.to_vec();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(quoted_addrs_and_ports(&padded).unwrap().transport.len(), 48);

        let mutate = |i: usize, v: u8| {
            let mut b = quote.to_vec();
            b[i] = v;
            quoted_addrs_and_ports(&b).map(|q| q.dst_port)
        };
        assert_eq!(mutate(0, 0x65), None); // version 6
        assert_eq!(mutate(0, 0x44), None); // IHL 4
        assert_eq!(mutate(0, 0x4f), Some(0)); // IHL 15: 60 + 8 fits exactly
        let mut long_header = quote.to_vec();
        long_header[0] = 0x4f;
        assert_eq!(quoted_addrs_and_ports(&long_header[..67]), None);
        assert_eq!(mutate(0, 0x46), Some(0xfe43)); // IHL 6: ports shift
        assert_eq!(mutate(7, 0x01), None); // non-initial fragment
        assert_eq!(mutate(3, 27), None); // total length 27 < 20 + 8
        assert_eq!(mutate(6, 0x20), Some(53)); // MF alone is fine
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    /// Reprs with owned data; `Other` only for types parse leaves raw.
    #[derive(Debug, Clone)]
    enum Owned {
        Echo(bool, u16, u16, Vec<u8>),
        Unreachable(u8, u16, Vec<u8>),
        Exceeded(u8, Vec<u8>),
        Other(u8, u8, [u8; 4], Vec<u8>),
    }

    impl Owned {
        fn repr(&self) -> Icmpv4Repr<'_> {
            match self {
                Owned::Echo(true, ident, seq_no, data) => Icmpv4Repr::EchoRequest {
                    ident: *ident,
                    seq_no: *seq_no,
                    data,
                },
                Owned::Echo(false, ident, seq_no, data) => Icmpv4Repr::EchoReply {
                    ident: *ident,
                    seq_no: *seq_no,
                    data,
                },
                Owned::Unreachable(code, mtu, q) => Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::from(*code),
                    next_hop_mtu: *mtu,
                    invoking: q,
                },
                Owned::Exceeded(code, q) => Icmpv4Repr::TimeExceeded {
                    reason: TimeExceeded::from(*code),
                    invoking: q,
                },
                Owned::Other(t, code, rest, data) => Icmpv4Repr::Other {
                    msg_type: Icmpv4Message::from(*t),
                    code: *code,
                    rest_of_header: *rest,
                    data,
                },
            }
        }
    }

    fn arb_repr() -> impl Strategy<Value = Owned> {
        prop_oneof![
            (any::<bool>(), any::<u16>(), any::<u16>(), arb_bytes(2000))
                .prop_map(|(q, i, s, d)| Owned::Echo(q, i, s, d)),
            (any::<u8>(), any::<u16>(), arb_bytes(MAX_QUOTE + 1))
                .prop_map(|(c, m, q)| Owned::Unreachable(c, m, q)),
            (any::<u8>(), arb_bytes(MAX_QUOTE + 1)).prop_map(|(c, q)| Owned::Exceeded(c, q)),
            (
                any::<u8>().prop_filter("interpreted type", |t| ![3, 11].contains(t)),
                any::<u8>(),
                any::<[u8; 4]>(),
                arb_bytes(100)
            )
                .prop_filter("echo with code 0 is interpreted", |(t, c, _, _)| {
                    !([0, 8].contains(t) && *c == 0)
                })
                .prop_map(|(t, c, r, d)| Owned::Other(t, c, r, d)),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(o in arb_repr()) {
            let r = o.repr();
            let wire = emit(&r);
            prop_assert_eq!(wire.len(), r.buffer_len());
            prop_assert_eq!(parse(&wire).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in arb_bytes(700), verify in any::<bool>()) {
            let _ = quoted_addrs_and_ports(&data);
            let _ = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&data[..]), verify);
            if let Ok(p) = Icmpv4Packet::new_checked(&data[..]) {
                let _ = (p.echo_ident(), p.echo_seq_no(), p.next_hop_mtu(), p.gateway());
                let _ = (p.pointer(), p.rest_of_header(), p.data(), p.checksum());
                if let Ok(r) = Icmpv4Repr::parse(&p, verify) {
                    if let Some(q) = r.invoking() {
                        let _ = quoted_addrs_and_ports(q);
                    }
                    // Whatever parses emits back to the same bytes, except
                    // unused fields of errors.
                    let wire = emit(&r);
                    prop_assert_eq!(wire.len(), data.len());
                    prop_assert_eq!(&wire[8..], &data[8..]);
                }
            }
        }
    }
}
