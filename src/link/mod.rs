//! The link layer: Ethernet II framing, ARP, and devices.

pub mod device;
pub mod ethernet;

pub use device::{ChecksumOffload, Device, DeviceCaps, DeviceError};
pub use ethernet::{EtherType, EthernetAddress};
