//! Domain names (RFC 1035 §3.1, §2.3.4; case rules from RFC 4343).
//!
//! A [`Name`] holds its labels in uncompressed wire form, so every `Name`
//! that exists is valid: each label is 1 to 63 octets and the whole name,
//! length octets and the root's zero octet included, is at most 255 octets.
//! Labels are arbitrary octets (RFC 2181 §11); comparison and hashing fold
//! ASCII case only (RFC 4343 §3) and the original case is kept.
//!
//! The text form is dotted and absolute: [`Display`](core::fmt::Display)
//! always writes the trailing dot (`example.com.`, the root is `.`), and
//! [`FromStr`] accepts names with or without it (every name is taken as
//! fully qualified). Text escapes follow the master-file syntax of
//! RFC 1035 §5.1: `\.` and `\\` for a literal dot or backslash, `\DDD`
//! (three decimal digits) for any octet. Not handled: relative names, `@`,
//! and internationalised names (IDNA), which are the caller's business.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::str::FromStr;

use super::DnsError;

/// The longest label, in octets (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The longest name in wire form, in octets (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// A validated, absolute domain name.
///
/// Equality and hashing ignore ASCII case (RFC 4343).
#[derive(Clone)]
pub struct Name {
    /// Uncompressed wire form: length-prefixed labels, then a zero octet.
    wire: Vec<u8>,
}

impl Name {
    /// The root name (`.`).
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// A name from its labels, most specific first (`["www", "example",
    /// "com"]`). Fails on an empty or over-long label, or an over-long name.
    pub fn from_labels<I, L>(labels: I) -> Result<Name, DnsError>
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut wire = Vec::new();
        for label in labels {
            push_label(&mut wire, label.as_ref())?;
        }
        wire.push(0);
        Ok(Name { wire })
    }

    /// Builds a name from wire bytes already checked by the caller
    /// (labels of 1..=63 octets, a final zero, at most 255 octets).
    pub(super) fn from_checked_wire(wire: Vec<u8>) -> Name {
        debug_assert!(wire.len() <= MAX_NAME_LEN && wire.last() == Some(&0));
        Name { wire }
    }

    /// The uncompressed wire form, final zero octet included.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    /// The length of the uncompressed wire form (1 for the root).
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// The labels, most specific first; the root has none.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// The number of labels (0 for the root).
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Offsets into [`as_wire`](Self::as_wire) where each non-root suffix
    /// starts: `www.example.com.` gives 0, 4, 12.
    pub(super) fn suffix_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        let mut at = 0;
        core::iter::from_fn(move || {
            let len = usize::from(self.wire[at]);
            if len == 0 {
                None
            } else {
                let start = at;
                at += 1 + len;
                Some(start)
            }
        })
    }
}

/// Appends one length-prefixed label, checking its length and the name's.
fn push_label(wire: &mut Vec<u8>, label: &[u8]) -> Result<(), DnsError> {
    if label.is_empty() {
        return Err(DnsError::EmptyLabel);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(DnsError::LabelTooLong(label.len()));
    }
    // +1 for this label's length octet, +1 for the root's zero octet.
    let len = wire.len() + 1 + label.len() + 1;
    if len > MAX_NAME_LEN {
        return Err(DnsError::NameTooLong(len));
    }
    wire.push(label.len() as u8);
    wire.extend_from_slice(label);
    Ok(())
}

/// Iterator over a [`Name`]'s labels.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let len = usize::from(len);
        if len == 0 || tail.len() < len {
            return None;
        }
        let (label, rest) = tail.split_at(len);
        self.rest = rest;
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        // Length octets are at most 63, below every ASCII letter, so folding
        // case over the whole wire form folds only label octets.
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in &self.wire {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Name {
    /// Dotted text with a trailing dot; `.` for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl FromStr for Name {
    type Err = DnsError;

    /// Parses dotted text, with or without the trailing dot; `.` is the
    /// root. Empty text, empty labels (`a..b`, `.a`), bad escapes and
    /// over-long labels or names are errors.
    fn from_str(s: &str) -> Result<Name, DnsError> {
        if s == "." {
            return Ok(Name::root());
        }
        if s.is_empty() {
            return Err(DnsError::EmptyLabel);
        }
        let bytes = s.as_bytes();
        let mut wire = Vec::new();
        let mut label = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    push_label(&mut wire, &label)?;
                    label.clear();
                    i += 1;
                }
                b'\\' => {
                    let (b, used) = parse_escape(&bytes[i + 1..])?;
                    label.push(b);
                    i += 1 + used;
                }
                b => {
                    label.push(b);
                    i += 1;
                }
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(DnsError::LabelTooLong(label.len()));
            }
        }
        // No trailing dot: the last label is still pending.
        if !label.is_empty() {
            push_label(&mut wire, &label)?;
        }
        wire.push(0);
        Ok(Name { wire })
    }
}

/// Parses the text after a backslash: `DDD` or a single character.
/// Returns the octet and how many input bytes it used.
fn parse_escape(rest: &[u8]) -> Result<(u8, usize), DnsError> {
    match rest {
        [] => Err(DnsError::BadEscape),
        [d0, ..] if d0.is_ascii_digit() => {
            let digits = rest.get(..3).ok_or(DnsError::BadEscape)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(DnsError::BadEscape);
            }
            let v = digits
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            let b = u8::try_from(v).map_err(|_| DnsError::BadEscape)?;
            Ok((b, 3))
        }
        // A non-ASCII character would need several bytes: not an octet.
        [c, ..] if c.is_ascii() => Ok((*c, 1)),
        _ => Err(DnsError::BadEscape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_round_trip_and_case() {
        let n: Name = "www.Example.COM".parse().unwrap();
        assert_eq!(n.to_string(), "www.Example.COM.");
        assert_eq!(n, "WWW.example.com.".parse().unwrap());
        assert_eq!(n.as_wire(), b"\x03www\x07Example\x03COM\x00");
        assert_eq!(n.label_count(), 3);
        assert_eq!(n.suffix_offsets().collect::<Vec<_>>(), vec![0, 4, 12]);
        assert_eq!(Name::root().to_string(), ".");
        assert_eq!(".".parse::<Name>().unwrap(), Name::root());
        let odd = Name::from_labels([&b"a.b"[..], b"c\\d", b"\x00 \xff"]).unwrap();
        assert_eq!(odd.to_string(), "a\\.b.c\\\\d.\\000\\032\\255.");
        assert_eq!(odd.to_string().parse::<Name>().unwrap(), odd);
    }

    #[test]
    fn text_errors() {
        for bad in ["", "a..b", ".a", "..", "a\\", "a\\25", "a\\256", "a\\2x5"] {
            assert!(bad.parse::<Name>().is_err(), "{bad:?}");
        }
        let long_label = "a".repeat(64);
        assert_eq!(
            long_label.parse::<Name>().unwrap_err(),
            DnsError::LabelTooLong(64)
        );
        assert!("a".repeat(63).parse::<Name>().is_ok());
        // 4 labels of 63 octets: 4 * 64 + 1 = 257 octets.
        let long_name = vec!["a".repeat(63); 4].join(".");
        assert_eq!(
            long_name.parse::<Name>().unwrap_err(),
            DnsError::NameTooLong(257)
        );
        // 3 * 64 + 62 + 1 = 255 octets: the longest legal name.
        let max = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(max.parse::<Name>().unwrap().wire_len(), 255);
        assert!(Name::from_labels([b""]).is_err());
    }

    fn arb_label() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 1..=MAX_LABEL_LEN)
    }

    proptest! {
        #[test]
        fn text_form_round_trips(labels in proptest::collection::vec(arb_label(), 0..=3)) {
            let n = Name::from_labels(&labels).unwrap();
            let back: Name = n.to_string().parse().unwrap();
            prop_assert_eq!(back.as_wire(), n.as_wire());
            prop_assert_eq!(n.labels().map(<[u8]>::to_vec).collect::<Vec<_>>(), labels);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<Name>();
        }
    }
}
