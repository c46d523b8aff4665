//! A deterministic network simulation: several interfaces, their devices,
//! and one virtual clock.
//!
//! [`Simulation`] polls every host until none has work, then jumps the clock
//! to the earliest instant any host or device asked for (the quinn test
//! harness's idea), so a ten-second ARP timeout takes microseconds to
//! simulate and a run is exactly repeatable for the same seeds. Hosts are
//! usually attached to a [`crate::link::MemoryNetwork`], optionally through
//! a [`crate::link::FaultInjector`] and a [`crate::link::PcapWriter`].
//!
//! # Example
//!
//! Host B sits behind a link that delays every frame by 25 ms each way. A's
//! first datagram waits for ARP until B's gratuitous announcement, sent as
//! it comes up, arrives (25 ms), then crosses (25 ms more): 50 ms of
//! virtual time, simulated at once.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::link::{Device, EthernetAddress, FaultConfig, FaultInjector, MemoryNetwork};
//! use netstrata::sim::Simulation;
//! use netstrata::{Duration, Instant, Interface, InterfaceConfig};
//!
//! let (port_a, port_b) = MemoryNetwork::pair(1500);
//! let delay = FaultConfig::new().with_delay(Duration::from_millis(25));
//! let port_b = FaultInjector::new(port_b, 1).with_rx(delay.clone()).with_tx(delay);
//! let cfg = |n: u32| {
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     InterfaceConfig::new(EthernetAddress::local(n), cidr).with_seed(n.into())
//! };
//! let mut sim = Simulation::new();
//! let a = sim.add_host(Interface::new(cfg(1), port_a.capabilities()), Box::new(port_a));
//! let b = sim.add_host(Interface::new(cfg(2), port_b.capabilities()), Box::new(port_b));
//!
//! let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
//! let rx = sim.iface(b).udp().bind(any(7))?;
//! let tx = sim.iface(a).udp().bind(any(0))?;
//! let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
//! sim.iface(a).udp().send_to(tx, b"hello", dst)?;
//! assert!(sim.run_while_not(Duration::from_secs(1), |s| s.iface(b).udp().can_recv(rx)));
//! assert_eq!(sim.now(), Instant::from_millis(50));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::iface::Interface;
use crate::link::Device;
use crate::time::{Duration, Instant};

/// One simulated host.
pub struct SimHost {
    /// Its stack.
    pub iface: Interface,
    /// Its device.
    pub device: Box<dyn Device + Send>,
}

impl core::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimHost")
            .field("iface", &self.iface)
            .finish_non_exhaustive()
    }
}

/// Hosts on a virtual clock.
#[derive(Debug)]
pub struct Simulation {
    now: Instant,
    hosts: Vec<SimHost>,
    /// Largest number of poll rounds at one instant before the clock is
    /// forced forward (a livelock guard).
    pub max_rounds_per_instant: usize,
}

impl Default for Simulation {
    /// As [`Simulation::new`]. (A derived `Default` would set
    /// `max_rounds_per_instant` to 0, and `settle` would do nothing.)
    fn default() -> Self {
        Simulation::new()
    }
}

/// Identifies a host in a [`Simulation`].
pub type HostId = usize;

impl Simulation {
    /// An empty simulation at time zero.
    pub fn new() -> Simulation {
        Simulation {
            now: Instant::ZERO,
            hosts: Vec::new(),
            max_rounds_per_instant: 10_000,
        }
    }

    /// Adds a host; returns its id.
    pub fn add_host(&mut self, iface: Interface, device: Box<dyn Device + Send>) -> HostId {
        self.hosts.push(SimHost { iface, device });
        self.hosts.len() - 1
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// A host.
    pub fn host(&mut self, id: HostId) -> &mut SimHost {
        &mut self.hosts[id]
    }

    /// A host's interface.
    pub fn iface(&mut self, id: HostId) -> &mut Interface {
        &mut self.hosts[id].iface
    }

    /// All hosts.
    pub fn hosts(&mut self) -> &mut [SimHost] {
        &mut self.hosts
    }

    /// Polls every host at the current instant until none moves a frame.
    pub fn settle(&mut self) {
        let now = self.now;
        for _ in 0..self.max_rounds_per_instant {
            let mut busy = false;
            for h in &mut self.hosts {
                busy |= h.iface.poll(now, &mut h.device);
            }
            // A host's poll may have released a delayed frame into another
            // host's device: that is work too.
            busy |= self
                .hosts
                .iter()
                .any(|h| h.device.poll_at().is_some_and(|t| t <= now));
            if !busy {
                return;
            }
        }
        log::warn!("simulation did not settle at {now}");
    }

    /// The earliest instant any host or device wants, if any.
    pub fn next_event(&self) -> Option<Instant> {
        self.hosts
            .iter()
            .flat_map(|h| [h.iface.poll_at(self.now), h.device.poll_at()])
            .flatten()
            .min()
    }

    /// Settles, then moves the clock to the next event (at most `limit`
    /// ahead; exactly `limit` if nothing is scheduled) and settles again.
    pub fn step(&mut self, limit: Duration) {
        self.settle();
        let cap = self.now + limit;
        let next = self.next_event().unwrap_or(cap).min(cap);
        // Always advance at least a microsecond, so a host that keeps
        // asking for "now" cannot stall the clock.
        self.now = next.max(self.now + Duration::from_micros(1));
        self.settle();
    }

    /// Advances the clock to `until`, processing every event on the way.
    pub fn run_until(&mut self, until: Instant) {
        while self.now < until {
            self.step(until - self.now);
        }
    }

    /// Runs until `done` holds (checked after each step) or `timeout` of
    /// virtual time passes; returns whether `done` held.
    pub fn run_while_not(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut Simulation) -> bool,
    ) -> bool {
        let deadline = self.now + timeout;
        loop {
            if done(self) {
                return true;
            }
            if self.now >= deadline {
                return false;
            }
            self.step(deadline - self.now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_new() {
        assert_eq!(
            Simulation::default().max_rounds_per_instant,
            Simulation::new().max_rounds_per_instant
        );
        assert!(Simulation::default().max_rounds_per_instant > 0);
    }
}
