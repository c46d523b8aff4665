//! Proportional Rate Reduction (RFC 6937): how much may be sent during
//! fast recovery.
//!
//! Cutting the congestion window to ssthresh at once (RFC 6675, RFC 5681)
//! stops the sender for half a round trip and then lets a burst out;
//! with many losses `pipe` can fall far below ssthresh and the window is
//! rebuilt by slow start. PRR spreads the reduction over the round trip,
//! sending `ssthresh / RecoverFS` of what each ACK reports delivered
//! while `pipe` is above ssthresh, and, once below, lets `pipe` grow back
//! towards ssthresh. How fast is the update of RFC 6937 in
//! draft-ietf-tcpm-prr-rfc6937bis §6 (and Linux's `tcp_cwnd_reduction`):
//! each ACK lets out what has been delivered and not yet sent again, and
//! one segment more (the slow-start reduction bound, PRR-SSRB) only if the
//! ACK is "safe": it advances SND.UNA and reveals no new loss. With RFC
//! 6937's extra segment on every ACK, a path losing every other segment
//! (a drop-tail queue overrun by slow start) got two segments for each
//! one delivered, all through the recovery, and kept the queue overrun. At the end of recovery `pipe` is
//! close to ssthresh, neither far below nor bursting above.
//!
//! # Example
//!
//! Recovery starts with 20 segments in flight and ssthresh cut to 10: PRR
//! lets out one segment for every two delivered (the first at once: the
//! fast retransmission), so
//! the window comes down over a round trip instead of at once.
//!
//! ```
//! use netstrata::transport::tcp::prr::Prr;
//!
//! let mss = 1000;
//! let mut prr = Prr::new(20 * mss, 10 * mss);
//! let mut pipe = 19 * mss; // one segment lost
//! let mut sent = 0;
//! for _ in 0..10 {
//!     pipe -= mss; // a segment delivered
//!     let allowed = prr.on_ack(mss, pipe, mss, false);
//!     prr.on_sent(allowed);
//!     pipe += allowed;
//!     sent += allowed;
//! }
//! assert_eq!(sent, 5 * mss); // 10 delivered × 10 / 20
//! assert_eq!(pipe, 14 * mss); // on its way down to ssthresh
//! ```

/// The PRR state of one recovery (RFC 6937 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prr {
    /// `prr_delivered`: octets delivered since recovery began.
    delivered: usize,
    /// `prr_out`: octets sent since recovery began.
    out: usize,
    /// `RecoverFS`: the flight size when recovery began.
    recover_fs: usize,
    /// The congestion controller's ssthresh for this recovery.
    ssthresh: usize,
}

impl Prr {
    /// Recovery begins with `flight_size` octets outstanding and the
    /// controller's new `ssthresh`.
    pub fn new(flight_size: usize, ssthresh: usize) -> Prr {
        Prr {
            delivered: 0,
            out: 0,
            recover_fs: flight_size.max(1),
            ssthresh,
        }
    }

    /// `sndcnt` for an ACK that delivered `delivered` octets (SND.UNA's
    /// advance plus what it newly SACKed), with `pipe` octets in flight
    /// after it: how many octets may be sent now. `safe`: the ACK advanced
    /// SND.UNA and revealed no new loss.
    pub fn on_ack(&mut self, delivered: usize, pipe: usize, mss: usize, safe: bool) -> usize {
        self.delivered += delivered;
        let sndcnt = if pipe > self.ssthresh {
            // Proportional: CEIL(prr_delivered * ssthresh / RecoverFS).
            let due = (self.delivered as u128 * self.ssthresh as u128)
                .div_ceil(self.recover_fs as u128) as usize;
            due.saturating_sub(self.out)
        } else {
            // What was delivered and not yet sent again, and one segment
            // more if the ACK is safe.
            let limit = self.delivered.saturating_sub(self.out).max(delivered);
            let limit = if safe { limit + mss } else { limit };
            (self.ssthresh - pipe).min(limit)
        };
        // The fast retransmission goes whatever the arithmetic says
        // (Linux forces it the same way).
        if self.out == 0 {
            sndcnt.max(mss)
        } else {
            sndcnt
        }
    }

    /// `len` octets were sent during recovery (`prr_out`).
    pub fn on_sent(&mut self, len: usize) {
        self.out += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    #[test]
    fn sends_in_proportion_while_pipe_is_above_ssthresh() {
        // 20 segments out, one lost, ssthresh 14 segments (CUBIC's 0.7).
        let mut prr = Prr::new(20 * MSS, 14 * MSS);
        // The first ACK: the fast retransmission goes.
        let n = prr.on_ack(MSS, 18 * MSS, MSS, false);
        assert_eq!(n, MSS);
        prr.on_sent(n);
        // Each later ACK delivering a segment allows 0.7 of one: eleven
        // segments delivered, seven sent (whole segments only).
        let mut sent = 0;
        for _ in 0..10 {
            let n = prr.on_ack(MSS, 18 * MSS, MSS, true);
            let n = n - n % MSS;
            prr.on_sent(n);
            sent += n;
        }
        assert_eq!(sent + MSS, 7 * MSS);
    }

    #[test]
    fn below_ssthresh_pipe_grows_back_by_at_most_one_segment_more_than_delivered() {
        // Heavy loss: pipe fell to 4 segments with ssthresh 10.
        let mut prr = Prr::new(20 * MSS, 10 * MSS);
        prr.on_sent(MSS);
        assert_eq!(prr.on_ack(MSS, 4 * MSS, MSS, true), MSS + MSS);
        prr.on_sent(2 * MSS);
        // Never past ssthresh.
        assert_eq!(prr.on_ack(8 * MSS, 9 * MSS, MSS, true), MSS);
    }

    #[test]
    fn an_ack_that_is_not_safe_adds_no_segment() {
        // Pipe far below ssthresh, but the ACK only SACKed (or found new
        // losses): one segment delivered, one sent, not two.
        let mut prr = Prr::new(20 * MSS, 10 * MSS);
        prr.on_sent(MSS);
        for _ in 0..5 {
            assert_eq!(prr.on_ack(MSS, 4 * MSS, MSS, false), MSS);
            prr.on_sent(MSS);
        }
        // What was delivered and not sent (nothing could go, say) is
        // owed all the same; a safe ACK adds one segment.
        assert_eq!(prr.on_ack(MSS, 4 * MSS, MSS, false), MSS);
        assert_eq!(prr.on_ack(MSS, 4 * MSS, MSS, false), MSS);
        assert_eq!(prr.on_ack(MSS, 4 * MSS, MSS, false), 2 * MSS);
        assert_eq!(prr.on_ack(MSS, 4 * MSS, MSS, true), 4 * MSS);
    }
}
