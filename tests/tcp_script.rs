//! TCP segment by segment: packetdrill-style scripts against one
//! `TcpSockets`, each a short story of one behaviour and the RFC it
//! follows. The syntax is described in `script/mod.rs`; in brief, `<` is a
//! segment the peer sends, `>` one the stack must send at exactly that
//! (virtual) millisecond, sequence numbers are relative to each side's ISN,
//! and the other lines are user calls and checks.
//!
//! The stack's MSS is 1460 (MTU 1500). Most scripts use a peer that offers
//! an MSS of 1000 and nothing else, so segments are round numbers and
//! windows unscaled, and establish at 100 ms: the handshake's RTT sample
//! of 100 ms gives SRTT 100, RTTVAR 50, RTO = 100 + 4·50 = 300 ms.

mod script;

use netstrata::transport::tcp::{CongestionAlgorithm, RttConfig, TcpConfig, TcpError, TcpLimits};
use netstrata::{Duration, Instant};
use script::Script;

/// Active open to a peer offering only MSS 1000: ESTABLISHED at 100 ms.
fn established(config: TcpConfig) -> Script {
    established_with(config, "<mss 1000>")
}

/// Active open; the peer's SYN-ACK carries `options`. ESTABLISHED at
/// 100 ms, with our ACK of the SYN-ACK matched.
fn established_with(config: TcpConfig, options: &str) -> Script {
    let mut s = Script::new(config);
    s.run(&format!(
        "
        0    connect
        0    > S 0:0(0)
        +100 < S. 0:0(0) ack 1 win 65535 {options}
        +0   > . 1:1(0) ack 1
        "
    ));
    s
}

/// The first 16 data segments are ACKed at once (the quick-ack phase of
/// slow start, as Linux does); runs them so delayed ACKs can be seen. The
/// peer's next byte is then 16001.
fn after_quickack(s: &mut Script) {
    let mut text = String::new();
    for i in 0..16 {
        let (a, b) = (1 + 1000 * i, 1001 + 1000 * i);
        text += &format!("+0 < . {a}:{b}(1000) ack 1\n+0 > . 1:1(0) ack {b}\n");
    }
    s.run(&text);
}

/// 3000 octets sent as three 1000-octet segments.
const THREE_SENT: &str = "
        +100 send 3000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > P. 2001:3001(1000) ack 1
        ";

/// 8000 octets sent as eight 1000-octet segments, as the loss recovery
/// scenarios begin.
const EIGHT_SENT: &str = "
        +100 send 8000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        +0   > . 3001:4001(1000) ack 1
        +0   > . 4001:5001(1000) ack 1
        +0   > . 5001:6001(1000) ack 1
        +0   > . 6001:7001(1000) ack 1
        +0   > P. 7001:8001(1000) ack 1
        ";

fn newreno() -> TcpConfig {
    TcpConfig {
        congestion: CongestionAlgorithm::NewReno,
        ..rfc6298()
    }
}

/// The RTO arithmetic of RFC 6298 exactly (G = 1 ms), rather than the
/// default Linux-like floor of SRTT + 200 ms, so scripts can state the
/// RFC's numbers.
fn rfc6298() -> TcpConfig {
    TcpConfig {
        rtt: RttConfig {
            granularity: Duration::from_millis(1),
            ..RttConfig::linux()
        },
        ..TcpConfig::default()
    }
}

// ----------------------------------------------------------------------
// Opening: options negotiated (RFC 7323 §2.2, §3.2; RFC 2018 §2;
// RFC 9293 §3.7.1).

#[test]
fn active_open_peer_offers_everything() {
    // Our SYN offers everything; the peer does too, so everything is on:
    // our windows are scaled by 3 (256 KiB buffer), timestamps echo the
    // peer's, and the MSS leaves room for the 12-byte timestamp option.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        +50  < S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 700 ecr 0,wscale 7>
        +0   > . 1:1(0) ack 1 win 32768 <TS val 50 ecr 700>
        +0   state ESTABLISHED
        +10  send 3000
        +0   > . 1:1449(1448) ack 1 win 32768 <TS val 60 ecr 700>
        +0   > . 1449:2897(1448) ack 1 win 32768 <TS val 60 ecr 700>
        +0   > P. 2897:3001(104) ack 1 win 32768 <TS val 60 ecr 700>
        // Out of order: SACK is permitted, so the duplicate ACK carries
        // a block.
        +10  < . 1001:2001(1000) ack 3001 win 500 <TS val 710 ecr 60>
        +0   > . 3001:3001(0) ack 1 win 32768 <TS val 70 ecr 700,sack 1001:2001>
        ",
    );
    // The peer's window of 500 is scaled by its shift of 7.
    assert_eq!(s.tcp.info(s.handle()).unwrap().peer_window, 500 << 7);
    assert_eq!(s.tcp.info(s.handle()).unwrap().mss, 1448);
}

#[test]
fn active_open_peer_offers_nothing() {
    // No options at all: MSS 536 (RFC 9293 §3.7.1), no scaling (our
    // window is the 16-bit maximum), no timestamps, no SACK.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        +50  < S. 0:0(0) ack 1 win 8000
        +0   > . 1:1(0) ack 1 win 65535 <>
        +10  send 1000
        +0   > . 1:537(536) ack 1 win 65535 <>
        +0   > P. 537:1001(464) ack 1 win 65535 <>
        // Out of order, but SACK was not permitted: a plain duplicate ACK.
        +10  < . 1001:2001(1000) ack 1001
        +0   > . 1001:1001(0) ack 1 win 65535 <>
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().peer_window, 8000);
}

#[test]
fn active_open_window_scale_only_if_both_offer() {
    // The peer scales; so do we.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        +50  < S. 0:0(0) ack 1 win 1000 <mss 1460,wscale 0>
        +0   > . 1:1(0) ack 1 win 32768 <>
        ",
    );
    // We do not offer it: a peer's wscale in the SYN-ACK is ignored
    // (RFC 7323 §2.2), both directions unscaled.
    let mut s = Script::new(TcpConfig {
        window_scaling: false,
        ..TcpConfig::default()
    });
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0>
        +50  < S. 0:0(0) ack 1 win 1000 <mss 1460,wscale 5>
        +0   > . 1:1(0) ack 1 win 65535 <>
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().peer_window, 1000);
}

#[test]
fn active_open_timestamps_only() {
    // Timestamps alone: echoed from then on, 12 bytes off the MSS.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        +50  < S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 9000 ecr 0>
        +0   > . 1:1(0) ack 1 win 65535 <TS val 50 ecr 9000>
        +20  send 2000
        +0   > . 1:1449(1448) ack 1 <TS val 70 ecr 9000>
        +0   > P. 1449:2001(552) ack 1 <TS val 70 ecr 9000>
        +30  < . 1:1(0) ack 2001 <TS val 9030 ecr 70>
        +10  < P. 1:11(10) ack 2001 <TS val 9040 ecr 70>
        +0   > . 2001:2001(0) ack 11 <TS val 110 ecr 9040>
        ",
    );
}

#[test]
fn active_open_sack_only() {
    // SACK alone: SACK blocks, no timestamps, no scaling.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        +50  < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK>
        +0   > . 1:1(0) ack 1 win 65535 <>
        +10  < . 2001:3001(1000) ack 1
        +0   > . 1:1(0) ack 1 <sack 2001:3001>
        ",
    );
}

#[test]
fn passive_open_syn_ack_mirrors_the_syn() {
    // Everything offered: everything answered.
    let mut s = Script::default();
    s.run(
        "
        0    listen
        +10  < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 500 ecr 0,wscale 2>
        +0   > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 10 ecr 500,wscale 3>
        +0   accept none
        +40  < . 1:1(0) ack 1 win 1000 <TS val 540 ecr 10>
        +0   accept
        +0   state ESTABLISHED
        +0   send 10
        +0   > P. 1:11(10) ack 1 win 32768 <TS val 50 ecr 540>
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().peer_window, 4000);
    // Only SACK offered: only SACK (and our MSS) answered.
    s.run(
        "
        +0   peer 50001
        +0   < S 0:0(0) win 65535 <mss 1000,sackOK>
        +0   > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK>
        +0   peer 50002
        +0   < S 0:0(0) win 65535
        +0   > S. 0:0(0) ack 1 win 65535 <mss 1460>
        +0   peer 50003
        +0   < S 0:0(0) win 65535 <wscale 9>
        +0   > S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 3>
        ",
    );
}

#[test]
fn passive_open_with_data_on_the_third_segment() {
    let mut s = Script::default();
    s.run(
        "
        0     listen
        0     < S 0:0(0) win 65535 <mss 1000>
        0     > S. 0:0(0) ack 1 <mss 1460>
        // The ACK completing the handshake carries data: both are taken.
        +10   < P. 1:101(100) ack 1
        +0    > . 1:1(0) ack 101
        +0    accept
        +0    recv 100
        ",
    );
}

#[test]
fn passive_open_lost_syn_ack() {
    // The SYN-ACK is lost: the peer's retransmitted SYN is answered with
    // the SYN-ACK again at once; without it the SYN-ACK is retransmitted
    // on the 1 s initial RTO.
    let mut s = Script::default();
    s.run(
        "
        0     listen
        0     < S 0:0(0) win 65535 <mss 1000>
        0     > S. 0:0(0) ack 1 <mss 1460>
        1000  > S. 0:0(0) ack 1 <mss 1460>
        +500  < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1 <mss 1460>
        +10   < . 1:1(0) ack 1
        +0    accept
        +0    state ESTABLISHED
        ",
    );
}

#[test]
fn unacceptable_segments_in_syn_received() {
    let mut s = Script::default();
    s.run(
        "
        0     listen
        0     < S 0:0(0) win 65535 <mss 1000>
        0     > S. 0:0(0) ack 1 <mss 1460>
        // RFC 9293 §3.10.7.4, SYN-RECEIVED: an unacceptable ACK gets
        // <SEQ=SEG.ACK><CTL=RST>, and the half-open connection stays.
        +10   < . 1:1(0) ack 77
        +0    > R 77:77(0) win 0
        // A segment outside the window gets an ACK, as in any state.
        +0    < P. 300000:300100(100) ack 1
        +0    > . 1:1(0) ack 1
        +10   < . 1:1(0) ack 1
        +0    accept
        ",
    );
}

// ----------------------------------------------------------------------
// SYN retransmission (RFC 6298 §2.1, §5.5; RFC 9293 §3.8.3).

#[test]
fn syn_retransmitted_with_backoff_then_gives_up() {
    // 1 s initial RTO, doubling: SYNs at 0, 1, 3, 7, 15, 31, 63 s, and after
    // syn_retries (6) retransmissions the connect fails at 127 s — as
    // Linux's default tcp_syn_retries = 6.
    let mut s = Script::default();
    s.run(
        "
        0       connect
        0       > S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        1s      > S 0:0(0) <mss 1460,sackOK,TS val 1000 ecr 0,wscale 3>
        3s      > S 0:0(0)
        7s      > S 0:0(0)
        15s     > S 0:0(0)
        31s     > S 0:0(0)
        63s     > S 0:0(0)
        126.9s  state SYN-SENT
        127s    state CLOSED
        +0      error TimedOut
        +100s   > none
        ",
    );
}

#[test]
fn syn_retransmitted_then_answered() {
    // After a lost SYN the RTO is 3 s when data transfer begins (RFC 6298
    // §5.7), the handshake RTT not being measurable (Karn).
    let mut s = Script::default();
    s.run(
        "
        0       connect
        0       > S 0:0(0)
        1s      > S 0:0(0)
        +100    < S. 0:0(0) ack 1 win 65535 <mss 1000>
        +0      > . 1:1(0) ack 1
        +0      send 1000
        +0      > P. 1:1001(1000) ack 1
        +3s     > P. 1:1001(1000) ack 1
        ",
    );
}

// ----------------------------------------------------------------------
// Simultaneous open (RFC 9293 §3.5, figure 8).

#[test]
fn simultaneous_open() {
    let mut s = Script::default();
    s.run(
        "
        0     connect
        0     > S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        // The SYNs cross: we answer with a SYN-ACK that offers only what
        // the peer's SYN offered.
        +10   < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1 win 65535 <mss 1460>
        +0    state SYN-RECEIVED
        // The peer's SYN-ACK completes the handshake (figure 8, line 6).
        +10   < S. 0:0(0) ack 1 win 65535 <mss 1000>
        +0    state ESTABLISHED
        +0    send 10
        +0    > P. 1:11(10) ack 1
        ",
    );
}

// ----------------------------------------------------------------------
// Resets (RFC 9293 §3.10.7.1, §3.10.7.3).

#[test]
fn closed_port_answers_with_rst() {
    let mut s = Script::default();
    s.run(
        "
        0    local 9
        // With an ACK: <SEQ=SEG.ACK><CTL=RST>.
        0    < . 0:0(0) ack 5000
        +0   > R 5000:5000(0) win 0 <>
        +0   < P. 0:100(100) ack 7
        +0   > R 7:7(0) win 0 <>
        // Without: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN and FIN
        // counting in the length.
        +0   < S 0:0(0)
        +0   > R. 0:0(0) ack 1 win 0 <>
        +0   < P 0:100(100)
        +0   > R. 0:0(0) ack 100 win 0 <>
        +0   < SF 0:0(0)
        +0   > R. 0:0(0) ack 2 win 0 <>
        // A RST is never answered.
        +0   < R 0:0(0)
        +0   < R. 0:0(0) ack 1
        +1s  > none
        ",
    );
    let st = s.tcp.stats();
    assert_eq!((st.rx_no_socket, st.rst_sent), (7, 5));
}

#[test]
fn rst_in_syn_sent() {
    // An acceptable ACK with RST: refused.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0)
        // RST without ACK, or with an unacceptable ACK: ignored.
        +10  < R 0:0(0)
        +0   < R. 0:0(0) ack 5
        +0   state SYN-SENT
        // An unacceptable ACK without RST, SYN-ACK or not: answered with
        // <SEQ=SEG.ACK><CTL=RST>.
        +0   < . 0:0(0) ack 5
        +0   > R 5:5(0)
        +0   < S. 0:0(0) ack 5 win 65535
        +0   > R 5:5(0)
        +0   state SYN-SENT
        +10  < R. 0:0(0) ack 1
        +0   state CLOSED
        +0   error ConnectionRefused
        +10s > none
        ",
    );
}

/// A host's "port unreachable" quoting our SYN ends the attempt (RFC 1122
/// §4.2.3.9 lets a hard error abort it), and the connection goes on the
/// event list at once, so a runtime wakes the task that waits on connect
/// now rather than at the next SYN retry.
#[test]
fn port_unreachable_in_syn_sent_refuses_and_signals_at_once() {
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0)
        +0   event no
        // Quoting a sequence number not in flight: ignored.
        +10  icmp portunreach 7
        +0   state SYN-SENT
        +0   event no
        +0   icmp portunreach 0
        +0   state CLOSED
        +0   error ConnectionRefused
        +0   event yes
        ",
    );
}

// ----------------------------------------------------------------------
// RFC 5961: blind in-window attacks.

#[test]
fn rst_in_window_gets_challenge_ack_exact_rst_resets() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        // In the window but not at RCV.NXT: a challenge ACK (§3.2).
        +10  < R 500:500(0)
        +0   > . 1:1(0) ack 1
        +0   state ESTABLISHED
        +0   < R. 64000:64000(0) ack 1
        +0   > . 1:1(0) ack 1
        // Outside the window: ignored.
        +0   < R 70000:70000(0)
        +0   < R -5:-5(0)
        +0   state ESTABLISHED
        // Exactly RCV.NXT: reset.
        +10  < R 1:1(0)
        +0   state CLOSED
        +0   error ConnectionReset
        +1s  > none
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.challenge_acks, 2);
}

#[test]
fn syn_in_established_gets_challenge_ack() {
    // RFC 5961 §4.2: whatever its sequence number.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  < S 1000:1000(0) win 1000
        +0   > . 1:1(0) ack 1
        +0   < S 900000:900000(0) win 1000
        +0   > . 1:1(0) ack 1
        +0   < S. 0:0(0) ack 1 win 65535 <mss 1000>
        +0   > . 1:1(0) ack 1
        +0   state ESTABLISHED
        ",
    );
}

#[test]
fn unacceptable_acks() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  send 1000
        +0   > P. 1:1001(1000) ack 1
        // It acknowledges data not yet sent: ACK and drop, data included
        // (RFC 9293 §3.10.7.4; RFC 5961 §5.2).
        +10  < P. 1:101(100) ack 5000
        +0   > . 1001:1001(0) ack 1
        // Too old (below SND.UNA - MAX.SND.WND): challenge ACK, dropped.
        +0   < . 1:101(100) ack -70000
        +0   > . 1001:1001(0) ack 1
        // Old but within MAX.SND.WND: acceptable, the data is taken.
        +0   < P. 1:101(100) ack -60000
        +0   > . 1001:1001(0) ack 101
        +0   recv 100
        ",
    );
}

#[test]
fn challenge_acks_are_rate_limited() {
    // RFC 5961 §7 asks for a limit on challenge ACKs; this stack allows a
    // burst of 10 per connection, refilled at 10 per second.
    let mut s = established(TcpConfig::default());
    let mut text = String::new();
    for _ in 0..10 {
        text += "+0 < R 500:500(0)\n+0 > . 1:1(0) ack 1\n";
    }
    text += "
        // The bucket is empty: RST and SYN alike go unanswered.
        +0   < R 500:500(0)
        +0   < S 500:500(0)
        +99  > none
        // 100 ms later one token is back.
        +1   < R 500:500(0)
        +0   > . 1:1(0) ack 1
        +0   < R 500:500(0)
        +1s  > none
    ";
    s.run(&text);
    let stats = s.tcp.info(s.handle()).unwrap().stats;
    assert_eq!(
        (stats.challenge_acks, stats.challenge_acks_limited),
        (11, 3)
    );
}

// ----------------------------------------------------------------------
// Receiving: delayed ACKs, out of order, SACK (RFC 9293 §3.8.6.3; RFC
// 5681 §4.2; RFC 2018; RFC 2883).

#[test]
fn delayed_ack() {
    let mut s = established(TcpConfig::default());
    after_quickack(&mut s);
    s.run(
        "
        // A lone full segment: ACKed when the 40 ms timer fires.
        +100 < . 16001:17001(1000) ack 1
        +40  > . 1:1(0) ack 17001
        // Every second full segment: at once.
        +100 < . 17001:18001(1000) ack 1
        +5   < . 18001:19001(1000) ack 1
        +0   > . 1:1(0) ack 19001
        // A small pushed segment (end of a message): at once, which breaks
        // the Nagle / delayed ACK stall of request-response exchanges.
        +100 < P. 19001:19101(100) ack 1
        +0   > . 1:1(0) ack 19101
        // A small segment without PSH: delayed.
        +100 < . 19101:19201(100) ack 1
        +40  > . 1:1(0) ack 19201
        ",
    );
}

#[test]
fn delayed_ack_rides_on_data() {
    let mut s = established(TcpConfig::default());
    after_quickack(&mut s);
    s.run(
        "
        +100 < . 16001:17001(1000) ack 1
        // Data sent before the timer carries the ACK; the timer is off.
        +10  send 100
        +0   > P. 1:101(100) ack 17001
        +100 > none
        ",
    );
}

#[test]
fn out_of_order_and_sack() {
    let mut s = established_with(TcpConfig::default(), "<mss 1000,sackOK>");
    after_quickack(&mut s);
    s.run(
        "
        // A hole: duplicate ACK at once, with the block (RFC 5681 §4.2).
        +100 < . 17001:18001(1000) ack 1
        +0   > . 1:1(0) ack 16001 <sack 17001:18001>
        // Another block: the newest first (RFC 2018 §4).
        +0   < . 19001:20001(1000) ack 1
        +0   > . 1:1(0) ack 16001 <sack 19001:20001 17001:18001>
        // The first hole filled: ACK at once.
        +10  < . 16001:17001(1000) ack 1
        +0   > . 1:1(0) ack 18001 <sack 19001:20001>
        +10  < . 18001:19001(1000) ack 1
        +0   > . 1:1(0) ack 20001 <>
        // A duplicate: D-SACK (RFC 2883 §4) at once.
        +10  < . 18001:19001(1000) ack 1
        +0   > . 1:1(0) ack 20001 <sack 18001:19001>
        // Partly old: D-SACK of the old part, the rest taken (and put in
        // its place: `recv` checks every byte).
        +10  < . 19501:20501(1000) ack 1
        +0   > . 1:1(0) ack 20501 <sack 19501:20001>
        +10  < . 20001:22001(2000) ack 1
        +0   > . 1:1(0) ack 22001 <sack 20001:20501>
        +0   recv 22000
        ",
    );
}

#[test]
fn out_of_order_without_sack_is_plain_dup_ack() {
    let mut s = established(TcpConfig::default());
    after_quickack(&mut s);
    s.run(
        "
        +100 < . 17001:18001(1000) ack 1
        +0   > . 1:1(0) ack 16001 <>
        +0   < . 18001:19001(1000) ack 1
        +0   > . 1:1(0) ack 16001 <>
        +0   < . 16001:17001(1000) ack 1
        +0   > . 1:1(0) ack 19001 <>
        +0   < . 18001:19001(1000) ack 1
        +0   > . 1:1(0) ack 19001 <>
        ",
    );
}

#[test]
fn reading_does_not_send_useless_window_updates() {
    // The peer does not scale, so the most we can advertise is 65535; our
    // 256 KiB buffer is far larger. Reading cannot move the advertised
    // edge, so it must not send an ACK: to the sender such an ACK is a
    // duplicate ACK, and three of them a spurious fast retransmit.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  < P. 1:1001(1000) ack 1
        +0   > . 1:1(0) ack 1001 win 65535
        +10  recv 300
        +0   recv 300
        +0   recv 300
        +0   recv 100
        +1s  > none
        ",
    );
}

// ----------------------------------------------------------------------
// Retransmission timeout (RFC 6298).

#[test]
fn retransmission_timeout_backoff_and_karn() {
    let mut s = established(newreno());
    s.run(
        "
        // A sample of 100 ms: SRTT 100, RTTVAR 37.5, RTO 250.
        +100 send 1000
        +0   > P. 1:1001(1000) ack 1
        +100 < . 1:1(0) ack 1001
        // Lost: retransmitted after 250 ms, then 500 ms later.
        +100 send 1000
        +0   > P. 1001:2001(1000) ack 1
        +250 > P. 1001:2001(1000) ack 1
        +500 > P. 1001:2001(1000) ack 1
        // The ACK of a retransmission is ambiguous: no sample, and the
        // backed-off RTO (1000 ms) stays until a valid sample (Karn's
        // algorithm, RFC 6298 §3 and the note after §5.7; Linux too).
        +50  < . 1:1(0) ack 2001
        +10  send 1000
        +0   > P. 2001:3001(1000) ack 1
        +1000 > P. 2001:3001(1000) ack 1
        +10  < . 1:1(0) ack 3001
        // A valid sample (100 ms) collapses it: RTTVAR 28.125, RTO 212.5.
        +10  send 1000
        +0   > P. 3001:4001(1000) ack 1
        +100 < . 1:1(0) ack 4001
        +0   send 1000
        +0   > P. 4001:5001(1000) ack 1
        +212.5 > P. 4001:5001(1000) ack 1
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.srtt, Some(Duration::from_millis(100)));
    assert_eq!(info.stats.timeouts, 4);
}

#[test]
fn timestamps_measure_rtt_even_across_retransmissions() {
    // With timestamps the ACK of a retransmission echoes the
    // retransmission's TSval: an unambiguous sample (RFC 7323 §4.1), which
    // collapses the backoff at once.
    let mut s = established_with(newreno(), "<mss 1012,TS val 700 ecr 0>");
    s.run(
        "
        +100 send 1000
        +0   > P. 1:1001(1000) ack 1 <TS val 200 ecr 700>
        +300 > P. 1:1001(1000) ack 1 <TS val 500 ecr 700>
        +50  < . 1:1(0) ack 1001 <TS val 800 ecr 500>
        // Sample 50 ms: SRTT 50 + (50 - 100)/8 = 93.75, RTTVAR 50 -> 50,
        // RTO 293.75 ms, not the backed-off 600.
        +10  send 1000
        +0   > P. 1001:2001(1000) ack 1 <TS val 560 ecr 800>
        +293.75 > P. 1001:2001(1000) ack 1 <TS val 853 ecr 800>
        ",
    );
}

#[test]
fn retransmission_timeout_resends_everything_outstanding() {
    // Go-back-N after a timeout, one segment (the loss window) first,
    // then slow start (RFC 5681 §3.1, RFC 6298 §5.4).
    let mut s = established(newreno());
    s.run(THREE_SENT);
    s.run(
        "
        +300 > . 1:1001(1000) ack 1
        +10  < . 1:1(0) ack 1001
        +0   > . 1001:2001(1000) ack 1
        +0   > P. 2001:3001(1000) ack 1
        +10  < . 1:1(0) ack 3001
        +1s  > none
        ",
    );
}

#[test]
fn a_timeout_with_sack_resends_only_what_was_not_sacked() {
    // RFC 8985 §6.3, as Linux: after a timeout, what the peer SACKed stays
    // SACKed; slow start from one segment resends the holes only.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +10  < . 1:1(0) ack 1001 <sack 3001:5001 6001:7001>
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        +0   > . 5001:6001(1000) ack 1
        // The three retransmissions and the loss probe are lost.
        +177.5 > P. 7001:8001(1000) ack 1
        +328.75 > . 1001:2001(1000) ack 1
        +10  < . 1:1(0) ack 2001 <sack 3001:5001 6001:7001>
        +0   > . 2001:3001(1000) ack 1
        +0   > . 5001:6001(1000) ack 1
        +10  < . 1:1(0) ack 3001 <sack 5001:7001>
        +0   > P. 7001:8001(1000) ack 1
        +10  < . 1:1(0) ack 8001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.timeouts, 1);
    assert_eq!(info.stats.sack_reneging, 0);
}

#[test]
fn a_timeout_on_sacked_data_is_reneging_and_resends_everything() {
    // The peer SACKed the segment at SND.UNA without acknowledging it,
    // then went silent: it may have dropped what it SACKed (RFC 2018
    // §8), so go-back-N sends everything again.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(THREE_SENT);
    s.run(
        "
        +10  < . 1:1(0) ack 1 <sack 1:1001>
        +0   < . 1:1(0) ack 1 <sack 1:2001>
        +0   < . 1:1(0) ack 1 <sack 1:3001>
        // The loss probe, then the timeout.
        +190 > P. 2001:3001(1000) ack 1
        +300 > . 1:1001(1000) ack 1
        +10  < . 1:1(0) ack 1001
        +0   > . 1001:2001(1000) ack 1
        +0   > P. 2001:3001(1000) ack 1
        +10  < . 1:1(0) ack 3001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.sack_reneging, 1);
}

#[test]
fn pacing_spreads_the_window_over_the_round_trip() {
    // SRTT 100 ms from the handshake, an initial window of ten 1000-octet
    // segments: in slow start the rate is twice the window per SRTT,
    // 200,000 octets/s, a segment every 5 ms after a burst of two.
    let mut s = established_with(
        TcpConfig {
            pacing: true,
            ..newreno()
        },
        "<mss 1000>",
    );
    s.run(
        "
        +100 send 6000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +5   > . 2001:3001(1000) ack 1
        +5   > . 3001:4001(1000) ack 1
        +5   > . 4001:5001(1000) ack 1
        +5   > P. 5001:6001(1000) ack 1
        // ACKs are never held back.
        +1   < . 1:101(100) ack 6001
        +0   > . 6001:6001(0) ack 101
        ",
    );
    // Without pacing, the same window leaves at once.
    let mut s = established_with(newreno(), "<mss 1000>");
    s.run(
        "
        +100 send 6000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        +0   > . 3001:4001(1000) ack 1
        +0   > . 4001:5001(1000) ack 1
        +0   > P. 5001:6001(1000) ack 1
        ",
    );
}

/// A connection over a 1 ms path with SACK: SRTT 1 ms, so the loss
/// probe's timeout (2 SRTT) is far shorter than the RTO (200 ms at least).
fn short_path() -> Script {
    sack_path(1)
}

/// A NewReno connection with SACK whose SYN-ACK came `rtt_ms` after the
/// SYN (its first RTT sample).
fn sack_path(rtt_ms: u32) -> Script {
    let mut s = Script::new(newreno());
    s.run(&format!(
        "
        0    connect
        0    > S 0:0(0)
        +{rtt_ms} < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK>
        +0   > . 1:1(0) ack 1
        "
    ));
    s
}

/// 12000 octets to send; the initial window (ten 1000-octet segments)
/// goes at once, and two segments wait.
fn ten_of_twelve_sent(s: &mut Script) {
    let mut text = String::from("+1 send 12000\n");
    for i in 0..10 {
        let a = 1 + 1000 * i;
        text += &format!("+0 > . {a}:{}(1000) ack 1\n", a + 1000);
    }
    s.run(&text);
}

#[test]
fn a_probe_of_new_data_is_followed_by_the_flight_tail_and_repeated_once() {
    // The window (ten segments) is full and no ACK comes back. After 2
    // SRTT the probe sends a new segment and, behind it, the flight's last
    // segment again: a duplicate that any receiver acknowledges at once.
    // Unanswered, it is repeated once at twice the timeout; then only the
    // retransmission timer is left.
    let mut s = short_path();
    ten_of_twelve_sent(&mut s);
    s.run(
        "
        +2   > . 10001:11001(1000) ack 1
        +0   > . 9001:10001(1000) ack 1
        +3.9 > none
        +0.1 > P. 11001:12001(1000) ack 1
        +0   > . 10001:11001(1000) ack 1
        +199.9 > none
        +0.1 > . 1:1001(1000) ack 1
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.loss_probes, 2);
    assert_eq!(info.stats.timeouts, 1);
}

#[test]
fn an_answered_probe_leaves_no_second_one() {
    // The probe's duplicate is acknowledged with a D-SACK: everything had
    // arrived, only the ACKs were lost. Nothing is resent, the window is
    // not reduced, and the next probe waits for the next silence.
    let mut s = short_path();
    ten_of_twelve_sent(&mut s);
    let before = s.tcp.info(s.handle()).unwrap();
    s.run(
        "
        +2   > . 10001:11001(1000) ack 1
        +0   > . 9001:10001(1000) ack 1
        +1   < . 1:1(0) ack 11001 <sack 9001:10001>
        +0   > P. 11001:12001(1000) ack 1
        +1   < . 1:1(0) ack 12001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.loss_probes, 1);
    assert_eq!(info.stats.timeouts, 0);
    assert_eq!(info.stats.tlp_recoveries, 0);
    assert!(info.ssthresh >= before.cwnd, "{info:?}");
}

#[test]
fn the_duplicate_a_probe_asked_for_does_not_widen_the_reordering_window() {
    // The path has reordered once (the first segment arrives after the
    // second), so RACK waits a quarter of the minimum RTT before calling a
    // hole lost. A probe then resends the tail and gets the D-SACK it
    // asked for: no sign of reordering, so the wait stays a quarter RTT
    // rather than doubling (as Linux ignores a D-SACK of its probe).
    let mut s = short_path();
    s.run(
        "
        +1   send 2000
        +0   > . 1:1001(1000) ack 1
        +0   > P. 1001:2001(1000) ack 1
        +0.5 < . 1:1(0) ack 1 <sack 1001:2001>
        +0.1 < . 1:1(0) ack 2001
        +1   send 1000
        +0   > P. 2001:3001(1000) ack 1
        +0.5 < . 1:1(0) ack 3001
        +1   send 2000
        +0   > . 3001:4001(1000) ack 1
        +0   > P. 4001:5001(1000) ack 1
        +1.78 > none
        +0.007 > P. 4001:5001(1000) ack 1
        +0.5 < . 1:1(0) ack 5001 <sack 4001:5001>
        +1   send 2000
        +0   > . 5001:6001(1000) ack 1
        +0   > P. 6001:7001(1000) ack 1
        +0.5 < . 1:1(0) ack 5001 <sack 6001:7001>
        +0.124 > none
        +0.001 > . 5001:6001(1000) ack 1
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.loss_probes, 1);
}

#[test]
fn in_recovery_a_lone_retransmission_is_probed_after_two_round_trips() {
    // Of four segments the second and the last are lost. The repair of the
    // second reveals the last lost too, and its retransmission is all that
    // is in flight. A receiver takes it in order and may hold its ACK for
    // its delayed-ACK timer; outside recovery the probe would wait for
    // that (2 SRTT + 200 ms), here it goes after 2 SRTT, as a duplicate.
    let mut s = short_path();
    s.run(
        "
        +1   send 4000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        +0   > P. 3001:4001(1000) ack 1
        +1   < . 1:1(0) ack 1001 <sack 2001:3001>
        +0.25 > . 1001:2001(1000) ack 1
        +1   < . 1:1(0) ack 3001
        +0   > P. 3001:4001(1000) ack 1
        +1.9 > none
        +0.1 > P. 3001:4001(1000) ack 1
        +1   < . 1:1(0) ack 4001 <sack 3001:4001>
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.loss_probes, 1);
    assert_eq!(info.stats.timeouts, 0);
}

#[test]
fn a_loss_the_probe_repaired_reduces_the_window_once() {
    for dsack in [false, true] {
        // Of eight segments, the last is lost and so is the ACK of the
        // seventh: the probe resends the last, and the ACK that follows
        // acknowledges everything.
        let mut s = established_with(TcpConfig::default(), "<mss 1000,sackOK>");
        s.run(EIGHT_SENT);
        s.run(
            "
            +10  < . 1:1(0) ack 6001
            +177.5 > P. 7001:8001(1000) ack 1
            ",
        );
        let before = s.tcp.info(s.handle()).unwrap();
        assert_eq!(before.ssthresh, usize::MAX);
        // The probe is acknowledged; with a D-SACK, the original arrived
        // too and nothing was lost.
        s.run(if dsack {
            "+10  < . 1:1(0) ack 8001 <sack 7001:8001>"
        } else {
            "+10  < . 1:1(0) ack 8001"
        });
        // The next ACK beyond it settles it (RFC 8985 §7.4). It
        // acknowledges all six segments sent since: the reduction is from
        // the window in use before it (CUBIC: 0.7 of 6000), not from the
        // nothing left after it.
        s.run(
            "
            +0   send 6000
            +0   > . 8001:9001(1000) ack 1
            +0   > . 9001:10001(1000) ack 1
            +0   > . 10001:11001(1000) ack 1
            +0   > . 11001:12001(1000) ack 1
            +0   > . 12001:13001(1000) ack 1
            +0   > P. 13001:14001(1000) ack 1
            +10  < . 1:1(0) ack 14001
            ",
        );
        let after = s.tcp.info(s.handle()).unwrap();
        if dsack {
            assert_eq!(after.stats.tlp_recoveries, 0);
            assert_eq!(after.ssthresh, usize::MAX);
        } else {
            assert_eq!(after.stats.tlp_recoveries, 1);
            assert!(after.ssthresh < before.cwnd, "{after:?}");
            assert_eq!(after.ssthresh, 4200, "{after:?}");
        }
    }
}

#[test]
fn a_timeout_that_the_delayed_flight_proves_spurious_is_undone() {
    // F-RTO (RFC 5682, SACK-enhanced, as Linux): the path stalls for
    // longer than the RTO, then the whole flight is acknowledged. The
    // ACK delivers data sent once, before the timeout: it was never lost,
    // and the timeout's reduction is undone.
    for sack in [true, false] {
        let options = if sack {
            "<mss 1000,sackOK>"
        } else {
            "<mss 1000>"
        };
        let mut s = established_with(newreno(), options);
        s.run(EIGHT_SENT);
        let before = s.tcp.info(s.handle()).unwrap();
        s.run(if sack {
            // The loss probe, then the timeout.
            "
            +200 > P. 7001:8001(1000) ack 1
            +300 > . 1:1001(1000) ack 1
            "
        } else {
            "
            +300 > . 1:1001(1000) ack 1
            "
        });
        assert!(s.tcp.info(s.handle()).unwrap().cwnd < before.cwnd);
        s.run("+10 < . 1:1(0) ack 8001");
        let after = s.tcp.info(s.handle()).unwrap();
        assert_eq!(after.stats.timeouts, 1);
        if sack {
            assert_eq!(after.stats.spurious_undos, 1);
            assert!(after.cwnd >= before.cwnd, "{after:?}");
            assert_eq!(after.ssthresh, before.ssthresh);
        } else {
            // Without SACK there is no F-RTO here: the reduction stands.
            assert_eq!(after.stats.spurious_undos, 0);
            assert!(after.ssthresh < before.cwnd);
        }
    }
}

#[test]
fn a_lost_retransmission_after_a_timeout_reduces_the_rebuilt_window() {
    // After a timeout, slow start resends what RACK marked lost; one of
    // those retransmissions is lost again. That begins a recovery, whose
    // reduction is from the window rebuilt since the timeout, not from the
    // flight outstanding since before it (which would raise the window).
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +200 > P. 7001:8001(1000) ack 1
        +300 > . 1:1001(1000) ack 1
        +10  < . 1:1(0) ack 1001
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        ",
    );
    let before = s.tcp.info(s.handle()).unwrap();
    s.run(
        "
        +10  < . 1:1(0) ack 1001 <sack 2001:3001>
        +0   > . 1001:2001(1000) ack 1
        ",
    );
    let after = s.tcp.info(s.handle()).unwrap();
    assert!(after.in_recovery, "{after:?}");
    assert_eq!(after.stats.lost_retransmits, 1);
    assert!(after.cwnd <= before.cwnd, "{before:?}\n{after:?}");
    assert!(after.ssthresh < before.ssthresh);
}

#[test]
fn a_timeout_resends_the_head_even_if_recent_segments_fill_the_window() {
    // Found by review: after a timeout RACK marks lost only the head and
    // what is overdue; a segment sent just before the timeout stays in
    // flight, and with a window of one segment nothing went: the head
    // waited for a second, backed-off timeout. RFC 6298 §5.4: the
    // earliest segment goes at once.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(
        "
        +100 send 1000
        +0   > P. 1:1001(1000) ack 1
        +10  < . 1:1(0) ack 1001
        +0   send 1000
        +0   > P. 1001:2001(1000) ack 1
        +325 send 1000
        +0   > P. 2001:3001(1000) ack 1
        +3.75 > . 1001:2001(1000) ack 1
        +10  < . 1:1(0) ack 3001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.timeouts, 1);
}

#[test]
fn gives_up_after_max_retransmissions() {
    let mut s = established(TcpConfig {
        max_retransmissions: 3,
        ..TcpConfig::default()
    });
    s.run(
        "
        +100 send 100
        +0   > P. 1:101(100) ack 1
        +300 > P. 1:101(100) ack 1
        +600 > P. 1:101(100) ack 1
        +1200 > P. 1:101(100) ack 1
        +2400 state CLOSED
        +0   error TimedOut
        ",
    );
}

// ----------------------------------------------------------------------
// Fast retransmit and recovery (RFC 5681 §3.2, RFC 6582, RFC 6675).

#[test]
fn fast_retransmit_newreno() {
    // No SACK: NewReno. Segments 2 and 4 of 6 are lost.
    let mut s = established(newreno());
    s.run(
        "
        +100 send 6000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        +0   > . 3001:4001(1000) ack 1
        +0   > . 4001:5001(1000) ack 1
        +0   > P. 5001:6001(1000) ack 1
        +100 < . 1:1(0) ack 1001
        +0   < . 1:1(0) ack 1001
        +0   < . 1:1(0) ack 1001
        // The third duplicate: fast retransmit.
        +0   < . 1:1(0) ack 1001
        +0   > . 1001:2001(1000) ack 1
        +0   < . 1:1(0) ack 1001
        // A partial ACK: the next hole is retransmitted at once (RFC 6582
        // §3.2 step 5).
        +100 < . 1:1(0) ack 3001
        +0   > . 3001:4001(1000) ack 1
        // The full ACK ends recovery.
        +100 < . 1:1(0) ack 6001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert!(!info.in_recovery);
    assert_eq!(info.stats.fast_retransmits, 1);
    assert_eq!(info.stats.timeouts, 0);
    // ssthresh = FlightSize / 2 when the loss was found (RFC 5681 (4)).
    assert_eq!(info.ssthresh, 2500);
}

#[test]
fn sack_recovery() {
    // With SACK: RACK (RFC 8985) and PRR (RFC 6937). Segments 2 and 5 of
    // 8 are lost.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1001
        // Segments sent after the hole are SACKed: within the reordering
        // window (a quarter of the minimum RTT) the hole may still fill.
        +0   < . 1:1(0) ack 1001 <sack 2001:3001>
        +0   < . 1:1(0) ack 1001 <sack 2001:4001>
        // Three segments SACKed: no reordering window (RFC 8985 §6.2 step
        // 4). Both holes were sent before the newest SACKed segment:
        // lost. PRR lets one segment out per segment delivered (pipe,
        // 3000, is below ssthresh, 3500), plus one.
        +0   < . 1:1(0) ack 1001 <sack 5001:6001 2001:4001>
        +0   > . 1001:2001(1000) ack 1
        +0   < . 1:1(0) ack 1001 <sack 5001:7001 2001:4001>
        +0   > . 4001:5001(1000) ack 1
        // Nothing else is lost, and nothing is new.
        +0   < . 1:1(0) ack 1001 <sack 5001:8001 2001:4001>
        +100 < . 1:1(0) ack 4001 <sack 5001:8001>
        +0   < . 1:1(0) ack 8001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert!(!info.in_recovery);
    assert_eq!(info.stats.fast_retransmits, 1);
    assert_eq!(info.stats.retransmits, 2);
    assert_eq!(info.stats.timeouts, 0);
}

#[test]
fn a_d_sack_for_every_retransmission_undoes_the_reduction() {
    // Segment 2 of 8 is late, not lost: three segments SACKed above it
    // start recovery and it is retransmitted. Then the original arrives,
    // and the retransmission after it: the peer reports the duplicate
    // with a D-SACK (RFC 2883). Every retransmission of the episode came
    // back twice, so the reduction was spurious and is undone (RFC 3708):
    // the window and ssthresh are what they were before it.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1001
        ",
    );
    let before = s.tcp.info(s.handle()).unwrap();
    s.run(
        "
        +0   < . 1:1(0) ack 1001 <sack 2001:3001>
        +0   < . 1:1(0) ack 1001 <sack 2001:4001>
        +0   < . 1:1(0) ack 1001 <sack 2001:5001>
        +0   > . 1001:2001(1000) ack 1
        ",
    );
    let during = s.tcp.info(s.handle()).unwrap();
    assert!(during.in_recovery);
    assert!(during.ssthresh < before.cwnd, "{during:?}");
    s.run(
        "
        +1   < . 1:1(0) ack 8001
        +100 < . 1:1(0) ack 8001 <sack 1001:2001>
        +1s  > none
        ",
    );
    let after = s.tcp.info(s.handle()).unwrap();
    assert_eq!(after.stats.spurious_undos, 1);
    assert!(after.cwnd >= before.cwnd, "{before:?}\n{after:?}");
    assert_eq!(after.ssthresh, before.ssthresh);
}

#[test]
fn an_ack_that_echoes_the_original_undoes_the_reduction() {
    // Eifel (RFC 3522), without SACK: segment 2 of 8 is late, not lost;
    // three duplicate ACKs start recovery and it is sent again at 300 ms.
    // The ACK that covers the retransmission echoes 200, the timestamp of
    // the original: the original arrived, the reduction was spurious and
    // is undone. Echoing 300, the retransmission, it stands.
    for (echo, undone) in [(200, true), (300, false)] {
        let mut s = Script::new(TcpConfig {
            sack: false,
            ..newreno()
        });
        s.run(
            "
            0    connect
            0    > S 0:0(0)
            +100 < S. 0:0(0) ack 1 win 65535 <mss 1012,TS val 700 ecr 0>
            +0   > . 1:1(0) ack 1
            ",
        );
        s.run(EIGHT_SENT);
        s.run("+100 < . 1:1(0) ack 1001 <TS val 800 ecr 200>");
        let before = s.tcp.info(s.handle()).unwrap();
        s.run(
            "
            +0   < . 1:1(0) ack 1001 <TS val 800 ecr 200>
            +0   < . 1:1(0) ack 1001 <TS val 800 ecr 200>
            +0   < . 1:1(0) ack 1001 <TS val 800 ecr 200>
            +0   > . 1001:2001(1000) ack 1 <TS val 300 ecr 800>
            ",
        );
        assert!(s.tcp.info(s.handle()).unwrap().ssthresh < before.cwnd);
        s.run(&format!("+1 < . 1:1(0) ack 8001 <TS val 801 ecr {echo}>"));
        let after = s.tcp.info(s.handle()).unwrap();
        if undone {
            assert_eq!(after.stats.spurious_undos, 1);
            assert!(after.cwnd >= before.cwnd, "{before:?}\n{after:?}");
            assert_eq!(after.ssthresh, before.ssthresh);
        } else {
            assert_eq!(after.stats.spurious_undos, 0);
            assert!(after.ssthresh < before.cwnd, "{after:?}");
        }
    }
}

#[test]
fn a_d_sack_for_one_of_two_retransmissions_undoes_nothing() {
    // Segments 2 and 5 of 8 are retransmitted; only segment 2's comes back
    // as a D-SACK. Segment 5 may well have been lost: no undo.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1001
        +0   < . 1:1(0) ack 1001 <sack 2001:3001>
        +0   < . 1:1(0) ack 1001 <sack 2001:4001>
        +0   < . 1:1(0) ack 1001 <sack 5001:6001 2001:4001>
        +0   > . 1001:2001(1000) ack 1
        +0   < . 1:1(0) ack 1001 <sack 5001:7001 2001:4001>
        +0   > . 4001:5001(1000) ack 1
        +1   < . 1:1(0) ack 4001 <sack 5001:7001>
        +0   < . 1:1(0) ack 4001 <sack 1001:2001 5001:7001>
        +100 < . 1:1(0) ack 8001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.dsacks_received, 1);
    assert_eq!(info.stats.spurious_undos, 0);
    // Half the 7000 octets outstanding when the loss was found.
    assert_eq!(info.ssthresh, 3500);
}

#[test]
fn lost_retransmission_is_sent_again_without_a_timeout() {
    // Segments 2 and 5 of 8 are lost; so is the first retransmission of
    // segment 2. When the later retransmission of segment 5 is SACKed, the
    // earlier one cannot still be on its way (RFC 8985 §6.2, no reordering
    // seen): segment 2 goes again at once, not after an RTO.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1001
        +0   < . 1:1(0) ack 1001 <sack 2001:3001>
        +0   < . 1:1(0) ack 1001 <sack 2001:4001>
        +0   < . 1:1(0) ack 1001 <sack 5001:6001 2001:4001>
        +0   > . 1001:2001(1000) ack 1
        +0   < . 1:1(0) ack 1001 <sack 5001:7001 2001:4001>
        +0   > . 4001:5001(1000) ack 1
        // The retransmission of 4001 arrives; that of 1001 never will.
        +100 < . 1:1(0) ack 1001 <sack 2001:7001>
        +0   > . 1001:2001(1000) ack 1
        // So is the last segment, never SACKed although sent before the
        // newest SACKed one. It goes with the next ACK: this one
        // delivered one segment and revealed losses, and PRR lets out
        // no more than it delivered.
        +100 < . 1:1(0) ack 7001
        +0   > P. 7001:8001(1000) ack 1
        +100 < . 1:1(0) ack 8001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.timeouts, 0);
    assert_eq!(info.stats.lost_retransmits, 1);
    assert_eq!(info.stats.fast_retransmits, 1);
}

#[test]
fn one_sack_and_a_reordering_window_start_recovery() {
    // Three segments, the first lost; only one duplicate ACK comes back
    // (the other was lost), short of even early retransmit's threshold of
    // two. The data SACKed above the hole was sent after it: once a
    // reordering window (SRTT / 4 = 25 ms) has passed without the hole
    // filling, it is lost (RFC 8985 §6.2-§6.3), 25 ms after the SACK
    // instead of the tail loss probe at 200 ms or the RTO.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(THREE_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1 <sack 1001:2001>
        +24  > none
        +1   > . 1:1001(1000) ack 1
        +100 < . 1:1(0) ack 3001
        +1s  > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.fast_retransmits, 1);
    assert_eq!(info.stats.timeouts, 0);
}

// ----------------------------------------------------------------------
// Flow control (RFC 9293 §3.8.6).

#[test]
fn zero_window_probes_with_backoff() {
    let mut s = established(rfc6298());
    s.run(
        "
        +100 send 1000
        +0   > P. 1:1001(1000) ack 1
        // SRTT 100 ms, RTO 250 ms: the window closes.
        +100 < . 1:1(0) ack 1001 win 0
        +100 send 2000
        // Probes on the persist timer, one old byte's sequence number
        // (RFC 9293 §3.8.6.1), backing off: 250, 500, 1000 ms.
        +250 > . 1000:1000(0) ack 1
        +10  < . 1:1(0) ack 1001 win 0
        +490 > . 1000:1000(0) ack 1
        +1000 > . 1000:1000(0) ack 1
        // The window opens: sending resumes at once.
        +100 < . 1:1(0) ack 1001 win 5000
        +0   > . 1001:2001(1000) ack 1
        +0   > P. 2001:3001(1000) ack 1
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.window_probes, 3);
}

#[test]
fn small_window_with_nothing_in_flight_is_probed() {
    // The peer's window shrinks to 500 bytes: sender SWS avoidance holds
    // the data back (less than an MSS, less than half the largest window).
    // Nothing is in flight, so if the peer's window update is lost nothing
    // would ever move again: the persist timer probes, and the answer
    // carries the open window. (Found at 20% loss in the simulator.)
    let mut s = established(rfc6298());
    s.run(
        "
        +100 send 1000
        +0   > P. 1:1001(1000) ack 1
        +100 < . 1:1(0) ack 1001 win 500
        +100 send 3000
        +0   > none
        // The peer opened its window; that update was lost.
        +250 > . 1000:1000(0) ack 1
        +10  < . 1:1(0) ack 1001 win 5000
        +0   > . 1001:2001(1000) ack 1
        +0   > . 2001:3001(1000) ack 1
        +0   > P. 3001:4001(1000) ack 1
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.window_probes, 1);
}

#[test]
fn receiver_silly_window_avoidance() {
    // A 4000-byte buffer. RFC 9293 §3.8.6.2.2: the advertised right edge
    // moves only by at least min(buffer/2, MSS) = 1460 bytes.
    let mut s = established(TcpConfig {
        recv_buffer: 4000,
        ..TcpConfig::default()
    });
    s.run(
        "
        +10  < . 1:1001(1000) ack 1
        +0   > . 1:1(0) ack 1001 win 3000
        +0   < . 1001:2001(1000) ack 1
        +0   > . 1:1(0) ack 2001 win 2000
        +0   < . 2001:3001(1000) ack 1
        +0   > . 1:1(0) ack 3001 win 1000
        +0   < . 3001:4001(1000) ack 1
        +0   > . 1:1(0) ack 4001 win 0
        // The peer's zero-window probes, with or without a byte, are
        // answered with the closed window; the byte is not taken.
        +10  < . 4000:4000(0) ack 1
        +0   > . 1:1(0) ack 4001 win 0
        +10  < . 4001:4002(1) ack 1
        +0   > . 1:1(0) ack 4001 win 0
        // Reading 1000 bytes would open the window by less than 1460:
        // no window update.
        +10  recv 1000
        +100 > none
        // 500 more make 1500: the update goes out.
        +0   recv 500
        +0   > . 1:1(0) ack 4001 win 1500
        +0   recv 2500
        +0   > . 1:1(0) ack 4001 win 4000
        ",
    );
}

#[test]
fn sender_honours_the_peer_window() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  < . 1:1(0) ack 1 win 2500
        +0   send 5000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        // 500 bytes of window left: less than an MSS and less than half
        // the largest window the peer offered, so the sender waits
        // (sender SWS avoidance, RFC 9293 §3.8.6.2.1).
        +100 < . 1:1(0) ack 2001 win 3000
        +0   > . 2001:3001(1000) ack 1
        +0   > . 3001:4001(1000) ack 1
        +0   > P. 4001:5001(1000) ack 1
        ",
    );
}

// ----------------------------------------------------------------------
// Nagle (RFC 9293 §3.7.4, Minshall's variant).

#[test]
fn nagle_holds_a_second_small_segment() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  send 100
        +0   > P. 1:101(100) ack 1
        +0   send 100
        +0   send 100
        +100 < . 1:1(0) ack 101
        +0   > P. 101:301(200) ack 1
        // A full segment goes even while a small one is out; the small
        // rest waits.
        +0   send 1500
        +0   > . 301:1301(1000) ack 1
        +100 < . 1:1(0) ack 1301
        +0   > P. 1301:1801(500) ack 1
        ",
    );
}

#[test]
fn nodelay_sends_small_segments_at_once() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  nodelay
        +0   send 100
        +0   > P. 1:101(100) ack 1
        +0   send 100
        +0   > P. 101:201(100) ack 1
        ",
    );
}

// ----------------------------------------------------------------------
// Closing (RFC 9293 §3.6, §3.10.4, §3.10.7.4 eighth).

#[test]
fn active_close() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        +0   state FIN-WAIT-1
        +10  < . 1:1(0) ack 2
        +0   state FIN-WAIT-2
        +10  < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        +0   state TIME-WAIT
        +0   recv eof
        // TIME-WAIT lasts 2·MSL (2 × 30 s).
        +59.999s state TIME-WAIT
        +1   state CLOSED
        +0   error none
        +0   conns 1
        +0   close
        +0   conns 0
        ",
    );
}

#[test]
fn orphan_in_fin_wait_2_is_released_after_the_fin_timeout() {
    // The peer acknowledges our FIN but never sends its own: after close,
    // the connection waits 60 s (Linux's tcp_fin_timeout), not forever.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  close
        +0   > F. 1:1(0) ack 1
        +10  < . 1:1(0) ack 2
        +0   conns 1
        +59.999s conns 1
        +1   conns 0
        ",
    );
}

#[test]
fn orphan_in_a_zero_window_is_reset_after_its_retries() {
    // Sockstress: the peer keeps its window shut and answers every probe.
    // A live connection would probe for as long as it is answered; an
    // orphan gets 8 probes (Linux's tcp_orphan_retries), counted by the
    // persist backoff that only an opening window resets, then is reset
    // and its send buffer freed.
    let mut s = established(rfc6298());
    let mut text = String::from(
        "
        +100 < . 1:1(0) ack 1 win 0
        +0   send 5000
        +0   close
        +0   conns 1
        ",
    );
    for _ in 0..8 {
        text += "*    > . 0:0(0) ack 1
+0   < . 1:1(0) ack 1 win 0
";
    }
    text += "
        *    > R 1:1(0) win 0
        +0   conns 0
        +200s > none
    ";
    s.run(&text);
}

#[test]
fn orphans_beyond_the_cap_are_reset() {
    // Linux's tcp_max_orphans: a connection closed while the cap's worth
    // of orphans are still finishing is reset instead of joining them.
    let limits = TcpLimits {
        max_orphans: 1,
        ..TcpLimits::default()
    };
    let mut s = Script::with_limits(TcpConfig::default(), limits);
    s.run(
        "
        0    listen
        +0   peer 50001
        +0   < S 0:0(0) win 65535 <mss 1000>
        +0   > S. 0:0(0) ack 1 <mss 1460>
        +0   < . 1:1(0) ack 1 win 0
        +0   accept
        +0   peer 50002
        +0   < S 0:0(0) win 65535 <mss 1000>
        +0   > S. 0:0(0) ack 1 <mss 1460>
        +0   < . 1:1(0) ack 1 win 0
        +0   accept
        // The first becomes an orphan (its FIN waits for the window).
        +10  peer 50001
        +0   send 100
        +0   close
        // The second would be a second orphan: reset.
        +0   peer 50002
        +0   send 100
        +0   close
        +0   > R 1:1(0) win 0
        +0   conns 1
        ",
    );
    assert_eq!(s.tcp.stats().orphans_reset, 1);
    assert_eq!(s.tcp.stats().orphans, 1);
}

#[test]
fn a_stale_handle_is_refused_not_taken_for_the_connection_in_its_slot() {
    let mut s = Script::default();
    s.run("0 connect\n0 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>");
    let old = s.handle();
    s.run("+0 abort\n+0 conns 0\n+0 peer 50001\n+0 connect\n+0 > S 0:0(0)");
    let new = s.handle();
    assert_ne!(old, new);
    assert!(s.tcp.state(old).is_err());
    assert!(s.tcp.send(old, b"x").is_err());
    assert!(s.tcp.close(old).is_err());
    assert_eq!(
        s.tcp.state(new),
        Ok(netstrata::transport::tcp::State::SynSent)
    );
    // Listeners too.
    let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 9000);
    let l = s.tcp.listen(any, 4).unwrap();
    s.tcp.close_listener(l).unwrap();
    let l2 = s.tcp.listen(any, 4).unwrap();
    assert!(s.tcp.accept(l).is_err());
    assert_eq!(s.tcp.listener_addr(l), Err(TcpError::InvalidHandle));
    assert_eq!(s.tcp.close_listener(l), Err(TcpError::InvalidHandle));
    assert!(s.tcp.listener_addr(l2).is_ok());
}

#[test]
fn data_after_close_resets() {
    // The application has closed: data that arrives can never be read, so
    // the connection is reset (RFC 1122 §4.2.2.13; Linux's
    // TCPAbortOnData), in FIN-WAIT-2 and in FIN-WAIT-1.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  close
        +0   > F. 1:1(0) ack 1
        +10  < . 1:1(0) ack 2
        +0   conns 1
        +10  < P. 1:101(100) ack 2
        +0   > R 2:2(0) win 0
        +0   conns 0
        ",
    );
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  close
        +0   > F. 1:1(0) ack 1
        +10  < P. 1:101(100) ack 1
        +0   > R 2:2(0) win 0
        +0   conns 0
        ",
    );
}

#[test]
fn data_after_shutdown_is_still_read() {
    // Only the write side is shut: data keeps arriving and is read.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        +10  < . 1:1(0) ack 2
        +10  < P. 1:101(100) ack 2
        +0   > . 2:2(0) ack 101
        +0   recv 100
        +0   state FIN-WAIT-2
        ",
    );
}

#[test]
fn half_closed_connection_waits_in_fin_wait_2() {
    // Only shut down for writing: the application still reads, so there
    // is no timeout.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        +10  < . 1:1(0) ack 2
        +3600s state FIN-WAIT-2
        ",
    );
}

#[test]
fn active_close_with_close_releases_everything() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  close
        +0   > F. 1:1(0) ack 1
        +10  < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        +0   conns 1
        +60s conns 0
        ",
    );
}

#[test]
fn passive_close() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  < F. 1:1(0) ack 1
        +0   > . 1:1(0) ack 2
        +0   state CLOSE-WAIT
        +0   recv eof
        // We may still send.
        +10  send 100
        +0   > P. 1:101(100) ack 2
        +10  shutdown
        +0   > F. 101:101(0) ack 2
        +0   state LAST-ACK
        +10  < . 2:2(0) ack 102
        +0   state CLOSED
        +0   error none
        ",
    );
}

#[test]
fn fin_before_the_data_waits_for_it() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        // The FIN arrives first (reordered): ACKed as out of order, held.
        +10  < F. 1001:1001(0) ack 1
        +0   > . 1:1(0) ack 1
        +0   state ESTABLISHED
        // The data fills the gap; the FIN is taken with it.
        +10  < . 1:1001(1000) ack 1
        +0   > . 1:1(0) ack 1002
        +0   state CLOSE-WAIT
        +0   recv 1000
        +0   recv eof
        ",
    );
}

#[test]
fn close_in_syn_sent() {
    // RFC 9293 §3.10.4: CLOSE in SYN-SENT just deletes the connection.
    let mut s = Script::default();
    s.run(
        "
        0    connect
        0    > S 0:0(0)
        +10  close
        +0   conns 0
        +10s > none
        // A late SYN-ACK finds no connection: RST (§3.10.7.1).
        +0   < S. 0:0(0) ack 1 win 65535
        +0   > R 1:1(0)
        ",
    );
}

#[test]
fn simultaneous_close() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        // The FINs cross.
        +5   < F. 1:1(0) ack 1
        +0   > . 2:2(0) ack 2
        +0   state CLOSING
        +5   < . 2:2(0) ack 2
        +0   state TIME-WAIT
        +60s state CLOSED
        ",
    );
}

#[test]
fn half_close_keeps_receiving() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  send 100
        +0   > P. 1:101(100) ack 1
        // Nagle holds the next small write...
        +0   send 400
        // ...but not once the FIN follows it, and the FIN rides on it.
        +0   shutdown
        +0   > FP. 101:501(400) ack 1
        +10  < . 1:1(0) ack 502
        +0   state FIN-WAIT-2
        +10  < P. 1:1001(1000) ack 502
        +0   > . 502:502(0) ack 1001
        +0   recv 1000
        +10  < F. 1001:1001(0) ack 502
        +0   > . 502:502(0) ack 1002
        +0   state TIME-WAIT
        +0   recv eof
        ",
    );
    assert!(s.tcp.send(s.handle(), b"x").is_err());
}

#[test]
fn fin_retransmitted() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        +300 > F. 1:1(0) ack 1
        +600 > F. 1:1(0) ack 1
        +10  < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        +0   state TIME-WAIT
        ",
    );
}

#[test]
fn retransmitted_fin_in_time_wait_is_acked_and_restarts_the_timer() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        +10  < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        +0   state TIME-WAIT
        // Our ACK was lost; the peer retransmits its FIN.
        +30s < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        // 2·MSL again from here (RFC 9293 §3.10.7.4, TIME-WAIT).
        +59.999s state TIME-WAIT
        +1   state CLOSED
        ",
    );
}

#[test]
fn released_connection_in_time_wait_is_a_compact_record() {
    // Released in TIME-WAIT, the connection gives up its buffers for a
    // record that still does TIME-WAIT's job: it acknowledges the peer's
    // FIN again (restarting 2·MSL), ignores RSTs (RFC 1337), answers
    // stray segments at a limited rate, and goes after 2·MSL.
    let mut s = established_with(TcpConfig::default(), "<mss 1012,TS val 700 ecr 0>");
    s.run(
        "
        +10  close
        +0   > F. 1:1(0) ack 1 <TS val 110 ecr 700>
        +10  < F. 1:1(0) ack 2 <TS val 710 ecr 110>
        +0   > . 2:2(0) ack 2 <TS val 120 ecr 710>
        +0   conns 1
        // Our ACK was lost: the FIN again, 30 s later.
        +30s < F. 1:1(0) ack 2 <TS val 30710 ecr 110>
        +0   > . 2:2(0) ack 2 <TS val 30120 ecr 30710>
        // An exact RST does not end TIME-WAIT.
        +0   < R 2:2(0)
        +0   conns 1
        // A stray old ACK gets an ACK, the next within 500 ms none.
        +1   < . 1:1(0) ack 2 <TS val 30711 ecr 110>
        +0   > . 2:2(0) ack 2 <TS val 30121 ecr 30710>
        +1   < . 1:1(0) ack 2 <TS val 30712 ecr 110>
        // 2·MSL from the FIN again.
        +59.990s conns 1
        +10  conns 0
        +1s  > none
        ",
    );
    let stats = s.tcp.stats();
    assert_eq!(stats.time_wait_rsts_ignored, 1);
    assert_eq!(stats.time_wait_acks_limited, 1);
    assert_eq!(s.tcp.time_wait_count(), 0);
}

#[test]
fn a_newer_syn_reopens_a_tuple_in_time_wait() {
    // RFC 6191: a SYN whose timestamp is newer than TS.Recent may reuse
    // the 4-tuple at once; the new connection's ISN lies above the old
    // connection's sequence space.
    let mut s = Script::default();
    s.run(
        "
        0    listen
        +0   < S 0:0(0) win 65535 <mss 1000,TS val 700 ecr 0>
        +0   > S. 0:0(0) ack 1 <mss 1460,TS val 0 ecr 700>
        +10  < . 1:1(0) ack 1 <TS val 710 ecr 0>
        +0   accept
        +0   close
        +0   > F. 1:1(0) ack 1 <TS val 10 ecr 710>
        +10  < F. 1:1(0) ack 2 <TS val 720 ecr 10>
        +0   > . 2:2(0) ack 2 <TS val 20 ecr 720>
        +0   conns 1
        // An old SYN (timestamp not newer) only gets an ACK.
        +100 < S 5000:5000(0) win 65535 <mss 1000,TS val 600 ecr 0>
        +0   > . 2:2(0) ack 2 <TS val 120 ecr 720>
        // A newer one opens a new connection on the same ports.
        +100 < S 900:900(0) win 65535 <mss 1000,TS val 900 ecr 0>
        +0   > S. 0:0(0) ack 901 <mss 1460,TS val * ecr 900>
        +0   conns 1
        ",
    );
    assert_eq!(s.tcp.stats().time_wait_reused, 1);
}

#[test]
fn a_syn_without_a_listener_does_not_end_time_wait() {
    // A client's TIME-WAIT (it closed first; nothing listens on its port):
    // a SYN from the peer's address, newer than anything of the old
    // connection, is only acknowledged. Only a listener that takes the SYN
    // may end TIME-WAIT early (RFC 6191); else a forged SYN would, and
    // draw a RST to boot.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  close
        +0   > F. 1:1(0) ack 1
        +10  < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        +0   conns 1
        +1s  < S 900000:900000(0) win 65535 <mss 1000>
        +0   > . 2:2(0) ack 2
        +0   conns 1
        +58s conns 1
        +1s  conns 0
        ",
    );
    assert_eq!(s.tcp.stats().time_wait_reused, 0);
}

#[test]
fn rst_in_time_wait_is_ignored() {
    // RFC 1337: TIME-WAIT assassination. A held connection too.
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  shutdown
        +0   > F. 1:1(0) ack 1
        +10  < F. 1:1(0) ack 2
        +0   > . 2:2(0) ack 2
        +0   state TIME-WAIT
        +10  < R 2:2(0)
        +0   state TIME-WAIT
        +0   error none
        +1s  > none
        ",
    );
}

#[test]
fn close_with_unread_data_resets() {
    // RFC 2525 §2.17, as Linux. The RST carries <SEQ=SND.NXT> (RFC 9293
    // §3.10.5; Linux also sets ACK).
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  < P. 1:101(100) ack 1
        +0   > . 1:1(0) ack 101
        +10  close
        +0   > R 1:1(0) win 0
        +0   conns 0
        +10  < . 101:101(0) ack 1
        +0   > R 1:1(0) win 0
        ",
    );
}

#[test]
fn abort_resets() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  send 100
        +0   > P. 1:101(100) ack 1
        +10  abort
        +0   > R 101:101(0) win 0
        +0   conns 0
        +1s  > none
        ",
    );
}

// ----------------------------------------------------------------------
// Path MTU discovery (RFC 1191) against forged ICMP.

#[test]
fn fragmentation_needed_shrinks_segments_to_the_path_mtu() {
    // Segments carry DF; a router's report of 1420 (a tunnel) quoting a
    // segment in flight makes the resent and later segments fit it.
    let mut s = established_with(rfc6298(), "<mss 1460>");
    s.run(
        "
        +10  send 2920
        +0   > . 1:1461(1460) ack 1
        +0   > P. 1461:2921(1460) ack 1
        +0   df on
        +5   icmp fragneeded 1420 1
        +0   > . 1:1381(1380) ack 1
        +0   > . 1381:2761(1380) ack 1
        +0   > P. 2761:2921(160) ack 1
        +0   df on
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!((info.mss, info.stats.pmtu_reductions), (1380, 1));
}

#[test]
fn forged_fragmentation_needed_cannot_shrink_segments_below_512_bytes() {
    // A forger reports an MTU of 68 (RFC 791's minimum): the path MTU
    // stops at 552 (Linux's min_pmtu), with DF off so that a real path
    // that narrow still works, instead of 28-byte segments.
    let mut s = established_with(rfc6298(), "<mss 1460>");
    s.run(
        "
        +10  send 1460
        +0   > P. 1:1461(1460) ack 1
        +5   icmp fragneeded 68 1
        +0   > . 1:513(512) ack 1
        +0   > . 513:1025(512) ack 1
        +0   > P. 1025:1461(436) ack 1
        +0   df off
        // Another one in the same RTT, and one quoting a sequence number
        // not in flight, change nothing.
        +1   icmp fragneeded 68 1
        +0   icmp fragneeded 600 5000
        +100 < . 1:1(0) ack 1461
        +0   > none
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!((info.mss, info.stats.pmtu_reductions), (512, 1));
    assert_eq!(info.stats.pmtu_reports_ignored, 1);
}

#[test]
fn a_byte_by_byte_forger_gets_few_reductions() {
    // One reduction per RTT, and reports rounded down to a table of
    // common path MTUs: stepping down one byte per RTT from 1499 gets a
    // handful of reductions, each one resent flight, not a thousand.
    // A long minimum RTO keeps the flight outstanding (and unrepeated by
    // the timer) for the 20 s of forgeries.
    let config = TcpConfig {
        rtt: RttConfig {
            min_rto: Duration::from_secs(60),
            ..RttConfig::linux()
        },
        ..TcpConfig::default()
    };
    let mut s = established_with(config, "<mss 1460>");
    s.run("+10 send 1460\n+0 > P. 1:1461(1460) ack 1");
    for mtu in (1300..1500).rev() {
        let segs = s.run_and_count_sent(&format!("+100 icmp fragneeded {mtu} 1"));
        assert!(segs <= 2, "{segs} segments resent for one report");
    }
    let info = s.tcp.info(s.handle()).unwrap();
    assert!(info.stats.pmtu_reductions <= 12, "{:?}", info.stats);
    assert_eq!(info.mss, 1300 - 40);
}

#[test]
fn a_path_mtu_drop_during_sack_recovery_resends_the_flight_once() {
    // Regression (fuzzing): going back to SND.UNA for a smaller path MTU
    // while in SACK recovery kept the recovery's pipe estimate, which then
    // never grew: the flight went out again in five-byte segments, without
    // end. Going back ends the recovery, as a timeout does.
    let mut s = established_with(rfc6298(), "<mss 1460,sackOK>");
    s.run(
        "
        +10  send 7300
        +0   > . 1:1461(1460) ack 1
        +0   > . 1461:2921(1460) ack 1
        +0   > . 2921:4381(1460) ack 1
        +0   > . 4381:5841(1460) ack 1
        +0   > P. 5841:7301(1460) ack 1
        +50  < . 1:1(0) ack 1 win 65535 <sack 1461:2921>
        +0   < . 1:1(0) ack 1 win 65535 <sack 1461:4381>
        ",
    );
    // Recovery starts and retransmits.
    let sent = s.run_and_count_sent("+0 < . 1:1(0) ack 1 win 65535 <sack 1461:5841>");
    assert!(sent >= 1);
    assert!(s.tcp.info(s.handle()).unwrap().in_recovery);
    let sent = s.run_and_count_sent("+1 icmp fragneeded 1300 1");
    // 7300 bytes in 1260-byte segments: six, not thousands; and the
    // recovery whose accounting no longer holds is over (the fuzzer's
    // reproducer, fuzz/regressions/tcp_connection/, is the flood itself).
    assert!(sent <= 8, "{sent} segments resent");
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.mss, 1260);
    assert!(!info.in_recovery);
}

// ----------------------------------------------------------------------
// PAWS (RFC 7323 §5).

#[test]
fn paws_drops_old_timestamps() {
    let mut s = established_with(TcpConfig::default(), "<mss 1012,TS val 700 ecr 0>");
    s.run(
        "
        +10  < P. 1:101(100) ack 1 <TS val 800 ecr 100>
        +0   > . 1:1(0) ack 101 <TS val 110 ecr 800>
        // An older timestamp: dropped, with an ACK (§5.3 R1).
        +10  < P. 101:201(100) ack 1 <TS val 750 ecr 100>
        +0   > . 1:1(0) ack 101 <TS val 120 ecr 800>
        +10  < P. 101:201(100) ack 1 <TS val 810 ecr 100>
        +0   > . 1:1(0) ack 201 <TS val 130 ecr 810>
        +0   recv 200
        // A RST is not subject to PAWS.
        +10  < R 201:201(0) <TS val 1 ecr 0>
        +0   state CLOSED
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.rejected, 1);
}

#[test]
fn a_late_original_failing_paws_is_reported_in_a_d_sack() {
    // The retransmission arrived first; the original, reordered behind
    // it, carries an older timestamp and fails PAWS. It is still a
    // duplicate the sender must hear of, as a D-SACK (RFC 2883 §4), or it
    // never learns that its retransmission was needless (Linux does the
    // same in `tcp_send_dupack`).
    let mut s = established_with(TcpConfig::default(), "<mss 1012,sackOK,TS val 700 ecr 0>");
    s.run(
        "
        +10  < P. 1:101(100) ack 1 <TS val 800 ecr 100>
        +0   > . 1:1(0) ack 101 <TS val 110 ecr 800>
        +10  < P. 101:201(100) ack 1 <TS val 820 ecr 100>
        +0   > . 1:1(0) ack 201 <TS val 120 ecr 820>
        +1   < P. 101:201(100) ack 1 <TS val 810 ecr 100>
        +0   > . 1:1(0) ack 201 <TS val 121 ecr 820,sack 101:201>
        +0   recv 200
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.rejected, 1);
}

#[test]
fn a_reordered_duplicate_ack_passes_paws() {
    // Two duplicate ACKs swapped on the way: the older one fails PAWS by
    // a millisecond. Dropping it would lose its count (and a SACK block);
    // a pure duplicate ACK that changes no window and is at most an RTO
    // old is taken, as Linux's `tcp_disordered_ack` takes it. An older
    // one, or one that would move the window, is still dropped.
    let mut s = established_with(TcpConfig::default(), "<mss 1012,sackOK,TS val 700 ecr 0>");
    s.run(THREE_SENT);
    s.run(
        "
        +10  < . 1:1(0) ack 1 <TS val 801 ecr 200,sack 2001:3001>
        +0   < . 1:1(0) ack 1 <TS val 800 ecr 200,sack 1001:2001>
        ",
    );
    let stats = s.tcp.info(s.handle()).unwrap().stats;
    assert_eq!((stats.rejected, stats.dup_acks), (0, 2));
    s.run(
        "
        +0   < . 1:1(0) ack 1 <TS val 1 ecr 200,sack 1001:2001>
        +0   > . 3001:3001(0) ack 1 <TS val 210 ecr 801>
        +0   < . 1:1(0) ack 1 win 1000 <TS val 800 ecr 200,sack 1001:2001>
        ",
    );
    let stats = s.tcp.info(s.handle()).unwrap().stats;
    assert_eq!((stats.rejected, stats.dup_acks), (2, 2));
}

#[test]
fn ts_recent_moves_only_for_an_acceptable_ack() {
    // RFC 7323 §4.3, in Linux's order: TS.Recent is taken from a segment
    // only once its ACK is found acceptable. A blind attacker's in-window
    // segment with a far-future timestamp and a bad ACK must not become
    // the reference PAWS judges the real peer's segments by.
    let mut s = established_with(TcpConfig::default(), "<mss 1012,TS val 700 ecr 0>");
    s.run(
        "
        +10  < P. 1:101(100) ack 1 <TS val 800 ecr 100>
        +0   > . 1:1(0) ack 101 <TS val 110 ecr 800>
        +0   recv 100
        // In the window, but acknowledging data never sent: ACK, drop.
        +10  < . 101:101(0) ack 90000 <TS val 2000000000 ecr 100>
        +0   > . 1:1(0) ack 101 <TS val 120 ecr 800>
        // The real peer goes on with its own clock and is heard.
        +10  < P. 101:201(100) ack 1 <TS val 820 ecr 110>
        +0   > . 1:1(0) ack 201 <TS val 130 ecr 820>
        +0   recv 100
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.rejected, 0);
}

#[test]
fn acks_for_unacceptable_segments_are_rate_limited() {
    // Linux's tcp_invalid_ratelimit: one ACK per 500 ms for unacceptable
    // segments without data (out of window, failing PAWS, acknowledging
    // unsent data); data is always answered.
    let mut s = established_with(TcpConfig::default(), "<mss 1012,TS val 700 ecr 0>");
    s.run(
        "
        +10  < . 900000:900000(0) ack 1 <TS val 710 ecr 100>
        +0   > . 1:1(0) ack 1 <TS val 110 ecr 700>
        +10  < . 900000:900000(0) ack 1 <TS val 710 ecr 100>
        +0   < . 1:1(0) ack 5000 <TS val 710 ecr 100>
        // Older than an RTO: not a reordered duplicate ACK.
        +0   < . 1:1(0) ack 1 <TS val 4000000000 ecr 100>
        +100 > none
        // Data out of the window is answered at once (it may be a
        // spurious retransmission, or a window probe).
        +0   < P. 900000:900100(100) ack 1 <TS val 720 ecr 100>
        +0   > . 1:1(0) ack 1 <TS val 220 ecr 700>
        // 500 ms after the last limited one, one more is answered.
        +390 < . 900000:900000(0) ack 1 <TS val 730 ecr 100>
        +0   > . 1:1(0) ack 1 <TS val 610 ecr 700>
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.stats.invalid_acks_limited, 3);
}

#[test]
fn delayed_ack_echoes_the_earliest_unacknowledged_timestamp() {
    // RFC 7323 §4.3: TS.Recent moves only for a segment at or before the
    // last ACK sent, so an ACK covering two segments echoes the first's.
    let mut s = established_with(TcpConfig::default(), "<mss 1012,TS val 700 ecr 0>");
    let mut text = String::new();
    for i in 0..16 {
        let (a, b, t) = (1 + 1000 * i, 1001 + 1000 * i, 701 + i);
        text += &format!("+0 < . {a}:{b}(1000) ack 1 <TS val {t} ecr 100>\n");
        text += &format!("+0 > . 1:1(0) ack {b} <TS val 100 ecr {t}>\n");
    }
    text += "
        +100 < . 16001:17001(1000) ack 1 <TS val 800 ecr 100>
        +10  < . 17001:18001(1000) ack 1 <TS val 810 ecr 100>
        +0   > . 1:1(0) ack 18001 <TS val 210 ecr 800>
        +10  < . 18001:19001(1000) ack 1 <TS val 820 ecr 100>
        +40  > . 1:1(0) ack 19001 <TS val 260 ecr 820>
    ";
    s.run(&text);
}

// ----------------------------------------------------------------------
// Keep-alive (RFC 9293 §3.8.4) and the user timeout (RFC 5482).

#[test]
fn keepalive_probes_then_timeout() {
    let mut s = established(TcpConfig {
        keepalive: Some(Duration::from_secs(10)),
        keepalive_interval: Duration::from_secs(1),
        keepalive_probes: 3,
        ..TcpConfig::default()
    });
    s.run(
        "
        // Idle for 10 s: a probe (one old sequence number, no data).
        10.1s  > . 0:0(0) ack 1
        +10    < . 1:1(0) ack 1
        // Answered: idle again from the answer.
        20.11s > . 0:0(0) ack 1
        +1s    > . 0:0(0) ack 1
        +1s    > . 0:0(0) ack 1
        // Three probes unanswered: dead (Linux also sends a RST here).
        +1s    state CLOSED
        +0     error TimedOut
        +100s  > none
        ",
    );
}

#[test]
fn user_timeout() {
    let mut s = established(TcpConfig {
        user_timeout: Some(Duration::from_secs(2)),
        ..TcpConfig::default()
    });
    s.run(
        "
        // Idle for a while first: the timeout counts from when the data
        // was sent, not from the last ACK.
        5s     send 100
        +0     > P. 1:101(100) ack 1
        +300   > P. 1:101(100) ack 1
        +600   > P. 1:101(100) ack 1
        +1099  state ESTABLISHED
        +1     state CLOSED
        +0     error TimedOut
        ",
    );
}

// ----------------------------------------------------------------------
// Listener backlog and accept queue.

#[test]
fn syn_beyond_the_half_open_cap_gets_a_cookie_and_connects() {
    // RFC 4987 §3.6: with the half-open table full, a SYN is answered with
    // a SYN cookie and nothing is kept; the ACK that returns the cookie
    // makes the connection, with the MSS, window scale and SACK the
    // cookie and its timestamp carried (Linux's encoding).
    let mut s = Script::default();
    s.run(
        "
        0     listen 2
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    conns 2
        // The third gets a cookie: its own ISS, no state kept.
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1448,sackOK,TS val 500 ecr 0,wscale 7>
        +0    > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val * ecr 500,wscale 3>
        +0    conns 2
        // Its ACK (echoing the cookie's timestamp) makes the connection.
        +10   < . 1:1(0) ack 1 win 100 <TS val 510 ecr 0>
        +0    conns 3
        +0    accept
        +0    state ESTABLISHED
        // The peer's window scale (7) and SACK came back from the cookie.
        +0    < P. 1:101(100) ack 1 win 100 <TS val 520 ecr 0>
        +0    > . 1:1(0) ack 101 <TS val * ecr 520>
        +0    recv 100
        +0    < . 201:301(100) ack 1 win 100 <TS val 530 ecr 0>
        +0    > . 1:1(0) ack 101 <TS val * ecr 520,sack 201:301>
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.peer_window, 100 << 7);
    assert_eq!(
        info.mss,
        1440 - 12,
        "MSS from the cookie's table, less the timestamps"
    );
    let stats = s.tcp.stats();
    assert_eq!((stats.syncookies_sent, stats.syncookies_accepted), (1, 1));
}

#[test]
fn a_cookie_ack_cannot_claim_options_its_syn_ack_never_carried() {
    // The SYN had no timestamps, so the cookie SYN-ACK carried none; an
    // ACK that adds one cannot make its echo's low bits pass for a window
    // scale or SACK (the echo is not our clock).
    let mut s = Script::default();
    s.run(
        "
        0     listen 1
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1460>
        +0    > S. 0:0(0) ack 1 win 65535 <mss 1460>
        +10   < . 1:1(0) ack 1 win 100 <TS val 5 ecr 30>
        +0    accept
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(info.peer_window, 100, "no window scale invented");
}

#[test]
fn a_forged_cookie_is_reset_and_counted() {
    let mut s = Script::default();
    s.run(
        "
        0     listen 1
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50003
        +0    < . 1:1(0) ack 12345 win 100
        +0    > R 12345:12345(0)
        +0    conns 1
        ",
    );
    assert_eq!(s.tcp.stats().syncookies_rejected, 1);
}

#[test]
fn syn_flood_beyond_backlog_is_dropped_without_cookies() {
    let mut s = Script::with_limits(
        TcpConfig::default(),
        TcpLimits {
            syn_cookies: false,
            ..TcpLimits::default()
        },
    );
    s.run(
        "
        0     listen 2
        // An established connection, not yet accepted... then accepted.
        +0    peer 40000
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1 <mss 1460>
        +10   < . 1:1(0) ack 1
        +0    accept
        // Two half-open connections fill the backlog.
        +10   peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        // The third is dropped, silently.
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    conns 3
        // The established connection is unaffected.
        +0    peer 40000
        +0    < P. 1:101(100) ack 1
        +0    > . 1:1(0) ack 101
        +0    recv 100
        +0    send 10
        +0    > P. 1:11(10) ack 101
        +10   < . 101:101(0) ack 11
        // Half-open ones retransmit their SYN-ACK on their own.
        1020  peer 50001
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    > S. 0:0(0) ack 1
        ",
    );
    assert_eq!(s.tcp.stats().syn_backlog_drops, 1);
}

#[test]
fn accept_queue_in_order_and_bounded() {
    let mut s = Script::default();
    s.run(
        "
        0     listen 2
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +10   peer 50002
        +0    < . 1:1(0) ack 1
        +0    peer 50001
        +0    < . 1:1(0) ack 1
        // Two established, unaccepted: the accept queue is full, a new SYN
        // is dropped.
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    conns 2
        // In the order they were established.
        +0    peer 50002
        +0    accept
        +0    peer 50001
        +0    accept
        +0    accept none
        // Room again.
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        ",
    );
}

#[test]
fn accept_queue_overflow_drops_the_last_ack_until_there_is_room() {
    // Linux's default (tcp_abort_on_overflow = 0): the handshake that
    // completes while the accept queue is full has its ACK dropped; the
    // connection stays half-open, its SYN-ACK is sent again, and the
    // peer's next ACK completes it once the application has accepted.
    let mut s = Script::default();
    s.run(
        "
        0     listen 2
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50001
        +0    < . 1:1(0) ack 1
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < . 1:1(0) ack 1
        // Two wait: the third's ACK (with its request) is dropped.
        +0    peer 50003
        +0    < P. 1:11(10) ack 1
        +0    conns 3
        +0    peer 50001
        +0    accept
        // Its SYN-ACK again; the peer answers with its data again, and
        // now there is room.
        +1s   peer 50003
        +0    > S. 0:0(0) ack 1
        +10   < P. 1:11(10) ack 1
        +0    > . 1:1(0) ack 11
        +0    peer 50002
        +0    accept
        +0    peer 50003
        +0    accept
        +0    recv 10
        ",
    );
    assert_eq!(s.tcp.stats().listen_overflows, 1);
}

#[test]
fn a_full_accept_queue_holds_off_a_simultaneous_open_syn_ack_and_ignores_blind_acks() {
    // The SYN-ACK of a simultaneous open completes a handshake too, so it
    // is held off like a last ACK; and with abort_on_overflow, a blind ACK
    // (wrong numbers) neither completes nor resets a half-open connection.
    let limits = TcpLimits {
        abort_on_overflow: true,
        ..TcpLimits::default()
    };
    let mut s = Script::with_limits(TcpConfig::default(), limits);
    s.run(
        "
        0     listen 2
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50001
        +0    < . 1:1(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    < . 1:1(0) ack 1
        // The queue is full. A blind ACK for 50003 is an unacceptable
        // segment for it (an ACK answers it), not a completed handshake.
        +0    peer 50003
        +0    < . 700000000:700000000(0) ack 123456789
        +0    > . 1:1(0) ack 1
        +0    conns 3
        // Its SYN-ACK (simultaneous open) would complete it: reset.
        +0    < S. 0:0(0) ack 1 win 65535 <mss 1000>
        +0    > R 1:1(0)
        +0    conns 2
        ",
    );
    assert_eq!(s.tcp.stats().listen_overflows, 1);
}

#[test]
fn accept_queue_overflow_resets_with_abort_on_overflow() {
    let mut s = Script::with_limits(
        TcpConfig::default(),
        TcpLimits {
            abort_on_overflow: true,
            ..TcpLimits::default()
        },
    );
    s.run(
        "
        0     listen 2
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50001
        +0    < . 1:1(0) ack 1
        +0    peer 50003
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    peer 50002
        +0    < . 1:1(0) ack 1
        +0    peer 50003
        +0    < . 1:1(0) ack 1
        +0    > R 1:1(0)
        +0    conns 2
        ",
    );
    assert_eq!(s.tcp.stats().listen_overflows, 1);
}

#[test]
fn half_open_connections_go_away() {
    // Reset by the peer, or out of SYN-ACK retransmissions: the slot in
    // the backlog is free again.
    let mut s = Script::default();
    s.run(
        "
        0     listen 1
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +10   < R 1:1(0)
        +0    conns 0
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        // Full: another peer's SYN gets a SYN cookie, and no slot.
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        +0    conns 1
        +0    peer 50000
        +1s   > S. 0:0(0) ack 1
        +2s   > S. 0:0(0) ack 1
        +4s   > S. 0:0(0) ack 1
        +8s   > S. 0:0(0) ack 1
        +16s  > S. 0:0(0) ack 1
        +32s  > S. 0:0(0) ack 1
        +64s  conns 0
        +0    peer 50001
        +0    < S 0:0(0) win 65535 <mss 1000>
        +0    > S. 0:0(0) ack 1
        ",
    );
}

// ----------------------------------------------------------------------
// Malformed input.

#[test]
fn bad_checksum_dropped_and_counted() {
    let mut s = established(TcpConfig::default());
    s.run(
        "
        +10  < P. 1:101(100) ack 1 badcsum
        +0   < R 1:1(0) badcsum
        +1s  > none
        +0   state ESTABLISHED
        +0   < P. 1:101(100) ack 1
        +0   > . 1:1(0) ack 101
        ",
    );
    assert_eq!(s.tcp.stats().rx_bad_checksum, 2);
}

// ----------------------------------------------------------------------
// Regressions found by the fuzzer (fuzz/regressions/tcp_connection/).

/// A connection driven directly: a SYN-ACK with SACK and timestamps makes
/// it ESTABLISHED at 100 ms; `f` then runs with it and the time.
fn bare_connection(
    config: TcpConfig,
    f: impl FnOnce(&mut netstrata::transport::tcp::Connection, Instant),
) {
    use netstrata::transport::tcp::{Connection, SeqNumber, TcpFlags, TcpRepr};
    use std::net::{Ipv4Addr, SocketAddrV4};
    let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
    let remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
    let t0 = Instant::ZERO;
    let mut c = Connection::connect(t0, config, local, remote, SeqNumber(1000), 1500, 0);
    while c.poll_transmit(t0).is_some() {}
    let now = t0 + Duration::from_millis(100);
    let syn_ack = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq_number: SeqNumber(5000),
        ack_number: Some(SeqNumber(1001)),
        flags: TcpFlags::SYN,
        window_len: 65535,
        max_seg_size: Some(1460),
        sack_permitted: true,
        timestamp: Some((1, 0)),
        ..TcpRepr::default()
    };
    c.handle_segment(now, &syn_ack, bytes::Bytes::new(), 0);
    while c.poll_transmit(now).is_some() {}
    f(&mut c, now);
}

/// Runs every timer due at `now` (as a socket table would) and checks
/// that the connection then waits for the future, not for "now".
fn settle(c: &mut netstrata::transport::tcp::Connection, now: Instant) {
    for _ in 0..4 {
        while c.poll_transmit(now).is_some() {}
        match c.poll_at(now) {
            Some(t) if t <= now => c.on_timer(now),
            _ => return,
        }
    }
    assert!(
        c.poll_at(now).is_none_or(|t| t > now),
        "poll_at stuck at now in {}",
        c.state()
    );
}

#[test]
fn a_connection_closed_with_its_tail_loss_probe_armed_is_not_due_forever() {
    // The user timeout ends the connection while the tail loss probe's
    // timer is armed; the timer used to survive and make poll_at say "now"
    // forever in CLOSED.
    let config = TcpConfig {
        user_timeout: Some(Duration::from_secs(20)),
        ..TcpConfig::default()
    };
    bare_connection(config, |c, now| {
        c.send(&[7; 3000]).unwrap();
        while c.poll_transmit(now).is_some() {}
        let later = now + Duration::from_secs(131);
        settle(c, later);
        assert_eq!(c.state(), netstrata::transport::tcp::State::Closed);
    });
}

#[test]
fn keep_alive_is_off_in_time_wait() {
    // Simultaneous close: our FIN and the peer's cross, and the ACK of ours
    // moves CLOSING to TIME-WAIT. That ACK used to re-arm the keep-alive
    // timer, whose probe TIME-WAIT never sends: poll_at said "now" forever
    // (and unanswered probes would have failed the connection).
    use netstrata::transport::tcp::{SeqNumber, State, TcpFlags, TcpRepr};
    let config = TcpConfig {
        keepalive: Some(Duration::from_secs(10)),
        ..TcpConfig::default()
    };
    bare_connection(config, |c, now| {
        c.shutdown_write();
        while c.poll_transmit(now).is_some() {}
        let seg = |flags, ack| TcpRepr {
            src_port: 80,
            dst_port: 40000,
            seq_number: SeqNumber(5001),
            ack_number: Some(SeqNumber(ack)),
            flags,
            window_len: 65535,
            timestamp: Some((2, 0)),
            ..TcpRepr::default()
        };
        c.handle_segment(now, &seg(TcpFlags::FIN, 1001), bytes::Bytes::new(), 0);
        assert_eq!(c.state(), State::Closing);
        let ack = TcpRepr {
            seq_number: SeqNumber(5002),
            ..seg(TcpFlags::empty(), 1002)
        };
        c.handle_segment(now, &ack, bytes::Bytes::new(), 0);
        assert_eq!(c.state(), State::TimeWait);
        for secs in [5, 11, 30, 59] {
            settle(c, now + Duration::from_secs(secs));
            assert_eq!(c.state(), State::TimeWait, "at {secs} s");
        }
        settle(c, now + Duration::from_secs(61));
        assert_eq!((c.state(), c.error()), (State::Closed, None));
    });
}

// ----------------------------------------------------------------------
// RACK's records against what a review found.

#[test]
fn a_lost_fin_at_the_edge_of_the_peers_window_goes_again() {
    // The peer's window ends where the FIN sits; the FIN, sent bare
    // beyond it, and the first segment are found lost. Resending the FIN
    // must send the FIN: a segment with neither data nor FIN changed
    // nothing, and went out without end.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(
        "
        +0   < . 1:1(0) ack 1 win 3000
        +100 send 3000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > P. 2001:3001(1000) ack 1
        +0   close
        +0   > F. 3001:3001(0) ack 1
        +100 < . 1:1(0) ack 1 win 3000 <sack 1001:2001>
        +25  > . 1:1001(1000) ack 1
        +100 < . 1:1(0) ack 2001 win 1000
        // The FIN rides on the last segment, beyond the window as before.
        +0   > FP. 2001:3001(1000) ack 1
        +0   > none
        +100 < . 1:1(0) ack 3002 win 1000
        +1s  > none
        ",
    );
}

#[test]
fn a_path_mtu_drop_resends_the_flight_at_once_with_sack() {
    // Ten full segments fill the window, and a router reports that all
    // were too big: nothing of them is in flight any more, so they go
    // again at once in smaller segments, as without SACK, not after a
    // probe or the retransmission timeout.
    let mut s = established_with(newreno(), "<mss 1460,sackOK>");
    let mut text = String::from("+10 send 14600\n");
    for i in 0..10 {
        let a = 1 + 1460 * i;
        let flags = if i == 9 { "P." } else { "." };
        text += &format!("+0 > {flags} {a}:{}(1460) ack 1\n", a + 1460);
    }
    text += "+5 icmp fragneeded 1420 1\n";
    for i in 0..10 {
        let a = 1 + 1380 * i;
        text += &format!("+0 > . {a}:{}(1380) ack 1\n", a + 1380);
    }
    s.run(&text);
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.timeouts, 0);
}

#[test]
fn a_sack_block_below_snd_una_does_not_hide_the_hole() {
    // The second block starts below SND.UNA: invalid, ignored whole. The
    // hole at SND.UNA is still outstanding and is what RACK resends.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(THREE_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1 <sack 2001:3001 0:1001>
        +25  > . 1:1001(1000) ack 1
        ",
    );
}

#[test]
fn with_sack_a_sacked_segment_lets_exactly_one_new_segment_out() {
    // The congestion window (10 segments) is full; one segment is SACKed
    // and so has left the network: one new segment may go (RFC 6675's
    // pipe), not one plus limited transmit's allowance on top.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    let mut text = String::from("+100 send 30000\n");
    for i in 0..10 {
        let a = 1 + 1000 * i;
        text += &format!("+0 > . {a}:{}(1000) ack 1\n", a + 1000);
    }
    text += "+100 < . 1:1(0) ack 1 <sack 1001:2001>\n+0 > . 10001:11001(1000) ack 1\n+0 > none\n";
    s.run(&text);
}

// ----------------------------------------------------------------------
// Review of 174c56a (tail loss probe changes): failing tests found.

#[test]
fn a_zero_srtt_does_not_probe_at_the_instant_of_sending() {
    // A caller whose clock ticks in milliseconds (or a LAN answered within
    // the tick) measures an RTT of 0. The probe's timeout is still at
    // least 100 µs (the timer's granularity), not 2 SRTT = 0, which sent
    // the tail twice at the instant the flight went (found by review).
    let mut s = sack_path(0);
    s.run(
        "
        +10  send 3000
        +0   > . 1:1001(1000) ack 1
        +0   > . 1001:2001(1000) ack 1
        +0   > P. 2001:3001(1000) ack 1
        +0.09 > none
        +0.01 > P. 2001:3001(1000) ack 1
        +0.19 > none
        +0.01 > P. 2001:3001(1000) ack 1
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.loss_probes, 2);
}

#[test]
fn a_lone_segment_carrying_the_fin_is_probed_without_waiting_for_a_delayed_ack() {
    // RFC 8985 §7.2 adds the worst-case delayed ACK (200 ms) to the probe
    // timeout of a lone segment, but a FIN is acknowledged when it is
    // processed (RFC 9293 §3.10.7.4): a lost last segment of a transfer
    // is probed after 2·SRTT (here the 100 µs floor), not 200 ms later.
    let mut s = sack_path(0);
    s.run(
        "
        +10  send 500
        +0   > P. 1:501(500) ack 1
        +0   shutdown
        +0   > F. 501:501(0) ack 1
        +0.09 > none
        +0.01 > FP. 501:501(0) ack 1
        ",
    );
    assert_eq!(s.tcp.info(s.handle()).unwrap().stats.loss_probes, 1);
}

#[test]
fn the_probe_never_resends_data_it_has_not_sent() {
    // A peer SACKs everything outstanding from SND.UNA (a peer that will
    // renege): RACK keeps no record, and the probe's second part falls back
    // to the last segment sent. Taken from the send buffer's end, with data
    // unsent, it was 19001:20001: never sent, beyond the peer's window,
    // and SND.NXT jumped past 10501:19001 (found by review).
    let mut s = short_path();
    let mut text = String::from("+1 send 20000\n");
    for i in 0..10 {
        let a = 1 + 1000 * i;
        text += &format!("+0 > . {a}:{}(1000) ack 1\n", a + 1000);
    }
    s.run(&text);
    s.run(
        "
        +0.5 < . 1:1(0) ack 1 win 10500 <sack 1:10001>
        // The probe: new data to the window's edge (sender SWS
        // avoidance held it back from ordinary sending), then the
        // flight's tail.
        +1.5 > . 10001:10501(500) ack 1
        +0   > . 9001:10001(1000) ack 1
        ",
    );
}

#[test]
fn one_d_sack_repeated_in_the_segments_of_a_super_segment_undoes_nothing() {
    // As `a_d_sack_for_one_of_two_retransmissions_undoes_nothing`, but the
    // peer's D-SACK of segment 2 comes in two data segments, as a peer
    // with segmentation offload sends it (its super-segment's header, with
    // the D-SACK block, copied into each segment). Segment 5 may well
    // have been lost: still no undo.
    let mut s = established_with(newreno(), "<mss 1000,sackOK>");
    s.run(EIGHT_SENT);
    s.run(
        "
        +100 < . 1:1(0) ack 1001
        +0   < . 1:1(0) ack 1001 <sack 2001:3001>
        +0   < . 1:1(0) ack 1001 <sack 2001:4001>
        +0   < . 1:1(0) ack 1001 <sack 5001:6001 2001:4001>
        +0   > . 1001:2001(1000) ack 1
        +0   < . 1:1(0) ack 1001 <sack 5001:7001 2001:4001>
        +0   > . 4001:5001(1000) ack 1
        +1   < . 1:1(0) ack 4001 <sack 5001:7001>
        +0   < . 1:1001(1000) ack 4001 <sack 1001:2001 5001:7001>
        +0   > . 8001:8001(0) ack 1001
        +0   < . 1001:2001(1000) ack 4001 <sack 1001:2001 5001:7001>
        +0   > . 8001:8001(0) ack 2001
        ",
    );
    let info = s.tcp.info(s.handle()).unwrap();
    assert_eq!(
        info.stats.spurious_undos, 0,
        "one D-SACK, counted twice, undid the reduction"
    );
}
