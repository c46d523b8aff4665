//! The interface: one host's stack on one device, wired layer to layer.
//!
//! [`Interface`] owns the link endpoint (Ethernet and ARP), the IPv4
//! endpoint (with ICMP and ping sockets) and the transport layer (UDP
//! sockets), and does nothing but connect them: a frame from the device
//! goes up through [`EthernetEndpoint::receive`], [`Ipv4Endpoint::receive`]
//! and the [`crate::internet::TransportDispatcher`]; what sockets queue goes
//! down through [`crate::internet::IpSender`] and
//! [`crate::link::LinkEndpoint`] to the device.
//!
//! It is sans-IO: [`Interface::poll`] takes the time and the device, does
//! all the work that is due, and [`Interface::poll_at`] says when it next
//! needs to be called. It never sleeps, spawns or reads a clock.

use std::net::Ipv4Addr;

use crate::internet::fragment::ReassemblyStats;
use crate::internet::ping::PingSockets;
use crate::internet::{IpStats, Ipv4Cidr, Ipv4Config, Ipv4Endpoint};
use crate::link::{ArpConfig, Device, DeviceCaps, EthernetAddress, EthernetEndpoint, LinkStats};
use crate::rand::Rng;
use crate::time::Instant;
use crate::transport::Transport;
use crate::transport::udp::{UdpConfig, UdpSockets, UdpStats};

/// How to set up an interface.
#[derive(Debug, Clone)]
pub struct InterfaceConfig {
    /// Station MAC address.
    pub mac: EthernetAddress,
    /// IPv4 configuration (address, gateway, limits).
    pub ipv4: Ipv4Config,
    /// ARP cache limits and timing.
    pub arp: ArpConfig,
    /// UDP socket queue limits.
    pub udp: UdpConfig,
    /// Seed for every random choice the stack makes (IP identification,
    /// ephemeral ports, ping identifiers): the same seed replays the same
    /// run.
    pub seed: u64,
    /// Most frames taken from the device in one poll, so that one poll's
    /// work is bounded.
    pub rx_budget: usize,
}

impl InterfaceConfig {
    /// Defaults for a host with station address `mac` at `address`.
    pub fn new(mac: EthernetAddress, address: Ipv4Cidr) -> InterfaceConfig {
        InterfaceConfig {
            mac,
            ipv4: Ipv4Config::new(address),
            arp: ArpConfig::default(),
            udp: UdpConfig::default(),
            seed: 0x6e65_7473_7472_6174,
            rx_budget: 256,
        }
    }

    /// Sets the default gateway.
    pub fn with_gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.ipv4.gateway = Some(gateway);
        self
    }

    /// Sets the random seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Every counter of an interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Ethernet and ARP.
    pub link: LinkStats,
    /// IPv4 and ICMP.
    pub ip: IpStats,
    /// Fragment reassembly.
    pub reassembly: ReassemblyStats,
    /// UDP.
    pub udp: UdpStats,
}

/// One host's stack on one device.
#[derive(Debug)]
pub struct Interface {
    link: EthernetEndpoint,
    ip: Ipv4Endpoint,
    transport: Transport,
    up: bool,
    rx_budget: usize,
}

impl Interface {
    /// A stack for a device with the capabilities `caps`.
    pub fn new(config: InterfaceConfig, caps: DeviceCaps) -> Interface {
        let mut rng = Rng::new(config.seed);
        let mut link = EthernetEndpoint::new(config.mac, caps.mtu, caps.checksum, config.arp);
        let address = config.ipv4.address.address();
        link.set_ipv4_addr(Some(address));
        let ip = Ipv4Endpoint::new(config.ipv4, &mut rng);
        let udp = UdpSockets::new(address, config.udp, rng.next_u64());
        Interface {
            link,
            ip,
            transport: Transport { udp },
            up: false,
            rx_budget: config.rx_budget.max(1),
        }
    }

    /// The station MAC address.
    pub fn mac(&self) -> EthernetAddress {
        self.link.mac()
    }

    /// The IPv4 address.
    pub fn ipv4_addr(&self) -> Ipv4Addr {
        self.ip.address()
    }

    /// UDP sockets.
    pub fn udp(&mut self) -> &mut UdpSockets {
        &mut self.transport.udp
    }

    /// Ping sockets.
    pub fn ping(&mut self) -> &mut PingSockets {
        self.ip.pings_mut()
    }

    /// The link endpoint (ARP cache, link counters).
    pub fn link(&mut self) -> &mut EthernetEndpoint {
        &mut self.link
    }

    /// The IPv4 endpoint (routes, counters).
    pub fn ipv4(&mut self) -> &mut Ipv4Endpoint {
        &mut self.ip
    }

    /// Every counter.
    pub fn counters(&self) -> Counters {
        Counters {
            link: self.link.stats(),
            ip: self.ip.stats(),
            reassembly: self.ip.reassembler().stats(),
            udp: self.transport.udp.stats(),
        }
    }

    /// Does all work due at `now`: receives frames (at most the rx budget),
    /// runs timers and sends what sockets queued. Returns whether a frame
    /// was received or sent (poll again soon if so).
    pub fn poll<D: Device>(&mut self, now: Instant, device: &mut D) -> bool {
        let before = self.link.stats();
        if !self.up {
            // The interface comes up: announce our address (RFC 5227 §3).
            self.up = true;
            self.link.announce(now, device);
        }
        for _ in 0..self.rx_budget {
            let Some(frame) = device.receive(now) else {
                break;
            };
            if let Some(packet) = self.link.receive(now, frame, device) {
                let mut link = self.link.with_device(device);
                self.ip.receive(now, packet, &mut link, &mut self.transport);
            }
        }
        self.link.poll(now, device);
        let mut link = self.link.with_device(device);
        self.ip.poll(now, &mut link, &mut self.transport);
        let mut ip = self.ip.with_link(&mut link);
        self.transport.dispatch(now, &mut ip);
        let after = self.link.stats();
        after.rx_frames != before.rx_frames || after.tx_frames != before.tx_frames
    }

    /// When [`Interface::poll`] should next be called if no frame arrives:
    /// `Some(now)` if work is waiting, `None` if nothing is scheduled.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.up {
            return Some(now);
        }
        [
            self.link.poll_at(),
            self.ip.poll_at(now),
            self.transport.poll_at(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
