//! `http_get`: fetches one URL over netstrata, like a small `curl`.
//!
//! `http_get --tap NAME --ip A.B.C.D/P [link options] [--dns IP[:PORT]]
//! [-L] [-I] [-X METHOD] [-d DATA] [--timeout SECONDS] [-o FILE] URL`
//!
//! The URL's host is an IPv4 address, or a name resolved through the DNS
//! server given with `--dns` (netstrata's own resolver, over the stack).
//! The body is streamed to stdout or to FILE; the status line (`HTTP/1.1
//! 200 OK`) and errors go to stderr. `-L` follows up to 10 redirects, `-I`
//! sends HEAD, `-X` another method, `-d` sends DATA as the body (POST
//! unless `-X` says otherwise), and `--timeout` limits the whole request.
//!
//! Exits 0 for a 2xx status, 1 for any other status or failure (with a
//! message on stderr), 2 on bad arguments.

#[path = "common/mod.rs"]
mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

use netstrata::application::dns::resolver::{Resolver, ResolverConfig};
use netstrata::application::http::client::{Client, ClientError, Host, Request, Resolve, Url};
use netstrata::blocking::Runtime;

const TOOL: &str = "http_get";
const USAGE: &str =
    "[--dns IP[:PORT]] [-L] [-I] [-X METHOD] [-d DATA] [--timeout SECONDS] [-o FILE] URL";

/// Redirects followed with `-L`.
const REDIRECTS: usize = 10;

struct Options {
    url: Url,
    dns: Option<SocketAddr>,
    method: Option<String>,
    data: Option<Vec<u8>>,
    follow: bool,
    head: bool,
    timeout: Option<Duration>,
    output: Option<PathBuf>,
}

fn main() {
    let (link, rest) = common::parse_args(TOOL, USAGE);
    let opts = parse(&rest);
    let rt = common::open(TOOL, &link);
    let client = Client::new(&rt)
        .with_timeout(opts.timeout)
        .with_redirects(if opts.follow { REDIRECTS } else { 0 });
    let result = match opts.dns {
        Some(server) => {
            let resolver = Resolver::new(&rt, server, ResolverConfig::default());
            fetch(&client.with_resolver(resolver), &opts)
        }
        None => fetch(&client, &opts),
    };
    match result {
        Ok(true) => {}
        Ok(false) => exit(1),
        Err(e) => {
            eprintln!("{TOOL}: {}: {e}", opts.url);
            exit(1)
        }
    }
}

fn usage(msg: &str) -> ! {
    common::usage_error(TOOL, USAGE, msg)
}

fn parse(args: &[String]) -> Options {
    let (mut url, mut dns, mut method, mut data) = (None::<Url>, None, None, None);
    let (mut follow, mut head, mut timeout, mut output) = (false, false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--dns" => {
                let v = value("--dns");
                dns = Some(match v.parse::<Ipv4Addr>() {
                    Ok(ip) => (ip, 53).into(),
                    Err(_) => v
                        .parse::<SocketAddr>()
                        .unwrap_or_else(|_| usage(&format!("invalid DNS server {v:?}"))),
                });
            }
            "-L" | "--location" => follow = true,
            "-I" | "--head" => head = true,
            "-X" | "--request" => method = Some(value("-X")),
            "-d" | "--data" => data = Some(value("-d").into_bytes()),
            "-o" | "--output" => output = Some(PathBuf::from(value("-o"))),
            "--timeout" => {
                let v = value("--timeout");
                let secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .unwrap_or_else(|| usage(&format!("invalid timeout {v:?}")));
                timeout = Some(Duration::from_secs_f64(secs));
            }
            other if url.is_none() && !other.starts_with('-') => {
                url = Some(
                    Url::parse(other)
                        .unwrap_or_else(|e| usage(&format!("invalid URL {other:?}: {e}"))),
                );
            }
            other => usage(&format!("unexpected argument {other:?}")),
        }
    }
    let url = url.unwrap_or_else(|| usage("URL is required"));
    if matches!(url.host(), Host::Name(_)) && dns.is_none() {
        usage(&format!(
            "{} is a name: give a DNS server with --dns, or use an IP address",
            url.host()
        ));
    }
    if head && (method.is_some() || data.is_some()) {
        usage("-I cannot be used with -X or -d");
    }
    Options {
        url,
        dns,
        method,
        data,
        follow,
        head,
        timeout,
        output,
    }
}

/// Sends the request and streams the body out; whether the status was
/// 2xx.
fn fetch<R: Resolve>(client: &Client<&Runtime, R>, opts: &Options) -> Result<bool, ClientError> {
    let method = match (&opts.method, opts.head, &opts.data) {
        (Some(m), _, _) => m.clone(),
        (None, true, _) => "HEAD".to_string(),
        (None, false, Some(_)) => "POST".to_string(),
        (None, false, None) => "GET".to_string(),
    };
    let mut request = Request::new(method, opts.url.clone());
    if let Some(data) = &opts.data {
        request = request.with_body(data.clone());
    }
    let mut response = client.request(request)?;
    eprintln!("{}", response.status_line());
    let bytes = match &opts.output {
        Some(path) => {
            let file = File::create(path).map_err(ClientError::Output)?;
            let mut out = BufWriter::new(file);
            let n = response.copy_to(&mut out)?;
            out.flush().map_err(ClientError::Output)?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let n = response.copy_to(&mut out)?;
            out.flush().map_err(ClientError::Output)?;
            n
        }
    };
    log::info!("{bytes} bytes from {}", response.url());
    Ok(response.is_success())
}
