//! The DNS message format, as a pure codec with no I/O.
//!
//! [`Message::parse`] turns a DNS message (RFC 1035 §4.1) into a
//! [`Message`] and [`Message::emit`] turns it back into bytes, compressing
//! names (RFC 1035 §4.1.4); [`Message::emit_truncated`] fits a response in
//! a size limit such as UDP's 512 octets, dropping whole records and
//! setting TC (RFC 1035 §4.2.1, RFC 2181 §9). Record data is decoded for
//! A, NS, CNAME, SOA, PTR, MX and TXT (RFC 1035 §3.3, §3.4), AAAA
//! (RFC 3596) and SRV (RFC 2782); every other type, OPT (RFC 6891)
//! included, is kept as raw octets so that it survives a round trip
//! (RFC 3597). The negative-caching fields of RFC 2308 are the SOA record
//! in the authority section, decoded like any SOA.
//!
//! Parsing is hostile-input safe: every length is checked, compression
//! pointers must point strictly backwards and are followed at most
//! [`MAX_POINTER_JUMPS`] times, names are capped at 255 octets, and header
//! counts never size an allocation on their own.
//!
//! On top of the codec, written against the socket API only (through the
//! small traits of [`crate::application::net`], so they also run over
//! `std::net`; [`transport`] holds the TCP framing):
//! [`resolver`], a stub resolver with retries, TCP fallback and a cache,
//! and [`responder`], an authoritative server for one static zone.
//!
//! Not here yet: EDNS option parsing, DNSSEC record types, and zone-file
//! text beyond domain names.
//!
//! # Example
//!
//! A query for `www.example.com`, emitted with its name compressed in the
//! answer, and parsed back:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::application::dns::{Class, Header, Message, Name, Question, Record};
//! use netstrata::application::dns::{RecordData, RecordType};
//!
//! let name: Name = "www.example.com".parse()?;
//! let question = Question { name: name.clone(), qtype: RecordType::A, qclass: Class::In };
//! let mut message = Message {
//!     header: Header::query(0x1234),
//!     questions: vec![question],
//!     answers: Vec::new(),
//!     authorities: Vec::new(),
//!     additionals: Vec::new(),
//! };
//! let query = message.emit()?;
//! assert_eq!(query[..4], [0x12, 0x34, 0x01, 0x00]); // ID, RD set
//! assert_eq!(query[12..29], *b"\x03www\x07example\x03com\x00");
//!
//! message.header.qr = true;
//! let data = RecordData::A(Ipv4Addr::new(192, 0, 2, 80));
//! message.answers.push(Record { name, class: Class::In, ttl: 300, data });
//! let response = message.emit()?;
//! assert_eq!(response.len(), query.len() + 2 + 10 + 4); // a pointer, not the name again
//! assert_eq!(Message::parse(&response)?, message);
//! assert!(Message::parse(&response[..response.len() - 1]).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod message;
mod name;
pub mod resolver;
pub mod responder;
pub mod transport;

pub use message::{
    Class, Header, MAX_POINTER_JUMPS, Message, Opcode, Question, Rcode, Record, RecordData,
    RecordType,
};
pub use name::{Labels, MAX_LABEL_LEN, MAX_NAME_LEN, Name};

/// Why a DNS message or name could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The message ends before a structure in it does.
    #[error("truncated: needed {needed} bytes, had {had}")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes available.
        had: usize,
    },
    /// A compression pointer does not point strictly before the name (or
    /// name piece) that holds it (RFC 1035 §4.1.4).
    #[error("compression pointer at {at} to {target} does not point backwards")]
    BadPointer {
        /// Offset of the pointer.
        at: usize,
        /// Offset it points to.
        target: usize,
    },
    /// A name follows more than [`MAX_POINTER_JUMPS`] compression pointers.
    #[error("too many compression pointers in one name")]
    TooManyPointers,
    /// A name is longer than 255 octets in wire form.
    #[error("name of {0} octets is longer than 255")]
    NameTooLong(usize),
    /// A label is longer than 63 octets.
    #[error("label of {0} octets is longer than 63")]
    LabelTooLong(usize),
    /// A name in text has an empty label (`a..b`), or the text is empty.
    #[error("empty label in name")]
    EmptyLabel,
    /// A name in text has a malformed backslash escape.
    #[error("bad escape in name")]
    BadEscape,
    /// A label-length octet uses the reserved 0b01 or 0b10 prefix
    /// (RFC 1035 §4.1.4, RFC 6891 §5).
    #[error("unsupported label type 0x{0:02x}")]
    BadLabelType(u8),
    /// A record's RDLENGTH disagrees with what its type's data parses to.
    #[error("rdata of type {rtype} does not fit its length {rdlength}")]
    BadRdataLength {
        /// The record type.
        rtype: u16,
        /// The RDLENGTH field.
        rdlength: u16,
    },
    /// Bytes follow the last record the header counts.
    #[error("{0} bytes after the last record")]
    TrailingBytes(usize),
    /// On emit: a section holds more than 65535 entries.
    #[error("a section holds more than 65535 entries")]
    TooManyRecords,
    /// On emit: record data is longer than 65535 octets.
    #[error("record data of {0} octets is longer than 65535")]
    RdataTooLong(usize),
    /// On emit: a TXT character-string is longer than 255 octets.
    #[error("character-string of {0} octets is longer than 255")]
    StringTooLong(usize),
}
