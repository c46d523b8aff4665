//! The stub resolver ([`Resolver`]) against a fuzzed server, through a
//! fake [`Network`] whose sockets play a script.
//!
//! Input: a configuration byte (attempts, CNAME chain limit, cache size),
//! a record type byte, the name to look up (one length byte, then text),
//! then script events `[tag][length: 2 bytes][bytes]`, taken in order by
//! whatever the resolver does next:
//! - tags 0–2: a UDP datagram from the server; tag 3: one from another
//!   address; tag 4: a read timeout; tag 5: an I/O error; tag 6: the
//!   clock jumps (TTLs expire); tag 7: the stream of the next TCP
//!   fallback (at connect time; a 4 or 5 then refuses the connection);
//! - bit 0x10 of the tag gives the message the ID of the last query, and
//!   bit 0x20 puts the last query's question in front of its records
//!   (the event's bytes are then a header and the records after the
//!   question), so that replies match often. A TCP event is then framed
//!   with its length.
//!
//! When the script runs out every read times out at once. The name is
//! resolved three times, so the cache answers too.
//!
//! Checked, beyond "no panic" and "returns": an answer's CNAME chain is
//! linked from the name asked to its canonical name within the limit, and
//! its records are of the type asked, owned by the canonical name.
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use netstrata::application::dns::resolver::{Resolver, ResolverConfig};
use netstrata::application::dns::{Name, RecordData, RecordType};
use netstrata::application::net::{ByteStream, DatagramSocket, Network};
use netstrata_fuzz::Input;

const SERVER: &str = "192.0.2.53:53";
const ELSEWHERE: &str = "192.0.2.99:53";
const TYPES: [RecordType; 8] = [
    RecordType::A,
    RecordType::Aaaa,
    RecordType::Cname,
    RecordType::Mx,
    RecordType::Txt,
    RecordType::Soa,
    RecordType::Srv,
    RecordType::Ns,
];

/// One step of the server's script.
#[derive(Debug)]
struct Event {
    tag: u8,
    bytes: Vec<u8>,
}

/// The script and what the resolver last sent.
#[derive(Debug, Default)]
struct Script {
    events: VecDeque<Event>,
    last_query: Vec<u8>,
}

impl Script {
    /// An event's bytes with the last query's ID and question patched in,
    /// as its tag asks.
    fn patched(&self, event: &Event) -> Vec<u8> {
        let mut bytes = event.bytes.clone();
        let query = &self.last_query;
        if event.tag & 0x20 != 0 && query.len() > 12 && bytes.len() >= 12 {
            let mut with_question = bytes[..12].to_vec();
            with_question[4..6].copy_from_slice(&[0, 1]);
            with_question.extend_from_slice(&query[12..]);
            with_question.extend_from_slice(&bytes[12..]);
            bytes = with_question;
        }
        if event.tag & 0x10 != 0 && query.len() >= 2 && bytes.len() >= 2 {
            bytes[..2].copy_from_slice(&query[..2]);
        }
        bytes
    }
}

/// The resolver's network: sockets share the script.
#[derive(Clone)]
struct FuzzNet {
    script: Rc<RefCell<Script>>,
    /// Seconds added to the clock the resolver reads for TTLs.
    clock: Arc<AtomicU64>,
}

struct FuzzSocket {
    net: FuzzNet,
}

impl DatagramSocket for FuzzSocket {
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        assert_eq!(to, SERVER.parse().unwrap(), "query to another address");
        self.net.script.borrow_mut().last_query = buf.to_vec();
        Ok(buf.len())
    }

    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut script = self.net.script.borrow_mut();
        loop {
            let Some(event) = script.events.pop_front() else {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "script ended"));
            };
            let from = match event.tag & 7 {
                0..=2 => SERVER,
                3 => ELSEWHERE,
                4 => return Err(io::Error::new(io::ErrorKind::WouldBlock, "timeout")),
                5 => return Err(io::Error::other("fuzzed I/O error")),
                6 => {
                    // Up to four bytes of seconds: past any TTL.
                    let secs = event
                        .bytes
                        .iter()
                        .take(4)
                        .fold(0u64, |s, &b| s << 8 | u64::from(b));
                    self.net.clock.fetch_add(secs, Ordering::Relaxed);
                    continue;
                }
                // A TCP stream nobody asked for is skipped.
                _ => continue,
            };
            let bytes = script.patched(&event);
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            return Ok((n, from.parse().unwrap()));
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        assert!(timeout != Some(Duration::ZERO), "zero read timeout");
        Ok(())
    }
}

/// A TCP connection that replays fixed bytes, then ends.
struct FuzzStream {
    reply: io::Cursor<Vec<u8>>,
}

impl Read for FuzzStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reply.read(buf)
    }
}

impl Write for FuzzStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ByteStream for FuzzStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        assert!(timeout != Some(Duration::ZERO), "zero read timeout");
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        assert!(timeout != Some(Duration::ZERO), "zero write timeout");
        Ok(())
    }

    fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Network for FuzzNet {
    type Datagram = FuzzSocket;
    type Stream = FuzzStream;

    fn bind_datagram(&self, _local: SocketAddr) -> io::Result<FuzzSocket> {
        Ok(FuzzSocket { net: self.clone() })
    }

    fn connect_stream(&self, to: SocketAddr, _timeout: Duration) -> io::Result<FuzzStream> {
        assert_eq!(to, SERVER.parse().unwrap(), "TCP to another address");
        let mut script = self.script.borrow_mut();
        let tag = script.events.front().map(|e| e.tag & 7);
        let reply = match tag {
            Some(4) => {
                script.events.pop_front();
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
            }
            Some(5) => {
                script.events.pop_front();
                return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
            }
            Some(7) => {
                let event = script.events.pop_front().unwrap();
                let message = script.patched(&event);
                if event.tag & 0x10 != 0 {
                    let len = (message.len() as u16).to_be_bytes();
                    [&len[..], &message].concat()
                } else {
                    message
                }
            }
            _ => Vec::new(),
        };
        Ok(FuzzStream {
            reply: io::Cursor::new(reply),
        })
    }
}

fn config(b: u8) -> ResolverConfig {
    ResolverConfig {
        timeout: Duration::from_secs(1),
        attempts: u32::from(b & 3) + 1,
        max_cname_chain: usize::from((b >> 2) & 7),
        cache_capacity: [0, 2, 16, 1024][usize::from(b >> 5) & 3],
        seed: Some(u64::from(b)),
        ..ResolverConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = config(input.u8());
    let rtype = TYPES[usize::from(input.u8()) % TYPES.len()];
    let name_len = usize::from(input.u8());
    let text = String::from_utf8_lossy(input.bytes(name_len)).into_owned();
    let name: Name = text
        .parse()
        .unwrap_or_else(|_| "www.example.test".parse().unwrap());
    let mut script = Script::default();
    while !input.is_empty() {
        let tag = input.u8();
        let bytes = input.record().to_vec();
        script.events.push_back(Event { tag, bytes });
    }
    let net = FuzzNet {
        script: Rc::new(RefCell::new(script)),
        clock: Arc::new(AtomicU64::new(0)),
    };
    let base = Instant::now();
    let offset = net.clock.clone();
    let clock = move || base + Duration::from_secs(offset.load(Ordering::Relaxed));
    let resolver = Resolver::with_clock(net, SERVER.parse().unwrap(), config, clock);
    for _ in 0..3 {
        let Ok(answer) = resolver.resolve(&name, rtype) else {
            continue;
        };
        assert_eq!(answer.name, name);
        assert!(
            answer.cnames.len() <= config.max_cname_chain,
            "chain past its limit"
        );
        let mut at = &answer.name;
        for link in &answer.cnames {
            assert_eq!(&link.name, at, "CNAME chain broken");
            let RecordData::Cname(target) = &link.data else {
                panic!("a CNAME link that is not a CNAME: {link:?}");
            };
            at = target;
        }
        assert_eq!(
            at, &answer.canonical,
            "chain does not end at the canonical name"
        );
        for record in &answer.records {
            assert_eq!(record.rtype(), rtype, "answer of another type");
            assert_eq!(record.name, answer.canonical, "answer for another name");
        }
    }
    let _ = resolver.lookup_ipv4("www.example.test");
});
