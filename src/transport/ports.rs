//! Ephemeral port selection (RFC 6056).
//!
//! Ports come from the IANA dynamic range, 49152–65535 (RFC 6335 §6).
//! A connection's port is chosen by RFC 6056's "double-hash" algorithm
//! (§3.3.4, algorithm 4): the search starts at a keyed hash of the local
//! address and the remote address and port, plus a counter taken from a
//! small table indexed by a second keyed hash. Successive connections to
//! one destination get successive ports (so a 4-tuple is not reused soon,
//! §3.3.4's point), while ports toward one destination reveal nothing of
//! the ports used toward others, and the key keeps the sequence
//! unpredictable to a blind attacker (RFC 6056 §2). A socket with no peer
//! (a UDP socket bound to port 0) gets a random port (§3.3.1, algorithm 1).
//! Either way the search moves on past ports that are taken, at most once
//! around the range.
//!
//! [`PortTable`] holds the bound ports of a protocol, looked up on every
//! datagram and segment that arrives.
//!
//! # Example
//!
//! Successive connections to one destination take successive ports, from
//! a start that depends on the destination and a secret:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::rand::KeyedRng;
//! use netstrata::transport::ports::{EPHEMERAL_COUNT, EPHEMERAL_FIRST};
//! use netstrata::transport::ports::{EphemeralPorts, PortTable};
//!
//! let mut ports = EphemeralPorts::new(KeyedRng::from_seed(1));
//! let me = Ipv4Addr::new(192, 0, 2, 1);
//! let web = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 443);
//! let first = ports.for_connection(me, web, |_| true).unwrap();
//! let second = ports.for_connection(me, web, |_| true).unwrap();
//! let ephemeral = EPHEMERAL_FIRST..=EPHEMERAL_FIRST + (EPHEMERAL_COUNT - 1);
//! assert!(ephemeral.contains(&first) && ephemeral.contains(&second));
//! assert_eq!(second, first + 1); // (wrapping within the range)
//! // A port in use is skipped.
//! let third = ports.for_connection(me, web, |p| p != second + 1).unwrap();
//! assert_ne!(third, second + 1);
//!
//! let mut bound = PortTable::default();
//! bound.insert(53, "dns");
//! assert_eq!((bound.get(53), bound.contains(54)), (Some("dns"), false));
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::rand::KeyedRng;
use crate::siphash::siphash24;

/// The first ephemeral port.
pub const EPHEMERAL_FIRST: u16 = 49152;
/// The number of ephemeral ports.
pub const EPHEMERAL_COUNT: u16 = 16384;
/// Counters of the double-hash table (RFC 6056 §3.3.4: larger tables make
/// destinations share counters less often).
const TABLE_LEN: usize = 1024;

/// Picks ephemeral ports.
#[derive(Clone)]
pub struct EphemeralPorts {
    key: [u64; 2],
    table: Box<[u16]>,
    rng: KeyedRng,
}

impl core::fmt::Debug for EphemeralPorts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EphemeralPorts").finish_non_exhaustive()
    }
}

impl EphemeralPorts {
    /// A selector keyed from `rng` (which it keeps for random ports).
    pub fn new(mut rng: KeyedRng) -> EphemeralPorts {
        EphemeralPorts {
            key: rng.next_key(),
            table: vec![0; TABLE_LEN].into_boxed_slice(),
            rng,
        }
    }

    /// A port for a connection from `local` to `remote`, the first for
    /// which `free` says yes; `None` if none is.
    pub fn for_connection(
        &mut self,
        local: Ipv4Addr,
        remote: SocketAddrV4,
        mut free: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let mut d = [0u8; 10];
        d[..4].copy_from_slice(&local.octets());
        d[4..8].copy_from_slice(&remote.ip().octets());
        d[8..].copy_from_slice(&remote.port().to_be_bytes());
        let h = siphash24(self.key, &d);
        // F (the offset) from the low half, G (the table index) from the
        // high half: two independent keyed hashes for the price of one.
        let offset = h as u32 % u32::from(EPHEMERAL_COUNT);
        let index = (h >> 32) as usize % TABLE_LEN;
        for _ in 0..EPHEMERAL_COUNT {
            let step = u32::from(self.table[index]);
            self.table[index] = self.table[index].wrapping_add(1);
            let port = EPHEMERAL_FIRST + ((offset + step) % u32::from(EPHEMERAL_COUNT)) as u16;
            if free(port) {
                return Some(port);
            }
        }
        None
    }

    /// A random port for a socket with no peer, the first from a random
    /// start for which `free` says yes; `None` if none is.
    pub fn random(&mut self, free: impl FnMut(&u16) -> bool) -> Option<u16> {
        let start = self.rng.below(u64::from(EPHEMERAL_COUNT)) as u16;
        (0..EPHEMERAL_COUNT)
            .map(|i| EPHEMERAL_FIRST + (start + i) % EPHEMERAL_COUNT)
            .find(free)
    }
}

/// Ports per page of a [`PortTable`].
const PAGE: usize = 256;

/// What each bound port is bound to: indexed by the port itself, in pages
/// of `PAGE` ports allocated when a port of theirs is bound and freed
/// when the last is unbound. A lookup is two loads and no hash (there are
/// only 65,536 ports), and nothing that arrives from the network can grow
/// the table: only binding does.
#[derive(Debug, Clone)]
pub struct PortTable<V> {
    /// Page `port / PAGE`.
    pages: Vec<Option<Page<V>>>,
}

/// The ports of one page, and how many of them are bound.
#[derive(Debug, Clone)]
struct Page<V> {
    slots: Box<[Option<V>; PAGE]>,
    bound: usize,
}

impl<V: Copy> Default for PortTable<V> {
    fn default() -> Self {
        PortTable {
            pages: (0..=usize::from(u16::MAX) / PAGE).map(|_| None).collect(),
        }
    }
}

impl<V: Copy> PortTable<V> {
    /// What `port` is bound to.
    #[inline]
    pub fn get(&self, port: u16) -> Option<V> {
        let (page, slot) = split(port);
        self.pages.get(page)?.as_ref()?.slots[slot]
    }

    /// Whether `port` is bound.
    pub fn contains(&self, port: u16) -> bool {
        self.get(port).is_some()
    }

    /// Binds `port` to `value`; returns what it was bound to.
    pub fn insert(&mut self, port: u16, value: V) -> Option<V> {
        let (page, slot) = split(port);
        let entry = self.pages.get_mut(page)?;
        let p = entry.get_or_insert_with(|| Page {
            slots: Box::new([None; PAGE]),
            bound: 0,
        });
        let old = p.slots[slot].replace(value);
        if old.is_none() {
            p.bound += 1;
        }
        old
    }

    /// Unbinds `port`; returns what it was bound to.
    pub fn remove(&mut self, port: u16) -> Option<V> {
        let (page, slot) = split(port);
        let entry = self.pages.get_mut(page)?;
        let p = entry.as_mut()?;
        let old = p.slots[slot].take();
        if old.is_some() {
            p.bound -= 1;
            if p.bound == 0 {
                *entry = None;
            }
        }
        old
    }
}

/// A port's page and its slot in the page.
fn split(port: u16) -> (usize, usize) {
    (usize::from(port) / PAGE, usize::from(port) % PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn peer(n: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, n), port)
    }

    #[test]
    fn successive_connections_to_one_peer_get_successive_ports() {
        let mut p = EphemeralPorts::new(KeyedRng::from_seed(1));
        let a = p.for_connection(ME, peer(2, 80), |_| true).unwrap();
        let b = p.for_connection(ME, peer(2, 80), |_| true).unwrap();
        assert!(a >= EPHEMERAL_FIRST && b >= EPHEMERAL_FIRST);
        assert_eq!(
            b,
            if a == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                a + 1
            }
        );
        // A taken port is skipped.
        let c = p
            .for_connection(ME, peer(2, 80), |q| q != b.wrapping_add(1))
            .unwrap();
        assert_ne!(c, b.wrapping_add(1));
    }

    #[test]
    fn destinations_and_keys_give_unrelated_ports() {
        let mut p = EphemeralPorts::new(KeyedRng::from_seed(1));
        let ports: Vec<u16> = (2..10)
            .map(|n| p.for_connection(ME, peer(n, 80), |_| true).unwrap())
            .collect();
        let spread = ports.iter().max().unwrap() - ports.iter().min().unwrap();
        assert!(spread > 100, "{ports:?}");
        let first = |seed| {
            EphemeralPorts::new(KeyedRng::from_seed(seed))
                .for_connection(ME, peer(2, 80), |_| true)
                .unwrap()
        };
        assert_ne!(first(1), first(2));
    }

    #[test]
    fn exhaustion_is_none() {
        let mut p = EphemeralPorts::new(KeyedRng::from_seed(3));
        assert_eq!(p.for_connection(ME, peer(2, 80), |_| false), None);
        assert_eq!(p.random(|_| false), None);
        let r = p.random(|&q| q == 50000);
        assert_eq!(r, Some(50000));
    }

    #[test]
    fn a_port_table_binds_looks_up_and_frees_its_pages() {
        let mut t = PortTable::default();
        assert_eq!(t.get(0), None);
        assert_eq!(t.insert(80, 1u32), None);
        assert_eq!(t.insert(81, 2), None);
        assert_eq!(t.insert(80, 3), Some(1));
        assert_eq!(t.insert(u16::MAX, 4), None);
        assert_eq!((t.get(80), t.get(81), t.get(82)), (Some(3), Some(2), None));
        assert!(t.contains(u16::MAX) && !t.contains(u16::MAX - 1));
        assert_eq!(t.pages.iter().flatten().count(), 2);
        assert_eq!(t.remove(80), Some(3));
        assert_eq!(t.remove(80), None);
        assert_eq!(t.pages.iter().flatten().count(), 2);
        assert_eq!(t.remove(81), Some(2));
        assert_eq!(t.remove(u16::MAX), Some(4));
        assert_eq!(t.pages.iter().flatten().count(), 0);
        assert_eq!(t.get(81), None);
    }
}
