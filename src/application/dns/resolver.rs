//! A stub resolver (RFC 1035 §7, RFC 1123 §6.1.3) that asks one recursive
//! server, over any [`Network`].
//!
//! Each query goes out from a fresh UDP socket on an ephemeral port with a
//! random ID (RFC 5452 §9.2); a reply is accepted only if it comes from the
//! server's address and carries the same ID and question (RFC 5452 §4.1),
//! and anything else is ignored while the per-try timeout runs. A query is
//! sent up to `attempts` times. A truncated reply (TC) is asked again over
//! TCP with the two-octet length prefix (RFC 1035 §4.2.2, RFC 7766 §5).
//! A whole lookup, CNAME chase and TCP fallback included, ends by one
//! deadline ([`ResolverConfig::lookup_timeout`]): a server that trickles
//! its answer a byte at a time cannot hold a lookup longer.
//!
//! A resolver is shared by reference between threads: the cache is behind
//! a lock that is held only to look up or store, never across network
//! I/O, so one slow lookup does not stall others.
//! CNAME chains are followed within the answer (RFC 1034 §3.6.2, at most
//! `max_cname_chain` links), and the target is asked for again when the
//! chain ends without it. Answers are cached for their TTL (RFC 1035
//! §7.4, RFC 2181 §8: a TTL with the top bit set counts as zero), and
//! NXDOMAIN and NODATA for the SOA's TTL capped by its MINIMUM
//! (RFC 2308 §5); only records owned by names on the chain are cached,
//! for at most [`ResolverConfig::max_ttl`] (a day) and negative answers for
//! at most [`ResolverConfig::max_negative_ttl`] (an hour), as common
//! resolvers cap them, so a hostile answer cannot pin a name for years.
//! The cache holds at most `cache_capacity` entries and evicts the one
//! closest to expiry.
//!
//! Time: the per-try deadline and TTLs use `std::time::Instant`. The
//! application layer sits at the edge above the socket runtime, where
//! reading the clock is allowed; [`Resolver::with_clock`] takes another
//! clock (tests use a manual one for TTLs). Query IDs come from a
//! [`KeyedRng`] keyed from the operating system's entropy unless
//! [`ResolverConfig::seed`] asks for a replayable sequence; source ports
//! are the network's ephemeral ports (random over netstrata and over
//! Linux).
//!
//! Not done: several servers, search lists, EDNS, DNSSEC, 0x20 case
//! randomisation, and IPv6 transport over netstrata.
//!
//! # Example
//!
//! Resolve a name from an authoritative [`responder`](super::responder)
//! on the loopback interface, here over `std::net`
//! ([`StdNetwork`](crate::application::net::StdNetwork)):
//!
//! ```
//! use std::net::{Ipv4Addr, UdpSocket};
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use netstrata::application::dns::resolver::{Resolver, ResolverConfig};
//! use netstrata::application::dns::responder::{Zone, serve_udp};
//! use netstrata::application::dns::{Class, Record, RecordData};
//! use netstrata::application::net::StdNetwork;
//!
//! let record = |name: &str, data| Record {
//!     name: name.parse().unwrap(),
//!     class: Class::In,
//!     ttl: 60,
//!     data,
//! };
//! # let soa = RecordData::Soa {
//! #     mname: "ns.demo.test".parse()?,
//! #     rname: "admin.demo.test".parse()?,
//! #     serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 30,
//! # };
//! let mut zone = Zone::new(record("demo.test", soa))?;
//! zone.add(record("www.demo.test", RecordData::Cname("web.demo.test".parse()?)))?;
//! zone.add(record("web.demo.test", RecordData::A(Ipv4Addr::new(192, 0, 2, 2))))?;
//!
//! let socket = UdpSocket::bind("127.0.0.1:0")?;
//! let server = socket.local_addr()?;
//! let stop = AtomicBool::new(false);
//! std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error>> {
//!     s.spawn(|| serve_udp(&socket, &zone, &stop));
//!     let resolver = Resolver::new(StdNetwork, server, ResolverConfig::default());
//!     assert_eq!(resolver.lookup_ipv4("www.demo.test")?, [Ipv4Addr::new(192, 0, 2, 2)]);
//!     assert_eq!(resolver.cache_len(), 2); // the CNAME and the address
//!     assert!(resolver.lookup_ipv4("nope.demo.test").is_err());
//!     stop.store(true, Ordering::Release);
//!     Ok(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::transport::{read_framed, write_framed};
use super::{
    Class, DnsError, Header, Message, Name, Question, Rcode, Record, RecordData, RecordType,
};
use crate::application::is_timeout;
use crate::application::net::{DatagramSocket, DeadlineStream, Network, time_left};
use crate::rand::KeyedRng;

/// The most datagrams one try reads before it gives up, so that a flood
/// of forged replies cannot keep it looping longer than this either.
const MAX_DATAGRAMS_PER_TRY: usize = 256;

/// How the resolver behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverConfig {
    /// How long one try waits for a reply (and a TCP connect may take).
    pub timeout: Duration,
    /// How long a whole lookup may take: every try, every CNAME link and
    /// the TCP fallback. Default 10 s.
    pub lookup_timeout: Duration,
    /// Tries per query (at least one is made).
    pub attempts: u32,
    /// The most CNAME links followed for one name.
    pub max_cname_chain: usize,
    /// The most cache entries (one per name and type); 0 disables caching.
    pub cache_capacity: usize,
    /// The longest an answer is cached, whatever its TTL. Default a day.
    pub max_ttl: Duration,
    /// The longest a negative answer (NXDOMAIN, NODATA) is cached. Default
    /// an hour.
    pub max_negative_ttl: Duration,
    /// Seed of the generator for query IDs: `None` (the default) keys it
    /// from the operating system, so that IDs are unpredictable; a seed
    /// makes them a known sequence, for tests.
    pub seed: Option<u64>,
}

impl Default for ResolverConfig {
    /// 1 s per try, 3 tries, 10 s per lookup, 8 CNAME links, 1024 cache
    /// entries kept at most a day (negative ones an hour), IDs from the
    /// operating system's entropy.
    fn default() -> ResolverConfig {
        ResolverConfig {
            timeout: Duration::from_secs(1),
            lookup_timeout: Duration::from_secs(10),
            attempts: 3,
            max_cname_chain: 8,
            cache_capacity: 1024,
            max_ttl: Duration::from_secs(24 * 3600),
            max_negative_ttl: Duration::from_secs(3600),
            seed: None,
        }
    }
}

/// Why a name could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist (RCODE 3).
    #[error("no such domain")]
    NxDomain,
    /// The server failed (RCODE 2).
    #[error("server failure")]
    ServFail,
    /// The server refused to answer (RCODE 5).
    #[error("query refused")]
    Refused,
    /// Another error code (FORMERR, NOTIMP, ...).
    #[error("server answered {0:?}")]
    Rcode(Rcode),
    /// No acceptable reply came in time on any try.
    #[error("timed out")]
    TimedOut,
    /// The server's reply could not be parsed (and no good one came).
    #[error("malformed reply: {0}")]
    Malformed(DnsError),
    /// The CNAME chain is longer than allowed, or loops.
    #[error("CNAME chain too long")]
    CnameChain,
    /// The name given is not a valid domain name.
    #[error("bad name: {0}")]
    BadName(DnsError),
    /// A socket failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// A positive (possibly empty: NODATA) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The name asked for.
    pub name: Name,
    /// The end of the CNAME chain (the name itself when there is none).
    pub canonical: Name,
    /// The CNAME records followed, in order.
    pub cnames: Vec<Record>,
    /// The records of the type asked for at `canonical`; empty for NODATA.
    pub records: Vec<Record>,
}

#[derive(Debug, Clone)]
enum Cached {
    Records(Vec<Record>),
    NoData,
    NxDomain,
}

#[derive(Debug, Clone)]
struct Entry {
    expires: Instant,
    value: Cached,
}

/// What one server response says about the current name.
enum Step {
    Done(Result<Vec<Record>, ResolveError>),
    Moved,
}

/// What lookups share: the cache and the ID generator.
struct Shared {
    rng: KeyedRng,
    cache: HashMap<(Name, RecordType), Entry>,
}

/// A stub resolver asking one server over `N`; share it by reference (or
/// in an `Arc`) between threads.
pub struct Resolver<N: Network> {
    net: N,
    server: SocketAddr,
    config: ResolverConfig,
    shared: Mutex<Shared>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl<N: Network> core::fmt::Debug for Resolver<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Resolver")
            .field("server", &self.server)
            .field("config", &self.config)
            .field("cached", &self.cache_len())
            .finish()
    }
}

impl<N: Network> Resolver<N> {
    /// A resolver asking `server` through `net`, with the system clock.
    pub fn new(net: N, server: SocketAddr, config: ResolverConfig) -> Resolver<N> {
        Resolver::with_clock(net, server, config, Instant::now)
    }

    /// As [`Resolver::new`], reading TTL time from `clock` (per-try
    /// timeouts still use real time, since sockets wait in real time).
    pub fn with_clock(
        net: N,
        server: SocketAddr,
        config: ResolverConfig,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> Resolver<N> {
        Resolver {
            net,
            server,
            config,
            shared: Mutex::new(Shared {
                rng: KeyedRng::new(config.seed),
                cache: HashMap::new(),
            }),
            clock: Box::new(clock),
        }
    }

    /// The cache and ID generator, locked briefly (never across I/O).
    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of live and expired entries in the cache.
    pub fn cache_len(&self) -> usize {
        self.shared().cache.len()
    }

    /// Empties the cache.
    pub fn clear_cache(&self) {
        self.shared().cache.clear();
    }

    /// The IPv4 addresses of `name` (text, trailing dot optional); empty
    /// when the name exists without any.
    pub fn lookup_ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, ResolveError> {
        let name: Name = name.parse().map_err(ResolveError::BadName)?;
        let answer = self.resolve(&name, RecordType::A)?;
        Ok(answer
            .records
            .iter()
            .filter_map(|r| match r.data {
                RecordData::A(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    /// Resolves `name` for records of `rtype`, from the cache when it can,
    /// following CNAMEs (unless `rtype` is CNAME).
    pub fn resolve(&self, name: &Name, rtype: RecordType) -> Result<Answer, ResolveError> {
        let deadline = Instant::now() + self.config.lookup_timeout;
        let mut answer = Answer {
            name: name.clone(),
            canonical: name.clone(),
            cnames: Vec::new(),
            records: Vec::new(),
        };
        // Each round either answers or moves at least one CNAME link along
        // (or fails), so max_cname_chain + 1 queries suffice.
        for _ in 0..=self.config.max_cname_chain {
            if let Some(done) = self.walk_cache(&mut answer, rtype)? {
                return done.map(|records| Answer { records, ..answer });
            }
            let reply = self.query(&answer.canonical, rtype, deadline)?;
            if let Step::Done(r) = self.absorb(&reply, &mut answer, rtype)? {
                return r.map(|records| Answer { records, ..answer });
            }
        }
        Err(ResolveError::CnameChain)
    }

    /// Walks the cache from `answer.canonical`; `Some` when it answers.
    #[allow(clippy::type_complexity)]
    fn walk_cache(
        &self,
        answer: &mut Answer,
        rtype: RecordType,
    ) -> Result<Option<Result<Vec<Record>, ResolveError>>, ResolveError> {
        let now = (self.clock)();
        loop {
            let get = |t: RecordType| {
                self.shared()
                    .cache
                    .get(&(answer.canonical.clone(), t))
                    .filter(|e| e.expires > now)
                    .map(|e| e.value.clone())
            };
            match get(rtype) {
                Some(Cached::Records(r)) => return Ok(Some(Ok(r))),
                Some(Cached::NoData) => return Ok(Some(Ok(Vec::new()))),
                Some(Cached::NxDomain) => return Ok(Some(Err(ResolveError::NxDomain))),
                None => {}
            }
            if let Some(Cached::NxDomain) = get(RecordType::Cname) {
                return Ok(Some(Err(ResolveError::NxDomain)));
            }
            if rtype == RecordType::Cname {
                return Ok(None);
            }
            match get(RecordType::Cname) {
                Some(Cached::Records(r)) => self.link(answer, &r[0])?,
                _ => return Ok(None),
            }
        }
    }

    /// Follows one CNAME record from `answer.canonical`.
    fn link(&self, answer: &mut Answer, cname: &Record) -> Result<(), ResolveError> {
        let RecordData::Cname(target) = &cname.data else {
            return Err(ResolveError::CnameChain);
        };
        if answer.cnames.len() >= self.config.max_cname_chain
            || answer.cnames.iter().any(|r| &r.name == target)
            || target == &answer.name
        {
            return Err(ResolveError::CnameChain);
        }
        answer.cnames.push(cname.clone());
        answer.canonical = target.clone();
        Ok(())
    }

    /// Takes what a reply says: follows its CNAMEs, caches, and decides.
    fn absorb(
        &self,
        reply: &Message,
        answer: &mut Answer,
        rtype: RecordType,
    ) -> Result<Step, ResolveError> {
        let now = (self.clock)();
        let start = answer.canonical.clone();
        let mut records = Vec::new();
        // Bounded by max_cname_chain through `link`.
        loop {
            let here: Vec<&Record> = reply
                .answers
                .iter()
                .filter(|r| r.name == answer.canonical && r.class == Class::In)
                .collect();
            let wanted: Vec<Record> = here
                .iter()
                .filter(|r| r.rtype() == rtype)
                .map(|r| (*r).clone())
                .collect();
            if !wanted.is_empty() {
                records = wanted;
                break;
            }
            match here.iter().find(|r| r.rtype() == RecordType::Cname) {
                Some(c) if rtype != RecordType::Cname => {
                    let c = (*c).clone();
                    self.store(
                        now,
                        &answer.canonical,
                        RecordType::Cname,
                        ttl(&[&c]),
                        || Cached::Records(vec![c.clone()]),
                    );
                    self.link(answer, &c)?;
                }
                _ => break,
            }
        }
        let negative_ttl = negative_ttl(reply);
        match reply.header.rcode {
            Rcode::NoError => {}
            Rcode::NxDomain => {
                if let Some(t) = negative_ttl {
                    let name = answer.canonical.clone();
                    self.store(now, &name, RecordType::Cname, t, || Cached::NxDomain);
                }
                return Ok(Step::Done(Err(ResolveError::NxDomain)));
            }
            Rcode::ServFail => return Err(ResolveError::ServFail),
            Rcode::Refused => return Err(ResolveError::Refused),
            other => return Err(ResolveError::Rcode(other)),
        }
        let name = answer.canonical.clone();
        if !records.is_empty() {
            let refs: Vec<&Record> = records.iter().collect();
            let t = ttl(&refs);
            self.store(now, &name, rtype, t, || Cached::Records(records.clone()));
            return Ok(Step::Done(Ok(records)));
        }
        if let Some(t) = negative_ttl {
            self.store(now, &name, rtype, t, || Cached::NoData);
            return Ok(Step::Done(Ok(Vec::new())));
        }
        if name != start {
            // The chain ends without the type asked for: ask for the end.
            return Ok(Step::Moved);
        }
        Ok(Step::Done(Ok(Vec::new())))
    }

    fn store(
        &self,
        now: Instant,
        name: &Name,
        rtype: RecordType,
        ttl: u32,
        value: impl FnOnce() -> Cached,
    ) {
        if ttl == 0 || self.config.cache_capacity == 0 {
            return;
        }
        let value = value();
        let cap = match value {
            Cached::Records(_) => self.config.max_ttl,
            Cached::NoData | Cached::NxDomain => self.config.max_negative_ttl,
        };
        let lifetime = Duration::from_secs(u64::from(ttl)).min(cap);
        let key = (name.clone(), rtype);
        let mut shared = self.shared();
        let cache = &mut shared.cache;
        if !cache.contains_key(&key) && cache.len() >= self.config.cache_capacity {
            cache.retain(|_, e| e.expires > now);
            if cache.len() >= self.config.cache_capacity
                && let Some(victim) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&victim);
            }
        }
        let expires = now + lifetime;
        cache.insert(key, Entry { expires, value });
    }

    /// Asks the server once (with retries), over TCP if the UDP reply is
    /// truncated, giving up at `deadline`. Returns a reply that matches the
    /// question.
    fn query(
        &self,
        name: &Name,
        rtype: RecordType,
        deadline: Instant,
    ) -> Result<Message, ResolveError> {
        let id = self.shared().rng.next_u32() as u16;
        let question = Question {
            name: name.clone(),
            qtype: rtype,
            qclass: Class::In,
        };
        let query = Message {
            header: Header::query(id),
            questions: vec![question.clone()],
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        };
        let bytes = query.emit().map_err(ResolveError::Malformed)?;
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = self.net.bind_datagram(local)?;
        let mut malformed = None;
        let mut buf = vec![0u8; 65535];
        for _ in 0..self.config.attempts.max(1) {
            if time_left(deadline, None).is_none() {
                break;
            }
            sock.send_to(&bytes, self.server)?;
            let try_ends = (Instant::now() + self.config.timeout).min(deadline);
            for _ in 0..MAX_DATAGRAMS_PER_TRY {
                let Some(left) = time_left(try_ends, None) else {
                    break;
                };
                sock.set_read_timeout(Some(left))?;
                let (n, from) = match sock.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(e) if is_timeout(&e) => break,
                    Err(e) => return Err(e.into()),
                };
                if from != self.server {
                    log::debug!("dns: reply from {from}, not the server; ignored");
                    continue;
                }
                match accept(&buf[..n], id, &question) {
                    Ok(Some(reply)) if reply.header.tc => {
                        return self.query_tcp(&bytes, id, &question, deadline);
                    }
                    Ok(Some(reply)) => return Ok(reply),
                    Ok(None) => log::debug!("dns: mismatched reply ignored"),
                    Err(e) => malformed = Some(e),
                }
            }
        }
        Err(match malformed {
            Some(e) => ResolveError::Malformed(e),
            None => ResolveError::TimedOut,
        })
    }

    fn query_tcp(
        &self,
        query: &[u8],
        id: u16,
        question: &Question,
        deadline: Instant,
    ) -> Result<Message, ResolveError> {
        let tcp = |e: io::Error| {
            if is_timeout(&e) {
                ResolveError::TimedOut
            } else {
                ResolveError::Io(e)
            }
        };
        let connect =
            time_left(deadline, Some(self.config.timeout)).ok_or(ResolveError::TimedOut)?;
        let mut stream = self.net.connect_stream(self.server, connect).map_err(tcp)?;
        let mut stream = DeadlineStream::new(&mut stream, deadline);
        write_framed(&mut stream, query).map_err(tcp)?;
        let reply = read_framed(&mut stream)
            .map_err(tcp)?
            .ok_or_else(|| ResolveError::Io(io::ErrorKind::UnexpectedEof.into()))?;
        match accept(&reply, id, question) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(ResolveError::Malformed(DnsError::TrailingBytes(0))),
            Err(e) => Err(ResolveError::Malformed(e)),
        }
    }
}

/// Parses a reply and checks it answers our query: `Ok(None)` when it is
/// for something else, `Err` when a reply with our ID does not parse.
fn accept(bytes: &[u8], id: u16, question: &Question) -> Result<Option<Message>, DnsError> {
    if bytes.len() < 2 || u16::from_be_bytes([bytes[0], bytes[1]]) != id {
        return Ok(None);
    }
    let m = Message::parse(bytes)?;
    let ok = m.header.qr
        && m.header.opcode == super::Opcode::Query
        && m.questions.len() == 1
        && &m.questions[0] == question;
    Ok(ok.then_some(m))
}

/// The TTL of an RRset: its smallest, with the top bit meaning zero
/// (RFC 2181 §8, §5.2).
fn ttl(records: &[&Record]) -> u32 {
    records
        .iter()
        .map(|r| if r.ttl > i32::MAX as u32 { 0 } else { r.ttl })
        .min()
        .unwrap_or(0)
}

/// The negative-caching TTL of a reply: the SOA in the authority section,
/// its TTL capped by its MINIMUM (RFC 2308 §5); `None` without an SOA.
fn negative_ttl(reply: &Message) -> Option<u32> {
    reply.authorities.iter().find_map(|r| match r.data {
        RecordData::Soa { minimum, .. } => Some(ttl(&[r]).min(minimum)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        s.parse().unwrap()
    }

    fn question() -> Question {
        Question {
            name: n("www.example.test"),
            qtype: RecordType::A,
            qclass: Class::In,
        }
    }

    fn reply(id: u16) -> Message {
        let mut header = Header::query(id);
        header.qr = true;
        Message {
            header,
            questions: vec![question()],
            answers: vec![],
            authorities: vec![],
            additionals: vec![],
        }
    }

    #[test]
    fn accept_matches_id_question_and_qr() {
        let q = question();
        let ok = reply(7).emit().unwrap();
        assert!(accept(&ok, 7, &q).unwrap().is_some());
        assert!(accept(&ok, 8, &q).unwrap().is_none());
        let mut other = q.clone();
        other.qtype = RecordType::Aaaa;
        assert!(accept(&ok, 7, &other).unwrap().is_none());
        let mut not_reply = reply(7);
        not_reply.header.qr = false;
        assert!(accept(&not_reply.emit().unwrap(), 7, &q).unwrap().is_none());
        assert!(accept(&ok[..ok.len() - 1], 7, &q).is_err());
        assert!(accept(&[0], 7, &q).unwrap().is_none());
    }

    #[test]
    fn ttls_follow_rfc_2181_and_2308() {
        let rec = |ttl, data| Record {
            name: n("x"),
            class: Class::In,
            ttl,
            data,
        };
        let a = rec(300, RecordData::A(Ipv4Addr::LOCALHOST));
        let b = rec(100, RecordData::A(Ipv4Addr::LOCALHOST));
        let top = rec(0x8000_0000, RecordData::A(Ipv4Addr::LOCALHOST));
        assert_eq!(ttl(&[&a, &b]), 100);
        assert_eq!(ttl(&[&a, &top]), 0);
        let soa = |ttl, minimum| {
            rec(
                ttl,
                RecordData::Soa {
                    mname: n("a"),
                    rname: n("b"),
                    serial: 1,
                    refresh: 1,
                    retry: 1,
                    expire: 1,
                    minimum,
                },
            )
        };
        let mut m = reply(1);
        assert_eq!(negative_ttl(&m), None);
        m.authorities.push(soa(3600, 60));
        assert_eq!(negative_ttl(&m), Some(60));
        m.authorities[0] = soa(10, 60);
        assert_eq!(negative_ttl(&m), Some(10));
    }
}
