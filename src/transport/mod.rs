//! The transport layer: UDP and TCP.
//!
//! [`Transport`] holds the sockets of every transport protocol and is the
//! [`TransportDispatcher`] the internet layer hands datagrams up to. It
//! sends through the [`IpSender`] the internet layer offers, and knows
//! nothing of the link below that.
//!
//! # Example
//!
//! A datagram to a port nobody is bound to is answered with ICMP port
//! unreachable (RFC 1122 §4.1.3.1), which comes back to the socket that
//! sent it. (Two hosts on a [`Simulation`](crate::sim::Simulation), set up
//! as in the crate's example.)
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::internet::IcmpErrorKind;
//! use netstrata::internet::icmpv4::DstUnreachable;
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::sim::Simulation;
//! use netstrata::{Duration, Interface, InterfaceConfig};
//!
//! # let net = MemoryNetwork::new(1500);
//! # let mut sim = Simulation::new();
//! # let mut host = |n: u32| {
//! #     let port = net.attach();
//! #     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//! #     let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr).with_seed(n.into());
//! #     sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port))
//! # };
//! let (a, b) = (host(1), host(2));
//! let tx = sim.iface(a).udp().bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
//! let closed = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9);
//! sim.iface(a).udp().send_to(tx, b"anyone?", closed)?;
//! sim.run_until(sim.now() + Duration::from_secs(1));
//!
//! let error = sim.iface(a).udp().take_error(tx)?.expect("an ICMP error");
//! assert_eq!(error.kind, IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable));
//! assert_eq!((error.remote_addr, error.remote_port), (*closed.ip(), 9));
//! assert_eq!(sim.iface(b).counters().udp.rx_no_socket, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ports;
pub mod tcp;
pub mod udp;

use crate::buf::PacketBuf;
use crate::internet::{Disposition, IcmpError, IpMeta, IpSender, Protocol, TransportDispatcher};
use crate::time::Instant;
use tcp::TcpSockets;
use udp::UdpSockets;

/// The transport protocols of one interface.
#[derive(Debug)]
pub struct Transport {
    /// UDP sockets.
    pub udp: UdpSockets,
    /// TCP listeners and connections.
    pub tcp: TcpSockets,
}

impl Transport {
    /// Runs timers and sends whatever sockets have queued.
    pub fn dispatch<S: IpSender>(&mut self, now: Instant, ip: &mut S) {
        self.udp.dispatch(now, ip);
        self.tcp.dispatch(now, ip);
    }

    /// Whether any socket has something to send now.
    pub fn has_pending_tx(&self) -> bool {
        self.udp.has_pending_tx() || self.tcp.has_pending_tx()
    }

    /// When the transport layer next needs a poll (timers), if ever.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if self.udp.has_pending_tx() {
            return Some(now);
        }
        self.tcp.poll_at(now)
    }
}

impl TransportDispatcher for Transport {
    fn receive<S: IpSender>(
        &mut self,
        now: Instant,
        meta: &IpMeta,
        payload: PacketBuf,
        ip: &mut S,
    ) -> Disposition {
        match meta.protocol {
            Protocol::Udp => self.udp.receive(meta, payload, ip),
            Protocol::Tcp => self.tcp.receive(now, meta, payload, ip),
            _ => Disposition::ProtocolUnreachable(payload),
        }
    }

    fn icmp_error(&mut self, now: Instant, error: &IcmpError) {
        match error.protocol {
            Protocol::Udp => self.udp.icmp_error(error),
            Protocol::Tcp => self.tcp.icmp_error(now, error),
            _ => {}
        }
    }
}
