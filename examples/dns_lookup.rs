//! `dns_lookup`: asks a DNS server for one name and prints the answers
//! one per line, like `dig +short`.
//!
//! `dns_lookup --tap NAME --ip A.B.C.D/P [link options] --server IP[:PORT]
//! [--type A|AAAA|CNAME|MX|TXT|NS|SOA|PTR|SRV] NAME`
//!
//! Exits 0 with the answers (none for NODATA), 1 on NXDOMAIN or any
//! failure with a message on stderr, 2 on bad arguments.

#[path = "common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddr};

use netstrata::application::dns::resolver::{Resolver, ResolverConfig};
use netstrata::application::dns::{Name, Record, RecordData, RecordType};

const TOOL: &str = "dns_lookup";
const USAGE: &str = "--server IP[:PORT] [--type A|AAAA|CNAME|MX|TXT|NS|SOA|PTR|SRV] NAME";

fn main() {
    let (link, rest) = common::parse_args(TOOL, USAGE);
    let (mut server, mut rtype, mut name) = (None::<SocketAddr>, RecordType::A, None::<Name>);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--server" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| common::usage_error(TOOL, USAGE, "--server needs a value"));
                server = Some(match v.parse::<Ipv4Addr>() {
                    Ok(ip) => (ip, 53).into(),
                    Err(_) => v.parse().unwrap_or_else(|_| {
                        common::usage_error(TOOL, USAGE, &format!("invalid server {v:?}"))
                    }),
                });
            }
            "--type" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| common::usage_error(TOOL, USAGE, "--type needs a value"));
                rtype = parse_type(v).unwrap_or_else(|| {
                    common::usage_error(TOOL, USAGE, &format!("unknown type {v:?}"))
                });
            }
            other if name.is_none() && !other.starts_with('-') => {
                name = Some(other.parse().unwrap_or_else(|e| {
                    common::usage_error(TOOL, USAGE, &format!("invalid name {other:?}: {e}"))
                }));
            }
            other => common::usage_error(TOOL, USAGE, &format!("unexpected argument {other:?}")),
        }
    }
    let server =
        server.unwrap_or_else(|| common::usage_error(TOOL, USAGE, "--server IP is required"));
    let name = name.unwrap_or_else(|| common::usage_error(TOOL, USAGE, "NAME is required"));
    let rt = common::open(TOOL, &link);
    let resolver = Resolver::new(&rt, server, ResolverConfig::default());
    match resolver.resolve(&name, rtype) {
        Ok(answer) => {
            for r in answer.cnames.iter().chain(&answer.records) {
                println!("{}", short(r));
            }
        }
        Err(e) => {
            eprintln!("{TOOL}: {name}: {e}");
            std::process::exit(1)
        }
    }
}

fn parse_type(s: &str) -> Option<RecordType> {
    Some(match s.to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "CNAME" => RecordType::Cname,
        "MX" => RecordType::Mx,
        "TXT" => RecordType::Txt,
        "NS" => RecordType::Ns,
        "SOA" => RecordType::Soa,
        "PTR" => RecordType::Ptr,
        "SRV" => RecordType::Srv,
        _ => return None,
    })
}

/// The record data as `dig +short` prints it.
fn short(r: &Record) -> String {
    match &r.data {
        RecordData::A(a) => a.to_string(),
        RecordData::Aaaa(a) => a.to_string(),
        RecordData::Cname(n) | RecordData::Ns(n) | RecordData::Ptr(n) => n.to_string(),
        RecordData::Mx {
            preference,
            exchange,
        } => format!("{preference} {exchange}"),
        RecordData::Txt(strings) => strings
            .iter()
            .map(|s| {
                let mut out = String::from("\"");
                for &b in s {
                    match b {
                        b'"' | b'\\' => out.extend(['\\', b as char]),
                        0x20..=0x7e => out.push(b as char),
                        _ => out.push_str(&format!("\\{b:03}")),
                    }
                }
                out.push('"');
                out
            })
            .collect::<Vec<_>>()
            .join(" "),
        RecordData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => format!("{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => format!("{priority} {weight} {port} {target}"),
        RecordData::Unknown { rtype, data } => {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            format!("TYPE{rtype} \\# {} {hex}", data.len())
        }
    }
}
