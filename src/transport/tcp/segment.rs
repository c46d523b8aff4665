//! TCP segments: the header wire format (RFC 9293 §3.1) and the options
//! this stack speaks: maximum segment size (RFC 9293 §3.2, §3.7.1), window
//! scale and timestamps (RFC 7323 §2, §3), SACK-permitted and SACK blocks
//! (RFC 2018 §2, §3).
//!
//! [`TcpPacket`] is a zero-copy view over a segment (header and payload);
//! [`TcpOptions`] walks its options without allocating; [`TcpRepr`] is the
//! parsed header, options included. The checksum covers the IPv4
//! pseudo-header (RFC 9293 §3.1) and the whole segment.
//!
//! [`TcpRepr::emit`] lays options out exactly as Linux does
//! (`tcp_options_write`), so that captures of this stack read like captures
//! of Linux: `MSS, SACK_PERM, TS, NOP, WSCALE` on a SYN
//! (`02 04 .. .. 04 02 08 0a .. 01 03 03 ..`) and `NOP, NOP, TS` then
//! `NOP, NOP, SACK` on other segments. Every layout is a multiple of four
//! bytes, so no end-of-list padding is ever needed.
//!
//! Deliberately not here: what the fields *mean* to a connection (the state
//! machine decides, e.g., whether an MSS on a non-SYN segment matters, and
//! clamps a window scale above 14 per RFC 7323 §2.3); IPv6 pseudo-headers;
//! TCP-MD5 and TCP-AO (RFC 5925), Fast Open cookies (RFC 7413) and multipath
//! options, which parse as [`TcpOption::Unknown`] and are skipped; ECN
//! negotiation (CWR and ECE are carried as flags only).
//!
//! # Example
//!
//! A SYN with every option this stack speaks, laid out as Linux lays it
//! out, and parsed back:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::transport::tcp::seq::SeqNumber;
//! use netstrata::transport::tcp::segment::{TcpFlags, TcpPacket, TcpRepr};
//!
//! let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
//! let syn = TcpRepr {
//!     src_port: 49152,
//!     dst_port: 80,
//!     seq_number: SeqNumber(1000),
//!     flags: TcpFlags::SYN,
//!     window_len: 65535,
//!     max_seg_size: Some(1460),
//!     window_scale: Some(7),
//!     sack_permitted: true,
//!     timestamp: Some((1, 0)),
//!     ..TcpRepr::default()
//! };
//! assert_eq!(syn.header_len(), 40);
//! let mut bytes = vec![0; syn.buffer_len()];
//! syn.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), src, dst, true);
//! // MSS, SACK_PERM, TS, NOP, WSCALE
//! assert_eq!(bytes[20..24], [2, 4, 0x05, 0xb4]);
//! assert_eq!(bytes[24..28], [4, 2, 8, 10]);
//! assert_eq!(bytes[36..40], [1, 3, 3, 7]);
//!
//! let packet = TcpPacket::new_checked(&bytes[..])?;
//! assert!(packet.syn() && !packet.ack() && packet.verify_checksum(src, dst));
//! assert_eq!(TcpRepr::parse(&packet, src, dst, true)?, syn);
//! assert!(TcpRepr::parse(&packet, dst, dst, true).is_err()); // wrong pseudo-header
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::iter::FusedIterator;
use core::net::Ipv4Addr;
use core::ops::{BitAnd, BitOr, BitOrAssign};

use super::seq::SeqNumber;
use crate::checksum::Checksum;
use crate::error::{ParseError, check_len};

/// IP protocol number of TCP, for the pseudo-header.
const PROTOCOL_TCP: u8 = 6;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset in the upper nibble; the lower nibble is reserved.
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const END_OF_LIST: u8 = 0;
    pub const NO_OPERATION: u8 = 1;
    pub const MAX_SEG_SIZE: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK_RANGE: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// Longest TCP header: a data offset of 15 words.
pub const MAX_HEADER_LEN: usize = 60;

/// Room for options in the longest header.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// The control bits of a TCP header (RFC 9293 §3.1; CWR and ECE from
/// RFC 3168 §6.1). A small bitset over the eight flag bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Names in display order (lowest bit first, so "SYN|ACK").
    const NAMES: [(TcpFlags, &'static str); 8] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
    ];

    /// No flags.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// The flags of a header's flags byte (every bit is a flag).
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The flags byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// The flags of `self` that are not in `other`.
    pub const fn difference(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !other.0)
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

/// `SYN|ACK`, lowest bit first; `-` when empty.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in TcpFlags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// One TCP option (RFC 9293 §3.2 and the RFCs cited per variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption {
    /// Kind 0: end of the option list; what follows is padding.
    EndOfList,
    /// Kind 1: padding between options.
    NoOperation,
    /// Kind 2: the largest segment the sender can receive (RFC 9293 §3.7.1).
    MaxSegmentSize(u16),
    /// Kind 3: the shift count of the sender's receive window (RFC 7323
    /// §2.2), raw as received (values above 14 are the state machine's to
    /// clamp).
    WindowScale(u8),
    /// Kind 4: the sender can receive SACK options (RFC 2018 §2).
    SackPermitted,
    /// Kind 5: up to four received blocks `(left edge, right edge)` beyond
    /// the cumulative ACK (RFC 2018 §3), filled from the front.
    SackRange([Option<(SeqNumber, SeqNumber)>; 4]),
    /// Kind 8: timestamps (RFC 7323 §3.2).
    Timestamps {
        /// TSval: the sender's clock.
        tsval: u32,
        /// TSecr: the TSval being echoed.
        tsecr: u32,
    },
    /// Any other kind, skipped over by its length. Its data is not kept.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option length, kind and length bytes included.
        length: u8,
    },
}

impl TcpOption {
    /// Parses the option at the start of `data` (which must not be empty).
    /// Returns the option and how many bytes it spans.
    ///
    /// Fails with [`ParseError::BadOption`] when `data` is empty, when a
    /// multi-byte option has no length byte, a length below 2 or one that
    /// runs past `data`, or when a known option has a length it cannot have.
    pub fn parse(data: &[u8]) -> Result<(TcpOption, usize), ParseError> {
        let (&k, rest) = data.split_first().ok_or(ParseError::BadOption)?;
        match k {
            kind::END_OF_LIST => return Ok((TcpOption::EndOfList, 1)),
            kind::NO_OPERATION => return Ok((TcpOption::NoOperation, 1)),
            _ => {}
        }
        let &len_byte = rest.first().ok_or(ParseError::BadOption)?;
        let len = usize::from(len_byte);
        if len < 2 || len > data.len() {
            return Err(ParseError::BadOption);
        }
        let body = &data[2..len];
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let option = match (k, len) {
            (kind::MAX_SEG_SIZE, 4) => {
                TcpOption::MaxSegmentSize(u16::from_be_bytes([body[0], body[1]]))
            }
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(body[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK_RANGE, _) if (len - 2) % 8 == 0 && len <= 2 + 8 * 4 => {
                let mut blocks = [None; 4];
                for (slot, b) in blocks.iter_mut().zip(body.chunks_exact(8)) {
                    *slot = Some((SeqNumber(be32(&b[0..4])), SeqNumber(be32(&b[4..8]))));
                }
                TcpOption::SackRange(blocks)
            }
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps {
                tsval: be32(&body[0..4]),
                tsecr: be32(&body[4..8]),
            },
            (
                kind::MAX_SEG_SIZE
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::SACK_RANGE
                | kind::TIMESTAMPS,
                _,
            ) => return Err(ParseError::BadOption),
            (kind, _) => TcpOption::Unknown {
                kind,
                length: len_byte,
            },
        };
        Ok((option, len))
    }

    /// How many bytes [`TcpOption::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(blocks) => 2 + 8 * blocks.iter().flatten().count(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { length, .. } => usize::from(*length).max(2),
        }
    }

    /// Writes the option at the start of `buf` and returns
    /// [`TcpOption::buffer_len`]. The `Some` blocks of a
    /// [`TcpOption::SackRange`] are written in order (`None`s are skipped);
    /// an [`TcpOption::Unknown`] is written as its kind, its length and
    /// zeros.
    ///
    /// # Panics
    /// If `buf` is shorter than [`TcpOption::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        match *self {
            TcpOption::EndOfList => buf[0] = kind::END_OF_LIST,
            TcpOption::NoOperation => buf[0] = kind::NO_OPERATION,
            TcpOption::MaxSegmentSize(mss) => {
                buf[..2].copy_from_slice(&[kind::MAX_SEG_SIZE, 4]);
                buf[2..4].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => {
                buf.copy_from_slice(&[kind::WINDOW_SCALE, 3, shift]);
            }
            TcpOption::SackPermitted => buf.copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::SackRange(blocks) => {
                buf[0] = kind::SACK_RANGE;
                buf[1] = len as u8;
                for (chunk, (left, right)) in
                    buf[2..].chunks_exact_mut(8).zip(blocks.iter().flatten())
                {
                    chunk[..4].copy_from_slice(&left.0.to_be_bytes());
                    chunk[4..].copy_from_slice(&right.0.to_be_bytes());
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                buf[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                buf[2..6].copy_from_slice(&tsval.to_be_bytes());
                buf[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, length } => {
                buf[0] = kind;
                buf[1] = length;
                buf[2..].fill(0);
            }
        }
        len
    }
}

/// An iterator over the options in a header's option bytes.
///
/// Yields each option in turn, [`TcpOption::EndOfList`] last if present
/// (nothing after it is read). On malformed bytes it yields one
/// `Err(ParseError::BadOption)` and stops. Every step consumes at least
/// one byte, so it ends after at most `data.len()` items.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over the options in `data` (a header's option bytes).
    pub const fn new(data: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { data }
    }
}

impl Iterator for TcpOptions<'_> {
    type Item = Result<TcpOption, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        match TcpOption::parse(self.data) {
            Ok((TcpOption::EndOfList, _)) => {
                self.data = &[];
                Some(Ok(TcpOption::EndOfList))
            }
            Ok((option, len)) => {
                self.data = &self.data[len..];
                Some(Ok(option))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for TcpOptions<'_> {}

/// A zero-copy view of a TCP segment: header, options and payload.
///
/// The buffer is the whole segment (an IPv4 payload, trimmed to the IPv4
/// total length), since the checksum and [`TcpPacket::payload`] cover
/// everything after the header.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; the fixed-field accessors panic
    /// on a buffer shorter than [`HEADER_LEN`]. Prefer
    /// [`TcpPacket::new_checked`].
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`TcpPacket::check_len`], so that no accessor
    /// can panic.
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, ParseError> {
        let packet = TcpPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the fixed header, that the data offset
    /// is at least 5 words ([`ParseError::BadHeaderLength`] otherwise), and
    /// that the buffer holds the whole header ([`ParseError::Truncated`]
    /// otherwise).
    pub fn check_len(&self) -> Result<(), ParseError> {
        let buf = self.buffer.as_ref();
        check_len(buf, HEADER_LEN)?;
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(ParseError::BadHeaderLength(header_len));
        }
        check_len(buf, header_len)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn read_u32(&self, range: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[range];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// Sequence number of the first octet (or of the SYN).
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(self.read_u32(field::SEQ_NUM))
    }

    /// Acknowledgment number, whether or not the ACK flag is set.
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(self.read_u32(field::ACK_NUM))
    }

    /// Header length in bytes: the data offset times four (0 to 60; below
    /// 20 is invalid).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The control flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Whether FIN is set.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// Whether SYN is set.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// Whether RST is set.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// Whether PSH is set.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// Whether ACK is set.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// Whether URG is set.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// Whether ECE is set.
    pub fn ece(&self) -> bool {
        self.flags().contains(TcpFlags::ECE)
    }

    /// Whether CWR is set.
    pub fn cwr(&self) -> bool {
        self.flags().contains(TcpFlags::CWR)
    }

    /// Window, unscaled as on the wire.
    pub fn window_len(&self) -> u16 {
        self.read_u16(field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// Urgent pointer field (meaningful when URG is set).
    pub fn urgent_pointer(&self) -> u16 {
        self.read_u16(field::URGENT)
    }

    /// The end of the header, clamped into the buffer so that
    /// [`TcpPacket::options`] and [`TcpPacket::payload`] never panic.
    fn header_end(&self) -> usize {
        self.header_len()
            .max(HEADER_LEN)
            .min(self.buffer.as_ref().len())
    }

    /// The option bytes (between the fixed header and the data offset).
    pub fn options(&self) -> &[u8] {
        let end = self.header_end();
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// An iterator over the options.
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        let end = self.header_end();
        &self.buffer.as_ref()[end..]
    }

    /// Whether the checksum over the IPv4 pseudo-header and the whole
    /// buffer verifies (RFC 9293 §3.1). False for a buffer longer than
    /// 65535 bytes, which no IPv4 packet can carry.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let buf = self.buffer.as_ref();
        let Ok(len) = u16::try_from(buf.len()) else {
            return false;
        };
        Checksum::new()
            .add_ipv4_pseudo_header(src, dst, PROTOCOL_TCP, len)
            .add_bytes(buf)
            .finish()
            == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn write(&mut self, at: usize, bytes: &[u8]) {
        self.buffer.as_mut()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.write(field::SRC_PORT.start, &port.to_be_bytes());
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.write(field::DST_PORT.start, &port.to_be_bytes());
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: SeqNumber) {
        self.write(field::SEQ_NUM.start, &seq.0.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: SeqNumber) {
        self.write(field::ACK_NUM.start, &ack.0.to_be_bytes());
    }

    /// Sets the header length in bytes (a multiple of 4 from 20 to 60;
    /// other values are rounded down to a multiple of 4 and cut to 4 bits).
    /// Clears the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        debug_assert!(
            len % 4 == 0 && (HEADER_LEN..=MAX_HEADER_LEN).contains(&len),
            "bad TCP header length {len}"
        );
        self.buffer.as_mut()[field::DATA_OFFSET] = (((len / 4) & 0x0f) as u8) << 4;
    }

    /// Sets the control flags.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window (unscaled).
    pub fn set_window_len(&mut self, window: u16) {
        self.write(field::WINDOW.start, &window.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.write(field::CHECKSUM.start, &checksum.to_be_bytes());
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, pointer: u16) {
        self.write(field::URGENT.start, &pointer.to_be_bytes());
    }

    /// The option bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_end();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Everything after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.header_end();
        &mut self.buffer.as_mut()[end..]
    }

    /// Computes the checksum over the IPv4 pseudo-header and the whole
    /// buffer and writes it (RFC 9293 §3.1).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let buf = self.buffer.as_ref();
        debug_assert!(buf.len() <= usize::from(u16::MAX), "TCP segment too long");
        let checksum = Checksum::new()
            .add_ipv4_pseudo_header(src, dst, PROTOCOL_TCP, buf.len() as u16)
            .add_bytes(buf)
            .finish();
        self.set_checksum(checksum);
    }
}

/// The fields of a TCP header, options included.
///
/// The ACK flag lives in [`TcpRepr::ack_number`] (`Some` iff ACK is set);
/// every other flag, URG included, is in [`TcpRepr::flags`]. The payload is
/// not part of the representation: [`TcpRepr::emit`] expects it already in
/// place behind the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: SeqNumber,
    /// Acknowledgment number; `Some` iff the ACK flag is set.
    pub ack_number: Option<SeqNumber>,
    /// Control flags other than ACK. An ACK set here is ignored by
    /// [`TcpRepr::emit`] (and never set by [`TcpRepr::parse`]).
    pub flags: TcpFlags,
    /// Window as on the wire, unscaled.
    pub window_len: u16,
    /// Urgent pointer as on the wire (meaningful with URG in `flags`).
    pub urgent_pointer: u16,
    /// Maximum segment size option.
    pub max_seg_size: Option<u16>,
    /// Window scale option: the shift count as on the wire.
    pub window_scale: Option<u8>,
    /// SACK-permitted option.
    pub sack_permitted: bool,
    /// SACK blocks `(left edge, right edge)`, filled from the front.
    /// Parsing keeps the first three of up to four received; emitting
    /// writes the `Some` entries in order, as many as fit
    /// ([`TcpRepr::sack_block_count`]).
    pub sack_ranges: [Option<(SeqNumber, SeqNumber)>; 3],
    /// Timestamps option `(tsval, tsecr)`.
    pub timestamp: Option<(u32, u32)>,
    /// Length of the payload behind the header.
    pub payload_len: usize,
}

impl TcpRepr {
    /// Parses and validates a segment received from `src` for `dst`.
    ///
    /// Checks, in order: the lengths ([`TcpPacket::check_len`]), that the
    /// segment fits an IPv4 packet, the checksum when `verify_checksum`
    /// ([`ParseError::BadChecksum`]), the options
    /// ([`ParseError::BadOption`]), and that neither port is 0
    /// ([`ParseError::Malformed`]). Unknown options are skipped; options
    /// after an end-of-list are not read. A later duplicate of an option
    /// overrides an earlier one. Flag combinations (SYN with FIN, ...) are
    /// not judged here.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<TcpRepr, ParseError> {
        let mut repr = TcpRepr::default();
        repr.parse_from(packet, src, dst, verify_checksum)?;
        Ok(repr)
    }

    /// As [`TcpRepr::parse`], into `self` (every field is overwritten on
    /// success; on error `self` holds no meaning). The receive path parses
    /// in place: a representation returned through a `Result` is copied
    /// with wide loads that wait for the narrow stores that just filled
    /// it.
    pub fn parse_from<T: AsRef<[u8]>>(
        &mut self,
        packet: &TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<(), ParseError> {
        packet.check_len()?;
        let len = packet.buffer.as_ref().len();
        if len > usize::from(u16::MAX) {
            return Err(ParseError::Malformed("TCP segment longer than 65535 bytes"));
        }
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(ParseError::BadChecksum);
        }

        let repr = self;
        *repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack().then(|| packet.ack_number()),
            flags: packet.flags().difference(TcpFlags::ACK),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_pointer(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload_len: len - packet.header_len(),
        };
        // Fast path (as Linux's `tcp_parse_aligned_timestamp`): the options
        // of almost every segment of an established connection are exactly
        // NOP, NOP, Timestamps, the layout RFC 7323 Appendix A recommends.
        if let [
            kind::NO_OPERATION,
            kind::NO_OPERATION,
            kind::TIMESTAMPS,
            10,
            v0,
            v1,
            v2,
            v3,
            e0,
            e1,
            e2,
            e3,
        ] = *packet.options()
        {
            let tsval = u32::from_be_bytes([v0, v1, v2, v3]);
            repr.timestamp = Some((tsval, u32::from_be_bytes([e0, e1, e2, e3])));
        } else {
            repr.parse_options(packet.options_iter())?;
        }

        if repr.src_port == 0 {
            return Err(ParseError::Malformed("TCP source port 0"));
        }
        if repr.dst_port == 0 {
            return Err(ParseError::Malformed("TCP destination port 0"));
        }
        Ok(())
    }

    /// Fills the option fields from `options`, in the order they come.
    fn parse_options(&mut self, options: TcpOptions<'_>) -> Result<(), ParseError> {
        let repr = self;
        for option in options {
            match option? {
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(blocks) => {
                    repr.sack_ranges.copy_from_slice(&blocks[..3]);
                }
                TcpOption::Timestamps { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
            }
        }
        Ok(())
    }

    /// Bytes of options other than SACK blocks, in Linux's layout.
    fn options_len_without_sack(&self) -> usize {
        let mut len = 0;
        if self.max_seg_size.is_some() {
            len += 4; // MSS
        }
        if self.timestamp.is_some() {
            len += 12; // SACK_PERM or NOP NOP, then TS
        } else if self.sack_permitted {
            len += 4; // NOP NOP SACK_PERM
        }
        if self.window_scale.is_some() {
            len += 4; // NOP WSCALE
        }
        len
    }

    /// How many SACK blocks [`TcpRepr::emit`] writes: the `Some` entries of
    /// [`TcpRepr::sack_ranges`], as many as fit in the 40 bytes of option
    /// space after the other options (at least two always do; all three do
    /// when only timestamps accompany them).
    pub fn sack_block_count(&self) -> usize {
        let wanted = self.sack_ranges.iter().flatten().count();
        if wanted == 0 {
            return 0;
        }
        // The other options take at most 20 bytes, so this never underflows.
        let room = MAX_OPTIONS_LEN - self.options_len_without_sack() - 4;
        wanted.min(room / 8)
    }

    /// Length of the header [`TcpRepr::emit`] writes: 20 bytes plus the
    /// options, always a multiple of 4 and at most 60.
    pub fn header_len(&self) -> usize {
        let sack = match self.sack_block_count() {
            0 => 0,
            n => 4 + 8 * n, // NOP NOP SACK
        };
        HEADER_LEN + self.options_len_without_sack() + sack
    }

    /// Length of the whole segment: header and payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Sequence space the segment occupies: its payload, plus one each for
    /// SYN and FIN (RFC 9293 §3.4).
    pub fn segment_len(&self) -> usize {
        self.payload_len
            + usize::from(self.flags.contains(TcpFlags::SYN))
            + usize::from(self.flags.contains(TcpFlags::FIN))
    }

    /// Writes the header into the first [`TcpRepr::header_len`] bytes of
    /// `packet`, whose buffer is the whole segment: the header followed by
    /// the [`TcpRepr::payload_len`] bytes of payload already in place. The
    /// reserved bits are zeroed; the acknowledgment field is zero without
    /// an ACK. With `fill_checksum` the checksum covers the IPv4
    /// pseudo-header, the header and the payload; without it the field is
    /// left 0 (for checksum offload).
    ///
    /// # Panics
    /// If the buffer is shorter than [`TcpRepr::header_len`]; in debug
    /// builds, if its length is not [`TcpRepr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        fill_checksum: bool,
    ) {
        let header_len = self.header_len();
        debug_assert_eq!(
            packet.buffer.as_ref().len(),
            self.buffer_len(),
            "TCP buffer is not header + payload"
        );
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number.unwrap_or_default());
        packet.set_header_len(header_len);
        let mut flags = self.flags.difference(TcpFlags::ACK);
        if self.ack_number.is_some() {
            flags.insert(TcpFlags::ACK);
        }
        packet.set_flags(flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_pointer(self.urgent_pointer);

        // Linux's tcp_options_write order and layout.
        let options = &mut packet.buffer.as_mut()[HEADER_LEN..header_len];
        let mut at = 0;
        let mut put = |option: TcpOption| at += option.emit(&mut options[at..]);
        if let Some(mss) = self.max_seg_size {
            put(TcpOption::MaxSegmentSize(mss));
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            if self.sack_permitted {
                put(TcpOption::SackPermitted);
            } else {
                put(TcpOption::NoOperation);
                put(TcpOption::NoOperation);
            }
            put(TcpOption::Timestamps { tsval, tsecr });
        } else if self.sack_permitted {
            put(TcpOption::NoOperation);
            put(TcpOption::NoOperation);
            put(TcpOption::SackPermitted);
        }
        if let Some(shift) = self.window_scale {
            put(TcpOption::NoOperation);
            put(TcpOption::WindowScale(shift));
        }
        let sack_blocks = self.sack_block_count();
        if sack_blocks > 0 {
            let mut blocks = [None; 4];
            for (slot, block) in blocks
                .iter_mut()
                .zip(self.sack_ranges.iter().flatten().take(sack_blocks))
            {
                *slot = Some(*block);
            }
            put(TcpOption::NoOperation);
            put(TcpOption::NoOperation);
            put(TcpOption::SackRange(blocks));
        }
        debug_assert_eq!(at, header_len - HEADER_LEN);

        if fill_checksum {
            packet.fill_checksum(src, dst);
        }
    }
}

/// A one-line summary for logs: ports, flags, sequence numbers, window,
/// length and options.
impl fmt::Display for TcpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut flags = self.flags;
        if self.ack_number.is_some() {
            flags.insert(TcpFlags::ACK);
        }
        write!(
            f,
            "TCP {}->{} [{flags}] seq={}",
            self.src_port, self.dst_port, self.seq_number
        )?;
        if let Some(ack) = self.ack_number {
            write!(f, " ack={ack}")?;
        }
        write!(f, " win={} len={}", self.window_len, self.payload_len)?;
        if self.flags.contains(TcpFlags::URG) {
            write!(f, " urg={}", self.urgent_pointer)?;
        }
        if let Some(mss) = self.max_seg_size {
            write!(f, " mss={mss}")?;
        }
        if self.sack_permitted {
            write!(f, " sackOK")?;
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            write!(f, " ts={tsval}/{tsecr}")?;
        }
        if let Some(shift) = self.window_scale {
            write!(f, " wscale={shift}")?;
        }
        for (left, right) in self.sack_ranges.iter().flatten() {
            write!(f, " sack={left}-{right}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    // A Linux SYN, 10.0.0.1:54321 -> 10.0.0.2:80: window 64240,
    // MSS 1460, SACK_PERM, TS (tsval 0x9a3b1c2d), NOP, WS 7.
    const SYN: [u8; 40] = [
        0xd4, 0x31, 0x00, 0x50, 0x6c, 0x2a, 0x9f, 0x10, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0xa2, 0xe7, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x9a, 0x3b,
        0x1c, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    // The Linux SYN-ACK answering it: window 65160, same option layout.
    const SYN_ACK: [u8; 40] = [
        0x00, 0x50, 0xd4, 0x31, 0x1f, 0x3e, 0x5a, 0x77, 0x6c, 0x2a, 0x9f, 0x11, 0xa0, 0x12, 0xfe,
        0x88, 0xf8, 0xa6, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x4b, 0xd2,
        0xe1, 0x0f, 0x9a, 0x3b, 0x1c, 0x2d, 0x01, 0x03, 0x03, 0x07,
    ];

    // A Linux data segment (PSH|ACK, NOP NOP TS) carrying an HTTP request
    // of 33 bytes (odd, to exercise the checksum's odd tail).
    const DATA: [u8; 65] = [
        0xd4, 0x31, 0x00, 0x50, 0x6c, 0x2a, 0x9f, 0x11, 0x1f, 0x3e, 0x5a, 0x78, 0x80, 0x18, 0x01,
        0xf6, 0xab, 0xd1, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x9a, 0x3b, 0x1c, 0x31, 0x4b, 0xd2,
        0xe1, 0x0f, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e,
        0x31, 0x0d, 0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
        0x65, 0x0d, 0x0a, 0x0d, 0x0a,
    ];

    // A Linux duplicate ACK with NOP NOP TS, NOP NOP SACK (one block).
    const SACK_ACK: [u8; 44] = [
        0x00, 0x50, 0xd4, 0x31, 0x1f, 0x3e, 0x5a, 0x78, 0x6c, 0x2a, 0x9f, 0x11, 0xb0, 0x10, 0x01,
        0xfd, 0xc6, 0x05, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x4b, 0xd2, 0xe1, 0x15, 0x9a, 0x3b,
        0x1c, 0x31, 0x01, 0x01, 0x05, 0x0a, 0x6c, 0x2a, 0xa5, 0x01, 0x6c, 0x2a, 0xaa, 0x81,
    ];

    /// Emits `repr` around `payload` into a fresh buffer.
    fn emit_with_payload(
        repr: &TcpRepr,
        payload: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        fill: bool,
    ) -> Vec<u8> {
        let header_len = repr.header_len();
        let mut buf = vec![0u8; header_len + payload.len()];
        buf[header_len..].copy_from_slice(payload);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst, fill);
        buf
    }

    /// The checks every golden segment gets: parses to `expected`, emits
    /// back identical, every truncation and bit flip is rejected.
    fn check_golden(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr, expected: &TcpRepr) {
        let packet = TcpPacket::new_checked(bytes).unwrap();
        assert!(packet.verify_checksum(src, dst));
        let repr = TcpRepr::parse(&packet, src, dst, true).unwrap();
        assert_eq!(&repr, expected);
        let header_len = packet.header_len();
        assert_eq!(repr.header_len(), header_len);
        assert_eq!(repr.buffer_len(), bytes.len());

        // Emitted back byte for byte, around the payload already in place.
        let out = emit_with_payload(&repr, packet.payload(), src, dst, true);
        assert_eq!(out, bytes);
        // Without the checksum: only the checksum field differs, and is 0.
        let out = emit_with_payload(&repr, packet.payload(), src, dst, false);
        assert_eq!(out[16..18], [0, 0]);
        assert_eq!(out[..16], bytes[..16]);
        assert_eq!(out[18..], bytes[18..]);

        // Every truncation is rejected.
        for n in 0..bytes.len() {
            let err =
                TcpRepr::parse(&TcpPacket::new_unchecked(&bytes[..n]), src, dst, true).unwrap_err();
            let want = if n < HEADER_LEN {
                ParseError::Truncated {
                    needed: HEADER_LEN,
                    had: n,
                }
            } else if n < header_len {
                ParseError::Truncated {
                    needed: header_len,
                    had: n,
                }
            } else {
                ParseError::BadChecksum
            };
            assert_eq!(err, want, "truncated to {n}");
            if n < header_len {
                assert_eq!(TcpPacket::new_checked(&bytes[..n]).unwrap_err(), want);
            }
        }

        // Every single-bit corruption is rejected; in the checksum field
        // (or anywhere the data offset stays sane) as a bad checksum.
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.to_vec();
                bad[i] ^= 1 << bit;
                let err = TcpRepr::parse(&TcpPacket::new_unchecked(&bad[..]), src, dst, true)
                    .unwrap_err();
                if i != field::DATA_OFFSET || bit < 4 {
                    assert_eq!(err, ParseError::BadChecksum, "byte {i} bit {bit}");
                }
            }
        }
        // A wrong pseudo-header address is a bad checksum too.
        assert_eq!(
            TcpRepr::parse(&packet, src, Ipv4Addr::new(10, 0, 0, 3), true),
            Err(ParseError::BadChecksum)
        );
        // Unverified, a corrupted checksum still parses.
        let mut bad = bytes.to_vec();
        bad[16] ^= 0xff;
        assert_eq!(
            TcpRepr::parse(&TcpPacket::new_checked(&bad[..]).unwrap(), src, dst, false).as_ref(),
            Ok(expected)
        );
    }

    #[test]
    fn golden_linux_syn() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.src_port(), 54321);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), SeqNumber(0x6c2a9f10));
        assert_eq!(p.ack_number(), SeqNumber(0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh());
        assert!(!p.urg() && !p.ece() && !p.cwr());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0xa2e7);
        assert_eq!(p.urgent_pointer(), 0);
        assert_eq!(p.options(), &SYN[20..]);
        assert!(p.payload().is_empty());
        let options: Vec<_> = p.options_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            options,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: 0x9a3b1c2d,
                    tsecr: 0
                },
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
        let expected = TcpRepr {
            src_port: 54321,
            dst_port: 80,
            seq_number: SeqNumber(0x6c2a9f10),
            ack_number: None,
            flags: TcpFlags::SYN,
            window_len: 64240,
            urgent_pointer: 0,
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: Some((0x9a3b1c2d, 0)),
            payload_len: 0,
        };
        check_golden(&SYN, CLIENT, SERVER, &expected);
        assert_eq!(expected.segment_len(), 1);
        assert_eq!(
            expected.to_string(),
            "TCP 54321->80 [SYN] seq=1814732560 win=64240 len=0 mss=1460 sackOK ts=2587565101/0 wscale=7"
        );
    }

    #[test]
    fn golden_linux_syn_ack() {
        let p = TcpPacket::new_checked(&SYN_ACK[..]).unwrap();
        assert_eq!(p.flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(p.flags().to_string(), "SYN|ACK");
        assert_eq!(p.ack_number(), SeqNumber(0x6c2a9f11));
        assert_eq!(p.checksum(), 0xf8a6);
        let expected = TcpRepr {
            src_port: 80,
            dst_port: 54321,
            seq_number: SeqNumber(0x1f3e5a77),
            ack_number: Some(SeqNumber(0x6c2a9f11)),
            flags: TcpFlags::SYN,
            window_len: 65160,
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((0x4bd2e10f, 0x9a3b1c2d)),
            ..TcpRepr::default()
        };
        check_golden(&SYN_ACK, SERVER, CLIENT, &expected);
    }

    #[test]
    fn golden_linux_data_segment() {
        let p = TcpPacket::new_checked(&DATA[..]).unwrap();
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.flags(), TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(p.window_len(), 502);
        assert_eq!(p.checksum(), 0xabd1);
        assert_eq!(
            p.options(),
            &[1, 1, 8, 10, 0x9a, 0x3b, 0x1c, 0x31, 0x4b, 0xd2, 0xe1, 0x0f]
        );
        assert_eq!(p.payload(), b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
        let expected = TcpRepr {
            src_port: 54321,
            dst_port: 80,
            seq_number: SeqNumber(0x6c2a9f11),
            ack_number: Some(SeqNumber(0x1f3e5a78)),
            flags: TcpFlags::PSH,
            window_len: 502,
            timestamp: Some((0x9a3b1c31, 0x4bd2e10f)),
            payload_len: 33,
            ..TcpRepr::default()
        };
        check_golden(&DATA, CLIENT, SERVER, &expected);
        assert_eq!(expected.segment_len(), 33);
    }

    #[test]
    fn golden_linux_sack() {
        let expected = TcpRepr {
            src_port: 80,
            dst_port: 54321,
            seq_number: SeqNumber(0x1f3e5a78),
            ack_number: Some(SeqNumber(0x6c2a9f11)),
            flags: TcpFlags::empty(),
            window_len: 509,
            timestamp: Some((0x4bd2e115, 0x9a3b1c31)),
            sack_ranges: [
                Some((SeqNumber(0x6c2aa501), SeqNumber(0x6c2aaa81))),
                None,
                None,
            ],
            ..TcpRepr::default()
        };
        check_golden(&SACK_ACK, SERVER, CLIENT, &expected);
        assert_eq!(
            expected.to_string(),
            "TCP 80->54321 [ACK] seq=524180088 ack=1814732561 win=509 len=0 ts=1272111381/2587565105 sack=1814734081-1814735489"
        );
    }

    #[test]
    fn linux_layout_without_timestamps() {
        // A SYN with timestamps off: MSS, NOP NOP SACK_PERM, NOP WS.
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            flags: TcpFlags::SYN,
            max_seg_size: Some(1460),
            sack_permitted: true,
            window_scale: Some(7),
            ..TcpRepr::default()
        };
        let out = emit_with_payload(&repr, &[], CLIENT, SERVER, true);
        assert_eq!(out[20..], [2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
        // Timestamps without SACK_PERM: NOP NOP TS.
        let repr = TcpRepr {
            sack_permitted: false,
            window_scale: None,
            timestamp: Some((1, 2)),
            ..repr
        };
        let out = emit_with_payload(&repr, &[], CLIENT, SERVER, true);
        assert_eq!(
            out[20..],
            [2, 4, 5, 0xb4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        );
    }

    #[test]
    fn sack_blocks_cut_to_fit() {
        let blocks = [
            Some((SeqNumber(10), SeqNumber(20))),
            Some((SeqNumber(30), SeqNumber(40))),
            Some((SeqNumber(50), SeqNumber(60))),
        ];
        let mut repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            ack_number: Some(SeqNumber(5)),
            sack_ranges: blocks,
            ..TcpRepr::default()
        };
        // Alone: NOP NOP SACK(3) = 28 bytes.
        assert_eq!(repr.sack_block_count(), 3);
        assert_eq!(repr.header_len(), 48);
        // With timestamps: 12 + 28 = 40, exactly full.
        repr.timestamp = Some((7, 8));
        assert_eq!(repr.sack_block_count(), 3);
        assert_eq!(repr.header_len(), 60);
        // With every other option too (20 bytes), only two blocks fit.
        repr.max_seg_size = Some(536);
        repr.window_scale = Some(14);
        repr.sack_permitted = true;
        assert_eq!(repr.sack_block_count(), 2);
        assert_eq!(repr.header_len(), 60);
        repr.payload_len = 3;
        let out = emit_with_payload(&repr, b"xyz", CLIENT, SERVER, true);
        let parsed = TcpRepr::parse(
            &TcpPacket::new_checked(&out[..]).unwrap(),
            CLIENT,
            SERVER,
            true,
        )
        .unwrap();
        assert_eq!(parsed.sack_ranges, [blocks[0], blocks[1], None]);
        // `None`s in the middle are skipped.
        repr.payload_len = 0;
        repr.sack_ranges = [None, blocks[2], None];
        assert_eq!(repr.sack_block_count(), 1);
        let out = emit_with_payload(&repr, &[], CLIENT, SERVER, true);
        let parsed = TcpRepr::parse(
            &TcpPacket::new_checked(&out[..]).unwrap(),
            CLIENT,
            SERVER,
            true,
        )
        .unwrap();
        assert_eq!(parsed.sack_ranges, [blocks[2], None, None]);
    }

    #[test]
    fn flags_display_and_ops() {
        assert_eq!(TcpFlags::empty().to_string(), "-");
        assert_eq!((TcpFlags::ACK | TcpFlags::SYN).to_string(), "SYN|ACK");
        assert_eq!((TcpFlags::FIN | TcpFlags::ACK).to_string(), "FIN|ACK");
        assert_eq!(
            TcpFlags::from_bits(0xff).to_string(),
            "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
        );
        assert_eq!(format!("{:?}", TcpFlags::RST), "TcpFlags(RST)");
        let mut f = TcpFlags::SYN | TcpFlags::ACK;
        assert!(f.contains(TcpFlags::SYN));
        assert!(f.contains(TcpFlags::SYN | TcpFlags::ACK));
        assert!(!f.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(f.intersects(TcpFlags::SYN | TcpFlags::FIN));
        f.remove(TcpFlags::SYN);
        assert_eq!(f, TcpFlags::ACK);
        f.insert(TcpFlags::CWR);
        f |= TcpFlags::ECE;
        assert_eq!(f.bits(), 0xd0);
        assert_eq!(f & TcpFlags::ECE, TcpFlags::ECE);
        assert_eq!(f.difference(TcpFlags::ACK).bits(), 0xc0);
        assert!(TcpFlags::default().is_empty());
    }

    #[test]
    fn segment_len_counts_syn_and_fin() {
        let r = TcpRepr {
            flags: TcpFlags::SYN | TcpFlags::FIN,
            payload_len: 10,
            ..TcpRepr::default()
        };
        assert_eq!(r.segment_len(), 12);
        let r = TcpRepr {
            flags: TcpFlags::RST,
            ..r
        };
        assert_eq!(r.segment_len(), 10);
    }

    #[test]
    fn option_parsing() {
        use TcpOption::*;
        let parse_all = |b: &[u8]| TcpOptions::new(b).collect::<Vec<_>>();
        let bad = Err(ParseError::BadOption);
        // EOL ends parsing; what follows is not read.
        assert_eq!(parse_all(&[0, 2, 0]), [Ok(EndOfList)]);
        assert_eq!(
            parse_all(&[1, 1, 0, 0xff]),
            [Ok(NoOperation), Ok(NoOperation), Ok(EndOfList)]
        );
        // Unknown options are skipped by their length.
        assert_eq!(
            parse_all(&[0xfe, 4, 0xaa, 0xbb, 1]),
            [
                Ok(Unknown {
                    kind: 0xfe,
                    length: 4
                }),
                Ok(NoOperation)
            ]
        );
        // Lengths 0 and 1, a missing length, running past the end: one
        // error, then nothing.
        for garbage in [
            &[2, 0][..],
            &[2, 1, 2, 1],
            &[0xfe, 0],
            &[0xfe, 1, 1, 1],
            &[2],
            &[0xfe],
            &[2, 4, 5],
            &[8, 10, 0, 0, 0, 0, 0, 0, 0],
            &[0xfe, 40, 0],
        ] {
            assert_eq!(parse_all(garbage), [bad], "{garbage:?}");
        }
        // Known kinds with impossible lengths.
        for wrong in [
            &[2, 5, 0, 0, 0][..],
            &[2, 3, 0],
            &[3, 4, 0, 0],
            &[4, 3, 0],
            &[8, 9, 0, 0, 0, 0, 0, 0, 0],
            &[5, 9, 0, 0, 0, 0, 0, 0, 0],
            &[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(parse_all(wrong), [bad], "{wrong:?}");
        }
        let mut five_blocks = vec![5, 42];
        five_blocks.resize(42, 0);
        assert_eq!(parse_all(&five_blocks), [bad]);
        assert_eq!(TcpOption::parse(&[]), Err(ParseError::BadOption));
        // SACK with 0 to 4 blocks.
        for n in 0..=4u32 {
            let mut b = vec![5, (2 + 8 * n) as u8];
            let mut want = [None; 4];
            for i in 0..n {
                b.extend_from_slice(&(i * 2).to_be_bytes());
                b.extend_from_slice(&(i * 2 + 1).to_be_bytes());
                want[i as usize] = Some((SeqNumber(i * 2), SeqNumber(i * 2 + 1)));
            }
            assert_eq!(TcpOption::parse(&b), Ok((SackRange(want), b.len())));
        }
        assert_eq!(TcpOption::parse(&[3, 3, 14, 99]), Ok((WindowScale(14), 3)));
    }

    /// A valid fixed header for `options` (padded by the caller to a
    /// multiple of 4) and `payload`, checksummed.
    fn segment_with_options(options: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(options);
        buf.extend_from_slice(payload);
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(1234);
        p.set_dst_port(80);
        p.set_header_len(HEADER_LEN + options.len());
        p.set_flags(TcpFlags::ACK);
        p.fill_checksum(CLIENT, SERVER);
        buf
    }

    #[test]
    fn repr_parse_rejections() {
        let parse = |b: &[u8]| TcpRepr::parse(&TcpPacket::new_unchecked(b), CLIENT, SERVER, true);
        // A bad option in an otherwise valid segment.
        assert_eq!(
            parse(&segment_with_options(&[2, 4, 5, 0xb4, 2, 0, 0, 0], b"")),
            Err(ParseError::BadOption)
        );
        // Garbage after EOL is padding, not an error.
        let r = parse(&segment_with_options(&[2, 4, 5, 0xb4, 0, 2, 0, 0], b"")).unwrap();
        assert_eq!(r.max_seg_size, Some(1460));
        // Four SACK blocks: the first three are kept.
        let mut opts = vec![1, 1, 5, 34];
        for i in 1..=8u32 {
            opts.extend_from_slice(&(i * 100).to_be_bytes());
        }
        let r = parse(&segment_with_options(&opts, b"")).unwrap();
        assert_eq!(
            r.sack_ranges,
            [
                Some((SeqNumber(100), SeqNumber(200))),
                Some((SeqNumber(300), SeqNumber(400))),
                Some((SeqNumber(500), SeqNumber(600))),
            ]
        );
        // Ports.
        let mut b = segment_with_options(&[], b"x");
        b[0..2].copy_from_slice(&[0, 0]);
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(CLIENT, SERVER);
        assert_eq!(parse(&b), Err(ParseError::Malformed("TCP source port 0")));
        let mut b = segment_with_options(&[], b"x");
        b[2..4].copy_from_slice(&[0, 0]);
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(CLIENT, SERVER);
        assert_eq!(
            parse(&b),
            Err(ParseError::Malformed("TCP destination port 0"))
        );
        // Data offsets below 5 words.
        for offset in 0..5u8 {
            let mut b = segment_with_options(&[], b"payload");
            b[field::DATA_OFFSET] = offset << 4;
            assert_eq!(
                parse(&b),
                Err(ParseError::BadHeaderLength(usize::from(offset) * 4))
            );
            assert!(TcpPacket::new_checked(&b[..]).is_err());
        }
        // The reserved bits are ignored on parse and zeroed on emit.
        let mut b = segment_with_options(&[], b"");
        b[field::DATA_OFFSET] |= 0x0f;
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(CLIENT, SERVER);
        let r = parse(&b).unwrap();
        assert_eq!(
            emit_with_payload(&r, &[], CLIENT, SERVER, false)[field::DATA_OFFSET],
            0x50
        );
        // The acknowledgment field is ignored without ACK, zeroed on emit.
        let mut b = segment_with_options(&[], b"");
        b[8..12].copy_from_slice(&[1, 2, 3, 4]);
        b[field::FLAGS] = TcpFlags::RST.bits();
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(CLIENT, SERVER);
        let r = parse(&b).unwrap();
        assert_eq!(r.ack_number, None);
        assert_eq!(r.flags, TcpFlags::RST);
        assert_eq!(
            emit_with_payload(&r, &[], CLIENT, SERVER, false)[8..12],
            [0; 4]
        );
    }

    #[test]
    fn ack_in_flags_is_ignored_on_emit() {
        let r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            flags: TcpFlags::ACK | TcpFlags::FIN,
            ..TcpRepr::default()
        };
        let out = emit_with_payload(&r, &[], CLIENT, SERVER, true);
        assert_eq!(out[field::FLAGS], TcpFlags::FIN.bits());
    }

    fn arb_block() -> impl Strategy<Value = (SeqNumber, SeqNumber)> {
        (any::<u32>(), any::<u32>()).prop_map(|(l, r)| (SeqNumber(l), SeqNumber(r)))
    }

    prop_compose! {
        fn arb_repr()(
            (src_port, dst_port, seq, ack, flags, window_len, urgent_pointer) in (
                1..=u16::MAX,
                1..=u16::MAX,
                any::<u32>(),
                proptest::option::of(any::<u32>()),
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
            ),
            (max_seg_size, window_scale, sack_permitted, blocks, timestamp) in (
                proptest::option::of(any::<u16>()),
                proptest::option::of(any::<u8>()),
                any::<bool>(),
                proptest::collection::vec(arb_block(), 0..=3),
                proptest::option::of(any::<(u32, u32)>()),
            ),
            payload_len in 0..80usize,
        ) -> TcpRepr {
            let mut sack_ranges = [None; 3];
            for (slot, b) in sack_ranges.iter_mut().zip(blocks) {
                *slot = Some(b);
            }
            TcpRepr {
                src_port,
                dst_port,
                seq_number: SeqNumber(seq),
                ack_number: ack.map(SeqNumber),
                flags: TcpFlags::from_bits(flags).difference(TcpFlags::ACK),
                window_len,
                urgent_pointer,
                max_seg_size,
                window_scale,
                sack_permitted,
                sack_ranges,
                timestamp,
                payload_len,
            }
        }
    }

    /// `r` with the SACK blocks that do not fit dropped.
    fn fitted(r: &TcpRepr) -> TcpRepr {
        let mut out = *r;
        let n = r.sack_block_count();
        for slot in &mut out.sack_ranges[n..] {
            *slot = None;
        }
        out
    }

    fn arb_option() -> impl Strategy<Value = TcpOption> {
        prop_oneof![
            Just(TcpOption::EndOfList),
            Just(TcpOption::NoOperation),
            any::<u16>().prop_map(TcpOption::MaxSegmentSize),
            any::<u8>().prop_map(TcpOption::WindowScale),
            Just(TcpOption::SackPermitted),
            proptest::collection::vec(arb_block(), 0..=4).prop_map(|v| {
                let mut blocks = [None; 4];
                for (slot, b) in blocks.iter_mut().zip(v) {
                    *slot = Some(b);
                }
                TcpOption::SackRange(blocks)
            }),
            any::<(u32, u32)>().prop_map(|(tsval, tsecr)| TcpOption::Timestamps { tsval, tsecr }),
            (9..=255u8, 2..=40u8).prop_map(|(kind, length)| TcpOption::Unknown { kind, length }),
        ]
    }

    #[test]
    fn timestamps_parse_alike_aligned_or_not() {
        // DATA's options are NOP NOP TS (the fast path); the same option
        // moved first, NOPs after (the general path), and a broken length
        // in the aligned layout (an error either way).
        let parse = |options: [u8; 12]| {
            let mut seg = DATA;
            seg[20..32].copy_from_slice(&options);
            TcpRepr::parse(&TcpPacket::new_unchecked(&seg[..]), CLIENT, SERVER, false)
        };
        let aligned = parse(DATA[20..32].try_into().unwrap()).unwrap();
        assert_eq!(aligned.timestamp, Some((0x9a3b_1c31, 0x4bd2_e10f)));
        let mut moved = [1u8; 12];
        moved[..10].copy_from_slice(&DATA[22..32]);
        assert_eq!(parse(moved), Ok(aligned));
        let mut broken: [u8; 12] = DATA[20..32].try_into().unwrap();
        broken[3] = 11;
        assert_eq!(parse(broken), Err(ParseError::BadOption));
    }

    proptest! {
        #[test]
        fn round_trip(r in arb_repr(), seed in any::<u8>()) {
            let payload: Vec<u8> = (0..r.payload_len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let header_len = r.header_len();
            prop_assert!(header_len % 4 == 0 && (HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len));
            let out = emit_with_payload(&r, &payload, CLIENT, SERVER, true);
            prop_assert_eq!(&out[header_len..], &payload[..]);
            let p = TcpPacket::new_checked(&out[..]).unwrap();
            prop_assert_eq!(p.header_len(), header_len);
            prop_assert!(p.options_iter().all(|o| o.is_ok()));
            let parsed = TcpRepr::parse(&p, CLIENT, SERVER, true).unwrap();
            prop_assert_eq!(parsed, fitted(&r));
            prop_assert_eq!(p.payload(), &payload[..]);

            // Without a checksum: field 0, parses unverified.
            let out = emit_with_payload(&r, &payload, CLIENT, SERVER, false);
            let p = TcpPacket::new_checked(&out[..]).unwrap();
            prop_assert_eq!(p.checksum(), 0);
            prop_assert_eq!(TcpRepr::parse(&p, CLIENT, SERVER, false).unwrap(), fitted(&r));
        }

        #[test]
        fn option_round_trip(o in arb_option()) {
            let mut buf = [0u8; 64];
            let n = o.emit(&mut buf);
            prop_assert_eq!(n, o.buffer_len());
            prop_assert_eq!(TcpOption::parse(&buf[..n]), Ok((o, n)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&data[..]), CLIENT, SERVER, true);
            let _ = TcpRepr::parse(&TcpPacket::new_unchecked(&data[..]), CLIENT, SERVER, false);
            prop_assert!(TcpOptions::new(&data).count() <= data.len());
            if data.len() >= HEADER_LEN {
                // Even unchecked, options and payload stay in bounds.
                let p = TcpPacket::new_unchecked(&data[..]);
                let _ = (p.options(), p.payload(), p.options_iter().count());
            }
            if let Ok(p) = TcpPacket::new_checked(&data[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags());
                let _ = (p.window_len(), p.checksum(), p.urgent_pointer(), p.payload());
                prop_assert_eq!(p.options().len() + p.payload().len() + HEADER_LEN, data.len());
            }
        }

        #[test]
        fn well_formed_option_sequences_parse(
            opts in proptest::collection::vec(arb_option(), 0..8),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut bytes = [0u8; 128];
            let mut len = 0;
            for o in &opts {
                len += o.emit(&mut bytes[len..]);
                if len > MAX_OPTIONS_LEN {
                    break;
                }
            }
            let fits = len <= MAX_OPTIONS_LEN;
            let padded = len.min(MAX_OPTIONS_LEN).div_ceil(4) * 4;
            let seg = segment_with_options(&bytes[..padded], &payload);
            let parsed = TcpRepr::parse(&TcpPacket::new_checked(&seg[..]).unwrap(), CLIENT, SERVER, true);
            if fits {
                let r = parsed.unwrap();
                // The last of each option before any end-of-list wins.
                let live: Vec<_> = opts.iter().take_while(|o| **o != TcpOption::EndOfList).collect();
                let mss = live.iter().rev().find_map(|o| match o {
                    TcpOption::MaxSegmentSize(m) => Some(*m),
                    _ => None,
                });
                prop_assert_eq!(r.max_seg_size, mss);
                let ts = live.iter().rev().find_map(|o| match o {
                    TcpOption::Timestamps { tsval, tsecr } => Some((*tsval, *tsecr)),
                    _ => None,
                });
                prop_assert_eq!(r.timestamp, ts);
                prop_assert_eq!(r.sack_permitted, live.contains(&&TcpOption::SackPermitted));
                prop_assert_eq!(r.payload_len, payload.len());
            } else if let Err(e) = parsed {
                // Cut off mid-option (unless an end-of-list came first).
                prop_assert_eq!(e, ParseError::BadOption);
            }
        }

        #[test]
        fn arbitrary_options_never_panic(
            mut options in proptest::collection::vec(any::<u8>(), 0..=MAX_OPTIONS_LEN),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            options.truncate(options.len() / 4 * 4);
            let seg = segment_with_options(&options, &payload);
            match TcpRepr::parse(&TcpPacket::new_checked(&seg[..]).unwrap(), CLIENT, SERVER, true) {
                Err(e) => prop_assert_eq!(e, ParseError::BadOption),
                Ok(r) => {
                    // What parsed re-emits and re-parses to itself.
                    prop_assert_eq!(r.payload_len, payload.len());
                    let out = emit_with_payload(&r, &payload, CLIENT, SERVER, true);
                    let again = TcpRepr::parse(&TcpPacket::new_checked(&out[..]).unwrap(), CLIENT, SERVER, true);
                    prop_assert_eq!(again, Ok(fitted(&r)));
                }
            }
        }
    }
}
