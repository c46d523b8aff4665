//! The link layer: Ethernet II framing, ARP, and devices.
//!
//! - [`ethernet`]: the Ethernet II header.
//! - [`arp`]: the ARP packet format (RFC 826); [`arp_cache`]: resolution.
//! - [`device`]: the [`Device`] trait every network device implements.
//! - [`memory`]: an in-memory Ethernet switch, the default network.
//! - [`fault`]: a seeded fault-injecting device wrapper.
//! - [`pcap`]: a device wrapper that records every frame in a pcap file.
//! - [`gso`]: a device wrapper that cuts TCP super-segments in software.
//! - [`vnet`]: the virtio-net header, and the checksum and segmentation
//!   work of a device that offloads them.
//! - `tap` (Linux only): a TAP device, frames to and from the host kernel.
//! - [`endpoint`]: [`EthernetEndpoint`], framing and ARP on one device, and
//!   the [`LinkEndpoint`] trait it offers the internet layer above.
//!
//! # Example
//!
//! Devices stack as decorators: a port of an in-memory switch, behind a
//! seeded fault injector, behind a pcap writer, is still a [`Device`].
//!
//! ```
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::{Device, FaultConfig, FaultInjector, MemoryNetwork, PcapWriter};
//! use netstrata::Instant;
//!
//! let net = MemoryNetwork::new(1500);
//! let (port, mut other) = (net.attach(), net.attach());
//! let lossy = FaultInjector::new(port, 42).with_tx(FaultConfig::new().with_loss(0.5));
//! let mut dev = PcapWriter::new(lossy, Vec::new(), 0);
//! for _ in 0..100 {
//!     dev.transmit(Instant::ZERO, PacketBuf::from_payload(0, &[0xff; 60]))?;
//! }
//! let mut arrived = 0;
//! while other.receive(Instant::ZERO).is_some() {
//!     arrived += 1;
//! }
//! assert_eq!(dev.stats().written, 100); // recorded before the faults
//! assert_eq!(arrived + dev.inner().tx_stats().lost, 100);
//! assert!((20..80).contains(&arrived));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod arp;
pub mod arp_cache;
pub mod device;
pub mod endpoint;
pub mod ethernet;
pub mod fault;
pub mod gso;
pub mod memory;
pub mod pcap;
#[cfg(target_os = "linux")]
pub mod tap;
pub mod vnet;

pub use arp_cache::{ArpCache, ArpConfig, NeighbourHint};
pub use device::{ChecksumOffload, Device, DeviceCaps, DeviceError, MAX_SUPER_SEGMENT, Medium};
pub use endpoint::{EthernetEndpoint, EthernetLink, LinkEndpoint, LinkError, LinkStats, NextHop};
pub use ethernet::{EtherType, EthernetAddress};
pub use fault::{FaultConfig, FaultInjector, FaultStats};
pub use gso::{Segmenter, SegmenterStats};
pub use memory::{MemoryNetwork, MemoryPort, PortStats};
pub use pcap::{PcapMode, PcapSink, PcapWriter};
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub use tap::AsyncDevice;
#[cfg(target_os = "linux")]
pub use tap::{TapConfig, TapDevice, TapError, TapSleeper, TapStats, TapWaker, TunDevice};
