//! DNS messages: header, questions and resource records (RFC 1035 §4.1).
//!
//! [`Message::parse`] reads a whole message from untrusted bytes;
//! [`Message::emit`] writes one with name compression, and
//! [`Message::emit_truncated`] fits it in a size limit. Header counts are
//! not stored: they are the lengths of the four sections.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::collections::HashMap;

use super::DnsError;
use super::name::{MAX_NAME_LEN, Name};

/// The most compression pointers one name may follow (RFC 1035 §4.1.4
/// sets no limit; a legitimate name needs far fewer).
pub const MAX_POINTER_JUMPS: usize = 64;

/// Length of the fixed header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// The smallest question: the root name and QTYPE, QCLASS.
const MIN_QUESTION_LEN: usize = 5;
/// The smallest record: the root name, TYPE, CLASS, TTL, RDLENGTH.
const MIN_RECORD_LEN: usize = 11;
/// Compression pointers hold a 14-bit offset.
const MAX_POINTER_TARGET: usize = 0x3fff;

/// Field offsets of the header (RFC 1035 §4.1.1).
mod field {
    use core::ops::Range;
    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;
}

/// Header flag bits (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2).
mod flag {
    pub const QR: u16 = 0x8000;
    pub const OPCODE_SHIFT: u16 = 11;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const Z: u16 = 0x0040;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
}

/// The kind of query (RFC 1035 §4.1.1; NOTIFY RFC 1996, UPDATE RFC 2136).
///
/// The field is four bits wide: `Unknown` values above 15 are sent masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// A standard query (0).
    Query,
    /// A server status request (2).
    Status,
    /// A zone change notification (4).
    Notify,
    /// A dynamic update (5).
    Update,
    /// Any other value, kept as is.
    Unknown(u8),
}

impl Opcode {
    /// The opcode for the low four bits of `bits`.
    pub fn from_bits(bits: u8) -> Opcode {
        match bits & 0x0f {
            0 => Opcode::Query,
            2 => Opcode::Status,
            4 => Opcode::Notify,
            5 => Opcode::Update,
            x => Opcode::Unknown(x),
        }
    }

    /// The four-bit wire value.
    pub fn to_bits(self) -> u8 {
        match self {
            Opcode::Query => 0,
            Opcode::Status => 2,
            Opcode::Notify => 4,
            Opcode::Update => 5,
            Opcode::Unknown(x) => x & 0x0f,
        }
    }
}

/// The response code in the header (RFC 1035 §4.1.1).
///
/// Only the four header bits; EDNS extended codes (RFC 6891 §6.1.3) live
/// in the OPT record, which is kept raw. `Unknown` values above 15 are
/// sent masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    /// No error (0).
    NoError,
    /// The server could not interpret the query (1).
    FormErr,
    /// The server failed (2).
    ServFail,
    /// The name does not exist (3; RFC 2308 calls it NXDOMAIN).
    NxDomain,
    /// The kind of query is not implemented (4).
    NotImp,
    /// The server refuses to answer (5).
    Refused,
    /// Any other value, kept as is.
    Unknown(u8),
}

impl Rcode {
    /// The code for the low four bits of `bits`.
    pub fn from_bits(bits: u8) -> Rcode {
        match bits & 0x0f {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            x => Rcode::Unknown(x),
        }
    }

    /// The four-bit wire value.
    pub fn to_bits(self) -> u8 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Unknown(x) => x & 0x0f,
        }
    }
}

/// A record or query type (RFC 1035 §3.2.2, §3.2.3; AAAA RFC 3596 §2.1,
/// SRV RFC 2782, OPT RFC 6891 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// An IPv4 address (1).
    A,
    /// An authoritative name server (2).
    Ns,
    /// The canonical name for an alias (5).
    Cname,
    /// The start of a zone of authority (6).
    Soa,
    /// A domain name pointer (12).
    Ptr,
    /// A mail exchange (15).
    Mx,
    /// Text strings (16).
    Txt,
    /// An IPv6 address (28).
    Aaaa,
    /// A service location (33).
    Srv,
    /// The EDNS pseudo-record (41); its data is kept raw.
    Opt,
    /// Any other value, kept as is.
    Unknown(u16),
}

impl From<u16> for RecordType {
    fn from(v: u16) -> RecordType {
        match v {
            1 => RecordType::A,
            2 => RecordType::Ns,
            5 => RecordType::Cname,
            6 => RecordType::Soa,
            12 => RecordType::Ptr,
            15 => RecordType::Mx,
            16 => RecordType::Txt,
            28 => RecordType::Aaaa,
            33 => RecordType::Srv,
            41 => RecordType::Opt,
            x => RecordType::Unknown(x),
        }
    }
}

impl From<RecordType> for u16 {
    fn from(t: RecordType) -> u16 {
        match t {
            RecordType::A => 1,
            RecordType::Ns => 2,
            RecordType::Cname => 5,
            RecordType::Soa => 6,
            RecordType::Ptr => 12,
            RecordType::Mx => 15,
            RecordType::Txt => 16,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Opt => 41,
            RecordType::Unknown(x) => x,
        }
    }
}

/// A record or query class (RFC 1035 §3.2.4, §3.2.5).
///
/// In an OPT record this field is the sender's UDP payload size
/// (RFC 6891 §6.1.2) and parses as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The Internet (1).
    In,
    /// Any other value, kept as is.
    Unknown(u16),
}

impl From<u16> for Class {
    fn from(v: u16) -> Class {
        match v {
            1 => Class::In,
            x => Class::Unknown(x),
        }
    }
}

impl From<Class> for u16 {
    fn from(c: Class) -> u16 {
        match c {
            Class::In => 1,
            Class::Unknown(x) => x,
        }
    }
}

/// The message header without its four counts (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Identifier copied from query to response.
    pub id: u16,
    /// QR: this is a response.
    pub qr: bool,
    /// The kind of query.
    pub opcode: Opcode,
    /// AA: the answer is authoritative.
    pub aa: bool,
    /// TC: the message was truncated.
    pub tc: bool,
    /// RD: recursion desired.
    pub rd: bool,
    /// RA: recursion available.
    pub ra: bool,
    /// Z: the reserved bit, kept so that it survives a round trip.
    pub z: bool,
    /// AD: authentic data (RFC 4035 §3.2.3).
    pub ad: bool,
    /// CD: checking disabled (RFC 4035 §3.2.2).
    pub cd: bool,
    /// The response code.
    pub rcode: Rcode,
}

impl Header {
    /// A standard query with the given id, recursion desired.
    pub fn query(id: u16) -> Header {
        Header {
            id,
            qr: false,
            opcode: Opcode::Query,
            aa: false,
            tc: false,
            rd: true,
            ra: false,
            z: false,
            ad: false,
            cd: false,
            rcode: Rcode::NoError,
        }
    }

    fn from_flags(id: u16, f: u16) -> Header {
        Header {
            id,
            qr: f & flag::QR != 0,
            opcode: Opcode::from_bits((f >> flag::OPCODE_SHIFT) as u8),
            aa: f & flag::AA != 0,
            tc: f & flag::TC != 0,
            rd: f & flag::RD != 0,
            ra: f & flag::RA != 0,
            z: f & flag::Z != 0,
            ad: f & flag::AD != 0,
            cd: f & flag::CD != 0,
            rcode: Rcode::from_bits(f as u8),
        }
    }

    fn flags(&self) -> u16 {
        let bit = |set: bool, b: u16| if set { b } else { 0 };
        bit(self.qr, flag::QR)
            | u16::from(self.opcode.to_bits()) << flag::OPCODE_SHIFT
            | bit(self.aa, flag::AA)
            | bit(self.tc, flag::TC)
            | bit(self.rd, flag::RD)
            | bit(self.ra, flag::RA)
            | bit(self.z, flag::Z)
            | bit(self.ad, flag::AD)
            | bit(self.cd, flag::CD)
            | u16::from(self.rcode.to_bits())
    }
}

/// An entry of the question section (RFC 1035 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// QNAME.
    pub name: Name,
    /// QTYPE.
    pub qtype: RecordType,
    /// QCLASS.
    pub qclass: Class,
}

/// The data of a resource record, by type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordData {
    /// An IPv4 address (RFC 1035 §3.4.1).
    A(Ipv4Addr),
    /// An IPv6 address (RFC 3596 §2.2).
    Aaaa(Ipv6Addr),
    /// The canonical name of an alias (RFC 1035 §3.3.1).
    Cname(Name),
    /// An authoritative name server (RFC 1035 §3.3.11).
    Ns(Name),
    /// A domain name pointer (RFC 1035 §3.3.12).
    Ptr(Name),
    /// A mail exchange (RFC 1035 §3.3.9).
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The exchange host.
        exchange: Name,
    },
    /// One or more character-strings of at most 255 octets each
    /// (RFC 1035 §3.3.14).
    Txt(Vec<Vec<u8>>),
    /// The start of a zone of authority (RFC 1035 §3.3.13); in a negative
    /// answer its `minimum` bounds the negative-caching TTL (RFC 2308 §5).
    Soa {
        /// The primary name server.
        mname: Name,
        /// The responsible person's mailbox.
        rname: Name,
        /// The zone's version number.
        serial: u32,
        /// Seconds between refreshes.
        refresh: u32,
        /// Seconds between retries of a failed refresh.
        retry: u32,
        /// Seconds after which the zone is no longer authoritative.
        expire: u32,
        /// The negative-caching TTL (RFC 2308 §4).
        minimum: u32,
    },
    /// A service location (RFC 2782).
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// The service's port.
        port: u16,
        /// The host; never compressed on emit (RFC 2782).
        target: Name,
    },
    /// Any other type (OPT included), its data kept as raw octets
    /// (RFC 3597). `rtype` must not be one of the types decoded above, or
    /// the record will not parse back to the same value.
    Unknown {
        /// The TYPE field.
        rtype: u16,
        /// The RDATA octets.
        data: Vec<u8>,
    },
}

/// A resource record (RFC 1035 §4.1.3). Its type is implied by its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The owner name.
    pub name: Name,
    /// The class.
    pub class: Class,
    /// Seconds the record may be cached, as on the wire (RFC 2181 §8 says
    /// a value with the top bit set means zero; that is for the cache).
    pub ttl: u32,
    /// The type-specific data.
    pub data: RecordData,
}

impl Record {
    /// The record's type, from its data.
    pub fn rtype(&self) -> RecordType {
        match &self.data {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Ns(_) => RecordType::Ns,
            RecordData::Ptr(_) => RecordType::Ptr,
            RecordData::Mx { .. } => RecordType::Mx,
            RecordData::Txt(_) => RecordType::Txt,
            RecordData::Soa { .. } => RecordType::Soa,
            RecordData::Srv { .. } => RecordType::Srv,
            RecordData::Unknown { rtype, .. } => RecordType::from(*rtype),
        }
    }
}

/// A whole DNS message (RFC 1035 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The header; its counts are the section lengths.
    pub header: Header,
    /// The question section.
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authorities: Vec<Record>,
    /// The additional section.
    pub additionals: Vec<Record>,
}

impl Message {
    /// Parses a whole message from untrusted bytes.
    ///
    /// Names are decompressed (RFC 1035 §4.1.4) under the rules in the
    /// [module documentation](super); each record's RDLENGTH must match
    /// exactly what its type's data parses to, and nothing may follow the
    /// last record the header counts.
    pub fn parse(msg: &[u8]) -> Result<Message, DnsError> {
        let mut d = Decoder { msg, pos: 0 };
        let id = d.u16()?;
        let flags = d.u16()?;
        let counts = [d.u16()?, d.u16()?, d.u16()?, d.u16()?];
        debug_assert_eq!(d.pos, field::ARCOUNT.end);
        let header = Header::from_flags(id, flags);

        let mut questions = Vec::with_capacity(d.capacity(counts[0], MIN_QUESTION_LEN));
        for _ in 0..counts[0] {
            questions.push(Question {
                name: d.name()?,
                qtype: RecordType::from(d.u16()?),
                qclass: Class::from(d.u16()?),
            });
        }
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (section, &count) in sections.iter_mut().zip(&counts[1..]) {
            *section = Vec::with_capacity(d.capacity(count, MIN_RECORD_LEN));
            for _ in 0..count {
                section.push(d.record()?);
            }
        }
        if d.pos != msg.len() {
            return Err(DnsError::TrailingBytes(msg.len() - d.pos));
        }
        let [answers, authorities, additionals] = sections;
        Ok(Message {
            header,
            questions,
            answers,
            authorities,
            additionals,
        })
    }

    /// Writes the whole message, compressing names (RFC 1035 §4.1.4).
    ///
    /// Fails only on values the format cannot carry: a section of more
    /// than 65535 entries, record data over 65535 octets, or a TXT string
    /// over 255 octets.
    pub fn emit(&self) -> Result<Vec<u8>, DnsError> {
        self.emit_truncated(usize::MAX)
    }

    /// Writes the message in at most `max_len` octets (at least the 12 of
    /// the header), for example 512 for plain UDP (RFC 1035 §4.2.1).
    ///
    /// Entries are written in order until one does not fit; it and
    /// everything after it are left out, whole, and the counts say what
    /// was written. TC is set when a question, answer or authority record
    /// was left out; dropping only additional records does not set it
    /// (RFC 2181 §9). TC already set in the header stays set.
    pub fn emit_truncated(&self, max_len: usize) -> Result<Vec<u8>, DnsError> {
        let max_len = max_len.max(HEADER_LEN);
        for len in [
            self.questions.len(),
            self.answers.len(),
            self.authorities.len(),
            self.additionals.len(),
        ] {
            if len > usize::from(u16::MAX) {
                return Err(DnsError::TooManyRecords);
            }
        }
        let mut e = Encoder {
            buf: vec![0; HEADER_LEN],
            names: HashMap::new(),
        };
        let mut counts = [0u16; 4];
        let mut tc = self.header.tc;
        let mut full = false;
        for q in &self.questions {
            let mark = e.buf.len();
            e.name(&q.name, true);
            e.u16(q.qtype.into());
            e.u16(q.qclass.into());
            if e.buf.len() > max_len {
                e.rollback(mark);
                full = true;
                tc = true;
                break;
            }
            counts[0] += 1;
        }
        let sections = [&self.answers, &self.authorities, &self.additionals];
        for (i, section) in sections.into_iter().enumerate() {
            if full {
                // Earlier sections were cut; later ones are left out too.
                tc |= i < 2 && !section.is_empty();
                continue;
            }
            for r in section {
                let mark = e.buf.len();
                e.record(r)?;
                if e.buf.len() > max_len {
                    e.rollback(mark);
                    full = true;
                    tc |= i < 2;
                    break;
                }
                counts[i + 1] += 1;
            }
        }
        let header = Header { tc, ..self.header };
        e.buf[field::ID].copy_from_slice(&header.id.to_be_bytes());
        e.buf[field::FLAGS].copy_from_slice(&header.flags().to_be_bytes());
        e.buf[field::QDCOUNT].copy_from_slice(&counts[0].to_be_bytes());
        e.buf[field::ANCOUNT].copy_from_slice(&counts[1].to_be_bytes());
        e.buf[field::NSCOUNT].copy_from_slice(&counts[2].to_be_bytes());
        e.buf[field::ARCOUNT].copy_from_slice(&counts[3].to_be_bytes());
        Ok(e.buf)
    }
}

/// A cursor over a message being parsed. Every read is bounds-checked.
struct Decoder<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn truncated(&self, needed: usize) -> DnsError {
        DnsError::Truncated {
            needed,
            had: self.msg.len(),
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self.pos + n;
        let b = self.msg.get(self.pos..end).ok_or(self.truncated(end))?;
        self.pos = end;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, DnsError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// How many entries to preallocate for a claimed `count` of entries of
    /// at least `min_len` octets: no more than the remaining bytes can hold.
    fn capacity(&self, count: u16, min_len: usize) -> usize {
        let remaining = self.msg.len().saturating_sub(self.pos);
        usize::from(count).min(remaining / min_len)
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4).
    ///
    /// Each pointer must point strictly before the start of the name piece
    /// that holds it (the name itself, then each pointer's target), so the
    /// targets strictly decrease and no loop is possible; the jumps are
    /// capped at [`MAX_POINTER_JUMPS`] and the result at 255 octets anyway.
    fn name(&mut self) -> Result<Name, DnsError> {
        let msg = self.msg;
        let mut pos = self.pos;
        let mut piece_start = self.pos;
        let mut resume = None;
        let mut jumps = 0;
        let mut wire = Vec::new();
        loop {
            let len = *msg.get(pos).ok_or(self.truncated(pos + 1))?;
            match len >> 6 {
                0b00 if len == 0 => {
                    wire.push(0);
                    pos += 1;
                    break;
                }
                0b00 => {
                    let end = pos + 1 + usize::from(len);
                    let label = msg.get(pos..end).ok_or(self.truncated(end))?;
                    // +1 for the root's zero octet still to come.
                    let name_len = wire.len() + label.len() + 1;
                    if name_len > MAX_NAME_LEN {
                        return Err(DnsError::NameTooLong(name_len));
                    }
                    wire.extend_from_slice(label);
                    pos = end;
                }
                0b11 => {
                    let lo = *msg.get(pos + 1).ok_or(self.truncated(pos + 2))?;
                    let target = usize::from(len & 0x3f) << 8 | usize::from(lo);
                    if target >= piece_start {
                        return Err(DnsError::BadPointer { at: pos, target });
                    }
                    jumps += 1;
                    if jumps > MAX_POINTER_JUMPS {
                        return Err(DnsError::TooManyPointers);
                    }
                    resume.get_or_insert(pos + 2);
                    piece_start = target;
                    pos = target;
                }
                _ => return Err(DnsError::BadLabelType(len)),
            }
        }
        self.pos = resume.unwrap_or(pos);
        Ok(Name::from_checked_wire(wire))
    }

    /// Reads a resource record (RFC 1035 §4.1.3).
    fn record(&mut self) -> Result<Record, DnsError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let class = Class::from(self.u16()?);
        let ttl = self.u32()?;
        let rdlength = self.u16()?;
        let end = self.pos + usize::from(rdlength);
        if end > self.msg.len() {
            return Err(self.truncated(end));
        }
        // The rdata sees the message up to its own end: pointers only point
        // backwards, and any read past RDLENGTH fails as truncated.
        let mut rd = Decoder {
            msg: &self.msg[..end],
            pos: self.pos,
        };
        let bad_len = DnsError::BadRdataLength { rtype, rdlength };
        let data = match rd.rdata(rtype, end) {
            Ok(data) if rd.pos == end => data,
            Ok(_) | Err(DnsError::Truncated { .. }) => return Err(bad_len),
            Err(e) => return Err(e),
        };
        self.pos = end;
        Ok(Record {
            name,
            class,
            ttl,
            data,
        })
    }

    /// Reads the data of a record of type `rtype` ending at `end`.
    fn rdata(&mut self, rtype: u16, end: usize) -> Result<RecordData, DnsError> {
        Ok(match RecordType::from(rtype) {
            RecordType::A => {
                let b = self.bytes(4)?;
                RecordData::A(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            RecordType::Aaaa => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.bytes(16)?);
                RecordData::Aaaa(Ipv6Addr::from(a))
            }
            RecordType::Cname => RecordData::Cname(self.name()?),
            RecordType::Ns => RecordData::Ns(self.name()?),
            RecordType::Ptr => RecordData::Ptr(self.name()?),
            RecordType::Mx => RecordData::Mx {
                preference: self.u16()?,
                exchange: self.name()?,
            },
            RecordType::Txt => {
                let mut strings = Vec::new();
                while self.pos < end {
                    let len = self.u8()?;
                    strings.push(self.bytes(usize::from(len))?.to_vec());
                }
                RecordData::Txt(strings)
            }
            RecordType::Soa => RecordData::Soa {
                mname: self.name()?,
                rname: self.name()?,
                serial: self.u32()?,
                refresh: self.u32()?,
                retry: self.u32()?,
                expire: self.u32()?,
                minimum: self.u32()?,
            },
            RecordType::Srv => RecordData::Srv {
                priority: self.u16()?,
                weight: self.u16()?,
                port: self.u16()?,
                target: self.name()?,
            },
            RecordType::Opt | RecordType::Unknown(_) => RecordData::Unknown {
                rtype,
                data: self.bytes(end - self.pos)?.to_vec(),
            },
        })
    }
}

/// A message being written, with the compression table: the lowercased
/// wire form of every name suffix written so far, to its offset.
struct Encoder {
    buf: Vec<u8>,
    names: HashMap<Vec<u8>, u16>,
}

impl Encoder {
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Drops everything from `mark` on, compression entries included.
    fn rollback(&mut self, mark: usize) {
        self.buf.truncate(mark);
        self.names.retain(|_, &mut off| usize::from(off) < mark);
    }

    /// Writes a name, ending in a pointer to the longest suffix already
    /// written when `compress` is set. Every suffix written in full at an
    /// offset a pointer can reach becomes a target for later names.
    fn name(&mut self, name: &Name, compress: bool) {
        let wire = name.as_wire();
        for off in name.suffix_offsets() {
            let key = wire[off..].to_ascii_lowercase();
            if compress {
                if let Some(&target) = self.names.get(&key) {
                    self.u16(0xc000 | target);
                    return;
                }
            }
            let here = self.buf.len();
            if here <= MAX_POINTER_TARGET {
                self.names.entry(key).or_insert(here as u16);
            }
            let len = usize::from(wire[off]);
            self.buf.extend_from_slice(&wire[off..off + 1 + len]);
        }
        self.buf.push(0);
    }

    /// Writes a resource record, compressing the owner name and the names
    /// in the data of the RFC 1035 types (RFC 3597 §4).
    fn record(&mut self, r: &Record) -> Result<(), DnsError> {
        self.name(&r.name, true);
        self.u16(r.rtype().into());
        self.u16(r.class.into());
        self.u32(r.ttl);
        let len_at = self.buf.len();
        self.u16(0);
        match &r.data {
            RecordData::A(a) => self.buf.extend_from_slice(&a.octets()),
            RecordData::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            RecordData::Cname(n) | RecordData::Ns(n) | RecordData::Ptr(n) => self.name(n, true),
            RecordData::Mx {
                preference,
                exchange,
            } => {
                self.u16(*preference);
                self.name(exchange, true);
            }
            RecordData::Txt(strings) => {
                for s in strings {
                    let len =
                        u8::try_from(s.len()).map_err(|_| DnsError::StringTooLong(s.len()))?;
                    self.buf.push(len);
                    self.buf.extend_from_slice(s);
                }
            }
            RecordData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => {
                self.name(mname, true);
                self.name(rname, true);
                for v in [serial, refresh, retry, expire, minimum] {
                    self.u32(*v);
                }
            }
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.u16(*priority);
                self.u16(*weight);
                self.u16(*port);
                self.name(target, false);
            }
            RecordData::Unknown { data, .. } => self.buf.extend_from_slice(data),
        }
        let rdlength = self.buf.len() - len_at - 2;
        let rdlength = u16::try_from(rdlength).map_err(|_| DnsError::RdataTooLong(rdlength))?;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlength.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Instant;

    fn name(s: &str) -> Name {
        s.parse().unwrap()
    }

    fn rec(owner: &str, ttl: u32, data: RecordData) -> Record {
        Record {
            name: name(owner),
            class: Class::In,
            ttl,
            data,
        }
    }

    /// An A query for example.com as a stub resolver sends it without EDNS
    /// (built by hand per RFC 1035 §4.1): id 0x1234, RD set, one question,
    /// no records.
    const QUERY: [u8; 29] = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
        0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, // QNAME
        0x00, 0x01, 0x00, 0x01, // QTYPE A, QCLASS IN
    ];

    /// The answer to an A query for www.example.com, built by hand the way
    /// a server compresses it: a CNAME chain www -> web -> edge and two A
    /// records for edge.example.com. Offsets: the question's QNAME at 12
    /// (example.com at 16), web.example.com at 45, edge.example.com at 63.
    #[rustfmt::skip]
    const RESPONSE: [u8; 102] = [
        0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, // QR RD RA
        // 12: www.example.com A IN
        0x03, b'w', b'w', b'w', 0x07, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o',
        b'm', 0x00, 0x00, 0x01, 0x00, 0x01,
        // 33: www.example.com (ptr 12) CNAME IN ttl 300, web + ptr 16
        0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06, 0x03, b'w', b'e',
        b'b', 0xc0, 0x10,
        // 51: web.example.com (ptr 45) CNAME IN ttl 60, edge + ptr 16
        0xc0, 0x2d, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x07, 0x04, b'e', b'd',
        b'g', b'e', 0xc0, 0x10,
        // 70: edge.example.com (ptr 63) A IN ttl 60 93.184.216.34
        0xc0, 0x3f, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 93, 184, 216, 34,
        // 86: edge.example.com (ptr 63) A IN ttl 60 93.184.216.35
        0xc0, 0x3f, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 93, 184, 216, 35,
    ];

    #[test]
    fn golden_query() {
        let m = Message::parse(&QUERY).unwrap();
        assert_eq!(m.header, Header::query(0x1234));
        assert_eq!(
            m.questions,
            vec![Question {
                name: name("example.com"),
                qtype: RecordType::A,
                qclass: Class::In,
            }]
        );
        assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
        assert_eq!(m.emit().unwrap(), QUERY);
        for n in 0..QUERY.len() {
            assert!(matches!(
                Message::parse(&QUERY[..n]),
                Err(DnsError::Truncated { .. })
            ));
        }
        let mut long = QUERY.to_vec();
        long.push(0);
        assert_eq!(Message::parse(&long), Err(DnsError::TrailingBytes(1)));
    }

    #[test]
    fn golden_response() {
        let m = Message::parse(&RESPONSE).unwrap();
        let h = m.header;
        assert!(h.qr && h.rd && h.ra && !h.aa && !h.tc);
        assert_eq!(
            (h.id, h.opcode, h.rcode),
            (0x1234, Opcode::Query, Rcode::NoError)
        );
        assert_eq!(m.questions[0].name, name("www.example.com"));
        let ip = |d| RecordData::A(Ipv4Addr::new(93, 184, 216, d));
        assert_eq!(
            m.answers,
            vec![
                rec(
                    "www.example.com",
                    300,
                    RecordData::Cname(name("web.example.com"))
                ),
                rec(
                    "web.example.com",
                    60,
                    RecordData::Cname(name("edge.example.com"))
                ),
                rec("edge.example.com", 60, ip(34)),
                rec("edge.example.com", 60, ip(35)),
            ]
        );
        // Our compressor makes exactly the same choices.
        assert_eq!(m.emit().unwrap(), RESPONSE);
        for n in 0..RESPONSE.len() {
            assert!(Message::parse(&RESPONSE[..n]).is_err(), "prefix {n}");
        }
    }

    fn every_type() -> Message {
        let soa = RecordData::Soa {
            mname: name("ns1.example.com"),
            rname: name("hostmaster.example.com"),
            serial: 2026112501,
            refresh: 7200,
            retry: 3600,
            expire: 1209600,
            minimum: 300,
        };
        Message {
            header: Header {
                qr: true,
                aa: true,
                rcode: Rcode::NxDomain,
                ..Header::query(7)
            },
            questions: vec![Question {
                name: name("missing.example.com"),
                qtype: RecordType::Aaaa,
                qclass: Class::In,
            }],
            answers: vec![
                rec(
                    "a.example.com",
                    1,
                    RecordData::A(Ipv4Addr::new(192, 0, 2, 1)),
                ),
                rec(
                    "a.example.com",
                    2,
                    RecordData::Aaaa("2001:db8::1".parse().unwrap()),
                ),
                rec("c.example.com", 3, RecordData::Cname(name("a.example.com"))),
                rec("example.com", 4, RecordData::Ns(name("ns1.example.com"))),
                rec(
                    "1.2.0.192.in-addr.arpa",
                    5,
                    RecordData::Ptr(name("a.example.com")),
                ),
                rec(
                    "example.com",
                    6,
                    RecordData::Mx {
                        preference: 10,
                        exchange: name("mail.example.com"),
                    },
                ),
                rec(
                    "example.com",
                    7,
                    RecordData::Txt(vec![b"v=spf1 -all".to_vec(), vec![], vec![0xff; 255]]),
                ),
                rec(
                    "_sip._udp.example.com",
                    8,
                    RecordData::Srv {
                        priority: 1,
                        weight: 2,
                        port: 5060,
                        target: name("sip.example.com"),
                    },
                ),
                rec(
                    "example.com",
                    9,
                    RecordData::Unknown {
                        rtype: 99,
                        data: vec![1, 2, 3],
                    },
                ),
            ],
            // RFC 2308 §3: the SOA of a negative answer in the authority.
            authorities: vec![rec("example.com", 300, soa)],
            // An EDNS OPT pseudo-record, kept raw (RFC 6891 §6.1.2).
            additionals: vec![Record {
                name: Name::root(),
                class: Class::Unknown(1232),
                ttl: 0x0000_8000,
                data: RecordData::Unknown {
                    rtype: 41,
                    data: vec![0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
                },
            }],
        }
    }

    #[test]
    fn every_record_type_round_trips() {
        let m = every_type();
        let bytes = m.emit().unwrap();
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.additionals[0].rtype(), RecordType::Opt);
        let types: Vec<_> = back.answers.iter().map(Record::rtype).collect();
        use RecordType::*;
        assert_eq!(
            types,
            [
                A,
                Aaaa,
                Cname,
                Ns,
                Ptr,
                Mx,
                Txt,
                Srv,
                RecordType::Unknown(99)
            ]
        );
        assert_eq!(back.authorities[0].rtype(), Soa);
        // A second emit of the parsed message is identical.
        assert_eq!(back.emit().unwrap(), bytes);
    }

    /// The length `m` would have without name compression.
    fn uncompressed_len(m: &Message) -> usize {
        let rdata = |r: &Record| match &r.data {
            RecordData::A(_) => 4,
            RecordData::Aaaa(_) => 16,
            RecordData::Cname(n) | RecordData::Ns(n) | RecordData::Ptr(n) => n.wire_len(),
            RecordData::Mx { exchange, .. } => 2 + exchange.wire_len(),
            RecordData::Txt(s) => s.iter().map(|s| 1 + s.len()).sum(),
            RecordData::Soa { mname, rname, .. } => mname.wire_len() + rname.wire_len() + 20,
            RecordData::Srv { target, .. } => 6 + target.wire_len(),
            RecordData::Unknown { data, .. } => data.len(),
        };
        let records = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
        HEADER_LEN
            + m.questions
                .iter()
                .map(|q| q.name.wire_len() + 4)
                .sum::<usize>()
            + records
                .map(|r| r.name.wire_len() + 10 + rdata(r))
                .sum::<usize>()
    }

    #[test]
    fn compression_shrinks_and_points_backwards() {
        let m = every_type();
        let bytes = m.emit().unwrap();
        assert!(
            bytes.len() + 150 < uncompressed_len(&m),
            "{} vs {}",
            bytes.len(),
            uncompressed_len(&m)
        );
        // The parser rejects any pointer that is not strictly backwards,
        // so parsing succeeding proves it; check the SRV target is written
        // in full (RFC 2782) even though sip.example.com's suffix exists.
        let srv_target = b"\x03sip\x07example\x03com\x00";
        assert!(bytes.windows(srv_target.len()).any(|w| w == srv_target));

        // Compression keys fold case; offsets past 0x3fff are never used.
        let big = Message {
            header: Header::query(1),
            questions: vec![],
            answers: (0..300)
                .map(|i| {
                    rec(
                        &format!("host{i}.Example.com"),
                        0,
                        RecordData::Txt(vec![vec![b'x'; 200]]),
                    )
                })
                .collect(),
            authorities: vec![],
            additionals: vec![],
        };
        let bytes = big.emit().unwrap();
        assert!(bytes.len() > 0x4000 * 3);
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(back, big);
        for r in &back.answers {
            assert_eq!(r.name.labels().nth(1), Some(&b"Example"[..]));
        }
    }

    fn many_a(n: u8) -> Message {
        Message {
            header: Header {
                qr: true,
                ra: true,
                ..Header::query(9)
            },
            questions: vec![Question {
                name: name("pool.example.org"),
                qtype: RecordType::A,
                qclass: Class::In,
            }],
            answers: (0..n)
                .map(|i| {
                    rec(
                        "pool.example.org",
                        30,
                        RecordData::A(Ipv4Addr::new(10, 0, 0, i)),
                    )
                })
                .collect(),
            authorities: vec![],
            additionals: vec![],
        }
    }

    #[test]
    fn truncation_sets_tc_and_parses() {
        // 12 + 22 + 16 per record: 100 records need 1634 octets.
        let m = many_a(100);
        assert_eq!(m.emit().unwrap().len(), 12 + 22 + 100 * 16);
        let bytes = m.emit_truncated(512).unwrap();
        assert!(bytes.len() <= 512);
        let back = Message::parse(&bytes).unwrap();
        assert!(back.header.tc);
        assert_eq!(back.answers.len(), (512 - 34) / 16);
        assert_eq!(back.answers[..], m.answers[..back.answers.len()]);
        assert_eq!(back.questions, m.questions);

        // A message that fits is untouched.
        let small = many_a(5);
        assert_eq!(small.emit_truncated(512).unwrap(), small.emit().unwrap());

        // Dropping only additional records leaves TC clear (RFC 2181 §9).
        let mut extra = many_a(5);
        extra.additionals = many_a(100).answers;
        let back = Message::parse(&extra.emit_truncated(512).unwrap()).unwrap();
        assert!(!back.header.tc);
        assert_eq!(back.answers, extra.answers);
        assert!(back.additionals.len() < 100);

        // Even the question does not fit: header only, TC set.
        let back = Message::parse(&m.emit_truncated(20).unwrap()).unwrap();
        assert!(back.header.tc && back.questions.is_empty() && back.answers.is_empty());
        assert_eq!(m.emit_truncated(0).unwrap().len(), HEADER_LEN);
    }

    #[test]
    fn emit_rejects_what_the_format_cannot_carry() {
        let mut m = many_a(0);
        m.answers = vec![rec("a", 0, RecordData::Txt(vec![vec![0; 256]]))];
        assert_eq!(m.emit(), Err(DnsError::StringTooLong(256)));
        m.answers = vec![rec(
            "a",
            0,
            RecordData::Unknown {
                rtype: 99,
                data: vec![0; 65536],
            },
        )];
        assert_eq!(m.emit(), Err(DnsError::RdataTooLong(65536)));
        m.answers = vec![rec("a", 0, RecordData::A(Ipv4Addr::LOCALHOST)); 65536];
        assert_eq!(m.emit(), Err(DnsError::TooManyRecords));
    }

    /// A header with the given counts followed by `body`.
    fn msg(counts: [u16; 4], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xab, 0xcd, 0x01, 0x00];
        for c in counts {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn malicious_pointers_and_lengths() {
        let started = Instant::now();
        // A pointer to itself.
        let selfptr = msg([1, 0, 0, 0], &[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            Message::parse(&selfptr),
            Err(DnsError::BadPointer { at: 12, target: 12 })
        );
        // A forward pointer.
        let fwd = msg([1, 0, 0, 0], &[0xc0, 18, 0, 1, 0, 1, 0]);
        assert_eq!(
            Message::parse(&fwd),
            Err(DnsError::BadPointer { at: 12, target: 18 })
        );
        // A loop between two names: the answer's name at 17 points to the
        // question's at 12, whose tail points to 17 again.
        let looped = msg(
            [1, 1, 0, 0],
            &[
                1, b'a', 0xc0, 17, 0, 1, 0, 1, 0, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0,
            ],
        );
        assert_eq!(
            Message::parse(&looped),
            Err(DnsError::BadPointer { at: 14, target: 17 })
        );
        // A pointer into the middle of the pointer that led there.
        let mid = msg([1, 0, 0, 0], &[1, b'a', 0xc0, 13, 0, 1, 0, 1]);
        assert!(matches!(
            Message::parse(&mid),
            Err(DnsError::BadPointer { .. })
        ));
        // A 257-octet name built from four 63-octet labels, each question
        // adding one and pointing back at the previous question's name.
        let label = [63u8].into_iter().chain([b'x'; 63]);
        let mut body: Vec<u8> = label.clone().chain([0, 0, 1, 0, 1]).collect();
        let mut prev = 12u16;
        for _ in 0..3 {
            let here = 12 + body.len() as u16;
            body.extend(label.clone());
            body.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            body.extend_from_slice(&[0, 1, 0, 1]);
            prev = here;
        }
        let long = msg([4, 0, 0, 0], &body);
        assert_eq!(Message::parse(&long), Err(DnsError::NameTooLong(257)));
        assert_eq!(
            Message::parse(&msg([3, 0, 0, 0], &body[..body.len() - 70]))
                .unwrap()
                .questions[2]
                .name
                .wire_len(),
            193
        );
        // A chain of 70 bare pointers, each to the one before, hidden in
        // the raw data of an unknown record; a second record's owner name
        // enters at the end of the chain.
        let mut body = vec![0, 0, 1, 0, 1]; // question: root A IN, at 12
        body.extend_from_slice(&[0, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 140]); // record at 17
        let chain_start = 12 + body.len() as u16; // 28
        body.extend_from_slice(&[0xc0, 12]);
        for i in 1..70u16 {
            body.extend_from_slice(&(0xc000 | (chain_start + 2 * (i - 1))).to_be_bytes());
        }
        let last = chain_start + 2 * 69;
        body.extend_from_slice(&(0xc000 | last).to_be_bytes());
        body.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        let chain = msg([1, 2, 0, 0], &body);
        assert_eq!(Message::parse(&chain), Err(DnsError::TooManyPointers));
        // Counts of 65535 with no data.
        let empty = msg([u16::MAX; 4], &[]);
        assert_eq!(
            Message::parse(&empty),
            Err(DnsError::Truncated {
                needed: 13,
                had: 12
            })
        );
        // Reserved label types.
        for t in [0x40, 0x80] {
            assert_eq!(
                Message::parse(&msg([1, 0, 0, 0], &[t, 0, 0, 1, 0, 1])),
                Err(DnsError::BadLabelType(t))
            );
        }
        assert!(started.elapsed().as_millis() < 1000);
    }

    #[test]
    fn rdata_length_must_match() {
        // An A record with RDLENGTH 5, and one with 3.
        for (rdlen, data) in [(5u8, &[1, 2, 3, 4, 5][..]), (3, &[1, 2, 3][..])] {
            // Question: root A IN; record: root A IN ttl 0.
            let mut body = vec![0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, rdlen];
            body.extend_from_slice(data);
            assert_eq!(
                Message::parse(&msg([1, 1, 0, 0], &body)),
                Err(DnsError::BadRdataLength {
                    rtype: 1,
                    rdlength: u16::from(rdlen)
                })
            );
        }
        // A CNAME whose name runs past RDLENGTH, and a TXT string that does.
        let cname = msg([0, 1, 0, 0], &[0, 0, 5, 0, 1, 0, 0, 0, 0, 0, 2, 1, b'a', 0]);
        assert!(matches!(
            Message::parse(&cname),
            Err(DnsError::BadRdataLength { rtype: 5, .. })
        ));
        let txt = msg(
            [0, 1, 0, 0],
            &[0, 0, 16, 0, 1, 0, 0, 0, 0, 0, 2, 2, b'a', b'b'],
        );
        assert!(matches!(
            Message::parse(&txt),
            Err(DnsError::BadRdataLength { rtype: 16, .. })
        ));
        // RDLENGTH past the end of the message.
        let past = msg([0, 1, 0, 0], &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1]);
        assert_eq!(
            Message::parse(&past),
            Err(DnsError::Truncated {
                needed: 27,
                had: 24
            })
        );
    }

    fn arb_name() -> impl Strategy<Value = Name> {
        // Few distinct labels, so that suffixes repeat and compress.
        let label = prop_oneof![
            Just(b"com".to_vec()),
            Just(b"Example".to_vec()),
            Just(b"www".to_vec()),
            proptest::collection::vec(any::<u8>(), 1..=20),
        ];
        proptest::collection::vec(label, 0..5).prop_map(|l| Name::from_labels(l).unwrap())
    }

    fn arb_data() -> impl Strategy<Value = RecordData> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| RecordData::A(a.into())),
            any::<[u8; 16]>().prop_map(|a| RecordData::Aaaa(a.into())),
            arb_name().prop_map(RecordData::Cname),
            arb_name().prop_map(RecordData::Ns),
            arb_name().prop_map(RecordData::Ptr),
            (any::<u16>(), arb_name()).prop_map(|(preference, exchange)| RecordData::Mx {
                preference,
                exchange
            }),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4)
                .prop_map(RecordData::Txt),
            (arb_name(), arb_name(), any::<[u32; 5]>()).prop_map(|(mname, rname, v)| {
                RecordData::Soa {
                    mname,
                    rname,
                    serial: v[0],
                    refresh: v[1],
                    retry: v[2],
                    expire: v[3],
                    minimum: v[4],
                }
            }),
            (any::<[u16; 3]>(), arb_name()).prop_map(|(v, target)| RecordData::Srv {
                priority: v[0],
                weight: v[1],
                port: v[2],
                target,
            }),
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_filter_map(
                "decoded type",
                |(rtype, data)| {
                    match RecordType::from(rtype) {
                        RecordType::Unknown(_) | RecordType::Opt => {
                            Some(RecordData::Unknown { rtype, data })
                        }
                        _ => None,
                    }
                }
            ),
        ]
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        (arb_name(), any::<u16>(), any::<u32>(), arb_data()).prop_map(|(name, c, ttl, data)| {
            Record {
                name,
                class: Class::from(c),
                ttl,
                data,
            }
        })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let question = (arb_name(), any::<u16>(), any::<u16>()).prop_map(|(name, t, c)| Question {
            name,
            qtype: RecordType::from(t),
            qclass: Class::from(c),
        });
        let records = || proptest::collection::vec(arb_record(), 0..4);
        (
            any::<(u16, u16)>(),
            proptest::collection::vec(question, 0..3),
            records(),
            records(),
            records(),
        )
            .prop_map(
                |((id, flags), questions, answers, authorities, additionals)| Message {
                    header: Header::from_flags(id, flags),
                    questions,
                    answers,
                    authorities,
                    additionals,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(m in arb_message()) {
            let bytes = m.emit().unwrap();
            let back = Message::parse(&bytes).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert!(bytes.len() <= uncompressed_len(&m));
        }

        #[test]
        fn truncated_emit_parses(m in arb_message(), max in 12usize..400) {
            let bytes = m.emit_truncated(max).unwrap();
            prop_assert!(bytes.len() <= max);
            let back = Message::parse(&bytes).unwrap();
            prop_assert_eq!(back.header.id, m.header.id);
            prop_assert_eq!(&back.questions[..], &m.questions[..back.questions.len()]);
            prop_assert_eq!(&back.answers[..], &m.answers[..back.answers.len()]);
            let cut = back.questions.len() < m.questions.len()
                || back.answers.len() < m.answers.len()
                || back.authorities.len() < m.authorities.len();
            prop_assert!(!cut || back.header.tc);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::parse(&data);
        }

        #[test]
        fn mutated_messages_never_panic(
            m in arb_message(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = m.emit().unwrap();
            for (at, b) in edits {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            if let Ok(parsed) = Message::parse(&bytes) {
                // Whatever parses re-emits and parses back to itself.
                let again = Message::parse(&parsed.emit().unwrap()).unwrap();
                prop_assert_eq!(again, parsed);
            }
        }
    }
}
