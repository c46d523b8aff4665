//! Errors shared by the wire formats.
//!
//! Parsing untrusted bytes fails with a [`ParseError`] that says what was
//! wrong. Such errors never reach the user of a socket: the layer that hit
//! one drops the packet and counts it (see the interface counters). API
//! misuse has per-operation error enums next to the operations.
//!
//! # Example
//!
//! A header cut short says how much was missing:
//!
//! ```
//! use netstrata::error::ParseError;
//! use netstrata::link::ethernet::Frame;
//!
//! let err = Frame::new_checked(&[0u8; 10][..]).unwrap_err();
//! assert_eq!(err, ParseError::Truncated { needed: 14, had: 10 });
//! assert_eq!(err.to_string(), "truncated: needed 14 bytes, had 10");
//! ```

/// Why a packet or header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The buffer ends before the structure does.
    #[error("truncated: needed {needed} bytes, had {had}")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes available.
        had: usize,
    },
    /// A checksum did not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// A version field holds a version this stack does not speak.
    #[error("unsupported version {0}")]
    BadVersion(u8),
    /// A header-length field is out of range.
    #[error("bad header length {0}")]
    BadHeaderLength(usize),
    /// A total-length field disagrees with the buffer.
    #[error("length field says {field} bytes, buffer has {had}")]
    BadLength {
        /// What the length field claims.
        field: usize,
        /// What the buffer holds.
        had: usize,
    },
    /// An option is malformed (bad length, runs past the header).
    #[error("malformed option")]
    BadOption,
    /// A field holds a value this stack does not handle (a hardware type,
    /// an opcode...).
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// Something else is inconsistent.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// Checks that `buf` holds at least `needed` bytes.
#[inline]
pub(crate) fn check_len(buf: &[u8], needed: usize) -> Result<(), ParseError> {
    if buf.len() < needed {
        Err(ParseError::Truncated {
            needed,
            had: buf.len(),
        })
    } else {
        Ok(())
    }
}
