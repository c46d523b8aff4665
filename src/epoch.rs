//! Epochs: values that say a table has not changed since a cache outside it
//! was filled.
//!
//! A flow keeps what the routing table and the neighbour cache decided for
//! its last packet ([`crate::internet::PathCache`],
//! [`crate::link::NeighbourHint`]) and reuses it while the table's epoch is
//! the one it was filled in. A table takes a fresh epoch from one counter
//! shared by the whole process when it is made, cloned or changed, so no
//! two states of any tables ever have the same epoch: a table put in
//! another's place, or restored from a copy, never revives what was cached
//! from the one it replaced. Epochs are only ever compared, never sent or
//! used to decide anything else, so that the counter is shared by every
//! stack in the process changes nothing a simulation replays.
//!
//! # Example
//!
//! ```
//! use netstrata::epoch::Epoch;
//!
//! let filled_in = Epoch::fresh();
//! let table_now = Epoch::fresh(); // the table changed since
//! assert_ne!(filled_in, table_now); // so what was cached is void
//! assert_ne!(filled_in, Epoch::NONE);
//! assert_eq!(Epoch::default(), Epoch::NONE);
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

/// The state of a table, as of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epoch(u64);

impl Epoch {
    /// No table's epoch, ever: what an empty cache holds.
    pub const NONE: Epoch = Epoch(0);

    /// An epoch no table has had (a 64-bit count: it does not wrap).
    pub fn fresh() -> Epoch {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Epoch(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_epochs_are_never_none_nor_repeated() {
        let a = Epoch::fresh();
        let b = Epoch::fresh();
        assert!(a != b && a != Epoch::NONE && b != Epoch::NONE);
        assert_eq!(Epoch::default(), Epoch::NONE);
    }
}
