//! The link layer: Ethernet II framing, ARP, and devices.
//!
//! - [`ethernet`]: the Ethernet II header.
//! - [`arp`]: the ARP packet format (RFC 826); [`arp_cache`]: resolution.
//! - [`device`]: the [`Device`] trait every network device implements.
//! - [`endpoint`]: [`EthernetEndpoint`], framing and ARP on one device, and
//!   the [`LinkEndpoint`] trait it offers the internet layer above.

pub mod arp;
pub mod arp_cache;
pub mod device;
pub mod endpoint;
pub mod ethernet;

pub use arp_cache::{ArpCache, ArpConfig};
pub use device::{ChecksumOffload, Device, DeviceCaps, DeviceError};
pub use endpoint::{EthernetEndpoint, EthernetLink, LinkEndpoint, LinkError, LinkStats, NextHop};
pub use ethernet::{EtherType, EthernetAddress};
