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
//!
//! # Example
//!
//! Two interfaces on a cable, driven by hand: each poll does what is due
//! and nothing else.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::{Instant, Interface, InterfaceConfig};
//!
//! let (mut dev_a, mut dev_b) = MemoryNetwork::pair(1500);
//! let cfg = |n: u32| {
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     InterfaceConfig::new(EthernetAddress::local(n), cidr).with_seed(n.into())
//! };
//! let mut a = Interface::new(cfg(1), dev_a.capabilities());
//! let mut b = Interface::new(cfg(2), dev_b.capabilities());
//! let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
//! let rx = b.udp().bind(any(7))?;
//! let tx = a.udp().bind(any(0))?;
//! let dst = SocketAddrV4::new(b.ipv4_addr(), 7);
//! a.udp().send_to(tx, b"hello", dst)?;
//!
//! let now = Instant::ZERO;
//! for _ in 0..4 {
//!     a.poll(now, &mut dev_a); // ARP request; then the datagram
//!     b.poll(now, &mut dev_b); // ARP reply; then the datagram up
//! }
//! assert!(b.udp().can_recv(rx));
//! assert_eq!(a.counters().link.arp.requests, 1);
//! assert_eq!(b.counters().link.arp_replies_sent, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::Ipv4Addr;

use crate::internet::fragment::ReassemblyStats;
use crate::internet::ping::PingSockets;
use crate::internet::{IpStats, Ipv4Cidr, Ipv4Config, Ipv4Endpoint};
use crate::link::{
    ArpConfig, Device, DeviceCaps, EthernetAddress, EthernetEndpoint, LinkStats, Medium,
};
use crate::rand::KeyedRng;
use crate::time::Instant;
use crate::transport::Transport;
use crate::transport::tcp::{TcpConfig, TcpLayerStats, TcpLimits, TcpSockets};
use crate::transport::udp::{UdpConfig, UdpLayerStats, UdpSockets};

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
    /// Default options of TCP sockets.
    pub tcp: TcpConfig,
    /// Layer-wide TCP limits (SYN cookies, orphans, TIME-WAIT, memory).
    pub tcp_limits: TcpLimits,
    /// Where every secret and random choice of the stack comes from (the
    /// keys of initial sequence numbers, timestamp offsets, IP
    /// identifications and SYN cookies; ephemeral ports, ping
    /// identifiers). `None`, the default, draws them from the operating
    /// system's entropy, so that nothing an attacker sees is predictable.
    /// `Some(seed)` makes every value a function of the seed: a simulation
    /// then replays exactly, and anyone who knows the seed can predict
    /// them all.
    pub seed: Option<u64>,
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
            tcp: TcpConfig::default(),
            tcp_limits: TcpLimits::default(),
            seed: None,
            rx_budget: 256,
        }
    }

    /// Sets the default gateway.
    pub fn with_gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.ipv4.gateway = Some(gateway);
        self
    }

    /// Makes every secret and random choice a function of `seed` (see
    /// [`InterfaceConfig::seed`]): for simulations and tests.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
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
    pub udp: UdpLayerStats,
    /// TCP (layer-wide; per-connection counters are in
    /// [`crate::transport::tcp::TcpInfo`]).
    pub tcp: TcpLayerStats,
}

/// One host's stack on one device.
#[derive(Debug)]
pub struct Interface {
    link: EthernetEndpoint,
    ip: Ipv4Endpoint,
    transport: Transport,
    up: bool,
    rx_budget: usize,
    /// The last poll stopped at the rx budget: the device may hold more.
    rx_backlog: bool,
}

impl Interface {
    /// A stack for a device with the capabilities `caps`.
    pub fn new(config: InterfaceConfig, caps: DeviceCaps) -> Interface {
        let mut rng = KeyedRng::new(config.seed);
        let arp_key = rng.derive_key("arp");
        let mut link =
            EthernetEndpoint::new(config.mac, caps.mtu, caps.checksum, config.arp, arp_key)
                .with_medium(caps.medium)
                .with_segmentation(caps.segmentation);
        let address = config.ipv4.address.address();
        link.set_ipv4_addr(Some(address));
        let mut ipv4 = config.ipv4;
        // On a point-to-point link (a TUN) the gateway is the peer, on the
        // link whatever our address's prefix: a VPN's `A/32` with the far
        // end `B` (Linux's `ip addr add A peer B`).
        let peer = ipv4.gateway.take_if(|_| caps.medium == Medium::Ip);
        let mut ip = Ipv4Endpoint::new(ipv4, &mut rng);
        if let Some(peer) = peer {
            let routes = ip.routes_mut();
            routes.add_peer(address, peer);
            if let Err(e) = routes.set_default_gateway(peer) {
                log::warn!("ignoring default gateway: {e}");
            }
        }
        let udp = UdpSockets::new(address, config.udp, rng.fork());
        let tcp = TcpSockets::new(address, caps.mtu, config.tcp, config.tcp_limits, rng.fork())
            .with_segmentation(caps.segmentation);
        Interface {
            link,
            ip,
            transport: Transport { udp, tcp },
            up: false,
            rx_budget: config.rx_budget.max(1),
            rx_backlog: false,
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

    /// TCP listeners and connections.
    pub fn tcp(&mut self) -> &mut TcpSockets {
        &mut self.transport.tcp
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
            tcp: self.transport.tcp.stats(),
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
        let mut taken = 0;
        while taken < self.rx_budget {
            let Some(mut frame) = device.receive(now) else {
                break;
            };
            taken += 1;
            if self.link.receive_in_place(now, &mut frame, device) {
                let mut link = self.link.with_device(device);
                self.ip.receive(now, frame, &mut link, &mut self.transport);
            }
        }
        self.rx_backlog = taken == self.rx_budget;
        self.link.poll(now, device);
        let mut link = self.link.with_device(device);
        self.ip.poll(now, &mut link, &mut self.transport);
        let mut ip = self.ip.with_link(&mut link);
        self.transport.dispatch(now, &mut ip);
        device.flush(now);
        let after = self.link.stats();
        after.rx_frames != before.rx_frames || after.tx_frames != before.tx_frames
    }

    /// When [`Interface::poll`] should next be called if no frame arrives:
    /// `Some(now)` if work is waiting (including frames left on the device
    /// because the last poll used its whole rx budget), `None` if nothing
    /// is scheduled.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.up || self.rx_backlog {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::PacketBuf;
    use crate::link::DeviceError;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct FakeDevice {
        rx: VecDeque<PacketBuf>,
    }

    impl Device for FakeDevice {
        fn capabilities(&self) -> DeviceCaps {
            DeviceCaps::default()
        }
        fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
            self.rx.pop_front()
        }
        fn transmit(&mut self, _now: Instant, _frame: PacketBuf) -> Result<(), DeviceError> {
            Ok(())
        }
    }

    /// A device on an IP-only link that keeps what it is given.
    #[derive(Default)]
    struct PointToPoint {
        sent: Vec<Vec<u8>>,
    }

    impl Device for PointToPoint {
        fn capabilities(&self) -> DeviceCaps {
            DeviceCaps {
                medium: Medium::Ip,
                ..DeviceCaps::default()
            }
        }
        fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
            None
        }
        fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
            self.sent.push(frame.data().to_vec());
            Ok(())
        }
    }

    #[test]
    fn on_a_point_to_point_link_the_gateway_is_the_peer_whatever_the_prefix() {
        let mut dev = PointToPoint::default();
        let cfg = InterfaceConfig::new(EthernetAddress::local(1), "10.8.0.2/32".parse().unwrap())
            .with_gateway(Ipv4Addr::new(10, 8, 0, 1))
            .with_seed(1);
        let mut iface = Interface::new(cfg, dev.capabilities());
        let s = iface.udp().bind("0.0.0.0:5000".parse().unwrap()).unwrap();
        for dst in ["198.18.9.9:53", "10.8.0.1:53"] {
            iface.udp().send_to(s, b"hi", dst.parse().unwrap()).unwrap();
            iface.poll(Instant::ZERO, &mut dev);
        }
        let to: Vec<[u8; 4]> = dev
            .sent
            .iter()
            .map(|p| [p[16], p[17], p[18], p[19]])
            .collect();
        assert_eq!(to, [[198, 18, 9, 9], [10, 8, 0, 1]]);
        assert!(dev.sent.iter().all(|p| p[0] == 0x45), "bare IPv4 packets");
    }

    #[test]
    fn poll_at_says_come_back_when_the_rx_budget_ran_out() {
        let mut cfg =
            InterfaceConfig::new(EthernetAddress::local(1), "192.0.2.1/24".parse().unwrap());
        cfg.rx_budget = 2;
        let mut iface = Interface::new(cfg, DeviceCaps::default());
        let mut dev = FakeDevice::default();
        // Five frames for some other station.
        for _ in 0..5 {
            dev.rx.push_back(PacketBuf::from_payload(0, &[0x02; 60]));
        }
        let now = Instant::ZERO;
        iface.poll(now, &mut dev);
        assert_eq!(dev.rx.len(), 3);
        assert_eq!(iface.poll_at(now), Some(now));
        iface.poll(now, &mut dev);
        assert_eq!(iface.poll_at(now), Some(now));
        iface.poll(now, &mut dev);
        assert!(dev.rx.is_empty());
        assert_eq!(iface.poll_at(now), None);
    }
}
