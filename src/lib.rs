//! netstrata: a TCP/IP stack in user space.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod buf;
pub mod checksum;
pub mod error;
pub mod iface;
pub mod internet;
pub mod link;
pub mod rand;
pub mod ratelimit;
pub mod sim;
pub mod time;
pub mod transport;

pub use iface::{Counters, Interface, InterfaceConfig};
pub use time::{Duration, Instant};
