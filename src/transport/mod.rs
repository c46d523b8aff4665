//! The transport layer: UDP and TCP.
//!
//! [`Transport`] holds the sockets of every transport protocol and is the
//! [`TransportDispatcher`] the internet layer hands datagrams up to. It
//! sends through the [`IpSender`] the internet layer offers, and knows
//! nothing of the link below that.

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
