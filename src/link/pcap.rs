//! Packet capture to classic libpcap files.
//!
//! [`PcapWriter`] wraps any [`Device`] and records every frame it receives
//! and transmits; [`PcapSink`], [`write_header`] and [`write_record`] write
//! the same format for other code. The files open in Wireshark, tshark and
//! tcpdump.
//!
//! The format is the classic one (libpcap file format, as documented in
//! pcap-savefile(5) and draft-ietf-opsawg-pcap): a 24-byte global header
//! with magic 0xa1b2c3d4 (microsecond timestamps), version 2.4, snapshot
//! length 65535 and link type 1 (`LINKTYPE_ETHERNET`), then per frame a
//! 16-byte record header (seconds, microseconds, captured length, original
//! length) and the captured bytes. Everything is written little-endian;
//! readers detect the byte order from the magic number.
//!
//! Timestamps are the `now` instants the stack passes to the device,
//! plus a base offset in whole seconds given at construction. The core
//! never reads a clock: a simulation starting at instant zero can pass,
//! say, the Unix time of the run to get real dates, or zero to get
//! timestamps counted from 1970-01-01.
//!
//! Capture must never take the stack down: write errors are not returned
//! and never panic. The first one is logged at `warn` and ends the capture
//! (a half-written record would corrupt the rest of the file anyway); the
//! frames not recorded are counted. Writes go straight to the writer: wrap
//! a file in a `std::io::BufWriter`, which also flushes when dropped.
//!
//! Checksums in the capture are the real ones, whatever the device
//! offloads: a [`PcapWriter`] hides transmit checksum offload from the
//! stack (which then fills every checksum; the device may still make the
//! transport's partial, after the frame is recorded), and completes in
//! its copy the partial checksum of a frame received that way
//! ([`crate::buf::L4Checksum::Partial`]): the frames read as a wire would
//! have carried them.
//!
//! Deliberately not here: the pcapng format, nanosecond timestamps,
//! direction flags (classic pcap has none), and reading captures.
//!
//! # Example
//!
//! Record what one end of a cable sends, into memory:
//!
//! ```
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::pcap::{FILE_HEADER_LEN, MAGIC_MICROS, RECORD_HEADER_LEN};
//! use netstrata::link::{Device, MemoryNetwork, PcapWriter};
//! use netstrata::Instant;
//!
//! let (a, _b) = MemoryNetwork::pair(1500);
//! let mut dev = PcapWriter::new(a, Vec::new(), 1_700_000_000);
//! let frame = PacketBuf::from_payload(0, &[0xff; 60]);
//! dev.transmit(Instant::from_millis(1500), frame)?;
//! assert_eq!(dev.stats().written, 1);
//!
//! let (_, file) = dev.into_inner();
//! assert_eq!(file.len(), FILE_HEADER_LEN + RECORD_HEADER_LEN + 60);
//! assert_eq!(file[..4], MAGIC_MICROS.to_le_bytes());
//! let record = &file[FILE_HEADER_LEN..];
//! assert_eq!(record[..4], 1_700_000_001u32.to_le_bytes()); // seconds
//! assert_eq!(record[4..8], 500_000u32.to_le_bytes()); // microseconds
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Write};

use crate::buf::{BufferPool, L4Checksum, PacketBuf};
use crate::link::device::{Device, DeviceCaps, DeviceError, Medium};
use crate::link::vnet;
use crate::time::{Duration, Instant};

/// Magic number of a classic pcap file with microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Format major version.
pub const VERSION_MAJOR: u16 = 2;
/// Format minor version.
pub const VERSION_MINOR: u16 = 4;
/// Largest number of bytes recorded per frame; longer frames are cut.
pub const SNAPLEN: u32 = 65535;
/// Link type of Ethernet II frames without FCS.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// `LINKTYPE_RAW`: bare IPv4 or IPv6 packets, the frames of a TUN device
/// ([`crate::link::Medium::Ip`]).
pub const LINKTYPE_RAW: u32 = 101;
/// Length of the global file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Length of a per-frame record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// Writes the 24-byte global header of a capture of Ethernet frames.
pub fn write_header<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    write_header_for(w, LINKTYPE_ETHERNET)
}

/// Writes the 24-byte global header of a capture of frames of `linktype`.
pub fn write_header_for<W: Write + ?Sized>(w: &mut W, linktype: u32) -> io::Result<()> {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
    h[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    h[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
    // thiszone (GMT offset) and sigfigs (accuracy) are always zero.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&linktype.to_le_bytes());
    w.write_all(&h)
}

/// Writes one record: `ts` is read as time since the Unix epoch; frames
/// longer than [`SNAPLEN`] are cut (the record keeps the original length).
/// Seconds beyond the 32-bit field (after 2106) saturate.
pub fn write_record<W: Write + ?Sized>(w: &mut W, ts: Instant, frame: &[u8]) -> io::Result<()> {
    write_record_cut(w, ts, frame, SNAPLEN)
}

/// As [`write_record`], keeping at most `snaplen` bytes of the frame (like
/// `tcpdump -s`): enough for the headers of a bulk transfer without the
/// payload.
pub fn write_record_cut<W: Write + ?Sized>(
    w: &mut W,
    ts: Instant,
    frame: &[u8],
    snaplen: u32,
) -> io::Result<()> {
    let micros = ts.total_micros();
    let secs = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
    let usecs = (micros % 1_000_000) as u32;
    let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let incl_len = orig_len.min(snaplen.min(SNAPLEN));
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&usecs.to_le_bytes());
    h[8..12].copy_from_slice(&incl_len.to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.to_le_bytes());
    w.write_all(&h)?;
    w.write_all(&frame[..incl_len as usize])
}

/// Counters of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapStats {
    /// Records written.
    pub written: u64,
    /// Frames not recorded because the capture had failed.
    pub lost: u64,
    /// The error that ended the capture, if one did.
    pub error: Option<io::ErrorKind>,
}

/// A capture file being written: the header on creation, then one record
/// per [`PcapSink::record`]. Write errors end the capture quietly (see the
/// module documentation).
#[derive(Debug)]
pub struct PcapSink<W: Write> {
    writer: W,
    base: Duration,
    snaplen: u32,
    stats: PcapStats,
}

impl<W: Write> PcapSink<W> {
    /// Starts a capture on `writer`, writing the file header at once.
    /// `base_secs` is added to every timestamp.
    pub fn new(writer: W, base_secs: u64) -> PcapSink<W> {
        PcapSink::for_linktype(writer, base_secs, LINKTYPE_ETHERNET)
    }

    /// As [`PcapSink::new`], for frames of `linktype` ([`LINKTYPE_RAW`]
    /// for a TUN's bare packets).
    pub fn for_linktype(writer: W, base_secs: u64, linktype: u32) -> PcapSink<W> {
        let mut sink = PcapSink {
            writer,
            base: Duration::from_secs(base_secs),
            snaplen: SNAPLEN,
            stats: PcapStats::default(),
        };
        if let Err(e) = write_header_for(&mut sink.writer, linktype) {
            sink.fail(e);
        }
        sink
    }

    fn fail(&mut self, e: io::Error) {
        if self.stats.error.is_none() {
            log::warn!(
                "pcap capture stopped after {} records: {e}",
                self.stats.written
            );
            self.stats.error = Some(e.kind());
        }
    }

    /// Keeps at most `snaplen` bytes of each frame from now on (at most
    /// [`SNAPLEN`]).
    pub fn set_snaplen(&mut self, snaplen: u32) {
        self.snaplen = snaplen.clamp(1, SNAPLEN);
    }

    /// Records `frame` as seen at `now`. Returns whether it was written.
    pub fn record(&mut self, now: Instant, frame: &[u8]) -> bool {
        if self.stats.error.is_some() {
            self.stats.lost += 1;
            return false;
        }
        match write_record_cut(&mut self.writer, now + self.base, frame, self.snaplen) {
            Ok(()) => {
                self.stats.written += 1;
                true
            }
            Err(e) => {
                self.stats.lost += 1;
                self.fail(e);
                false
            }
        }
    }

    /// Flushes the writer. An error is returned and also ends the
    /// capture.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.stats.error.is_some() {
            return Ok(());
        }
        self.writer.flush().inspect_err(|e| {
            if self.stats.error.is_none() {
                log::warn!("pcap capture stopped: flush failed: {e}");
                self.stats.error = Some(e.kind());
            }
        })
    }

    /// The capture's counters.
    pub fn stats(&self) -> PcapStats {
        self.stats
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The writer, mutable (writing to it directly corrupts the capture).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Flushes (an error is logged and counted) and returns the writer.
    pub fn into_inner(mut self) -> W {
        let _ = self.flush();
        self.writer
    }
}

/// Which frames a [`PcapWriter`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PcapMode {
    /// Received and transmitted frames.
    #[default]
    Both,
    /// Received frames only.
    RxOnly,
    /// Transmitted frames only.
    TxOnly,
}

/// A device that records the frames of an inner device to a pcap file.
#[derive(Debug)]
pub struct PcapWriter<D: Device, W: Write> {
    inner: D,
    sink: PcapSink<W>,
    mode: PcapMode,
    /// Where a received frame's partial checksum is completed, or a
    /// super-segment's segments put together, for the record.
    scratch: Vec<u8>,
    /// The inner device's.
    medium: Medium,
}

impl<D: Device, W: Write> PcapWriter<D, W> {
    /// Wraps `inner`, capturing both directions to `writer` (the file
    /// header is written at once, for Ethernet frames or, on an IP-only
    /// device, bare packets). `base_secs` is added to every
    /// timestamp, e.g. the Unix time at which a simulation's instant zero
    /// should appear.
    pub fn new(inner: D, writer: W, base_secs: u64) -> PcapWriter<D, W> {
        let medium = inner.capabilities().medium;
        let linktype = match medium {
            Medium::Ethernet => LINKTYPE_ETHERNET,
            Medium::Ip => LINKTYPE_RAW,
        };
        PcapWriter {
            inner,
            sink: PcapSink::for_linktype(writer, base_secs, linktype),
            mode: PcapMode::Both,
            scratch: Vec::new(),
            medium,
        }
    }

    /// Builder: keep at most `snaplen` bytes of each frame (headers only
    /// for long captures).
    pub fn with_snaplen(mut self, snaplen: u32) -> Self {
        self.sink.set_snaplen(snaplen);
        self
    }

    /// Builder: which directions to record.
    pub fn with_mode(mut self, mode: PcapMode) -> Self {
        self.mode = mode;
        self
    }

    /// The capture's counters.
    pub fn stats(&self) -> PcapStats {
        self.sink.stats()
    }

    /// The capture sink.
    pub fn sink(&self) -> &PcapSink<W> {
        &self.sink
    }

    /// Flushes the capture writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Records `frame` as it is on the wire: a TCP super-segment (the
    /// stack's, for a device that segments, or the kernel's, received
    /// whole) as the segments it stands for, each with its own
    /// checksums ([`vnet::segment`]); a partial checksum completed.
    fn record(&mut self, now: Instant, frame: &PacketBuf) {
        let (sink, scratch) = (&mut self.sink, &mut self.scratch);
        let cut = vnet::segment(frame.data(), self.medium, frame.segment_size(), |h, p| {
            scratch.clear();
            scratch.extend_from_slice(h);
            scratch.extend_from_slice(p);
            sink.record(now, scratch);
        });
        if cut > 0 {
            return;
        }
        if frame.l4_checksum() == L4Checksum::Partial {
            scratch.clear();
            scratch.extend_from_slice(frame.data());
            vnet::complete_partial(scratch, self.medium);
            sink.record(now, scratch);
        } else {
            sink.record(now, frame.data());
        }
    }

    /// Flushes the capture and returns the device and the writer.
    pub fn into_inner(self) -> (D, W) {
        (self.inner, self.sink.into_inner())
    }
}

impl<D: Device, W: Write> Device for PcapWriter<D, W> {
    /// The inner device's, without transmit checksum offload: the frames
    /// recorded carry their checksums. Super-segments are recorded as
    /// the segments the device makes of them.
    fn capabilities(&self) -> DeviceCaps {
        let mut caps = self.inner.capabilities();
        caps.checksum.tx = false;
        caps
    }

    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        let frame = self.inner.receive(now)?;
        if self.mode != PcapMode::TxOnly {
            self.record(now, &frame);
        }
        Some(frame)
    }

    /// Records the frame as handed to the device, then transmits it; a
    /// frame the inner device refuses is still in the capture.
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        if self.mode != PcapMode::RxOnly {
            self.record(now, &frame);
        }
        self.inner.transmit(now, frame)
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    fn refill(&mut self, pool: &mut BufferPool) {
        self.inner.refill(pool);
    }

    fn spill(&mut self, pool: &mut BufferPool) {
        self.inner.spill(pool);
    }

    fn flush(&mut self, now: Instant) {
        self.inner.flush(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::memory::MemoryNetwork;
    use proptest::prelude::*;

    /// A global header as read back.
    #[derive(Debug, PartialEq)]
    struct FileHeader {
        magic: u32,
        major: u16,
        minor: u16,
        thiszone: i32,
        sigfigs: u32,
        snaplen: u32,
        linktype: u32,
    }

    #[derive(Debug, PartialEq)]
    struct Record {
        secs: u32,
        usecs: u32,
        orig_len: u32,
        data: Vec<u8>,
    }

    /// A minimal pcap reader (little-endian files only, as written here).
    fn parse(bytes: &[u8]) -> (FileHeader, Vec<Record>) {
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let u16_at = |b: &[u8], i: usize| u16::from_le_bytes(b[i..i + 2].try_into().unwrap());
        let h = FileHeader {
            magic: u32_at(bytes, 0),
            major: u16_at(bytes, 4),
            minor: u16_at(bytes, 6),
            thiszone: u32_at(bytes, 8) as i32,
            sigfigs: u32_at(bytes, 12),
            snaplen: u32_at(bytes, 16),
            linktype: u32_at(bytes, 20),
        };
        let mut rest = &bytes[FILE_HEADER_LEN..];
        let mut records = Vec::new();
        while !rest.is_empty() {
            let incl = u32_at(rest, 8) as usize;
            assert!(incl <= h.snaplen as usize);
            records.push(Record {
                secs: u32_at(rest, 0),
                usecs: u32_at(rest, 4),
                orig_len: u32_at(rest, 12),
                data: rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + incl].to_vec(),
            });
            rest = &rest[RECORD_HEADER_LEN + incl..];
        }
        (h, records)
    }

    const EXPECTED_HEADER: FileHeader = FileHeader {
        magic: 0xa1b2c3d4,
        major: 2,
        minor: 4,
        thiszone: 0,
        sigfigs: 0,
        snaplen: 65535,
        linktype: 1,
    };

    #[test]
    fn golden_file_header() {
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        assert_eq!(
            out,
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0,
                0, 0
            ]
        );
        write_record(&mut out, Instant::from_micros(3_000_042), b"ab").unwrap();
        assert_eq!(
            &out[FILE_HEADER_LEN..],
            [3, 0, 0, 0, 42, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, b'a', b'b']
        );
    }

    #[test]
    fn long_frames_are_cut_at_snaplen() {
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        write_record(&mut out, Instant::ZERO, &big).unwrap();
        let mut cut = Vec::new();
        write_record_cut(&mut cut, Instant::ZERO, &big, 100).unwrap();
        assert_eq!(cut.len(), RECORD_HEADER_LEN + 100);
        assert_eq!(u32::from_le_bytes(cut[8..12].try_into().unwrap()), 100);
        assert_eq!(
            u32::from_le_bytes(cut[12..16].try_into().unwrap()),
            big.len() as u32
        );
        let (_, recs) = parse(&out);
        assert_eq!(recs[0].orig_len, 70_000);
        assert_eq!(recs[0].data, big[..65535]);
    }

    fn frame(dst: u32, src: u32, payload: &[u8]) -> PacketBuf {
        let mut p = PacketBuf::from_payload(64, payload);
        let h = p.push_header(14);
        h[0..6].copy_from_slice(&crate::link::EthernetAddress::local(dst).0);
        h[6..12].copy_from_slice(&crate::link::EthernetAddress::local(src).0);
        h[12..14].copy_from_slice(&[0x08, 0x00]);
        p
    }

    #[test]
    fn writer_records_both_directions_with_timestamps() {
        let (a, mut b) = MemoryNetwork::pair(1500);
        let base = 1_700_000_000;
        let mut cap = PcapWriter::new(a, Vec::new(), base);
        let t1 = Instant::from_micros(1_250_000);
        let t2 = Instant::from_micros(2_000_001);
        let out = frame(2, 1, b"request");
        cap.transmit(t1, out.clone()).unwrap();
        assert_eq!(b.receive(t1).unwrap(), out);
        let back = frame(1, 2, b"response");
        b.transmit(t2, back.clone()).unwrap();
        assert_eq!(cap.receive(t2).unwrap(), back);
        assert!(cap.receive(t2).is_none());
        // A refused frame is still recorded.
        let huge = frame(2, 1, &[0; 1501]);
        assert!(cap.transmit(t2, huge.clone()).is_err());
        assert_eq!(cap.stats().written, 3);
        assert_eq!(cap.poll_at(), None);

        let (_dev, bytes) = cap.into_inner();
        let (h, recs) = parse(&bytes);
        assert_eq!(h, EXPECTED_HEADER);
        assert_eq!(
            recs,
            [
                Record {
                    secs: 1_700_000_001,
                    usecs: 250_000,
                    orig_len: out.len() as u32,
                    data: out.data().to_vec()
                },
                Record {
                    secs: 1_700_000_002,
                    usecs: 1,
                    orig_len: back.len() as u32,
                    data: back.data().to_vec()
                },
                Record {
                    secs: 1_700_000_002,
                    usecs: 1,
                    orig_len: 1515,
                    data: huge.data().to_vec()
                },
            ]
        );
    }

    #[test]
    fn modes_select_directions() {
        for (mode, expect) in [
            (PcapMode::RxOnly, vec![2u8]),
            (PcapMode::TxOnly, vec![1]),
            (PcapMode::Both, vec![1, 2]),
        ] {
            let (a, mut b) = MemoryNetwork::pair(1500);
            let mut cap = PcapWriter::new(a, Vec::new(), 0).with_mode(mode);
            cap.transmit(Instant::ZERO, frame(2, 1, &[1])).unwrap();
            b.transmit(Instant::ZERO, frame(1, 2, &[2])).unwrap();
            cap.receive(Instant::ZERO).unwrap();
            let (_, bytes) = cap.into_inner();
            let (_, recs) = parse(&bytes);
            let payloads: Vec<u8> = recs.iter().map(|r| r.data[14]).collect();
            assert_eq!(payloads, expect, "{mode:?}");
        }
    }

    /// A writer that accepts `budget` bytes, then fails.
    struct Failing {
        budget: usize,
        written: Vec<u8>,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_stop_the_capture_but_not_the_device() {
        let (a, mut b) = MemoryNetwork::pair(1500);
        let w = Failing {
            budget: FILE_HEADER_LEN + 2 * (RECORD_HEADER_LEN + 15) + 5,
            written: Vec::new(),
        };
        let mut cap = PcapWriter::new(a, w, 0);
        for i in 0..10u8 {
            cap.transmit(Instant::ZERO, frame(2, 1, &[i])).unwrap();
        }
        assert_eq!(std::iter::from_fn(|| b.receive(Instant::ZERO)).count(), 10);
        let s = cap.stats();
        assert_eq!(s.written, 2);
        assert_eq!(s.lost, 8);
        assert_eq!(s.error, Some(io::ErrorKind::Other));
        assert!(cap.flush().is_ok());

        // Failing on the header: nothing is written, nothing panics.
        let mut sink = PcapSink::new(
            Failing {
                budget: 0,
                written: Vec::new(),
            },
            0,
        );
        assert!(!sink.record(Instant::ZERO, b"x"));
        assert_eq!(sink.stats().lost, 1);
        assert!(sink.into_inner().written.is_empty());
    }

    #[test]
    fn sink_parses_back() {
        let mut sink = PcapSink::new(Vec::new(), 10);
        for i in 0..5u64 {
            assert!(sink.record(Instant::from_millis(i * 1500), &[i as u8; 20]));
        }
        let (h, recs) = parse(sink.get_ref());
        assert_eq!(h, EXPECTED_HEADER);
        assert_eq!(recs.len(), 5);
        assert_eq!((recs[3].secs, recs[3].usecs), (14, 500_000));
        assert_eq!(recs[4].data, [4; 20]);
    }

    proptest! {
        #[test]
        fn records_round_trip(
            records in proptest::collection::vec(
                (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200)),
                0..20,
            )
        ) {
            let mut out = Vec::new();
            write_header(&mut out).unwrap();
            for (micros, data) in &records {
                write_record(&mut out, Instant::from_micros(u64::from(*micros)), data).unwrap();
            }
            let (h, recs) = parse(&out);
            prop_assert_eq!(h, EXPECTED_HEADER);
            prop_assert_eq!(recs.len(), records.len());
            for ((micros, data), r) in records.iter().zip(recs) {
                prop_assert_eq!(u64::from(r.secs) * 1_000_000 + u64::from(r.usecs), u64::from(*micros));
                prop_assert_eq!(r.orig_len as usize, data.len());
                prop_assert_eq!(&r.data, data);
            }
        }
    }
}
