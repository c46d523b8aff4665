//! A device wrapper that impairs traffic: loss, duplication, corruption,
//! delay, jitter and reordering, from a seeded generator.
//!
//! [`FaultInjector`] wraps any [`Device`] and applies one [`FaultConfig`]
//! to frames received from the inner device and another to frames
//! transmitted through it (both transparent by default). Each frame passes
//! through the faults in a fixed order:
//!
//! 1. **loss**: the frame is dropped with probability `loss`;
//! 2. **corruption**: with probability `corrupt`, one random bit of one
//!    random byte *after the 14-byte Ethernet header* is flipped. The
//!    header is left intact so the frame still reaches its destination and
//!    the corruption is caught where it would be in real life, by the
//!    IP/UDP/TCP checksums. Frames with no bytes after the header are
//!    never corrupted, and neither are ARP frames: ARP has no checksum, so
//!    a flipped bit would poison a neighbour cache — on a real link the
//!    Ethernet FCS drops such frames, which is loss, not corruption;
//! 3. **duplication**: with probability `duplicate` a second copy is made;
//! 4. **bottleneck** (if `rate` is set): each copy is serialized at
//!    `rate` bytes per second behind the copies before it, as a link's
//!    transmit queue would; a copy that finds more than `buffer` bytes
//!    still waiting is dropped (drop-tail, counted in
//!    [`FaultStats::queue_drops`]). So the path has a bandwidth, a queue
//!    that builds before it overflows, and the loss that ends slow start;
//! 5. **scheduling**, for each copy independently: it is released at
//!    `now + delay + U[0, jitter]` (after its serialization, behind a
//!    bottleneck), plus `reorder_delay` with probability `reorder` so that
//!    later frames overtake it. Jitter alone also reorders frames closer
//!    together than the jitter (as Linux netem does).
//!
//! Held frames wait in a queue ordered by (release instant, arrival
//! sequence number), bounded by `max_queue` frames per direction; a frame
//! that would overflow it is dropped and counted. [`Device::poll_at`]
//! reports the earliest release. Delayed transmissions are handed to the
//! inner device by the first `receive` or `transmit` call at or after
//! their release instant (or by [`FaultInjector::transmit_due`]), with
//! that call's `now`.
//!
//! Everything is deterministic: the only randomness is the [`Rng`] seeded
//! at construction, consulted in a fixed order, and the wrapper never reads
//! a clock. The same seed, configuration and sequence of calls give the
//! same outcome.
//!
//! Deliberately not here: active queue management, burst (Gilbert–Elliott)
//! loss, and corruption of the Ethernet header. Note
//! that with transmit checksum offload on the inner device, checksums are
//! computed after corruption, which hides it; the injector clears the
//! receive offload flag in its capabilities when it corrupts received
//! frames.
//!
//! # Example
//!
//! Wrap one end of a cable in an injector that loses every frame it
//! transmits, and one that delays them by 10 ms:
//!
//! ```
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::{Device, FaultConfig, FaultInjector, MemoryNetwork};
//! use netstrata::{Duration, Instant};
//!
//! let frame = || PacketBuf::from_payload(0, &[0xff; 60]); // broadcast
//! let (a, mut b) = MemoryNetwork::pair(1500);
//! let mut lossy = FaultInjector::new(a, 7).with_tx(FaultConfig::new().with_loss(1.0));
//! for _ in 0..10 {
//!     lossy.transmit(Instant::ZERO, frame())?;
//! }
//! assert_eq!(lossy.tx_stats().lost, 10);
//! assert!(b.receive(Instant::ZERO).is_none());
//!
//! let delay = FaultConfig::new().with_delay(Duration::from_millis(10));
//! let mut slow = FaultInjector::new(lossy.into_inner(), 7).with_tx(delay);
//! slow.transmit(Instant::ZERO, frame())?;
//! assert_eq!(slow.poll_at(), Some(Instant::from_millis(10)));
//! slow.transmit_due(Instant::from_millis(10));
//! assert_eq!(b.receive(Instant::from_millis(10)).map(|f| f.len()), Some(60));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::buf::{BufferPool, L4Checksum, PacketBuf};
use crate::link::device::{Device, DeviceCaps, DeviceError};
use crate::link::ethernet::HEADER_LEN;
use crate::rand::Rng;
use crate::time::{Duration, Instant};

/// Most frames pulled from the inner device in one `receive` call before
/// giving up for this call (when every one of them is lost or held). The
/// injector then reports itself ready in `poll_at`.
const MAX_PULL_PER_CALL: usize = 256;

/// The impairments applied in one direction. The default is transparent:
/// no faults, no delay.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Probability that a frame is dropped (0..=1).
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame is held back an extra `reorder_delay`.
    pub reorder: f64,
    /// Probability that one bit after the Ethernet header is flipped.
    pub corrupt: f64,
    /// Fixed delay added to every frame.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter` (microsecond granularity).
    pub jitter: Duration,
    /// Extra delay of a reordered frame (default 10 ms).
    pub reorder_delay: Duration,
    /// Most frames held in this direction's delay queue (default 1024);
    /// frames beyond it are dropped.
    pub max_queue: usize,
    /// The bottleneck's rate in bytes per second (default: none, every
    /// frame leaves at once).
    pub rate: Option<u64>,
    /// Bytes the bottleneck's queue holds before it drops (drop-tail).
    pub buffer: usize,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder_delay: Duration::from_millis(10),
            max_queue: 1024,
            rate: None,
            buffer: 0,
        }
    }
}

impl FaultConfig {
    /// No faults (the default).
    pub fn new() -> FaultConfig {
        FaultConfig::default()
    }

    /// Sets the loss probability.
    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Sets the duplication probability.
    pub fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Sets the reordering probability and the extra delay of a reordered
    /// frame.
    pub fn with_reorder(mut self, p: f64, extra_delay: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = extra_delay;
        self
    }

    /// Sets the corruption probability.
    pub fn with_corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// Sets the fixed delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the delay-queue bound.
    pub fn with_max_queue(mut self, frames: usize) -> Self {
        self.max_queue = frames;
        self
    }

    /// Puts a bottleneck of `rate` bytes per second (a rate of 0 counts
    /// as 1) with a queue of `buffer` bytes on the path.
    pub fn with_rate(mut self, rate: u64, buffer: usize) -> Self {
        self.rate = Some(rate);
        self.buffer = buffer;
        self
    }

    /// Whether this configuration leaves every frame untouched and
    /// undelayed.
    pub fn is_transparent(&self) -> bool {
        !(self.loss > 0.0
            || self.duplicate > 0.0
            || self.corrupt > 0.0
            || (self.reorder > 0.0 && !self.reorder_delay.is_zero())
            || !self.delay.is_zero()
            || !self.jitter.is_zero()
            || self.rate.is_some())
    }
}

/// Counters of the faults applied in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStats {
    /// Frames that entered the injector.
    pub frames: u64,
    /// Frames dropped by `loss`.
    pub lost: u64,
    /// Frames with a bit flipped.
    pub corrupted: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies held back by `reorder_delay` (overtaken if later frames
    /// follow within it).
    pub reordered: u64,
    /// Copies released later than they arrived.
    pub delayed: u64,
    /// Copies dropped because the delay queue was full.
    pub overflowed: u64,
    /// Copies dropped because the bottleneck's queue was full.
    pub queue_drops: u64,
    /// Copies passed on (returned from `receive`, or handed to the inner
    /// device's `transmit`).
    pub delivered: u64,
    /// Delayed transmissions the inner device refused (transmit only).
    pub inner_errors: u64,
}

/// A frame waiting for its release instant.
#[derive(Debug)]
struct Held {
    release: Instant,
    seq: u64,
    frame: PacketBuf,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.release, self.seq) == (other.release, other.seq)
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest
    /// release first and, among equal releases, the earliest arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.release, other.seq).cmp(&(self.release, self.seq))
    }
}

/// One direction's configuration, queue and counters.
#[derive(Debug, Default)]
struct Lane {
    config: FaultConfig,
    held: BinaryHeap<Held>,
    stats: FaultStats,
    /// When the bottleneck has serialized every copy queued so far.
    busy_until: Instant,
}

impl Lane {
    fn new(config: FaultConfig) -> Lane {
        Lane {
            config,
            held: BinaryHeap::new(),
            stats: FaultStats::default(),
            busy_until: Instant::ZERO,
        }
    }

    /// The next held frame due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<PacketBuf> {
        if self.held.peek()?.release > now {
            return None;
        }
        self.held.pop().map(|h| h.frame)
    }

    fn next_release(&self) -> Option<Instant> {
        self.held.peek().map(|h| h.release)
    }

    fn hold(&mut self, seq: &mut u64, release: Instant, frame: PacketBuf) {
        if self.held.len() >= self.config.max_queue {
            self.stats.overflowed += 1;
            log::trace!("fault injector queue full: dropping frame");
            return;
        }
        *seq += 1;
        self.held.push(Held {
            release,
            seq: *seq,
            frame,
        });
    }

    /// Applies loss, corruption and duplication to `frame` and schedules
    /// each surviving copy: up to two `(release, frame)` pairs.
    fn inject(
        &mut self,
        rng: &mut Rng,
        now: Instant,
        mut frame: PacketBuf,
    ) -> [Option<(Instant, PacketBuf)>; 2] {
        let c = &self.config;
        self.stats.frames += 1;
        if rng.chance(c.loss) {
            self.stats.lost += 1;
            return [None, None];
        }
        let is_arp = frame.data().get(12..14) == Some(&[0x08, 0x06][..]);
        if frame.len() > HEADER_LEN && !is_arp && rng.chance(c.corrupt) {
            let span = (frame.len() - HEADER_LEN) as u64;
            let byte = HEADER_LEN + rng.below(span) as usize;
            let bit = rng.below(8) as u32;
            if let Some(b) = frame.data_mut().get_mut(byte) {
                *b ^= 1u8 << bit;
                self.stats.corrupted += 1;
                // Whatever the device said of the frame's checksum, it
                // said it of the bits before the flip.
                frame.set_l4_checksum(L4Checksum::Unverified);
            }
        }
        let copy = if rng.chance(c.duplicate) {
            self.stats.duplicated += 1;
            Some(frame.clone())
        } else {
            None
        };
        let first = self.release_time(rng, now, frame.len()).map(|t| (t, frame));
        let second = copy.and_then(|f| self.release_time(rng, now, f.len()).map(|t| (t, f)));
        [first, second]
    }

    /// When a copy of `len` bytes arriving at `now` is released, or `None`
    /// if the bottleneck's queue drops it.
    fn release_time(&mut self, rng: &mut Rng, now: Instant, len: usize) -> Option<Instant> {
        let c = &self.config;
        let mut t = now;
        if let Some(rate) = c.rate.map(|r| r.max(1)) {
            let start = self.busy_until.max(now);
            let waiting = (start - now).as_micros() * u128::from(rate) / 1_000_000;
            if waiting > c.buffer as u128 {
                self.stats.queue_drops += 1;
                return None;
            }
            let serialize = (len as u128 * 1_000_000).div_ceil(u128::from(rate));
            self.busy_until = start + Duration::from_micros(serialize.min(u64::MAX as u128) as u64);
            t = self.busy_until;
        }
        let mut t = t + c.delay;
        if !c.jitter.is_zero() {
            let max = u64::try_from(c.jitter.as_micros()).unwrap_or(u64::MAX);
            t += Duration::from_micros(rng.below(max.saturating_add(1)));
        }
        if rng.chance(c.reorder) {
            self.stats.reordered += 1;
            t += c.reorder_delay;
        }
        if t > now {
            self.stats.delayed += 1;
        }
        Some(t)
    }
}

/// A device that impairs the traffic of an inner device, deterministically
/// for a given seed.
#[derive(Debug)]
pub struct FaultInjector<D: Device> {
    inner: D,
    rng: Rng,
    rx: Lane,
    tx: Lane,
    seq: u64,
    /// Set when a `receive` call stopped pulling from the inner device
    /// after [`MAX_PULL_PER_CALL`] frames: the caller should poll again.
    backlog: Option<Instant>,
}

impl<D: Device> FaultInjector<D> {
    /// Wraps `inner` with no faults configured; randomness comes from
    /// `seed`.
    pub fn new(inner: D, seed: u64) -> FaultInjector<D> {
        FaultInjector {
            inner,
            rng: Rng::new(seed),
            rx: Lane::new(FaultConfig::default()),
            tx: Lane::new(FaultConfig::default()),
            seq: 0,
            backlog: None,
        }
    }

    /// Builder: faults applied to frames received from the inner device.
    pub fn with_rx(mut self, config: FaultConfig) -> Self {
        self.rx.config = config;
        self
    }

    /// Builder: faults applied to frames transmitted to the inner device.
    pub fn with_tx(mut self, config: FaultConfig) -> Self {
        self.tx.config = config;
        self
    }

    /// Replaces the receive-side faults (frames already held keep their
    /// release instants).
    pub fn set_rx_config(&mut self, config: FaultConfig) {
        self.rx.config = config;
    }

    /// Replaces the transmit-side faults.
    pub fn set_tx_config(&mut self, config: FaultConfig) {
        self.tx.config = config;
    }

    /// The receive-side faults.
    pub fn rx_config(&self) -> &FaultConfig {
        &self.rx.config
    }

    /// The transmit-side faults.
    pub fn tx_config(&self) -> &FaultConfig {
        &self.tx.config
    }

    /// Counters of faults applied to received frames.
    pub fn rx_stats(&self) -> FaultStats {
        self.rx.stats
    }

    /// Counters of faults applied to transmitted frames.
    pub fn tx_stats(&self) -> FaultStats {
        self.tx.stats
    }

    /// Frames currently held (received, transmitted).
    pub fn held(&self) -> (usize, usize) {
        (self.rx.held.len(), self.tx.held.len())
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Unwraps the device; held frames are dropped.
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// Hands every delayed transmission due at `now` to the inner device.
    /// `receive` and `transmit` do this themselves.
    pub fn transmit_due(&mut self, now: Instant) {
        while let Some(frame) = self.tx.pop_due(now) {
            match self.inner.transmit(now, frame) {
                Ok(()) => self.tx.stats.delivered += 1,
                Err(e) => {
                    self.tx.stats.inner_errors += 1;
                    log::debug!("fault injector: delayed frame refused: {e}");
                }
            }
        }
    }
}

impl<D: Device> Device for FaultInjector<D> {
    fn capabilities(&self) -> DeviceCaps {
        let mut caps = self.inner.capabilities();
        if self.rx.config.corrupt > 0.0 {
            caps.checksum.rx = false;
        }
        // Faults strike the frames of the wire, not a super-segment that
        // stands for dozens of them.
        caps.segmentation = 0;
        caps
    }

    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        self.transmit_due(now);
        self.backlog = None;
        for _ in 0..MAX_PULL_PER_CALL {
            if let Some(frame) = self.rx.pop_due(now) {
                self.rx.stats.delivered += 1;
                return Some(frame);
            }
            let frame = self.inner.receive(now)?;
            // Nothing held is due (checked above), so a copy due now is
            // the earliest frame and can be returned at once.
            let mut ready = None;
            let copies = self.rx.inject(&mut self.rng, now, frame);
            for (release, f) in copies.into_iter().flatten() {
                if release <= now && ready.is_none() {
                    ready = Some(f);
                } else {
                    self.rx.hold(&mut self.seq, release, f);
                }
            }
            if ready.is_some() {
                self.rx.stats.delivered += 1;
                return ready;
            }
        }
        self.backlog = Some(now);
        None
    }

    /// Applies the transmit faults. A frame too large for the inner
    /// device is refused at once; otherwise the result is that of the
    /// inner device for a copy sent immediately, and `Ok` for a frame that
    /// was lost or delayed (a delayed frame the inner device later refuses
    /// is counted in [`FaultStats::inner_errors`]).
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        self.transmit_due(now);
        let max = self.inner.capabilities().mtu.saturating_add(HEADER_LEN);
        if frame.len() > max {
            return Err(DeviceError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        let mut result = Ok(());
        let copies = self.tx.inject(&mut self.rng, now, frame);
        for (release, f) in copies.into_iter().flatten() {
            if release <= now {
                match self.inner.transmit(now, f) {
                    Ok(()) => self.tx.stats.delivered += 1,
                    Err(e) => {
                        if result.is_ok() {
                            result = Err(e);
                        }
                    }
                }
            } else {
                self.tx.hold(&mut self.seq, release, f);
            }
        }
        result
    }

    fn poll_at(&self) -> Option<Instant> {
        [
            self.rx.next_release(),
            self.tx.next_release(),
            self.inner.poll_at(),
            self.backlog,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn refill(&mut self, pool: &mut BufferPool) {
        self.inner.refill(pool);
    }

    fn spill(&mut self, pool: &mut BufferPool) {
        self.inner.spill(pool);
    }

    fn flush(&mut self, now: Instant) {
        self.transmit_due(now);
        self.inner.flush(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::MAX_HEADROOM;
    use crate::link::ethernet::EthernetAddress;
    use crate::link::memory::{MemoryNetwork, MemoryPort};
    use proptest::prelude::*;

    fn frame(n: u32) -> PacketBuf {
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, &n.to_be_bytes());
        let h = p.push_header(HEADER_LEN);
        h[0..6].copy_from_slice(&EthernetAddress::local(2).0);
        h[6..12].copy_from_slice(&EthernetAddress::local(1).0);
        h[12..14].copy_from_slice(&[0x08, 0x00]);
        p
    }

    fn number(f: &PacketBuf) -> u32 {
        let d = &f.data()[HEADER_LEN..];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// A sender port and a receiving port wrapped in an injector.
    fn rx_setup(seed: u64, config: FaultConfig) -> (MemoryPort, FaultInjector<MemoryPort>) {
        let net = MemoryNetwork::with_queue_limit(1500, 100_000);
        let a = net.attach();
        let b = FaultInjector::new(net.attach(), seed).with_rx(config);
        (a, b)
    }

    /// Sends `n` numbered frames, one every millisecond, receiving
    /// everything due along the way and then everything held; returns
    /// (release time, frame number, payload bytes) per delivered frame.
    fn run(seed: u64, config: FaultConfig, n: u32) -> Vec<(Instant, u32, Vec<u8>)> {
        let (mut a, mut b) = rx_setup(seed, config);
        let mut out = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..n {
            now = Instant::from_millis(u64::from(i));
            a.transmit(now, frame(i)).unwrap();
            while let Some(f) = b.receive(now) {
                out.push((now, number(&f), f.data().to_vec()));
            }
        }
        while let Some(t) = b.poll_at() {
            assert!(t >= now, "poll_at went backwards");
            now = t;
            while let Some(f) = b.receive(now) {
                out.push((now, number(&f), f.data().to_vec()));
            }
        }
        out
    }

    fn busy() -> FaultConfig {
        FaultConfig::new()
            .with_loss(0.1)
            .with_duplicate(0.1)
            .with_corrupt(0.1)
            .with_reorder(0.1, Duration::from_millis(5))
            .with_delay(Duration::from_millis(3))
            .with_jitter(Duration::from_micros(700))
    }

    #[test]
    fn same_seed_same_outcome_different_seed_differs() {
        let a = run(42, busy(), 2000);
        let b = run(42, busy(), 2000);
        let c = run(43, busy(), 2000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Something of everything happened.
        let (mut x, mut y) = rx_setup(42, busy());
        for i in 0..2000 {
            let now = Instant::from_millis(i);
            x.transmit(now, frame(i as u32)).unwrap();
            while y.receive(now).is_some() {}
        }
        let s = y.rx_stats();
        assert!(s.lost > 0 && s.duplicated > 0 && s.corrupted > 0 && s.reordered > 0);
        assert_eq!(s.delayed, s.frames - s.lost + s.duplicated);
    }

    #[test]
    fn default_config_is_transparent() {
        assert!(FaultConfig::default().is_transparent());
        let out = run(1, FaultConfig::default(), 500);
        assert_eq!(out.len(), 500);
        for (i, (t, n, bytes)) in out.iter().enumerate() {
            assert_eq!(*n, i as u32);
            assert_eq!(*t, Instant::from_millis(i as u64));
            assert_eq!(bytes, frame(i as u32).data());
        }
    }

    #[test]
    fn transparent_path_does_not_copy() {
        let (mut a, mut b) = rx_setup(1, FaultConfig::default());
        let f = frame(7);
        let ptr = f.data().as_ptr();
        a.transmit(Instant::ZERO, f).unwrap();
        assert_eq!(b.receive(Instant::ZERO).unwrap().data().as_ptr(), ptr);
    }

    #[test]
    fn loss_one_drops_everything() {
        let out = run(5, FaultConfig::new().with_loss(1.0), 300);
        assert!(out.is_empty());
        let (mut a, mut b) = rx_setup(5, FaultConfig::new().with_loss(1.0));
        for i in 0..300 {
            a.transmit(Instant::ZERO, frame(i)).unwrap();
        }
        // More than one call's pull budget: the injector asks to be polled
        // again rather than looping without bound.
        assert!(b.receive(Instant::ZERO).is_none());
        assert_eq!(b.poll_at(), Some(Instant::ZERO));
        assert!(b.receive(Instant::ZERO).is_none());
        assert_eq!(b.poll_at(), None);
        assert_eq!(b.rx_stats().lost, 300);
        assert_eq!(b.rx_stats().delivered, 0);
    }

    #[test]
    fn loss_rate_roughly_matches() {
        let out = run(9, FaultConfig::new().with_loss(0.25), 10_000);
        assert!((7_200..7_800).contains(&out.len()), "{}", out.len());
    }

    #[test]
    fn delay_releases_at_the_right_instant() {
        let delay = Duration::from_millis(10);
        let (mut a, mut b) = rx_setup(3, FaultConfig::new().with_delay(delay));
        let t0 = Instant::from_millis(100);
        a.transmit(t0, frame(1)).unwrap();
        // The frame waits in the inner port: ready to be pulled in now.
        assert_eq!(b.poll_at(), Some(Instant::ZERO));
        assert!(b.receive(t0).is_none());
        assert_eq!(b.poll_at(), Some(t0 + delay));
        a.transmit(t0 + Duration::from_millis(2), frame(2)).unwrap();
        assert!(b.receive(t0 + Duration::from_millis(2)).is_none());
        assert_eq!(b.poll_at(), Some(t0 + delay));
        assert!(b.receive(t0 + delay - Duration::from_micros(1)).is_none());
        assert_eq!(number(&b.receive(t0 + delay).unwrap()), 1);
        assert!(b.receive(t0 + delay).is_none());
        assert_eq!(b.poll_at(), Some(t0 + Duration::from_millis(12)));
        // Late polling still delivers.
        assert_eq!(number(&b.receive(t0 + Duration::from_secs(1)).unwrap()), 2);
        assert_eq!(b.poll_at(), None);
        assert_eq!(b.rx_stats().delayed, 2);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let cfg = FaultConfig::new()
            .with_delay(Duration::from_millis(2))
            .with_jitter(Duration::from_millis(1));
        let (mut a, mut b) = rx_setup(8, cfg);
        let mut releases = Vec::new();
        for _ in 0..200 {
            a.transmit(Instant::ZERO, frame(0)).unwrap();
            assert!(b.receive(Instant::ZERO).is_none());
        }
        while let Some(t) = b.poll_at() {
            while b.receive(t).is_some() {
                releases.push(t);
            }
        }
        assert_eq!(releases.len(), 200);
        assert!(releases.windows(2).all(|w| w[0] <= w[1]));
        let (lo, hi) = (releases[0], releases[199]);
        assert!(lo >= Instant::from_millis(2) && hi <= Instant::from_millis(3));
        assert!(hi - lo > Duration::from_micros(900), "jitter barely used");
    }

    #[test]
    fn duplicates_at_expected_rate() {
        let out = run(11, FaultConfig::new().with_duplicate(0.2), 10_000);
        let extra = out.len() - 10_000;
        assert!((1_800..2_200).contains(&extra), "{extra}");
        // Each duplicate is an identical second copy.
        let mut counts = vec![0u32; 10_000];
        for (_, n, bytes) in &out {
            counts[*n as usize] += 1;
            assert_eq!(bytes, frame(*n).data());
        }
        assert!(counts.iter().all(|&c| c == 1 || c == 2));
    }

    #[test]
    fn reordering_at_expected_rate() {
        // Frames 1 ms apart; a reordered frame is held 5 ms, so about five
        // later frames overtake it.
        let cfg = FaultConfig::new().with_reorder(0.1, Duration::from_millis(5));
        let out = run(13, cfg, 10_000);
        assert_eq!(out.len(), 10_000);
        // A frame arrived late if a higher-numbered frame came before it.
        let mut max_seen = None;
        let mut late = 0;
        for (_, n, _) in &out {
            if max_seen.is_some_and(|m| *n < m) {
                late += 1;
            }
            max_seen = max_seen.max(Some(*n));
        }
        assert!((850..1_150).contains(&late), "{late}");
    }

    #[test]
    fn corruption_flips_one_bit_after_the_header() {
        let out = run(17, FaultConfig::new().with_corrupt(1.0), 500);
        assert_eq!(out.len(), 500);
        let header = frame(0).data()[..HEADER_LEN].to_vec();
        assert!(
            out.iter()
                .all(|(_, _, bytes)| bytes[..HEADER_LEN] == header[..])
        );
        // Every record differs from its original in exactly one bit.
        let (mut a, mut b) = rx_setup(17, FaultConfig::new().with_corrupt(1.0));
        for i in 0..500u32 {
            a.transmit(Instant::ZERO, frame(i)).unwrap();
            let got = b.receive(Instant::ZERO).unwrap();
            let diff = number(&got) ^ i;
            assert_eq!(diff.count_ones(), 1, "frame {i}");
        }
        assert_eq!(b.rx_stats().corrupted, 500);
        assert!(!b.capabilities().checksum.rx);
        // A bare header is never corrupted.
        let header_only = frame(0).data()[..HEADER_LEN].to_vec();
        a.transmit(Instant::ZERO, PacketBuf::from_payload(0, &header_only))
            .unwrap();
        assert_eq!(b.receive(Instant::ZERO).unwrap().data(), &header_only[..]);
    }

    #[test]
    fn a_bottleneck_serializes_and_drops_beyond_its_buffer() {
        // Frames of 18 bytes at 18,000 bytes/s: one per millisecond. A
        // burst of ten at once leaves one per millisecond after 1 ms; with
        // room for 4 frames (72 bytes) waiting behind the one on the wire,
        // frames 5 and on find more than that ahead of them and are
        // dropped.
        let len = frame(0).len() as u64;
        assert_eq!(len, 18);
        let config = FaultConfig::new().with_rate(len * 1000, 4 * len as usize);
        let (mut a, mut b) = rx_setup(1, config);
        for i in 0..10 {
            a.transmit(Instant::ZERO, frame(i)).unwrap();
        }
        assert!(b.receive(Instant::ZERO).is_none());
        let mut out = Vec::new();
        for ms in 0..20 {
            let now = Instant::from_millis(ms);
            while let Some(f) = b.receive(now) {
                out.push((ms, number(&f)));
            }
        }
        assert_eq!(out, [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]);
        assert_eq!(b.rx_stats().queue_drops, 5);
        // Once drained, a frame leaves after its own serialization only.
        a.transmit(Instant::from_millis(30), frame(99)).unwrap();
        assert!(b.receive(Instant::from_millis(30)).is_none());
        assert_eq!(b.poll_at(), Some(Instant::from_millis(31)));
        assert_eq!(number(&b.receive(Instant::from_millis(31)).unwrap()), 99);
    }

    #[test]
    fn delay_queue_is_bounded() {
        let cfg = FaultConfig::new()
            .with_delay(Duration::from_millis(1))
            .with_max_queue(10);
        let (mut a, mut b) = rx_setup(2, cfg);
        for i in 0..15 {
            a.transmit(Instant::ZERO, frame(i)).unwrap();
        }
        assert!(b.receive(Instant::ZERO).is_none());
        assert_eq!(b.held(), (10, 0));
        assert_eq!(b.rx_stats().overflowed, 5);
        let t = Instant::from_millis(1);
        let got: Vec<u32> = std::iter::from_fn(|| b.receive(t))
            .map(|f| number(&f))
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn transmit_side_faults() {
        let net = MemoryNetwork::new(1500);
        let cfg = FaultConfig::new().with_delay(Duration::from_millis(4));
        let mut a = FaultInjector::new(net.attach(), 1).with_tx(cfg);
        let mut b = net.attach();
        a.transmit(Instant::ZERO, frame(1)).unwrap();
        assert!(b.receive(Instant::ZERO).is_none());
        assert_eq!(a.poll_at(), Some(Instant::from_millis(4)));
        assert_eq!(a.held(), (0, 1));
        // The injector's own receive (at poll_at) releases it.
        assert!(a.receive(Instant::from_millis(4)).is_none());
        assert_eq!(number(&b.receive(Instant::from_millis(4)).unwrap()), 1);
        assert_eq!(a.tx_stats().delivered, 1);
        assert_eq!(a.poll_at(), None);

        // Too large is refused at once, even when it would be delayed.
        let big = PacketBuf::from_payload(0, &[0; 1515]);
        assert!(matches!(
            a.transmit(Instant::ZERO, big),
            Err(DeviceError::TooLarge {
                len: 1515,
                max: 1514
            })
        ));

        // Loss on transmit.
        a.set_tx_config(FaultConfig::new().with_loss(1.0));
        for i in 0..10 {
            a.transmit(Instant::ZERO, frame(i)).unwrap();
        }
        assert!(b.receive(Instant::ZERO).is_none());
        assert_eq!(a.tx_stats().lost, 10);
        // Transparent again.
        a.set_tx_config(FaultConfig::default());
        a.transmit(Instant::ZERO, frame(9)).unwrap();
        assert_eq!(number(&b.receive(Instant::ZERO).unwrap()), 9);
        assert_eq!(a.rx_stats(), FaultStats::default());
    }

    #[test]
    fn poll_at_includes_inner_device() {
        let inner = FaultInjector::new(MemoryNetwork::pair(1500).0, 1)
            .with_rx(FaultConfig::new().with_delay(Duration::from_millis(1)));
        let mut outer = FaultInjector::new(inner, 2);
        outer
            .inner_mut()
            .rx
            .hold(&mut 0, Instant::from_millis(7), frame(1));
        assert_eq!(outer.poll_at(), Some(Instant::from_millis(7)));
        assert_eq!(number(&outer.receive(Instant::from_millis(7)).unwrap()), 1);
    }

    proptest! {
        #[test]
        fn any_config_is_deterministic_and_bounded(
            seed in any::<u64>(),
            loss in 0.0f64..1.0,
            dup in 0.0f64..1.0,
            reorder in 0.0f64..1.0,
            corrupt in 0.0f64..1.0,
            delay in 0u64..5_000,
            jitter in 0u64..5_000,
            max_queue in 0usize..50,
            rate in proptest::option::of(1u64..1_000_000),
            buffer in 0usize..10_000,
        ) {
            let cfg = FaultConfig {
                loss, duplicate: dup, reorder, corrupt,
                delay: Duration::from_micros(delay),
                jitter: Duration::from_micros(jitter),
                reorder_delay: Duration::from_micros(3_000),
                max_queue,
                rate,
                buffer,
            };
            let a = run(seed, cfg.clone(), 200);
            let b = run(seed, cfg, 200);
            prop_assert!(a.len() <= 400);
            prop_assert_eq!(a, b);
        }
    }
}
