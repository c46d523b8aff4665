//! A small authoritative responder for one static zone (RFC 1034 §4.3.2,
//! RFC 1035 §4), over any [`DatagramSocket`] or [`StreamListener`].
//!
//! [`Zone::answer`] is a pure function from a query to a response: AA set
//! for names in the zone, a CNAME answered and followed within the zone
//! (RFC 1034 §3.6.2, RFC 6604: the RCODE is that of the chain's end),
//! NXDOMAIN and NODATA with the zone's SOA in the authority section, its
//! TTL capped by MINIMUM (RFC 2308 §3), REFUSED for names outside the
//! zone, NOTIMP for opcodes other than QUERY and FORMERR for malformed
//! queries. [`respond`] wraps it for bytes, truncating UDP answers to 512
//! octets with TC set (RFC 1035 §4.2.1). [`serve_udp`] and [`serve_tcp`]
//! are blocking loops that end when a stop flag is set; [`serve_tcp`]
//! serves up to [`TCP_CONCURRENT`] connections at once, each on a thread of
//! its own and for at most [`TCP_DEADLINE`], so a client that trickles its
//! query (or never sends it) delays no other.
//!
//! Not done: zone files, wildcards (RFC 4592), delegations and glue, ANY
//! beyond "every record at the name", EDNS, zone transfers.
//!
//! # Example
//!
//! A zone for `demo.test`: names in it are answered with authority, names
//! missing from it with NXDOMAIN and the SOA, names outside it are refused.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::application::dns::responder::Zone;
//! use netstrata::application::dns::{
//!     Class, Header, Message, Question, Rcode, Record, RecordData, RecordType,
//! };
//!
//! let record = |name: &str, data| Record {
//!     name: name.parse().unwrap(),
//!     class: Class::In,
//!     ttl: 60,
//!     data,
//! };
//! let soa = RecordData::Soa {
//!     mname: "ns.demo.test".parse()?,
//!     rname: "admin.demo.test".parse()?,
//!     serial: 1,
//!     refresh: 3600,
//!     retry: 600,
//!     expire: 86400,
//!     minimum: 30,
//! };
//! let mut zone = Zone::new(record("demo.test", soa))?;
//! zone.add(record("www.demo.test", RecordData::A(Ipv4Addr::new(192, 0, 2, 2))))?;
//! assert!(zone.add(record("www.other.test", RecordData::A(Ipv4Addr::LOCALHOST))).is_err());
//!
//! let ask = |name: &str| {
//!     let name = name.parse().unwrap();
//!     let question = Question { name, qtype: RecordType::A, qclass: Class::In };
//!     let query = Message {
//!         header: Header::query(7),
//!         questions: vec![question],
//!         answers: Vec::new(),
//!         authorities: Vec::new(),
//!         additionals: Vec::new(),
//!     };
//!     zone.answer(&query)
//! };
//! let found = ask("www.demo.test");
//! assert!(found.header.aa && found.header.rcode == Rcode::NoError);
//! assert_eq!(found.answers[0].data, RecordData::A(Ipv4Addr::new(192, 0, 2, 2)));
//! let missing = ask("nope.demo.test");
//! assert_eq!(missing.header.rcode, Rcode::NxDomain);
//! assert_eq!(missing.authorities[0].rtype(), RecordType::Soa);
//! assert_eq!(ask("example.com").header.rcode, Rcode::Refused);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::transport::{read_framed, write_framed};
use super::{Class, Header, Message, Name, Opcode, Rcode, Record, RecordData, RecordType};
use crate::application::is_timeout;
use crate::application::net::{ByteStream, DatagramSocket, DeadlineStream, StreamListener};

/// The largest UDP answer without EDNS (RFC 1035 §2.3.4).
pub const UDP_MAX: usize = 512;
/// The most CNAME links followed inside the zone for one answer.
const MAX_CHAIN: usize = 16;
/// How often [`serve_udp`] looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);
/// The most queries served on one TCP connection, and its idle timeout.
const TCP_QUERIES: usize = 64;
const TCP_IDLE: Duration = Duration::from_secs(2);
/// The most TCP connections [`serve_tcp`] serves at once; beyond, it waits
/// before accepting another (they wait in the listener's backlog).
pub const TCP_CONCURRENT: usize = 64;
/// The longest a TCP connection is served, all its queries included.
pub const TCP_DEADLINE: Duration = Duration::from_secs(10);

/// Why a record could not be added to a [`Zone`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// The zone must start from an SOA record.
    #[error("not an SOA record")]
    NotSoa,
    /// The owner name is not in the zone.
    #[error("{0} is outside the zone")]
    OutOfZone(Name),
    /// A CNAME and other data at one name (RFC 1034 §3.6.2).
    #[error("CNAME and other data at {0}")]
    CnameConflict(Name),
}

/// A static zone: its SOA and its records by owner name.
#[derive(Debug, Clone)]
pub struct Zone {
    soa: Record,
    names: HashMap<Name, Vec<Record>>,
}

impl Zone {
    /// A zone whose apex and SOA are `soa`.
    pub fn new(soa: Record) -> Result<Zone, ZoneError> {
        if !matches!(soa.data, RecordData::Soa { .. }) {
            return Err(ZoneError::NotSoa);
        }
        let mut names = HashMap::new();
        names.insert(soa.name.clone(), vec![soa.clone()]);
        Ok(Zone { soa, names })
    }

    /// The apex.
    pub fn origin(&self) -> &Name {
        &self.soa.name
    }

    /// Adds a record; it must be in the zone and not mix CNAME with other
    /// data at one name.
    pub fn add(&mut self, record: Record) -> Result<(), ZoneError> {
        if !in_zone(&record.name, self.origin()) {
            return Err(ZoneError::OutOfZone(record.name));
        }
        let at = self.names.entry(record.name.clone()).or_default();
        let is_cname = record.rtype() == RecordType::Cname;
        if at
            .iter()
            .any(|r| (r.rtype() == RecordType::Cname) != is_cname)
            || (is_cname && !at.is_empty())
        {
            return Err(ZoneError::CnameConflict(record.name));
        }
        at.push(record);
        Ok(())
    }

    /// The response to `query` (see the module documentation).
    pub fn answer(&self, query: &Message) -> Message {
        let mut resp = Message {
            header: Header {
                qr: true,
                aa: false,
                tc: false,
                ra: false,
                z: false,
                ad: false,
                rcode: Rcode::NoError,
                ..query.header
            },
            questions: query.questions.clone(),
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        };
        if query.header.opcode != Opcode::Query {
            resp.header.rcode = Rcode::NotImp;
            return resp;
        }
        if query.header.qr || query.questions.len() != 1 {
            resp.header.rcode = Rcode::FormErr;
            return resp;
        }
        let q = &query.questions[0];
        if q.qclass != Class::In || !in_zone(&q.name, self.origin()) {
            resp.header.rcode = Rcode::Refused;
            return resp;
        }
        resp.header.aa = true;
        let any = q.qtype == RecordType::Unknown(255);
        let mut name = q.name.clone();
        for _ in 0..MAX_CHAIN {
            let Some(at) = self.names.get(&name) else {
                if !self.is_empty_non_terminal(&name) {
                    resp.header.rcode = Rcode::NxDomain;
                }
                resp.authorities.push(self.negative_soa());
                return resp;
            };
            let wanted: Vec<Record> = at
                .iter()
                .filter(|r| any || r.rtype() == q.qtype)
                .cloned()
                .collect();
            if !wanted.is_empty() {
                resp.answers.extend(wanted);
                return resp;
            }
            match at.first().map(|r| &r.data) {
                Some(RecordData::Cname(target)) => {
                    resp.answers.push(at[0].clone());
                    if !in_zone(target, self.origin()) {
                        return resp;
                    }
                    name = target.clone();
                }
                _ => {
                    resp.authorities.push(self.negative_soa());
                    return resp;
                }
            }
        }
        resp
    }

    /// Whether some name in the zone is below `name` (RFC 4592 §2.2.2).
    fn is_empty_non_terminal(&self, name: &Name) -> bool {
        self.names.keys().any(|n| n != name && in_zone(n, name))
    }

    /// The SOA for a negative answer: TTL capped by MINIMUM (RFC 2308 §3).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RecordData::Soa { minimum, .. } = soa.data {
            soa.ttl = soa.ttl.min(minimum);
        }
        soa
    }
}

/// Whether `name` is `origin` or below it.
fn in_zone(name: &Name, origin: &Name) -> bool {
    let n: Vec<&[u8]> = name.labels().collect();
    let o: Vec<&[u8]> = origin.labels().collect();
    n.len() >= o.len()
        && n[n.len() - o.len()..]
            .iter()
            .zip(&o)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// The response bytes for query bytes, in at most `max_len` octets;
/// `None` for something not to answer (a response, or under a header).
/// A query that does not parse gets FORMERR with its ID.
pub fn respond(zone: &Zone, query: &[u8], max_len: usize) -> Option<Vec<u8>> {
    let resp = match Message::parse(query) {
        Ok(q) if q.header.qr => return None,
        Ok(q) => zone.answer(&q),
        Err(_) => {
            let &[a, b, flags, ..] = query else {
                return None;
            };
            if flags & 0x80 != 0 {
                return None;
            }
            let mut header = Header::query(u16::from_be_bytes([a, b]));
            header.qr = true;
            header.rd = false;
            header.rcode = Rcode::FormErr;
            Message {
                header,
                questions: Vec::new(),
                answers: Vec::new(),
                authorities: Vec::new(),
                additionals: Vec::new(),
            }
        }
    };
    resp.emit_truncated(max_len).ok()
}

/// Answers UDP queries on `socket` until `stop` is set (checked every
/// 50 ms). Returns the number of queries answered.
pub fn serve_udp<S: DatagramSocket>(socket: &S, zone: &Zone, stop: &AtomicBool) -> io::Result<u64> {
    socket.set_read_timeout(Some(POLL))?;
    let mut buf = vec![0u8; 65535];
    let mut served = 0;
    while !stop.load(Ordering::Acquire) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        if let Some(resp) = respond(zone, &buf[..n], UDP_MAX) {
            match socket.send_to(&resp, from) {
                Ok(_) => served += 1,
                Err(e) => log::debug!("dns: answer to {from} not sent: {e}"),
            }
        }
    }
    Ok(served)
}

/// Answers TCP queries (RFC 1035 §4.2.2, RFC 7766) on `listener` until
/// `stop` is set: up to [`TCP_CONCURRENT`] connections at once, each on its
/// own thread, closed after 64 queries, 2 s idle or [`TCP_DEADLINE`].
/// `stop` is checked between connections: to end a loop blocked in accept,
/// set it and connect once (or drop the runtime); connections in progress
/// are finished first. Returns the number of queries answered.
pub fn serve_tcp<L>(listener: &L, zone: &Zone, stop: &AtomicBool) -> io::Result<u64>
where
    L: StreamListener,
    L::Stream: Send,
{
    let served = AtomicU64::new(0);
    let busy = Slots::new(TCP_CONCURRENT);
    std::thread::scope(|scope| {
        while !stop.load(Ordering::Acquire) {
            let slot = busy.take();
            let (mut stream, peer) = listener.accept_stream()?;
            if stop.load(Ordering::Acquire) {
                break;
            }
            let served = &served;
            scope.spawn(move || {
                if let Err(e) = serve_stream(&mut stream, zone, served) {
                    log::debug!("dns: TCP connection from {peer} ended: {e}");
                }
                drop(slot);
            });
        }
        Ok::<(), io::Error>(())
    })?;
    Ok(served.into_inner())
}

fn serve_stream<S: ByteStream>(stream: &mut S, zone: &Zone, served: &AtomicU64) -> io::Result<()> {
    let deadline = Instant::now() + TCP_DEADLINE;
    let mut stream = DeadlineStream::new(stream, deadline).with_timeout(TCP_IDLE);
    for _ in 0..TCP_QUERIES {
        let Some(query) = read_framed(&mut stream)? else {
            return Ok(());
        };
        if let Some(resp) = respond(zone, &query, usize::from(u16::MAX)) {
            write_framed(&mut stream, &resp)?;
            served.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// A counting semaphore: at most `max` taken at once.
struct Slots {
    taken: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    fn new(max: usize) -> Slots {
        Slots {
            taken: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    /// Takes a slot, waiting while all are taken; it is given back when
    /// the guard is dropped, however its holder ends.
    fn take(&self) -> SlotGuard<'_> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        while *taken >= self.max {
            taken = self.freed.wait(taken).unwrap_or_else(|p| p.into_inner());
        }
        *taken += 1;
        SlotGuard(self)
    }
}

/// A slot taken from [`Slots`].
struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut taken = self.0.taken.lock().unwrap_or_else(|p| p.into_inner());
        *taken -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::dns::Question;
    use core::net::Ipv4Addr;

    fn n(s: &str) -> Name {
        s.parse().unwrap()
    }

    fn rec(name: &str, ttl: u32, data: RecordData) -> Record {
        Record {
            name: n(name),
            class: Class::In,
            ttl,
            data,
        }
    }

    fn zone() -> Zone {
        let soa = rec(
            "example.test",
            3600,
            RecordData::Soa {
                mname: n("ns.example.test"),
                rname: n("admin.example.test"),
                serial: 1,
                refresh: 60,
                retry: 60,
                expire: 600,
                minimum: 30,
            },
        );
        let mut z = Zone::new(soa).unwrap();
        z.add(rec(
            "www.example.test",
            300,
            RecordData::A(Ipv4Addr::new(192, 0, 2, 10)),
        ))
        .unwrap();
        z.add(rec(
            "alias.example.test",
            300,
            RecordData::Cname(n("www.example.test")),
        ))
        .unwrap();
        z.add(rec(
            "out.example.test",
            300,
            RecordData::Cname(n("elsewhere.invalid")),
        ))
        .unwrap();
        z.add(rec(
            "a.b.example.test",
            300,
            RecordData::A(Ipv4Addr::new(192, 0, 2, 11)),
        ))
        .unwrap();
        z
    }

    fn query(name: &str, qtype: RecordType) -> Message {
        Message {
            header: Header::query(0x1234),
            questions: vec![Question {
                name: n(name),
                qtype,
                qclass: Class::In,
            }],
            answers: vec![],
            authorities: vec![],
            additionals: vec![],
        }
    }

    #[test]
    fn positive_answer_is_authoritative() {
        let r = zone().answer(&query("WWW.example.test", RecordType::A));
        assert!(r.header.qr && r.header.aa && r.header.rd);
        assert_eq!(r.header.id, 0x1234);
        assert_eq!(r.header.rcode, Rcode::NoError);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.questions,
            query("WWW.example.test", RecordType::A).questions
        );
    }

    #[test]
    fn cname_is_followed_in_zone_and_not_outside() {
        let r = zone().answer(&query("alias.example.test", RecordType::A));
        let types: Vec<_> = r.answers.iter().map(Record::rtype).collect();
        assert_eq!(types, [RecordType::Cname, RecordType::A]);
        let r = zone().answer(&query("alias.example.test", RecordType::Cname));
        assert_eq!(r.answers.len(), 1);
        let r = zone().answer(&query("out.example.test", RecordType::A));
        assert_eq!(r.header.rcode, Rcode::NoError);
        assert_eq!(r.answers.len(), 1);
        assert!(r.authorities.is_empty());
    }

    #[test]
    fn nxdomain_and_nodata_carry_the_soa() {
        let r = zone().answer(&query("nope.example.test", RecordType::A));
        assert_eq!(r.header.rcode, Rcode::NxDomain);
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(r.authorities[0].ttl, 30, "TTL capped by MINIMUM");
        let r = zone().answer(&query("www.example.test", RecordType::Mx));
        assert_eq!(r.header.rcode, Rcode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities[0].rtype(), RecordType::Soa);
        // An empty non-terminal exists: NODATA, not NXDOMAIN.
        let r = zone().answer(&query("b.example.test", RecordType::A));
        assert_eq!(r.header.rcode, Rcode::NoError);
        assert_eq!(r.authorities.len(), 1);
    }

    #[test]
    fn refused_formerr_notimp() {
        let r = zone().answer(&query("example.com", RecordType::A));
        assert_eq!(r.header.rcode, Rcode::Refused);
        assert!(!r.header.aa);
        let mut q = query("www.example.test", RecordType::A);
        q.questions.clear();
        assert_eq!(zone().answer(&q).header.rcode, Rcode::FormErr);
        let mut q = query("www.example.test", RecordType::A);
        q.header.opcode = Opcode::from_bits(2);
        assert_eq!(zone().answer(&q).header.rcode, Rcode::NotImp);
        // Garbage gets FORMERR with its ID; responses get nothing.
        let r = respond(&zone(), &[0xab, 0xcd, 0x01, 0x00, 0xff], UDP_MAX).unwrap();
        let r = Message::parse(&r).unwrap();
        assert_eq!((r.header.id, r.header.rcode), (0xabcd, Rcode::FormErr));
        assert!(respond(&zone(), &[0xab, 0xcd, 0x81, 0x00, 0xff], UDP_MAX).is_none());
        assert!(respond(&zone(), &[0xab], UDP_MAX).is_none());
    }

    #[test]
    fn zone_rejects_bad_records() {
        let mut z = zone();
        let a = RecordData::A(Ipv4Addr::LOCALHOST);
        assert!(matches!(
            z.add(rec("x.other", 1, a.clone())),
            Err(ZoneError::OutOfZone(_))
        ));
        assert!(matches!(
            z.add(rec("alias.example.test", 1, a)),
            Err(ZoneError::CnameConflict(_))
        ));
        let c = RecordData::Cname(n("x.example.test"));
        assert!(matches!(
            z.add(rec("www.example.test", 1, c)),
            Err(ZoneError::CnameConflict(_))
        ));
        assert_eq!(
            Zone::new(rec("x", 1, RecordData::A(Ipv4Addr::LOCALHOST))).unwrap_err(),
            ZoneError::NotSoa
        );
    }

    #[test]
    fn big_answers_are_truncated_over_udp() {
        let mut z = zone();
        for i in 0..10u8 {
            z.add(rec(
                "txt.example.test",
                60,
                RecordData::Txt(vec![vec![b'a' + i; 100]]),
            ))
            .unwrap();
        }
        let q = query("txt.example.test", RecordType::Txt).emit().unwrap();
        let udp = respond(&z, &q, UDP_MAX).unwrap();
        assert!(udp.len() <= UDP_MAX);
        assert!(Message::parse(&udp).unwrap().header.tc);
        let tcp = Message::parse(&respond(&z, &q, 65535).unwrap()).unwrap();
        assert!(!tcp.header.tc);
        assert_eq!(tcp.answers.len(), 10);
    }

    proptest::proptest! {
        #[test]
        fn respond_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = respond(&zone(), &bytes, UDP_MAX);
        }
    }
}
