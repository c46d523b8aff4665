//! The transport layer: UDP and TCP.
//!
//! [`Transport`] holds the sockets of every transport protocol and is the
//! [`TransportDispatcher`] the internet layer hands datagrams up to. It
//! sends through the [`IpSender`] the internet layer offers, and knows
//! nothing of the link below that.

pub mod tcp;
pub mod udp;

use crate::buf::PacketBuf;
use crate::internet::{Disposition, IcmpError, IpMeta, IpSender, Protocol, TransportDispatcher};
use crate::time::Instant;
use udp::UdpSockets;

/// The transport protocols of one interface.
#[derive(Debug)]
pub struct Transport {
    /// UDP sockets.
    pub udp: UdpSockets,
}

impl Transport {
    /// Sends whatever sockets have queued.
    pub fn dispatch<S: IpSender>(&mut self, now: Instant, ip: &mut S) {
        self.udp.dispatch(now, ip);
    }

    /// Whether any socket has something to send now.
    pub fn has_pending_tx(&self) -> bool {
        self.udp.has_pending_tx()
    }

    /// When the transport layer next needs a poll (timers), if ever.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        self.has_pending_tx().then_some(now)
    }
}

impl TransportDispatcher for Transport {
    fn receive<S: IpSender>(
        &mut self,
        _now: Instant,
        meta: &IpMeta,
        payload: PacketBuf,
        _ip: &mut S,
    ) -> Disposition {
        match meta.protocol {
            Protocol::Udp => self.udp.receive(meta, payload),
            // TCP's state machine is not implemented yet: like a host
            // without it, say so.
            _ => Disposition::ProtocolUnreachable(payload),
        }
    }

    fn icmp_error(&mut self, _now: Instant, error: &IcmpError) {
        if error.protocol == Protocol::Udp {
            self.udp.icmp_error(error);
        }
    }
}
