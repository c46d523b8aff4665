//! What the command-line tools share: the link options, a small logger,
//! and opening the stack on a TAP or TUN device.
//!
//! Link options: `(--tap NAME | --tun NAME) --ip A.B.C.D/PREFIX [--gateway
//! A.B.C.D] [--mac XX:XX:XX:XX:XX:XX] [--pcap FILE] [--cc
//! cubic|newreno|bbr] [--pacing] [--no-offload] [--buffer BYTES]`, plus `-v` (or `RUST_LOG`) for logs. Bad arguments print a clear message and exit with status 2.
#![allow(dead_code)]

use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::exit;

use netstrata::blocking::Runtime;
use netstrata::internet::Ipv4Cidr;
use netstrata::link::{Device, EthernetAddress, PcapWriter, TapSleeper};
use netstrata::transport::tcp::CongestionAlgorithm;
use netstrata::{Interface, InterfaceConfig};

/// The interface a tool attaches to.
#[derive(Debug, Clone)]
pub enum LinkDevice {
    /// A TAP: Ethernet frames (`--tap NAME`).
    Tap(String),
    /// A TUN: bare IP packets, no ARP (`--tun NAME`).
    Tun(String),
}

/// The options every tool takes to attach to a link.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The interface to attach to.
    pub device: LinkDevice,
    pub ip: Ipv4Cidr,
    pub gateway: Option<Ipv4Addr>,
    pub mac: Option<EthernetAddress>,
    pub pcap: Option<PathBuf>,
    pub verbose: u8,
    /// TCP's congestion control (`--cc`).
    pub congestion: CongestionAlgorithm,
    /// Pace TCP's window-based controllers too (`--pacing`).
    pub pacing: bool,
    /// Ask the kernel for the virtio-net offloads on a TAP or a TUN
    /// (partial checksums both ways, its TCP super-frames taken whole,
    /// ours cut by it: [`netstrata::link::TapConfig::default`]); off with
    /// `--no-offload` ([`netstrata::link::TapConfig::plain`]).
    pub offload: bool,
    /// TCP's send and receive buffers, in bytes (`--buffer`), if not
    /// the default.
    pub buffer: Option<usize>,
}

pub const LINK_USAGE: &str = "(--tap NAME | --tun NAME) --ip A.B.C.D/PREFIX [--gateway A.B.C.D] [--mac XX:XX:XX:XX:XX:XX] [--pcap FILE] [--cc cubic|newreno|bbr] [--pacing] [--no-offload] [--buffer BYTES] [-v]";

/// Prints `msg` and the usage, and exits with status 2.
pub fn usage_error(tool: &str, usage: &str, msg: &str) -> ! {
    eprintln!("{tool}: {msg}");
    eprintln!("usage: {tool} {LINK_USAGE} {usage}");
    exit(2)
}

/// Parses the command line: link options are taken out, the rest is
/// returned in order for the tool to parse.
pub fn parse_args(tool: &str, usage: &str) -> (LinkOptions, Vec<String>) {
    let mut args = std::env::args().skip(1);
    let mut rest = Vec::new();
    let (mut device, mut ip, mut gateway, mut mac, mut pcap, mut verbose) =
        (None, None, None, None, None, 0u8);
    let (mut congestion, mut pacing, mut offload) = (CongestionAlgorithm::default(), false, true);
    let mut buffer = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage_error(tool, usage, &format!("{name} needs a value")))
        };
        match a.as_str() {
            "--tap" => device = Some(LinkDevice::Tap(value("--tap"))),
            "--tun" => device = Some(LinkDevice::Tun(value("--tun"))),
            "--ip" => {
                let v = value("--ip");
                ip = Some(
                    v.parse::<Ipv4Cidr>()
                        .unwrap_or_else(|e| usage_error(tool, usage, &e.to_string())),
                );
            }
            "--gateway" => {
                let v = value("--gateway");
                gateway = Some(v.parse::<Ipv4Addr>().unwrap_or_else(|_| {
                    usage_error(tool, usage, &format!("invalid gateway address {v:?}"))
                }));
            }
            "--mac" => {
                let v = value("--mac");
                mac = Some(
                    v.parse::<EthernetAddress>()
                        .unwrap_or_else(|e| usage_error(tool, usage, &e.to_string())),
                );
            }
            "--pcap" => pcap = Some(PathBuf::from(value("--pcap"))),
            "--cc" => {
                let v = value("--cc");
                congestion = CongestionAlgorithm::from_name(&v).unwrap_or_else(|| {
                    usage_error(tool, usage, &format!("unknown congestion control {v:?}"))
                });
            }
            "--pacing" => pacing = true,
            "--no-offload" => offload = false,
            "--buffer" => {
                let v = value("--buffer");
                buffer = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|b| (4096..=1 << 30).contains(b))
                        .unwrap_or_else(|| {
                            usage_error(
                                tool,
                                usage,
                                &format!("--buffer takes 4096 to 2^30 bytes, not {v:?}"),
                            )
                        }),
                );
            }
            "-v" => verbose += 1,
            "-vv" => verbose += 2,
            "-h" | "--help" => {
                println!("usage: {tool} {LINK_USAGE} {usage}");
                exit(0)
            }
            _ => rest.push(a),
        }
    }
    let device = device
        .unwrap_or_else(|| usage_error(tool, usage, "--tap NAME is required (or --tun NAME)"));
    let ip = ip.unwrap_or_else(|| usage_error(tool, usage, "--ip A.B.C.D/PREFIX is required"));
    init_logging(verbose);
    (
        LinkOptions {
            device,
            ip,
            gateway,
            mac,
            pcap,
            verbose,
            congestion,
            pacing,
            offload,
            buffer,
        },
        rest,
    )
}

/// Parses a number, or exits with status 2.
pub fn parse_num<T: std::str::FromStr>(
    tool: &str,
    usage: &str,
    name: &str,
    v: Option<&String>,
) -> T {
    let v = v.unwrap_or_else(|| usage_error(tool, usage, &format!("{name} needs a value")));
    v.parse()
        .unwrap_or_else(|_| usage_error(tool, usage, &format!("invalid value {v:?} for {name}")))
}

/// Opens the TAP device and starts the stack on it.
pub fn open(tool: &str, opts: &LinkOptions) -> Runtime {
    match try_open(opts) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{tool}: {e}");
            exit(1)
        }
    }
}

fn try_open(opts: &LinkOptions) -> Result<Runtime, Box<dyn std::error::Error>> {
    let cfg = interface_config(opts);
    match open_device(opts)? {
        OpenDevice::Tap(tap) => {
            let sleeper = tap.sleeper();
            start(cfg, tap, sleeper, opts)
        }
        OpenDevice::Tun(tun) => {
            let sleeper = tun.sleeper();
            start(cfg, tun, sleeper, opts)
        }
    }
}

/// The interface the options describe: address, gateway, our MAC (by
/// default one derived from the address: distinct from the kernel's side
/// of a TAP, unused on a TUN, which has no link addresses), and TCP's
/// settings.
pub fn interface_config(opts: &LinkOptions) -> InterfaceConfig {
    let mac = opts
        .mac
        .unwrap_or_else(|| EthernetAddress::local(u32::from(opts.ip.address())));
    let mut cfg = InterfaceConfig::new(mac, opts.ip);
    cfg.tcp.congestion = opts.congestion;
    cfg.tcp.pacing = opts.pacing;
    if let Some(b) = opts.buffer {
        cfg.tcp.send_buffer = b;
        cfg.tcp.recv_buffer = b;
    }
    if let Some(gw) = opts.gateway {
        cfg = cfg.with_gateway(gw);
    }
    cfg
}

/// A TAP or a TUN, opened.
pub enum OpenDevice {
    Tap(netstrata::link::TapDevice),
    Tun(netstrata::link::TunDevice),
}

/// Opens the device the options name, with the offloads they ask for,
/// and logs which the kernel accepted.
pub fn open_device(opts: &LinkOptions) -> Result<OpenDevice, netstrata::link::TapError> {
    let offloads = if opts.offload {
        netstrata::link::TapConfig::default()
    } else {
        netstrata::link::TapConfig::plain()
    };
    Ok(match &opts.device {
        LinkDevice::Tap(name) => {
            let tap = netstrata::link::TapDevice::open_with(name, offloads)?;
            let mac = interface_config(opts).mac;
            let offloads = [
                tap.checksum_offload(),
                tap.large_receive(),
                tap.segmentation(),
            ];
            announce(&format!("TAP {name}: {mac}"), opts, offloads);
            OpenDevice::Tap(tap)
        }
        LinkDevice::Tun(name) => {
            let tun = netstrata::link::TunDevice::open_with(name, offloads)?;
            let offloads = [
                tun.checksum_offload(),
                tun.large_receive(),
                tun.segmentation(),
            ];
            announce(&format!("TUN {name}:"), opts, offloads);
            OpenDevice::Tun(tun)
        }
    })
}

/// Logs what the stack runs on (`device`), and which offloads the kernel
/// accepted.
fn announce(device: &str, opts: &LinkOptions, [checksum, large, segmentation]: [bool; 3]) {
    let on = |yes: bool| if yes { "on" } else { "off" };
    log::info!(
        "{} on {device} {}, checksum offload {}, large receive {}, segmentation {}",
        env!("CARGO_PKG_NAME"),
        opts.ip,
        on(checksum),
        on(large),
        on(segmentation)
    );
}

/// Starts the stack on `device`, captured if asked. The interface takes
/// the capabilities of the device it is given: a capture has the stack
/// fill the checksums it records.
fn start<D: Device + Send + 'static>(
    cfg: InterfaceConfig,
    device: D,
    sleeper: TapSleeper,
    opts: &LinkOptions,
) -> Result<Runtime, Box<dyn std::error::Error>> {
    Ok(match &opts.pcap {
        Some(path) => {
            let device = capture(device, path)?;
            Runtime::new(Interface::new(cfg, device.capabilities()), device, sleeper)?
        }
        None => Runtime::new(Interface::new(cfg, device.capabilities()), device, sleeper)?,
    })
}

/// `device`, with every frame it sends and receives written to a pcap
/// file at `path`, timestamps counted from the Unix time now.
pub fn capture<D: Device>(
    device: D,
    path: impl AsRef<std::path::Path>,
) -> std::io::Result<PcapWriter<D, BufWriter<File>>> {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let file = BufWriter::new(File::create(path)?);
    Ok(PcapWriter::new(device, file, wall))
}

struct StderrLogger {
    level: log::LevelFilter,
    filters: Vec<(String, log::LevelFilter)>,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        let level = self
            .filters
            .iter()
            .filter(|(prefix, _)| m.target().starts_with(prefix.as_str()))
            .map(|(_, l)| *l)
            .next_back()
            .unwrap_or(self.level);
        m.level() <= level
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{} {}] {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

/// A minimal `RUST_LOG` reader: `level` or `target=level,...`; `-v` means
/// debug, `-vv` trace.
fn init_logging(verbose: u8) {
    let mut level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut filters = Vec::new();
    if let Ok(spec) = std::env::var("RUST_LOG") {
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, l)) => {
                    if let Ok(l) = l.parse() {
                        filters.push((target.to_string(), l));
                    }
                }
                None => {
                    if let Ok(l) = part.parse() {
                        level = l;
                    }
                }
            }
        }
    }
    let max = filters.iter().map(|(_, l)| *l).fold(level, |a, b| a.max(b));
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { level, filters }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max);
    }
}
