//! netstrata: a TCP/IP stack in user space.
//!
//! # A tour of the layers
//!
//! Each layer is a module, and each talks only to its neighbours through
//! traits; dependencies point down.
//!
//! - [`link`]: Ethernet II, ARP and devices. [`link::EthernetEndpoint`]
//!   frames datagrams and resolves next hops; it offers the layer above
//!   [`link::LinkEndpoint`]. Devices ([`link::Device`]) compose:
//!   [`link::MemoryNetwork`] ports, wrapped in [`link::FaultInjector`] or
//!   [`link::PcapWriter`].
//! - [`internet`]: IPv4, ICMP, routing, fragmentation and ping.
//!   [`internet::Ipv4Endpoint`] hands datagrams up through
//!   [`internet::TransportDispatcher`] and offers [`internet::IpSender`].
//! - [`transport`]: UDP and TCP, wire formats and connections, and the
//!   socket tables the sans-IO API is made of
//!   ([`transport::tcp::TcpSockets`], [`transport::udp::UdpSockets`];
//!   ping's is [`internet::ping::PingSockets`]).
//! - [`blocking`]: `std::net`-like sockets (`TcpStream`, `TcpListener`,
//!   `UdpSocket`) on a [`blocking::Runtime`] that drives an interface on
//!   its own thread.
//! - The [`application`] layer: DNS (codec, stub resolver, authoritative responder)
//!   and HTTP/1.1 (codec, client, server), on the blocking sockets.
//!
//! [`Interface`] wires one host's layers to one device and is driven by
//! [`Interface::poll`] with the current time; [`sim::Simulation`] runs
//! several hosts on a virtual clock. Shared plumbing: [`buf`] (packet
//! buffers with headroom), [`checksum`] (RFC 1071), [`time`], [`rand`].
//!
//! # Example
//!
//! Two hosts on an in-memory switch exchange a UDP datagram:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::sim::Simulation;
//! use netstrata::{Duration, Interface, InterfaceConfig};
//!
//! let net = MemoryNetwork::new(1500);
//! let mut sim = Simulation::new();
//! let mut host = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr);
//!     sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port))
//! };
//! let (a, b) = (host(1), host(2));
//! let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
//! let rx = sim.iface(b).udp().bind(any(7)).unwrap();
//! let tx = sim.iface(a).udp().bind(any(0)).unwrap();
//! let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
//! sim.iface(a).udp().send_to(tx, b"hello", dst).unwrap();
//! assert!(sim.run_while_not(Duration::from_secs(1), |s| s.iface(b).udp().can_recv(rx)));
//! let mut buf = [0; 1500];
//! let (n, from) = sim.iface(b).udp().recv_from(rx, &mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! assert_eq!(*from.ip(), Ipv4Addr::new(192, 0, 2, 1));
//! ```
//!
//! # Against a hostile network
//!
//! Nothing an attacker sees is predictable: every secret and random choice
//! (the keys of initial sequence numbers, timestamp offsets, IP
//! identifications and SYN cookies; ephemeral ports, ping identifiers, DNS
//! IDs) comes from the operating system's entropy, through
//! [`rand::KeyedRng`], unless [`InterfaceConfig::seed`] (or
//! [`application::dns::resolver::ResolverConfig::seed`]) asks for a
//! replayable run.
//!
//! Every table a peer can grow has a cap, counted in [`Counters`] when hit:
//!
//! - TCP, layer-wide ([`transport::tcp::TcpLimits`], set in
//!   [`InterfaceConfig::tcp_limits`]): SYN cookies beyond a listener's
//!   half-open cap, and half-open connections pruned early while it is
//!   more than half full; the accept queue (a handshake's last ACK dropped
//!   while it is full, so the client retries); orphans; TIME-WAIT records
//!   ([`transport::tcp::time_wait`]); the memory of all TCP buffers, with
//!   pressure and a hard limit. See [`transport::tcp::table`].
//! - TCP, per connection ([`transport::tcp::TcpConfig`]): buffer sizes,
//!   retransmission, orphan and probe limits, the rate of ACKs answering
//!   unacceptable segments; path MTU reductions ([`transport::tcp::pmtu`]).
//! - UDP send and receive queues ([`transport::udp::UdpConfig`]), fragment
//!   reassembly ([`internet::fragment::ReassemblyConfig`]), the ARP cache
//!   ([`link::ArpConfig`]), ICMP errors ([`internet::Ipv4Config`]).
//! - DNS ([`application::dns::resolver::ResolverConfig`]: a deadline per
//!   lookup, capped TTLs) and HTTP
//!   ([`application::http::server::ServerConfig`]).
//!
//! Queues count the memory a buffer keeps alive ([`buf::PacketBuf::truesize`]),
//! not the slice they hold, and copy small slices of large buffers out
//! ([`buf::worth_compacting`]). The README has the table of defaults and
//! what happens at each limit.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod application;
pub mod blocking;
pub mod buf;
pub mod checksum;
pub mod epoch;
pub mod error;
pub mod hash;
pub mod iface;
pub mod internet;
pub mod link;
pub mod rand;
pub mod ratelimit;
pub mod sim;
pub mod siphash;
pub mod slab;
pub mod time;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod transport;

pub use iface::{Counters, Interface, InterfaceConfig};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use time::{Duration, Instant};
