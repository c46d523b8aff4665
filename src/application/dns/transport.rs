//! DNS over TCP framing (RFC 1035 §4.2.2): each message is preceded by
//! its length in two octets.
//!
//! # Example
//!
//! ```
//! use netstrata::application::dns::transport::{read_framed, write_framed};
//!
//! let mut stream = Vec::new();
//! write_framed(&mut stream, b"first")?;
//! write_framed(&mut stream, b"second")?;
//! assert_eq!(stream[..7], *b"\x00\x05first");
//!
//! let mut reader = &stream[..];
//! assert_eq!(read_framed(&mut reader)?.as_deref(), Some(&b"first"[..]));
//! assert_eq!(read_framed(&mut reader)?.as_deref(), Some(&b"second"[..]));
//! assert_eq!(read_framed(&mut reader)?, None); // a clean end of stream
//! assert!(read_framed(&mut &b"\x00\x05fir"[..]).is_err()); // cut short
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};

/// Writes one DNS message over TCP with its two-octet length prefix
/// (RFC 1035 §4.2.2).
pub fn write_framed(w: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "DNS message over 65535"))?;
    let mut buf = Vec::with_capacity(2 + msg.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(msg);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one length-prefixed DNS message (RFC 1035 §4.2.2); `Ok(None)` on
/// a clean end of stream before the prefix. At most 65535 octets.
pub fn read_framed(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut len[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut msg)?;
    Ok(Some(msg))
}
