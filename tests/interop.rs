//! Interop with the Linux kernel: netstrata's command-line tools
//! (`examples/`) on a TAP device, against the kernel's own ARP, ICMP, UDP
//! and TCP and ordinary tools (ping, python3, socat, tcpdump, tshark), with
//! random loss from nftables and a bottleneck from tc's `tbf`.
//!
//! Each test makes a network namespace `nsi<pid>-<test>` holding one TAP,
//! `tap0`: the kernel is 198.18.0.1/24 on it, netstrata 198.18.0.2 with MAC
//! 02:00:c6:12:00:02 (the tools' default for that address, passed
//! explicitly). Those two addresses, in the RFC 2544 benchmarking range
//! 198.18.0.0/15, are the only ones used, and nothing leaves the namespace.
//!
//! Needs root (namespaces, TAP devices) and the packages `.ci/run`
//! installs. Without root each test prints `SKIPPED (needs root): ...` and
//! passes; when `CI` is set, a test that cannot set up its namespace fails
//! instead. With root:
//!
//! ```text
//! sudo -E env "PATH=$PATH" cargo test --test interop -- --nocapture
//! ```
//!
//! The tests build the tools themselves (`cargo build --examples`, same
//! target directory and profile as this test binary) and take turns (one
//! lock), so the throughput figures they print are not shared between
//! concurrent transfers. Every wait is bounded and kills what it waited
//! for; a guard kills whatever is left in a namespace and deletes it, even
//! when a test fails.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const TAP: &str = "tap0";
const KERNEL_IP: &str = "198.18.0.1";
const KERNEL_CIDR: &str = "198.18.0.1/24";
const STACK_IP: &str = "198.18.0.2";
/// A veth pair between a test's namespace and a second one
/// ([`Netns::veth_peer`]), on a subnet of its own.
const VETH: &str = "veth0";
const VETH_NEAR_CIDR: &str = "198.18.1.1/24";
const VETH_FAR_IP: &str = "198.18.1.2";
const VETH_FAR_CIDR: &str = "198.18.1.2/24";
const STACK_CIDR: &str = "198.18.0.2/24";
const STACK_MAC: &str = "02:00:c6:12:00:02";
const STACK_MAC_BYTES: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x02];
/// The random file sent each way in the TCP tests.
const BLOB_LEN: usize = 32 << 20;

/// What the offload tests send each way, over TAP and over TUN.
const OFFLOAD_BLOB_LEN: usize = 256 << 20;
/// A port nothing listens on, on either side.
const CLOSED_PORT: &str = "9";

/// One test at a time: transfers measure throughput, and the machine has
/// two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

// ---------------------------------------------------------------------------
// Set-up: root, tools, the example binaries, a namespace.

/// Whether the effective user is root (from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(tool).is_file())
    })
}

/// A namespace for `test`, or `None` after printing why this machine
/// cannot run it. In CI a test that cannot set itself up fails instead.
fn setup(test: &str, tools: &[&str]) -> Option<Netns> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let skip = |kind: &str, why: String| {
        assert!(
            !in_ci(),
            "{test}: the interop suite cannot set itself up in CI ({kind}): {why}"
        );
        eprintln!("SKIPPED ({kind}): {test}: {why}");
        None
    };
    if !is_root() {
        return skip(
            "needs root",
            "creates network namespaces and TAP devices; run \
             `sudo -E env \"PATH=$PATH\" cargo test --test interop`"
                .into(),
        );
    }
    let missing: Vec<&str> = ["ip", "kill"]
        .iter()
        .chain(tools)
        .copied()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        return skip(
            "missing tools",
            format!("{missing:?} not installed (`bash .ci/run` installs them)"),
        );
    }
    if !Path::new("/dev/net/tun").exists() {
        return skip(
            "no TUN/TAP",
            "/dev/net/tun does not exist (`modprobe tun`)".into(),
        );
    }
    examples_dir();
    match Netns::create(test, serial) {
        Ok(ns) => Some(ns),
        Err(e) => skip("cannot create a namespace", e),
    }
}

/// Where the example binaries are, after building them once per run with
/// the target directory and profile of this test binary.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // <target>/<profile>/deps/interop-<hash>
        let exe = std::env::current_exe().expect("path of the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "--examples",
            "--all-features",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => panic!("cannot tell the profile from {}", exe.display()),
        }
        let built = Proc::spawn("cargo build --examples", cmd).finish(Duration::from_secs(600));
        built.assert_success();
        let dir = profile_dir.join("examples");
        for tool in [
            "ping",
            "udp_echo",
            "tcp_sink",
            "tcp_source",
            "dns_lookup",
            "http_get",
            "http_server",
            "hyper",
        ] {
            assert!(
                dir.join(tool).is_file(),
                "{} missing after building the examples",
                dir.join(tool).display()
            );
        }
        dir
    })
}

// ---------------------------------------------------------------------------
// Child processes with bounded waits.

/// Everything a child wrote to one of its pipes, read by a thread.
#[derive(Clone, Default)]
struct Pipe {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
}

impl Pipe {
    fn drain(mut r: impl Read + Send + 'static) -> Pipe {
        let pipe = Pipe::default();
        let p = pipe.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                p.buf.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            p.eof.store(true, Ordering::SeqCst);
        });
        pipe
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

/// A running child. Dropping it kills it.
struct Proc {
    label: String,
    child: Option<Child>,
    out: Pipe,
    err: Pipe,
}

/// How a child ended, and what it printed.
struct Finished {
    label: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// The last `max` bytes of `s`, for failure messages.
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

impl Proc {
    fn spawn(label: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {cmd:?}: {e}"));
        let out = Pipe::drain(child.stdout.take().expect("piped stdout"));
        let err = Pipe::drain(child.stderr.take().expect("piped stderr"));
        Proc {
            label: label.to_string(),
            child: Some(child),
            out,
            err,
        }
    }

    fn transcript(&self) -> String {
        format!(
            "--- {} stdout:\n{}\n--- stderr:\n{}",
            self.label,
            tail(&self.out.text(), 4000),
            tail(&self.err.text(), 4000)
        )
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the child is still ours")
    }

    /// Waits until the child has printed `needle` (stdout or stderr).
    fn wait_for_output(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.out.text().contains(needle) || self.err.text().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child().try_wait() {
                panic!(
                    "{} exited ({status}) before printing {needle:?}\n{}",
                    self.label,
                    self.transcript()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {needle:?} within {timeout:?}\n{}",
                self.label,
                self.transcript()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGINT (as Ctrl-C would).
    fn interrupt(&mut self) {
        let pid = self.child().id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
    }

    /// Waits for the child to exit; kills it and fails after `timeout`.
    fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child().try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let mut child = self.child.take().expect("the child is still ours");
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{}: still running after {timeout:?}, killed\n{}",
                        self.label,
                        self.transcript()
                    );
                }
                Err(e) => panic!("{}: wait failed: {e}", self.label),
            }
        };
        self.child = None;
        // Let the readers reach end of file (bounded: something the child
        // started could still hold a pipe open).
        for _ in 0..200 {
            if self.out.eof.load(Ordering::SeqCst) && self.err.eof.load(Ordering::SeqCst) {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        Finished {
            label: self.label.clone(),
            status,
            stdout: self.out.text(),
            stderr: self.err.text(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Finished {
    fn transcript(&self) -> String {
        format!(
            "--- {} ({}) stdout:\n{}\n--- stderr:\n{}",
            self.label,
            self.status,
            tail(&self.stdout, 4000),
            tail(&self.stderr, 4000)
        )
    }

    fn assert_success(&self) -> &Finished {
        assert!(
            self.status.success(),
            "{} failed\n{}",
            self.label,
            self.transcript()
        );
        self
    }

    /// Asserts that stdout has a line starting with `prefix`; returns it.
    fn line_starting(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?}...\n{}", self.transcript()))
    }
}

// ---------------------------------------------------------------------------
// The namespace guard.

/// A network namespace with `tap0` configured as the kernel's side, and a
/// scratch directory. Dropping it kills every process left in the
/// namespace (all started by this test), deletes the namespace (and with
/// it its devices and rules) and the directory.
struct Netns {
    name: String,
    dir: PathBuf,
    // Dropped after `drop` has cleaned up, so the next test waits for it
    // (`None` for a test's second namespace, which the first one's guard
    // covers).
    _serial: Option<MutexGuard<'static, ()>>,
    /// The tools run without offloads (`--no-offload`): plain frames of
    /// at most the MTU, every checksum complete on both sides.
    plain: std::cell::Cell<bool>,
    /// A command the tools run under (a program and its arguments, the
    /// tool's command line appended).
    wrapper: std::cell::RefCell<Vec<String>>,
}

impl Netns {
    fn create(test: &str, serial: MutexGuard<'static, ()>) -> Result<Netns, String> {
        let ns = Netns::bare(format!("nsi{}-{test}", std::process::id()), Some(serial))?;
        for args in [
            &["ip", "tuntap", "add", "dev", TAP, "mode", "tap"][..],
            &["ip", "addr", "add", KERNEL_CIDR, "dev", TAP],
            &["ip", "link", "set", TAP, "up"],
        ] {
            ns.try_ok(args)?;
        }
        Ok(ns)
    }

    /// A namespace with only loopback up, and no IPv6 chatter (router
    /// solicitations, MLD) on its links.
    fn bare(name: String, serial: Option<MutexGuard<'static, ()>>) -> Result<Netns, String> {
        let dir = std::env::temp_dir().join(format!("netstrata-{name}"));
        let add = Proc::spawn("ip netns add", {
            let mut c = Command::new("ip");
            c.args(["netns", "add", &name]);
            c
        })
        .finish(Duration::from_secs(10));
        if !add.status.success() {
            return Err(format!(
                "`ip netns add {name}` failed: {}",
                add.stderr.trim()
            ));
        }
        // From here on the guard cleans up.
        let ns = Netns {
            name,
            dir,
            _serial: serial,
            plain: std::cell::Cell::new(false),
            wrapper: std::cell::RefCell::new(Vec::new()),
        };
        std::fs::create_dir_all(&ns.dir).map_err(|e| format!("{}: {e}", ns.dir.display()))?;
        ns.try_ok(&["ip", "link", "set", "lo", "up"])?;
        let _ = ns.run(
            &[
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
            Duration::from_secs(10),
        );
        Ok(ns)
    }

    /// Runs a quick set-up command, which must succeed.
    fn try_ok(&self, args: &[&str]) -> Result<(), String> {
        let done = self.run(args, Duration::from_secs(10));
        if done.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` failed: {}",
                args.join(" "),
                done.stderr.trim()
            ))
        }
    }

    /// A second namespace joined to this one by a veth pair, `VETH` here
    /// with [`VETH_NEAR_IP`] and `VETH` there with [`VETH_FAR_IP`], one
    /// packet per skb on both ends: the kernel on both sides of a link,
    /// to measure it against itself.
    fn veth_peer(&self) -> Netns {
        let peer = Netns::bare(format!("{}-p", self.name), None)
            .unwrap_or_else(|e| panic!("peer namespace: {e}"));
        self.ok(&[
            "ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH, "netns", &peer.name,
        ]);
        for (ns, cidr) in [(self, VETH_NEAR_CIDR), (&peer, VETH_FAR_CIDR)] {
            ns.ok(&["ip", "addr", "add", cidr, "dev", VETH]);
            ns.ok(&["ip", "link", "set", VETH, "gso_max_segs", "1", "up"]);
        }
        peer
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    fn spawn(&self, args: &[&str]) -> Proc {
        Proc::spawn(&args.join(" "), self.cmd(args))
    }

    fn run(&self, args: &[&str], timeout: Duration) -> Finished {
        self.spawn(args).finish(timeout)
    }

    /// Runs a quick command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let done = self.run(args, Duration::from_secs(30));
        done.assert_success();
        done.stdout
    }

    /// Starts a netstrata tool on the namespace's TAP.
    fn spawn_tool(&self, tool: &str, args: &[&str]) -> Proc {
        let path = examples_dir().join(tool);
        let path = path.to_str().expect("UTF-8 path");
        let wrapper = self.wrapper.borrow();
        let mut all: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        all.extend([path, "--tap", TAP, "--ip", STACK_CIDR, "--mac", STACK_MAC]);
        if self.plain.get() {
            all.push("--no-offload");
        }
        all.extend_from_slice(args);
        let mut p = self.spawn(&all);
        p.label = format!("{tool} {}", args.join(" "));
        p
    }

    fn run_tool(&self, tool: &str, args: &[&str], timeout: Duration) -> Finished {
        self.spawn_tool(tool, args).finish(timeout)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The namespace's IP counters (`/proc/net/snmp`, `Ip:` rows).
    fn ip_counters(&self) -> HashMap<String, i64> {
        let snmp = self.ok(&["cat", "/proc/net/snmp"]);
        let rows: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Ip:")).collect();
        assert_eq!(rows.len(), 2, "unexpected /proc/net/snmp:\n{snmp}");
        rows[0]
            .split_whitespace()
            .zip(rows[1].split_whitespace())
            .skip(1)
            .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(-1)))
            .collect()
    }

    /// Waits until a kernel socket listens on TCP `port`.
    fn wait_listening(&self, port: u16, listener: &mut Proc) {
        let filter = format!("sport = :{port}");
        for _ in 0..200 {
            if !self.ok(&["ss", "-Hltn", &filter]).trim().is_empty() {
                return;
            }
            if let Ok(Some(status)) = listener.child().try_wait() {
                panic!(
                    "{} exited ({status}) before listening\n{}",
                    listener.label,
                    listener.transcript()
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
        panic!("nothing listens on port {port}\n{}", listener.transcript());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in the namespace was started by this test.
        for _ in 0..50 {
            let pids = Command::new("ip")
                .args(["netns", "pids", &self.name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pids: Vec<&str> = pids.split_whitespace().collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// Shared steps.

/// Writes `len` pseudo-random bytes (fixed seed) to `path`.
fn write_blob(path: &Path, len: usize) {
    let mut rng = netstrata::rand::Rng::new(0x6e65_7473_7472_6174);
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        data.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).expect("write the test file");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {} failed", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

fn assert_same_file(sent: &Path, received: &Path) {
    let (a, b) = (sha256(sent), sha256(received));
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        a,
        b,
        "{} ({} bytes) differs from {} ({} bytes)",
        received.display(),
        len(received),
        sent.display(),
        len(sent)
    );
}

/// The `N bytes in S s = G Gbit/s` line of tcp_source and tcp_sink.
fn rate(done: &Finished) -> (u64, f64) {
    let line = done
        .stdout
        .lines()
        .find(|l| l.ends_with(" Gbit/s"))
        .unwrap_or_else(|| panic!("no throughput line\n{}", done.transcript()));
    let words: Vec<&str> = line.split_whitespace().collect();
    let bytes = words.first().and_then(|w| w.parse().ok());
    let gbit = words
        .get(words.len().wrapping_sub(2))
        .and_then(|w| w.parse().ok());
    match (bytes, gbit) {
        (Some(b), Some(g)) => (b, g),
        _ => panic!("cannot parse {line:?}"),
    }
}

/// A figure tcp_source prints to stderr: `retransmissions N, timeouts M`.
fn sender_stat(done: &Finished, name: &str) -> u64 {
    done.stderr
        .split(&format!("{name} "))
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} count\n{}", done.transcript()))
}

/// netstrata's `tcp_source` sends to socat on the kernel's side, which
/// writes `out`. Returns tcp_source's run (exit 0 asserted).
fn netstrata_to_linux(ns: &Netns, port: u16, source: &[&str], out: &Path) -> Finished {
    let listen = format!("TCP-LISTEN:{port},reuseaddr");
    let open = format!("OPEN:{},creat,trunc", out.display());
    let mut socat = ns.spawn(&["socat", "-u", &listen, &open]);
    ns.wait_listening(port, &mut socat);
    let dst = format!("{KERNEL_IP}:{port}");
    let mut args = vec!["--connect", &dst];
    args.extend_from_slice(source);
    let sent = ns.run_tool("tcp_source", &args, Duration::from_secs(150));
    sent.assert_success();
    socat.finish(Duration::from_secs(20)).assert_success();
    sent
}

/// socat on the kernel's side sends `file` to netstrata's `tcp_sink`,
/// which writes `out`. Returns tcp_sink's run (exit 0 asserted).
fn linux_to_netstrata(ns: &Netns, port: u16, file: &Path, out: &Path) -> Finished {
    linux_to_netstrata_with(ns, port, file, out, &[])
}

/// As [`linux_to_netstrata`], `tcp_sink` given `extra` arguments too.
fn linux_to_netstrata_with(
    ns: &Netns,
    port: u16,
    file: &Path,
    out: &Path,
    extra: &[&str],
) -> Finished {
    let port_arg = port.to_string();
    let out_arg = out.to_str().expect("UTF-8 path");
    let mut args = vec!["--port", &port_arg, "-o", out_arg];
    args.extend_from_slice(extra);
    let mut sink = ns.spawn_tool("tcp_sink", &args);
    sink.wait_for_output("listening on", Duration::from_secs(10));
    let from = format!("FILE:{}", file.display());
    let to = format!("TCP:{STACK_IP}:{port}");
    ns.run(&["socat", "-u", &from, &to], Duration::from_secs(150))
        .assert_success();
    let received = sink.finish(Duration::from_secs(60));
    received.assert_success();
    received
}

/// Sends `blob` both ways and checks both copies; returns the Gbit/s of
/// netstrata → Linux and Linux → netstrata, and netstrata's
/// retransmissions as a sender.
fn tcp_both_ways(ns: &Netns, blob: &Path, what: &str) -> (f64, f64, u64) {
    let out_a = ns.path("from-netstrata");
    let sent = netstrata_to_linux(ns, 5001, &["--file", blob.to_str().unwrap()], &out_a);
    assert_eq!(rate(&sent).0, BLOB_LEN as u64);
    assert_same_file(blob, &out_a);
    let _ = std::fs::remove_file(&out_a);

    let out_b = ns.path("to-netstrata");
    let received = linux_to_netstrata(ns, 5002, blob, &out_b);
    assert_eq!(rate(&received).0, BLOB_LEN as u64);
    assert_same_file(blob, &out_b);
    let _ = std::fs::remove_file(&out_b);

    let (up, down) = (rate(&sent).1, rate(&received).1);
    let rtx = sender_stat(&sent, "retransmissions");
    let rto = sender_stat(&sent, "timeouts");
    eprintln!(
        "interop: TCP {what}: netstrata -> Linux {up:.3} Gbit/s ({rtx} retransmissions, \
         {rto} timeouts), Linux -> netstrata {down:.3} Gbit/s ({} MiB each way, sha256 equal)",
        BLOB_LEN >> 20
    );
    (up, down, rtx)
}

const UDP_CLIENT: &str = r#"
import os, socket, sys
server = (sys.argv[1], int(sys.argv[2]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[3], 0))
s.settimeout(3.0)
for size in map(int, sys.argv[4:]):
    data = os.urandom(size)
    s.sendto(data, server)
    try:
        echo, frm = s.recvfrom(65535)
    except socket.timeout:
        print("timeout", size)
        continue
    if echo == data:
        print("ok", size, "%s:%d" % frm)
    else:
        diff = next((i for i, (a, b) in enumerate(zip(echo, data)) if a != b), min(len(echo), size))
        print("mismatch", size, "len", len(echo), "first-difference-at", diff, "%s:%d" % frm)
"#;

/// Echoes datagrams of `sizes` bytes off netstrata's `udp_echo` (which
/// must be running on port 7); asserts every echo is byte-exact and from
/// netstrata's port 7.
fn udp_round_trips(ns: &Netns, sizes: &[usize]) {
    udp_round_trips_between(ns, STACK_IP, KERNEL_IP, sizes);
}

/// As [`udp_round_trips`], to netstrata at `stack` from the kernel's
/// address `kernel`.
fn udp_round_trips_between(ns: &Netns, stack: &str, kernel: &str, sizes: &[usize]) {
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let mut args = vec!["python3", "-c", UDP_CLIENT, stack, "7", kernel];
    args.extend(sizes.iter().map(String::as_str));
    let done = ns.run(&args, Duration::from_secs(60));
    done.assert_success();
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(lines.len(), sizes.len(), "{}", done.transcript());
    for (line, size) in lines.iter().zip(&sizes) {
        assert_eq!(
            *line,
            format!("ok {size} {stack}:7"),
            "datagram of {size} bytes\n{}",
            done.transcript()
        );
    }
}

/// The kernel pings netstrata (once with an echo it must fragment) and
/// echoes UDP datagrams of every size class, fragmented ones included,
/// off `udp_echo`, which must be running on port 7.
fn pings_and_echoes(ns: &Netns) {
    for size in ["56", "4000"] {
        ns.run(
            &[
                "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-s", size, STACK_IP,
            ],
            Duration::from_secs(20),
        )
        .assert_success();
    }
    udp_round_trips(ns, &[1, 100, 1472, 1473, 8000]);
}

const CONNECT_CLIENT: &str = r#"
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5.0)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("ECONNREFUSED")
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno), e)
"#;

/// A closed netstrata port refuses a Linux connect (netstrata must be up).
fn linux_connect_refused(ns: &Netns) {
    let done = ns.run(
        &["python3", "-c", CONNECT_CLIENT, STACK_IP, CLOSED_PORT],
        Duration::from_secs(20),
    );
    done.assert_success();
    assert_eq!(done.stdout.trim(), "ECONNREFUSED", "{}", done.transcript());
}

/// netstrata's connect to a closed kernel port fails at once with
/// "refused".
fn netstrata_connect_refused(ns: &Netns) {
    let dst = format!("{KERNEL_IP}:{CLOSED_PORT}");
    let start = Instant::now();
    let done = ns.run_tool(
        "tcp_source",
        &["--connect", &dst, "--bytes", "1"],
        Duration::from_secs(30),
    );
    let took = start.elapsed();
    assert!(
        !done.status.success(),
        "tcp_source succeeded\n{}",
        done.transcript()
    );
    assert!(
        done.stderr.to_lowercase().contains("refused"),
        "no \"refused\" in stderr\n{}",
        done.transcript()
    );
    assert!(
        took < Duration::from_secs(5),
        "refusal took {took:?}: not from the first RST"
    );
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn addresses_stay_in_the_benchmarking_range() {
    for a in [KERNEL_IP, STACK_IP] {
        let a: Ipv4Addr = a.parse().unwrap();
        assert_eq!(
            u32::from(a) & 0xfffe_0000,
            0xc612_0000,
            "{a} not in 198.18.0.0/15"
        );
    }
    let stack: Ipv4Addr = STACK_IP.parse().unwrap();
    assert_eq!(
        netstrata::link::EthernetAddress::local(u32::from(stack)).to_string(),
        STACK_MAC,
        "STACK_MAC is the tools' default MAC for STACK_IP"
    );
}

/// ARP both ways; Linux pings netstrata (56 and 4000 bytes), netstrata's
/// `ping` pings Linux.
#[test]
fn ping_both_ways() {
    let Some(ns) = setup("ping", &["ping"]) else {
        return;
    };
    let neigh = |ns: &Netns| ns.ok(&["ip", "neigh", "show", STACK_IP, "dev", TAP]);
    assert_eq!(neigh(&ns).trim(), "", "the kernel knows netstrata already");

    // Linux -> netstrata: the kernel has to ARP for 198.18.0.2 first.
    let mut echo = ns.spawn_tool("udp_echo", &["--port", "7"]);
    echo.wait_for_output("echoing on", Duration::from_secs(10));
    let before = ns.ip_counters();
    let small = ns.run(
        &["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", STACK_IP],
        Duration::from_secs(20),
    );
    small.assert_success();
    for seq in 1..=3 {
        small.line_starting(&format!(
            "64 bytes from {STACK_IP}: icmp_seq={seq} ttl=64 time="
        ));
    }
    assert!(
        small
            .stdout
            .contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{}",
        small.transcript()
    );
    let entry = neigh(&ns);
    assert!(
        entry.contains(&format!("lladdr {STACK_MAC}"))
            && !entry.contains("FAILED")
            && !entry.contains("INCOMPLETE"),
        "kernel neighbour entry for netstrata: {entry:?}"
    );

    let big = ns.run(
        &[
            "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", STACK_IP,
        ],
        Duration::from_secs(20),
    );
    big.assert_success();
    for seq in 1..=2 {
        big.line_starting(&format!(
            "4008 bytes from {STACK_IP}: icmp_seq={seq} ttl=64 time="
        ));
    }
    let after = ns.ip_counters();
    let delta = |k: &str| after[k] - before[k];
    // Each 4028-byte request left in three fragments; each reply came back
    // in fragments from netstrata and was reassembled.
    assert_eq!(delta("FragCreates"), 6, "{before:?} -> {after:?}");
    assert_eq!(delta("ReasmOKs"), 2, "{before:?} -> {after:?}");
    assert_eq!(delta("ReasmFails"), 0, "{before:?} -> {after:?}");
    drop(echo);

    // netstrata -> Linux: a fresh stack ARPs for the kernel.
    ns.ok(&["ip", "neigh", "flush", "dev", TAP]);
    let before = ns.ip_counters();
    let mut running = ns.spawn_tool("ping", &[KERNEL_IP, "-c", "3", "-i", "0.3"]);
    running.wait_for_output("icmp_seq=1 ", Duration::from_secs(10));
    // The kernel learnt netstrata's address from its ARP request. (Only
    // while a tool holds the TAP: without carrier the kernel forgets it.)
    let entry = neigh(&ns);
    assert!(
        entry.contains(&format!("lladdr {STACK_MAC}")),
        "kernel neighbour entry for netstrata: {entry:?}"
    );
    let ping = running.finish(Duration::from_secs(20));
    ping.assert_success();
    for seq in 1..=3 {
        let line = ping.line_starting(&format!(
            "64 bytes from {KERNEL_IP}: icmp_seq={seq} ttl=64 time="
        ));
        let ms: f64 = line
            .rsplit_once("time=")
            .and_then(|(_, t)| t.strip_suffix(" ms"))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("bad time in {line:?}"));
        assert!((0.0..1000.0).contains(&ms), "{line}");
    }
    assert!(
        ping.stdout
            .contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{}",
        ping.transcript()
    );

    let big = ns.run_tool(
        "ping",
        &[KERNEL_IP, "-c", "1", "-s", "4000"],
        Duration::from_secs(20),
    );
    big.assert_success();
    big.line_starting(&format!(
        "4008 bytes from {KERNEL_IP}: icmp_seq=1 ttl=64 time="
    ));
    let after = ns.ip_counters();
    let delta = |k: &str| after[k] - before[k];
    assert_eq!(delta("ReasmOKs"), 1, "{before:?} -> {after:?}");
    assert_eq!(delta("FragCreates"), 3, "{before:?} -> {after:?}");
}

/// UDP datagrams of 1 to 8000 bytes from a Linux socket come back from
/// netstrata's `udp_echo` byte for byte.
#[test]
fn udp_echo_is_byte_exact() {
    let Some(ns) = setup("udp", &["python3"]) else {
        return;
    };
    let sizes = [
        1usize, 2, 17, 100, 548, 1000, 1471, 1472, 1473, 1480, 2000, 2952, 2953, 4000, 8000,
    ];
    let mut echo = ns.spawn_tool("udp_echo", &["--port", "7"]);
    echo.wait_for_output("echoing on", Duration::from_secs(10));
    let before = ns.ip_counters();
    udp_round_trips(&ns, &sizes);
    let after = ns.ip_counters();
    let delta = |k: &str| after[k] - before[k];
    // Datagrams over 1472 bytes travel as fragments of at most 1480 bytes
    // of IP payload: the kernel made them one way and reassembled
    // netstrata's the other.
    let fragmented: Vec<usize> = sizes.iter().copied().filter(|&s| s + 8 > 1480).collect();
    let fragments: usize = fragmented.iter().map(|s| (s + 8).div_ceil(1480)).sum();
    assert_eq!(
        delta("FragCreates"),
        fragments as i64,
        "{before:?} -> {after:?}"
    );
    assert_eq!(
        delta("ReasmOKs"),
        fragmented.len() as i64,
        "{before:?} -> {after:?}"
    );
    assert_eq!(delta("ReasmFails"), 0, "{before:?} -> {after:?}");
    drop(echo);
}

/// TCP both ways against the kernel with socat, 32 MiB of random data and
/// a `--bytes` stream; sha256 must match.
#[test]
fn tcp_both_ways_against_socat() {
    let Some(ns) = setup("tcp", &["socat", "sha256sum", "ss"]) else {
        return;
    };
    // A generated stream: N bytes of 0x5a.
    let n: usize = 8 << 20;
    let out = ns.path("bytes");
    let n_arg = n.to_string();
    let sent = netstrata_to_linux(&ns, 5000, &["--bytes", &n_arg], &out);
    assert_eq!(rate(&sent).0, n as u64);
    let data = std::fs::read(&out).expect("read socat's file");
    assert_eq!(data.len(), n);
    assert!(data.iter().all(|&b| b == 0x5a), "corrupted --bytes stream");
    drop(data);

    let blob = ns.path("blob");
    write_blob(&blob, BLOB_LEN);
    tcp_both_ways(&ns, &blob, "clean link");
}

/// Drops `percent`% of the IPv4 packets crossing `dev`, each way
/// and independently (nftables `numgen random`), replacing any loss set
/// before. One packet per skb (`gso_max_segs 1`): otherwise a rule drops
/// a whole 64 KiB GSO burst. Rules sit on the device's ingress and egress
/// hooks, where a drop is link loss; on the inet output hook the kernel's
/// TCP would see a local error instead, so that hook is the fallback
/// only. Returns the table's family, for [`loss_counters`].
fn random_loss(ns: &Netns, dev: &str, percent: u32) -> &'static str {
    ns.ok(&["ip", "link", "set", dev, "gso_max_segs", "1"]);
    let netdev = format!(
        "flush ruleset
         table netdev lossy {{
           chain rx {{ type filter hook ingress device \"{dev}\" priority 0; meta protocol ip numgen random mod 100 < {percent} counter drop; }}
           chain tx {{ type filter hook egress device \"{dev}\" priority 0; meta protocol ip numgen random mod 100 < {percent} counter drop; }}
         }}"
    );
    let inet = format!(
        "flush ruleset
         table inet lossy {{
           chain rx {{ type filter hook input priority 0; iifname \"{dev}\" numgen random mod 100 < {percent} counter drop; }}
           chain tx {{ type filter hook output priority 0; oifname \"{dev}\" numgen random mod 100 < {percent} counter drop; }}
         }}"
    );
    let rules = ns.path("lossy.nft");
    std::fs::write(&rules, &netdev).unwrap();
    let rules_arg = rules.to_str().unwrap();
    if ns
        .run(&["nft", "-f", rules_arg], Duration::from_secs(10))
        .status
        .success()
    {
        return "netdev";
    }
    eprintln!("interop: no nftables egress hook; dropping on the inet input/output hooks");
    std::fs::write(&rules, &inet).unwrap();
    ns.ok(&["nft", "-f", rules_arg]);
    "inet"
}

/// Packets dropped by [`random_loss`]'s rules: (to netstrata, from it).
fn loss_counters(ns: &Netns, table: &str) -> (u64, u64) {
    let listing = ns.ok(&["nft", "list", "table", table, "lossy"]);
    let drops: Vec<u64> = listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(drops.len(), 2, "{listing}");
    (drops[0], drops[1])
}

/// The same transfers with ~3% random loss each way (nftables), and the
/// counters prove packets were dropped.
#[test]
fn tcp_survives_random_loss() {
    let Some(ns) = setup("loss", &["socat", "sha256sum", "ss", "nft"]) else {
        return;
    };
    // The drops and the queue act on what crosses the TAP: a
    // super-segment there would be lost or queued as one unit, not as the
    // segments a wire would carry. The frames stay plain.
    ns.plain.set(true);
    let table = random_loss(&ns, TAP, 3);
    let blob = ns.path("blob");
    write_blob(&blob, BLOB_LEN);
    let (_, _, rtx) = tcp_both_ways(&ns, &blob, "3% random loss each way");
    assert!(rtx > 0, "netstrata never retransmitted through 3% loss");

    let (to, from) = loss_counters(&ns, table);
    assert!(to > 100 && from > 100, "too few drops: {to}, {from}");
    eprintln!("interop: nftables ({table}) dropped {to} packets to netstrata and {from} from it");
}

/// The median of some figures.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The kernel's socat sends `file` to socat in `receiver` over the veth
/// pair, which writes `out`; returns Gbit/s from connect to close (the
/// senders' own figures start at the established connection: this one is
/// a round trip and a process start lower than it would be).
fn linux_to_linux(sender: &Netns, receiver: &Netns, port: u16, file: &Path, out: &Path) -> f64 {
    let listen = format!("TCP-LISTEN:{port},reuseaddr");
    let open = format!("OPEN:{},creat,trunc", out.display());
    let mut socat = receiver.spawn(&["socat", "-u", &listen, &open]);
    receiver.wait_listening(port, &mut socat);
    let from = format!("FILE:{}", file.display());
    let to = format!("TCP:{VETH_FAR_IP}:{port}");
    let start = Instant::now();
    sender
        .run(&["socat", "-u", &from, &to], Duration::from_secs(150))
        .assert_success();
    let elapsed = start.elapsed();
    socat.finish(Duration::from_secs(20)).assert_success();
    let len = std::fs::metadata(file).expect("the sent file").len();
    len as f64 * 8.0 / elapsed.as_secs_f64() / 1e9
}

/// netstrata as a sender against the kernel as a sender on lossy paths:
/// 16 MiB per transfer (`INTEROP_LOSS_MIB`), 0% (the same rules, dropping
/// nothing), 1% and then 3% random loss each way on the receiver's device,
/// rounds rotating which goes first (`INTEROP_LOSS_ROUNDS`, 3 by default).
/// CUBIC everywhere but in the fourth. Four transfers a round:
///
/// - netstrata -> the kernel, over the TAP device;
/// - netstrata with BBR -> the kernel, the same way (the issue's stretch:
///   random loss is not congestion);
/// - the kernel -> netstrata, over the same device (the issue's yardstick:
///   the same path, but netstrata's receiver, which acknowledges every
///   batch of segments it reads at once);
/// - the kernel -> the kernel, over a veth pair to a second namespace:
///   the same receiver as netstrata's, whose delayed and compressed ACKs
///   shape the sender's recovery as much as the sender does.
///
/// Prints the medians, netstrata's retransmissions and timeouts, and both
/// ratios; fails if a transfer is not byte-exact or the rules dropped
/// nothing at 1% or 3% (or anything at 0%): the figures are measurements,
/// not pass marks. The Linux -> Linux time runs until the sending socat
/// exits, which can be before the kernel has sent the last of its buffer:
/// that ratio, if anything, flatters the kernel.
#[test]
fn tcp_sender_against_linux_under_random_loss() {
    let Some(ns) = setup("lossrate", &["socat", "sha256sum", "ss", "nft"]) else {
        return;
    };
    // The drops and the queue act on what crosses the TAP: a
    // super-segment there would be lost or queued as one unit, not as the
    // segments a wire would carry. The frames stay plain.
    ns.plain.set(true);
    let peer = ns.veth_peer();
    // The namespace inherits the host's default algorithm (BBR on some
    // machines), and a namespace may not change its default: routes set
    // CUBIC for the kernel's connections.
    ns.ok(&[
        "ip", "route", "add", STACK_IP, "dev", TAP, "src", KERNEL_IP, "congctl", "cubic",
    ]);
    ns.ok(&[
        "ip",
        "route",
        "add",
        VETH_FAR_IP,
        "dev",
        VETH,
        "congctl",
        "cubic",
    ]);
    for (ns, dst) in [(&ns, STACK_IP), (&ns, VETH_FAR_IP)] {
        let route = ns.ok(&["ip", "route", "get", dst]);
        assert!(route.contains("congctl cubic"), "{route}");
    }
    let rounds: usize = std::env::var("INTEROP_LOSS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // The issue's 16 MiB by default; `INTEROP_LOSS_MIB` for longer
    // transfers, in which more of the kernel's rounds meet a timeout.
    let mib: usize = std::env::var("INTEROP_LOSS_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&m| m > 0)
        .unwrap_or(16);
    let len = mib << 20;
    let blob = ns.path("blob");
    write_blob(&blob, len);
    let mut port = 5200;
    let mut report = Vec::new();
    // 0% first: the same four transfers through the same rules, none of
    // them dropping, separate what the path costs a sender from what loss
    // does.
    for percent in [0, 1, 3] {
        let table = random_loss(&ns, TAP, percent);
        let peer_table = random_loss(&peer, VETH, percent);
        let (mut ours, mut to_us, mut kernel, mut bbr) = (vec![], vec![], vec![], vec![]);
        let (mut rtx, mut rto, mut bbr_rto) = (0, 0, 0);
        for round in 0..rounds {
            for k in 0..4 {
                port += 1;
                let out = ns.path("received");
                match (round + k) % 4 {
                    0 => {
                        let file = ["--file", blob.to_str().unwrap()];
                        let sent = netstrata_to_linux(&ns, port, &file, &out);
                        assert_eq!(rate(&sent).0, len as u64);
                        ours.push(rate(&sent).1);
                        rtx += sender_stat(&sent, "retransmissions");
                        rto += sender_stat(&sent, "timeouts");
                    }
                    3 => {
                        let args = ["--cc", "bbr", "--file", blob.to_str().unwrap()];
                        let sent = netstrata_to_linux(&ns, port, &args, &out);
                        assert_eq!(rate(&sent).0, len as u64);
                        bbr.push(rate(&sent).1);
                        bbr_rto += sender_stat(&sent, "timeouts");
                    }
                    1 => {
                        let received = linux_to_netstrata(&ns, port, &blob, &out);
                        assert_eq!(rate(&received).0, len as u64);
                        to_us.push(rate(&received).1);
                    }
                    _ => kernel.push(linux_to_linux(&ns, &peer, port, &blob, &out)),
                }
                assert_same_file(&blob, &out);
                let _ = std::fs::remove_file(&out);
            }
        }
        for (ns, table) in [(&ns, table), (&peer, peer_table)] {
            let (to, from) = loss_counters(ns, table);
            if percent == 0 {
                assert_eq!((to, from), (0, 0), "dropped at 0%");
            } else {
                assert!(to > 0 && from > 0, "nothing dropped at {percent}%");
            }
        }
        let (a, b, c, d) = (
            median(ours.clone()),
            median(to_us.clone()),
            median(kernel.clone()),
            median(bbr.clone()),
        );
        report.push(format!(
            "interop: {percent}% loss each way, {mib} MiB x {rounds}, medians: netstrata -> Linux \
             {a:.3} Gbit/s (rounds {ours:.3?}; {rtx} retransmissions, {rto} timeouts in all); \
             Linux -> netstrata {b:.3} (rounds {to_us:.3?}); Linux -> Linux {c:.3} (rounds \
             {kernel:.3?}). netstrata / Linux as senders: {:.2} into netstrata's receiver, \
             {:.2} into the kernel's. netstrata with BBR -> Linux {d:.3} (rounds {bbr:.3?}; \
             {bbr_rto} timeouts): {:.2} of Linux's CUBIC into the kernel's receiver",
            a / b,
            a / c,
            d / c
        ));
        eprintln!("{}", report.last().unwrap());
    }
    for line in report {
        eprintln!("{line}");
    }
}

/// The same transfers through a 50 Mbit/s token bucket: on the kernel's
/// egress (root qdisc) and, through an ifb device, on its ingress.
#[test]
fn tcp_through_a_bottleneck() {
    let Some(ns) = setup("tbf", &["socat", "sha256sum", "ss", "tc"]) else {
        return;
    };
    // The drops and the queue act on what crosses the TAP: a
    // super-segment there would be lost or queued as one unit, not as the
    // segments a wire would carry. The frames stay plain.
    ns.plain.set(true);
    let tbf = [
        "tbf", "rate", "50mbit", "burst", "32kbit", "latency", "50ms",
    ];
    let mut args = vec!["tc", "qdisc", "add", "dev", TAP, "root"];
    args.extend_from_slice(&tbf);
    ns.ok(&args);
    let ifb = "ifbtap";
    let shaped_in = ns
        .run(
            &["ip", "link", "add", ifb, "type", "ifb"],
            Duration::from_secs(10),
        )
        .status
        .success();
    if shaped_in {
        ns.ok(&["ip", "link", "set", ifb, "up"]);
        let mut args = vec!["tc", "qdisc", "add", "dev", ifb, "root"];
        args.extend_from_slice(&tbf);
        ns.ok(&args);
        ns.ok(&[
            "tc", "qdisc", "add", "dev", TAP, "handle", "ffff:", "ingress",
        ]);
        ns.ok(&[
            "tc", "filter", "add", "dev", TAP, "parent", "ffff:", "protocol", "ip", "u32", "match",
            "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb,
        ]);
    } else {
        eprintln!("interop: no ifb device: netstrata -> Linux is not shaped");
    }

    let blob = ns.path("blob");
    write_blob(&blob, BLOB_LEN);
    let (up, down, _) = tcp_both_ways(&ns, &blob, "50 Mbit/s tbf bottleneck");

    let sent_through = |dev: &str| -> u64 {
        let stats = ns.ok(&["tc", "-s", "qdisc", "show", "dev", dev]);
        stats
            .split("Sent ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {stats}"))
    };
    assert!(sent_through(TAP) > BLOB_LEN as u64, "tbf bypassed");
    // Goodput at most the token rate (less headers), and not starved.
    assert!(
        (0.02..0.051).contains(&down),
        "Linux -> netstrata {down} Gbit/s"
    );
    if shaped_in {
        assert!(sent_through(ifb) > BLOB_LEN as u64, "ifb tbf bypassed");
        assert!(
            (0.02..0.051).contains(&up),
            "netstrata -> Linux {up} Gbit/s"
        );
    }
}

/// Connecting to a closed port is refused by an RST, each way.
#[test]
fn closed_ports_refuse_both_ways() {
    let Some(ns) = setup("refused", &["python3", "socat"]) else {
        return;
    };
    netstrata_connect_refused(&ns);

    let mut sink = ns.spawn_tool("tcp_sink", &["--port", "5001"]);
    sink.wait_for_output("listening on", Duration::from_secs(10));
    linux_connect_refused(&ns);
    let to = format!("TCP:{STACK_IP}:{CLOSED_PORT}");
    let socat = ns.run(&["socat", "-u", "/dev/null", &to], Duration::from_secs(20));
    assert!(!socat.status.success(), "{}", socat.transcript());
    assert!(
        socat.stderr.contains("Connection refused"),
        "{}",
        socat.transcript()
    );
    drop(sink);
}

// ---------------------------------------------------------------------------
// The capture.

/// What tshark must never report, from netstrata or from the kernel.
const BAD_FILTER: &str = common::TSHARK_BAD_FILTER;

/// Runs tshark over `pcap` with checksum validation on, judging the link,
/// internet and transport layers only (see [`common::tshark`]).
fn tshark(pcap: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = common::tshark();
    cmd.arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "occurrence=f"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let done = Proc::spawn("tshark", cmd).finish(Duration::from_secs(120));
    done.assert_success();
    done.stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The frames of a classic pcap file (either byte order, µs or ns).
fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("read the capture");
    assert!(data.len() >= 24, "capture too short");
    let magic = [data[0], data[1], data[2], data[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a classic pcap file: magic {magic:02x?}"),
    };
    let u32_at = |i: usize| {
        let b = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = u32_at(at + 8) as usize;
        let start = at + 16;
        assert!(start + len <= data.len(), "truncated record at {at}");
        frames.push(data[start..start + len].to_vec());
        at = start + len;
    }
    frames
}

/// Writes a negative control from a real capture: three of netstrata's
/// frames (UDP, TCP with data, ICMP echo reply), each intact and then with
/// one payload byte flipped, and the ICMP one once more with its TTL
/// changed. tshark must flag exactly the four damaged frames.
fn negative_control(capture: &Path, listing: &[Vec<String>], dir: &Path) {
    let frames = pcap_frames(capture);
    assert_eq!(
        frames.len(),
        listing.len(),
        "tshark and the pcap reader disagree"
    );
    let pick = |what: &str, ok: &dyn Fn(&[String]) -> bool| -> Vec<u8> {
        let row = listing
            .iter()
            .find(|r| r[1] == STACK_MAC && r[3] == "0" && r[4] == "0" && ok(r))
            .unwrap_or_else(|| panic!("no unfragmented {what} frame from netstrata"));
        frames[row[0].parse::<usize>().expect("frame number") - 1].clone()
    };
    let udp = pick("UDP", &|r| r[2].contains(":ip:udp") && r[5].is_empty());
    let tcp = pick("TCP data", &|r| r[6].parse::<u32>().is_ok_and(|n| n > 0));
    let icmp = pick("ICMP echo reply", &|r| r[5] == "0");
    // Flip the last byte of the IP packet (not Ethernet padding).
    let flip_last = |f: &[u8]| {
        let mut f = f.to_vec();
        let ip_len = usize::from(u16::from_be_bytes([f[16], f[17]]));
        f[14 + ip_len - 1] ^= 0x01;
        f
    };
    let mut ttl = icmp.clone();
    ttl[14 + 8] ^= 0x01;
    let control = [
        udp.clone(),
        flip_last(&udp),
        tcp.clone(),
        flip_last(&tcp),
        icmp.clone(),
        flip_last(&icmp),
        ttl,
    ];
    let path = dir.join("control.pcap");
    let mut sink =
        netstrata::link::PcapSink::new(BufWriter::new(File::create(&path).unwrap()), 1_700_000_000);
    for (i, f) in control.iter().enumerate() {
        sink.record(netstrata::Instant::from_micros(i as u64), f);
    }
    drop(sink.into_inner());
    let bad: Vec<String> = tshark(&path, Some(BAD_FILTER), &["frame.number"])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(bad, ["2", "4", "6", "7"], "tshark's verdict on the control");
}

/// tcpdump on the kernel's side of the TAP, writing `pcap`, once it is
/// listening.
fn kernel_capture(ns: &Netns, pcap: &Path) -> Proc {
    let pcap = pcap.to_str().expect("UTF-8 path");
    let mut tcpdump = ns.spawn(&["tcpdump", "-n", "-U", "-B", "16384", "-i", TAP, "-w", pcap]);
    tcpdump.wait_for_output("listening on", Duration::from_secs(20));
    tcpdump
}

/// A whole run (ARP, pings, UDP, TCP, refused connections) captured with
/// tcpdump on the kernel's side of the TAP, the tools without offloads
/// (`offloads_against_the_kernel` checks what they change): tshark finds
/// nothing malformed, no expert error and no bad checksum, and the same
/// filter does flag damaged copies of netstrata's frames.
#[test]
fn capture_of_a_whole_run_is_clean() {
    let Some(ns) = setup(
        "pcap",
        &["tcpdump", "tshark", "python3", "socat", "ping", "ss"],
    ) else {
        return;
    };
    ns.plain.set(true);
    let pcap = ns.path("run.pcap");
    let mut tcpdump = kernel_capture(&ns, &pcap);

    let mut echo = ns.spawn_tool("udp_echo", &["--port", "7"]);
    echo.wait_for_output("echoing on", Duration::from_secs(10));
    pings_and_echoes(&ns);
    linux_connect_refused(&ns);
    drop(echo);

    ns.run_tool(
        "ping",
        &[KERNEL_IP, "-c", "2", "-i", "0.2", "-s", "3000"],
        Duration::from_secs(20),
    )
    .assert_success();
    let blob = ns.path("blob");
    write_blob(&blob, 4 << 20);
    let out = ns.path("from-netstrata");
    netstrata_to_linux(&ns, 5001, &["--file", blob.to_str().unwrap()], &out);
    assert_same_file(&blob, &out);
    let out = ns.path("to-netstrata");
    linux_to_netstrata(&ns, 5002, &blob, &out);
    assert_same_file(&blob, &out);
    netstrata_connect_refused(&ns);

    tcpdump.interrupt();
    let dump = tcpdump.finish(Duration::from_secs(20));
    dump.assert_success();
    eprintln!(
        "interop: tcpdump: {}",
        dump.stderr.lines().collect::<Vec<_>>().join("; ")
    );

    let listing = tshark(
        &pcap,
        None,
        &[
            "frame.number",
            "eth.src",
            "frame.protocols",
            "ip.flags.mf",
            "ip.frag_offset",
            "icmp.type",
            "tcp.len",
            "tcp.flags.reset",
            "arp.opcode",
        ],
    );
    let ours: Vec<&Vec<String>> = listing.iter().filter(|r| r[1] == STACK_MAC).collect();
    let has = |what: &str, ok: &dyn Fn(&[String]) -> bool| {
        assert!(
            ours.iter().any(|r| ok(r)),
            "no {what} from netstrata in the capture"
        );
    };
    has("ARP request", &|r| r[8] == "1");
    has("ARP reply", &|r| r[8] == "2");
    has("ICMP echo request", &|r| r[5] == "8");
    has("ICMP echo reply", &|r| r[5] == "0");
    has("first fragment", &|r| r[3] == "1" && r[4] == "0");
    has("last fragment", &|r| {
        r[3] == "0" && r[4] != "0" && !r[4].is_empty()
    });
    has("UDP datagram", &|r| r[2].contains(":udp"));
    has("TCP data", &|r| r[6].parse::<u32>().is_ok_and(|n| n > 1000));
    has("TCP reset", &|r| r[7] == "1");
    assert!(
        ours.len() > 2000,
        "only {} frames from netstrata",
        ours.len()
    );

    let bad = tshark(
        &pcap,
        Some(BAD_FILTER),
        &[
            "frame.number",
            "eth.src",
            "frame.protocols",
            "_ws.expert.message",
        ],
    );
    let (bad_ours, bad_kernel): (Vec<_>, Vec<_>) = bad.iter().partition(|r| r[1] == STACK_MAC);
    assert!(
        bad_ours.is_empty(),
        "tshark flags {} of netstrata's frames: {bad_ours:?}",
        bad_ours.len()
    );
    assert!(
        bad_kernel.is_empty(),
        "tshark flags {} of the kernel's frames: {bad_kernel:?}",
        bad_kernel.len()
    );
    eprintln!(
        "interop: capture of {} frames ({} from netstrata): none malformed, no expert error, no bad checksum",
        listing.len(),
        ours.len()
    );

    negative_control(&pcap, &listing, &ns.dir);
}

/// Whether `frame` (Ethernet) carries an unfragmented IPv4 TCP or UDP
/// datagram whose checksum field holds exactly the pseudo-header's sum:
/// the partial checksum of transmit offload, which the receiving kernel
/// completes or trusts.
fn partial_checksum(frame: &[u8]) -> bool {
    use netstrata::checksum::{Checksum, transport_checksum};
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let Some(t) = transport_checksum(ip[9]).filter(|t| t.pseudo_header) else {
        return false;
    };
    if fragment || total < ihl + t.min_len || ip.len() < ihl + t.min_len {
        return false;
    }
    let src = [ip[12], ip[13], ip[14], ip[15]].into();
    let dst = [ip[16], ip[17], ip[18], ip[19]].into();
    let mut pseudo = Checksum::new();
    pseudo.add_ipv4_pseudo_header(src, dst, ip[9], (total - ihl) as u16);
    let field = &ip[ihl + t.offset..ihl + t.offset + 2];
    u16::from_be_bytes([field[0], field[1]]) == pseudo.sum()
}

/// The offloads against the kernel (the tools' default: a virtio-net
/// header on the TAP, partial checksums both ways, the kernel's TCP
/// super-frames taken whole and netstrata's cut by the kernel): TCP both
/// ways byte for byte (32 MiB captured, then 256 MiB, sha256 compared),
/// UDP echoes and pings both ways, fragmented ones included (their
/// checksums cannot be left to the device). tshark reads netstrata's own
/// captures as clean (they complete the kernel's partial checksums and
/// show each super-segment as the segments it stands for); in the
/// kernel's tcpdump, taken before either side's "hardware" would finish
/// them, the only checksums flagged are partial ones, each exactly the
/// pseudo-header's sum, and both sides' super-segments are there whole.
#[test]
fn offloads_against_the_kernel() {
    let Some(ns) = setup(
        "offload",
        &[
            "tcpdump",
            "tshark",
            "python3",
            "socat",
            "ping",
            "ss",
            "sha256sum",
        ],
    ) else {
        return;
    };
    let kernel_pcap = ns.path("kernel.pcap");
    let mut tcpdump = kernel_capture(&ns, &kernel_pcap);
    let on = |done: &Finished| {
        assert!(
            done.stderr
                .contains("checksum offload on, large receive on, segmentation on"),
            "offloads not in use\n{}",
            done.transcript()
        );
    };

    let mut echo = ns.spawn_tool("udp_echo", &["--port", "7", "-v"]);
    echo.wait_for_output("echoing on", Duration::from_secs(10));
    pings_and_echoes(&ns);
    echo.interrupt();
    on(&echo.finish(Duration::from_secs(10)));

    let pinged = ns.run_tool(
        "ping",
        &[KERNEL_IP, "-c", "2", "-i", "0.2", "-s", "3000", "-v"],
        Duration::from_secs(20),
    );
    pinged.assert_success();
    on(&pinged);

    let blob = ns.path("blob");
    write_blob(&blob, BLOB_LEN);
    let out = ns.path("from-netstrata");
    let source_pcap = ns.path("source.pcap");
    let sent = netstrata_to_linux(
        &ns,
        5001,
        &[
            "--file",
            blob.to_str().unwrap(),
            "-v",
            "--pcap",
            source_pcap.to_str().unwrap(),
        ],
        &out,
    );
    on(&sent);
    assert_same_file(&blob, &out);
    let _ = std::fs::remove_file(&out);
    let sink_pcap = ns.path("sink.pcap");
    let out = ns.path("to-netstrata");
    let received = linux_to_netstrata_with(
        &ns,
        5002,
        &blob,
        &out,
        &["-v", "--pcap", sink_pcap.to_str().unwrap()],
    );
    on(&received);
    assert_same_file(&blob, &out);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&blob);

    tcpdump.interrupt();
    tcpdump.finish(Duration::from_secs(20)).assert_success();

    // 256 MiB each way, uncaptured.
    let (sent, received) = transfers_both_ways(&ns, &[], OFFLOAD_BLOB_LEN);
    on(&sent);
    on(&received);
    eprintln!(
        "interop: TCP with the offloads: netstrata -> Linux {:.3} Gbit/s, Linux -> netstrata {:.3} Gbit/s ({} MiB each way, sha256 equal)",
        rate(&sent).1,
        rate(&received).1,
        OFFLOAD_BLOB_LEN >> 20
    );

    // The TAP is persistent, and its offloads outlive the tools that set
    // them: a tool with --no-offload must turn them off, or the kernel's
    // partial checksums reach a stack that verifies them, and fail.
    let mut echo = ns.spawn_tool("udp_echo", &["--port", "7", "--no-offload", "-v"]);
    echo.wait_for_output(
        "checksum offload off, large receive off, segmentation off",
        Duration::from_secs(10),
    );
    udp_round_trips(&ns, &[1, 1472]);
    drop(echo);

    // netstrata's captures: every frame as a wire would carry it, the
    // kernel's partial checksums completed, each super-segment the
    // segments the kernel cut it into.
    for pcap in [&sink_pcap, &source_pcap] {
        let bad = tshark(
            pcap,
            Some(BAD_FILTER),
            &["frame.number", "frame.protocols", "_ws.expert.message"],
        );
        assert!(
            bad.is_empty(),
            "{}: tshark flags {} frames, first {:?}",
            pcap.display(),
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
    // Both captures show the wire's frames: the super-frames each side
    // took or made, cut.
    for pcap in [&sink_pcap, &source_pcap] {
        assert!(
            pcap_frames(pcap).iter().all(|f| f.len() <= 1514),
            "{}: a frame longer than the link allows",
            pcap.display()
        );
    }
    let ours = |f: &Vec<u8>| f.get(6..12) == Some(&STACK_MAC_BYTES[..]);

    // The kernel's capture, taken where each side's frames are still
    // partial: every checksum flagged is exactly a partial one, and both
    // sides sent many.
    let frames = pcap_frames(&kernel_pcap);
    let bad = tshark(&kernel_pcap, Some(BAD_FILTER), &["frame.number"]);
    let partial: Vec<bool> = frames.iter().map(|f| partial_checksum(f)).collect();
    for row in &bad {
        let n: usize = row[0].parse().expect("a frame number");
        assert!(
            partial[n - 1],
            "tshark flags frame {n} of the kernel's capture, not a partial checksum: {:02x?}",
            &frames[n - 1][..frames[n - 1].len().min(80)]
        );
    }
    let (mut from_us, mut from_kernel) = (0, 0);
    for (f, &p) in frames.iter().zip(&partial) {
        if p && ours(f) {
            from_us += 1;
        } else if p {
            from_kernel += 1;
        }
    }
    assert!(
        from_us > 300 && from_kernel > 300,
        "partial checksums in the kernel's capture: {from_us} from netstrata, {from_kernel} from the kernel"
    );
    // Each side's super-segments crossed the TAP whole.
    let (mut super_ours, mut super_kernel) = (0, 0);
    for f in frames.iter().filter(|f| f.len() > 1514) {
        if ours(f) {
            super_ours += 1;
        } else {
            super_kernel += 1;
        }
    }
    assert!(
        super_ours > 100 && super_kernel > 100,
        "super-segments in the kernel's capture: {super_ours} from netstrata, {super_kernel} from the kernel"
    );
    eprintln!(
        "interop: offloads: {} frames on the kernel's side, super-segments {super_ours} from netstrata and {super_kernel} from the kernel; partial checksums {from_us} from netstrata and {from_kernel} from the kernel, every other checksum valid",
        frames.len()
    );
}

/// Runs a `len`-byte file each way between netstrata (the tools given
/// `extra`) and the kernel's socat, sha256 compared, the files removed
/// after. Returns the runs of tcp_source and tcp_sink.
fn transfers_both_ways(ns: &Netns, extra: &[&str], len: usize) -> (Finished, Finished) {
    let blob = ns.path("big-blob");
    write_blob(&blob, len);
    let out = ns.path("big-from-netstrata");
    let mut args = vec!["--file", blob.to_str().unwrap(), "-v"];
    args.extend_from_slice(extra);
    let sent = netstrata_to_linux(ns, 5003, &args, &out);
    assert_same_file(&blob, &out);
    let _ = std::fs::remove_file(&out);
    let out = ns.path("big-to-netstrata");
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    let received = linux_to_netstrata_with(ns, 5004, &blob, &out, &args);
    assert_same_file(&blob, &out);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&blob);
    (sent, received)
}

/// Runs the command line it is given with `ioctl(TUNSETOFFLOAD)` refused
/// (EINVAL, as a kernel without the offloads answers), by a seccomp
/// filter that the program it runs inherits.
const REFUSE_OFFLOADS_PY: &str = r#"
import ctypes, os, platform, struct, sys
arch, ioctl = {"x86_64": (0xC000003E, 16), "aarch64": (0xC00000B7, 29)}[platform.machine()]
TUNSETOFFLOAD = 0x400454D0
LD, JEQ, RET = 0x20, 0x15, 0x06
ALLOW, ERRNO_EINVAL = 0x7FFF0000, 0x00050000 | 22
prog = [
    (LD, 0, 0, 4), (JEQ, 0, 5, arch),
    (LD, 0, 0, 0), (JEQ, 0, 3, ioctl),
    (LD, 0, 0, 24), (JEQ, 0, 1, TUNSETOFFLOAD),
    (RET, 0, 0, ERRNO_EINVAL), (RET, 0, 0, ALLOW),
]
raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
buf = ctypes.create_string_buffer(raw)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Prog(len(prog), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
    sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"#;

/// A kernel that refuses the offloads (`TUNSETOFFLOAD` fails; seccomp
/// plays that kernel) gets plain frames from the tools, asked for the
/// offloads as they are by default: they say so, and pings, UDP echoes
/// and TCP both ways (sha256 compared) work as without offloads.
#[test]
fn a_kernel_that_refuses_the_offloads_gets_plain_frames() {
    let Some(ns) = setup("refused", &["python3", "socat", "sha256sum", "ss", "ping"]) else {
        return;
    };
    let script = ns.path("refuse-offloads.py");
    std::fs::write(&script, REFUSE_OFFLOADS_PY).expect("write the script");
    *ns.wrapper.borrow_mut() = vec!["python3".into(), script.to_str().unwrap().into()];
    let plain = "checksum offload off, large receive off, segmentation off";
    let mut echo = ns.spawn_tool("udp_echo", &["--port", "7", "-v"]);
    echo.wait_for_output(plain, Duration::from_secs(10));
    assert!(
        echo.err.text().contains("refused"),
        "the refusal is not logged\n{}",
        echo.transcript()
    );
    pings_and_echoes(&ns);
    drop(echo);
    let (sent, received) = transfers_both_ways(&ns, &[], BLOB_LEN);
    for run in [&sent, &received] {
        assert!(run.stderr.contains(plain), "{}", run.transcript());
    }
    eprintln!(
        "interop: offloads refused: plain frames, netstrata -> Linux {:.3} Gbit/s, Linux -> netstrata {:.3} Gbit/s ({} MiB each way, sha256 equal)",
        rate(&sent).1,
        rate(&received).1,
        BLOB_LEN >> 20
    );
}

const TUN: &str = "tun0";
const TUN_KERNEL_IP: &str = "198.18.2.1";
const TUN_STACK_IP: &str = "198.18.2.2";

/// The tools over a TUN (`--tun`: bare IP packets, no Ethernet header, no
/// ARP), against the kernel routing into it: pings both ways (fragmented
/// too, and from a /32 with the far end as gateway) and UDP echoes of 1 to
/// 8000 bytes, the echoes plain (`--no-offload`); TCP both ways byte for
/// byte with the offloads (partial checksums, the kernel's super-frames
/// taken whole, ours cut by the kernel), 32 MiB captured, then 256 MiB;
/// and netstrata's capture, raw IP, clean under tshark (the kernel's
/// partial checksums completed in it, our super-segments shown cut).
#[test]
fn tun_against_the_kernel() {
    let Some(ns) = setup(
        "tun",
        &["socat", "ping", "python3", "tshark", "sha256sum", "ss"],
    ) else {
        return;
    };
    let kernel_cidr = format!("{TUN_KERNEL_IP}/24");
    ns.ok(&["ip", "tuntap", "add", "dev", TUN, "mode", "tun"]);
    ns.ok(&["ip", "addr", "add", &kernel_cidr, "dev", TUN]);
    ns.ok(&["ip", "link", "set", TUN, "up"]);
    let stack_cidr = format!("{TUN_STACK_IP}/24");
    let tool = |name: &str, args: &[&str]| {
        let path = examples_dir().join(name);
        let mut all = vec![
            path.to_str().expect("UTF-8 path"),
            "--tun",
            TUN,
            "--ip",
            &stack_cidr,
        ];
        all.extend_from_slice(args);
        let mut p = ns.spawn(&all);
        p.label = format!("{name} --tun {}", args.join(" "));
        p
    };

    let mut echo = tool("udp_echo", &["--port", "7", "--no-offload", "-v"]);
    echo.wait_for_output("echoing on", Duration::from_secs(10));
    assert!(
        echo.err.text().contains("on TUN tun0"),
        "{}",
        echo.transcript()
    );
    for size in ["56", "4000"] {
        ns.run(
            &[
                "ping",
                "-n",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "2",
                "-s",
                size,
                TUN_STACK_IP,
            ],
            Duration::from_secs(20),
        )
        .assert_success();
    }
    udp_round_trips_between(
        &ns,
        TUN_STACK_IP,
        TUN_KERNEL_IP,
        &[1, 100, 1472, 1473, 8000],
    );
    drop(echo);
    tool(
        "ping",
        &[TUN_KERNEL_IP, "-c", "2", "-i", "0.2", "-s", "3000"],
    )
    .finish(Duration::from_secs(20))
    .assert_success();
    // A VPN's addressing: our address alone (/32), the far end as the
    // gateway (the last --ip given wins).
    let host = format!("{TUN_STACK_IP}/32");
    tool(
        "ping",
        &[
            "--ip",
            &host,
            "--gateway",
            TUN_KERNEL_IP,
            TUN_KERNEL_IP,
            "-c",
            "2",
            "-i",
            "0.2",
        ],
    )
    .finish(Duration::from_secs(20))
    .assert_success();

    // TCP each way with the offloads (the default), a file of `len`
    // bytes, sha256 compared; the source captured to `pcap` if given.
    let both_ways = |len: usize, pcap: Option<&Path>| {
        let blob = ns.path("blob");
        write_blob(&blob, len);
        let out = ns.path("from-netstrata");
        let listen = "TCP-LISTEN:5001,reuseaddr".to_string();
        let open = format!("OPEN:{},creat,trunc", out.display());
        let mut socat = ns.spawn(&["socat", "-u", &listen, &open]);
        ns.wait_listening(5001, &mut socat);
        let dst = format!("{TUN_KERNEL_IP}:5001");
        let file = blob.to_str().unwrap();
        let mut args = vec!["--connect", &dst, "--file", file, "-v"];
        if let Some(pcap) = pcap {
            args.extend(["--pcap", pcap.to_str().unwrap()]);
        }
        let sent = tool("tcp_source", &args).finish(Duration::from_secs(150));
        sent.assert_success();
        assert!(
            sent.stderr.contains("on TUN tun0")
                && sent.stderr.contains("large receive on, segmentation on"),
            "{}",
            sent.transcript()
        );
        socat.finish(Duration::from_secs(20)).assert_success();
        assert_same_file(&blob, &out);
        let _ = std::fs::remove_file(&out);

        let out = ns.path("to-netstrata");
        let out_arg = out.to_str().unwrap();
        let mut sink = tool("tcp_sink", &["--port", "5002", "-o", out_arg, "-v"]);
        sink.wait_for_output("listening on", Duration::from_secs(10));
        let from = format!("FILE:{}", blob.display());
        let to = format!("TCP:{TUN_STACK_IP}:5002");
        ns.run(&["socat", "-u", &from, &to], Duration::from_secs(150))
            .assert_success();
        let received = sink.finish(Duration::from_secs(60));
        received.assert_success();
        assert_same_file(&blob, &out);
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&blob);
        eprintln!(
            "interop: TUN: TCP with the offloads, netstrata -> Linux {:.3} Gbit/s, Linux -> netstrata {:.3} Gbit/s ({} MiB each way, sha256 equal)",
            rate(&sent).1,
            rate(&received).1,
            len >> 20
        );
    };
    let pcap = ns.path("tun.pcap");
    both_ways(BLOB_LEN, Some(&pcap));
    both_ways(OFFLOAD_BLOB_LEN, None);

    // The capture is of bare IP packets (LINKTYPE_RAW).
    let listing = tshark(&pcap, None, &["frame.protocols"]);
    assert!(
        listing.len() > 1000,
        "only {} packets captured",
        listing.len()
    );
    assert!(
        listing.iter().all(|r| r[0].starts_with("raw:ip")),
        "not raw IP: {:?}",
        listing.iter().find(|r| !r[0].starts_with("raw:ip"))
    );
    let bad = tshark(
        &pcap,
        Some(BAD_FILTER),
        &["frame.number", "_ws.expert.message"],
    );
    assert!(
        bad.is_empty(),
        "tshark flags {} packets, first {:?}",
        bad.len(),
        bad.first()
    );
}

/// The tools answer bad arguments with a clear message and exit status 2
/// (no root needed: they fail before touching a device).
#[test]
fn tools_reject_bad_arguments_with_status_2() {
    let dir = examples_dir();
    let cases: [(&str, &[&str], &str); 13] = [
        (
            "ping",
            &["--ip", "198.18.0.2/24", "198.18.0.1"],
            "--tap NAME is required",
        ),
        (
            "ping",
            &["--tap", "t0", "--ip", "198.18.0.2/33", "198.18.0.1"],
            "invalid IPv4 prefix",
        ),
        (
            "ping",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "-c",
                "x",
                "198.18.0.1",
            ],
            "invalid value",
        ),
        (
            "udp_echo",
            &["--tap", "t0", "--ip", "198.18.0.2/24"],
            "--port PORT is required",
        ),
        (
            "tcp_source",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "--connect",
                "198.18.0.1:1",
            ],
            "exactly one of --file and --bytes",
        ),
        (
            "tcp_sink",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "--port",
                "1",
                "--mac",
                "zz",
            ],
            "invalid MAC address",
        ),
        (
            "dns_lookup",
            &["--tap", "t0", "--ip", "198.18.0.2/24", "example.com"],
            "--server IP is required",
        ),
        (
            "dns_lookup",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "--server",
                "198.18.0.1",
                "--type",
                "BOGUS",
                "x",
            ],
            "unknown type",
        ),
        (
            "http_get",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "http://example.com/",
            ],
            "give a DNS server with --dns",
        ),
        (
            "http_get",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "https://198.18.0.1/",
            ],
            "https is not supported",
        ),
        (
            "http_server",
            &["--tap", "t0", "--ip", "198.18.0.2/24", "--port", "80"],
            "--root DIR is required",
        ),
        (
            "http_server",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "--root",
                "/dev/null",
            ],
            "is not a directory",
        ),
        (
            "http_server",
            &[
                "--tap",
                "t0",
                "--ip",
                "198.18.0.2/24",
                "--root",
                "/",
                "--port",
                "65536",
            ],
            "invalid value",
        ),
    ];
    for (tool, args, message) in cases {
        let out = Command::new(dir.join(tool))
            .args(args)
            .output()
            .expect("run the tool");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tool} {args:?}: {stderr}");
        assert!(stderr.contains(message), "{tool} {args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{tool} {args:?}: {stderr}");
    }
}

/// dnsmasq answering for `test.` on the kernel's address, with `records`
/// (more dnsmasq options), once it listens.
fn spawn_dnsmasq(ns: &Netns, records: &[&str]) -> Proc {
    let mut args = vec![
        "dnsmasq",
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=198.18.0.1",
        "--port=53",
        "--local=/test/",
    ];
    args.extend_from_slice(records);
    let mut dnsmasq = ns.spawn(&args);
    // dnsmasq logs to stderr once it listens.
    dnsmasq.wait_for_output("started", Duration::from_secs(10));
    dnsmasq
}

/// `dns_lookup` against dnsmasq serving a small zone in the namespace: A,
/// CNAME, MX and TXT answers, and NXDOMAIN with a clear non-zero exit.
#[test]
fn dns_lookup_against_dnsmasq() {
    let Some(ns) = setup("dns", &["dnsmasq"]) else {
        return;
    };
    let dnsmasq = spawn_dnsmasq(
        &ns,
        &[
            "--host-record=a.test,198.18.0.50",
            "--cname=www.test,a.test",
            "--mx-host=test,mail.test,10",
            "--txt-record=t.test,\"hello netstrata\"",
            "--log-queries",
        ],
    );
    let lookup = |args: &[&str]| {
        let mut all = vec!["--server", "198.18.0.1"];
        all.extend_from_slice(args);
        ns.run_tool("dns_lookup", &all, Duration::from_secs(20))
    };
    let a = lookup(&["a.test"]);
    a.assert_success();
    assert_eq!(a.stdout.trim(), "198.18.0.50", "{}", a.transcript());
    let cname = lookup(&["www.test"]);
    cname.assert_success();
    let lines: Vec<&str> = cname.stdout.lines().map(str::trim).collect();
    assert!(lines.contains(&"a.test."), "{}", cname.transcript());
    assert!(lines.contains(&"198.18.0.50"), "{}", cname.transcript());
    let mx = lookup(&["--type", "MX", "test"]);
    mx.assert_success();
    assert_eq!(mx.stdout.trim(), "10 mail.test.", "{}", mx.transcript());
    let txt = lookup(&["--type", "TXT", "t.test"]);
    txt.assert_success();
    assert!(
        txt.stdout.contains("hello netstrata"),
        "{}",
        txt.transcript()
    );
    let nx = lookup(&["nosuch.test"]);
    assert!(!nx.status.success(), "{}", nx.transcript());
    assert!(nx.stderr.contains("no such domain"), "{}", nx.transcript());
    drop(dnsmasq);
}

/// `http_get` against Python's `http.server` in the namespace, the name
/// resolved through dnsmasq: a 4 MiB file byte for byte, a small body on
/// stdout, HEAD, a 404 and an unfollowed redirect (exit status 1), a
/// redirect followed with `-L`, NXDOMAIN and a refused connection.
#[test]
fn http_get_against_python_http_server() {
    let Some(ns) = setup("http", &["python3", "dnsmasq", "sha256sum"]) else {
        return;
    };
    let www = ns.path("www");
    std::fs::create_dir_all(www.join("sub")).expect("create the served directory");
    let blob = www.join("blob.bin");
    write_blob(&blob, 4 << 20);
    std::fs::write(www.join("sub/a.txt"), "in a subdirectory\n").expect("write a.txt");
    let dnsmasq = spawn_dnsmasq(&ns, &["--host-record=web.test,198.18.0.1"]);
    let www_dir = www.to_str().expect("UTF-8 path");
    let mut python = ns.spawn(&[
        "python3",
        "-m",
        "http.server",
        "8080",
        "--bind",
        KERNEL_IP,
        "--directory",
        www_dir,
    ]);
    ns.wait_listening(8080, &mut python);
    let get = |args: &[&str]| {
        let mut all = vec!["--dns", KERNEL_IP];
        all.extend_from_slice(args);
        ns.run_tool("http_get", &all, Duration::from_secs(60))
    };
    let out = ns.path("out.bin");
    let start = Instant::now();
    let big = get(&[
        "-o",
        out.to_str().expect("UTF-8 path"),
        "http://web.test:8080/blob.bin",
    ]);
    let took = start.elapsed();
    big.assert_success();
    assert!(
        big.stderr.contains("HTTP/1.0 200 OK"),
        "{}",
        big.transcript()
    );
    assert_same_file(&blob, &out);
    eprintln!(
        "http_get: 4 MiB from python3 http.server in {took:?} ({:.1} MB/s, process start included)",
        (4 << 20) as f64 / took.as_secs_f64() / 1e6
    );
    let small = get(&["http://web.test:8080/sub/a.txt"]);
    small.assert_success();
    assert_eq!(
        small.stdout,
        "in a subdirectory\n",
        "{}",
        small.transcript()
    );
    let head = get(&["-I", "http://198.18.0.1:8080/blob.bin"]);
    head.assert_success();
    assert!(head.stdout.is_empty(), "{}", head.transcript());
    assert!(
        head.stderr.contains("HTTP/1.0 200 OK"),
        "{}",
        head.transcript()
    );
    let missing = get(&["http://web.test:8080/missing"]);
    assert_eq!(missing.status.code(), Some(1), "{}", missing.transcript());
    assert!(missing.stderr.contains(" 404 "), "{}", missing.transcript());
    let moved = get(&["http://web.test:8080/sub"]);
    assert_eq!(moved.status.code(), Some(1), "{}", moved.transcript());
    assert!(moved.stderr.contains(" 301 "), "{}", moved.transcript());
    let followed = get(&["-L", "http://web.test:8080/sub"]);
    followed.assert_success();
    assert!(
        followed.stdout.contains("a.txt"),
        "{}",
        followed.transcript()
    );
    let nx = get(&["http://nosuch.test:8080/"]);
    assert_eq!(nx.status.code(), Some(1), "{}", nx.transcript());
    assert!(nx.stderr.contains("no such domain"), "{}", nx.transcript());
    let refused = get(&[&format!("http://{KERNEL_IP}:{CLOSED_PORT}/")]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.transcript());
    assert!(
        refused.stderr.contains("cannot connect"),
        "{}",
        refused.transcript()
    );
    drop(python);
    drop(dnsmasq);
}

/// Starts `http_server` on port 8080 serving a small index page; returns
/// it and the page's URL.
fn spawn_index_server(ns: &Netns) -> (Proc, String) {
    let www = ns.path("www");
    std::fs::create_dir_all(&www).expect("make the web root");
    std::fs::write(www.join("index.html"), "<h1>netstrata</h1>\n").expect("write index");
    let root = www.to_str().expect("UTF-8 path");
    let mut server = ns.spawn_tool("http_server", &["--port", "8080", "--root", root]);
    server.wait_for_output("serving", Duration::from_secs(10));
    (server, format!("http://{STACK_IP}:8080/index.html"))
}

/// A spoofed SYN flood, `hping3 -S --rand-source` at about 5,000 SYNs a
/// second for ten seconds, at `http_server` while `curl` fetches a page
/// from it: every fetch during and after the flood is answered, and
/// connects at once (a lost SYN would cost the kernel's 1 s
/// retransmission). SYN cookies: before them the half-open table filled
/// with spoofed entries for two minutes and every later SYN was dropped.
/// The flood stays in the namespace: netstrata's SYN-ACKs to the spoofed
/// sources have no route out of it.
#[test]
fn http_server_answers_through_a_syn_flood() {
    let Some(ns) = setup("synflood", &["curl", "hping3"]) else {
        return;
    };
    let (server, index) = spawn_index_server(&ns);
    let fetch = |when: &str| {
        let done = ns.run(
            &[
                "curl",
                "-sS",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{time_connect}",
                &index,
            ],
            Duration::from_secs(20),
        );
        done.assert_success();
        let (code, connect) = done.stdout.trim().split_once(' ').expect("code and time");
        let connect: f64 = connect.parse().expect("time_connect");
        eprintln!("syn flood: curl {when}: {code}, connected in {connect:.3} s");
        assert_eq!(code, "200", "{when}: {}", done.transcript());
        assert!(connect < 0.9, "{when}: connect took {connect} s");
    };
    fetch("before the flood");
    let tap_tx = || -> u64 {
        let path = format!("/sys/class/net/{TAP}/statistics/tx_packets");
        ns.ok(&["cat", &path])
            .trim()
            .parse()
            .expect("a packet count")
    };
    let sent_before = tap_tx();
    let flood = ns.spawn(&[
        "hping3",
        "-q",
        "-S",
        "--rand-source",
        "-p",
        "8080",
        "-i",
        "u200",
        "-c",
        "50000",
        STACK_IP,
    ]);
    thread::sleep(Duration::from_secs(2));
    for i in 0..5 {
        fetch(&format!("during the flood ({i})"));
        thread::sleep(Duration::from_millis(500));
    }
    let flooded = flood.finish(Duration::from_secs(60));
    eprintln!(
        "syn flood: hping3: {}",
        flooded.stderr.lines().collect::<Vec<_>>().join("; ")
    );
    // The SYNs did reach netstrata (through the TAP).
    let delivered = tap_tx() - sent_before;
    assert!(
        delivered >= 45_000,
        "only {delivered} frames reached netstrata"
    );
    fetch("after the flood");
    drop(server);
}

/// ApacheBench with 500 concurrent connections and no keep-alive against
/// `http_server` (backlog 128): bursts larger than the backlog are
/// absorbed (SYN cookies beyond the half-open cap; a handshake's last ACK
/// dropped, not reset, while the accept queue is full) and no request
/// fails. Before, the overflow was reset and `ab` failed at once with
/// "Connection reset by peer".
#[test]
fn http_server_absorbs_bursts_beyond_its_backlog() {
    let Some(ns) = setup("burst", &["ab"]) else {
        return;
    };
    let (server, index) = spawn_index_server(&ns);
    let ab = run_ab(&ns, &["-n", "5000", "-c", "500", &index], 5000);
    eprintln!(
        "http_server: ab -c 500 without keep-alive: {:.0} requests/s",
        ab_figure(&ab, "Requests per second:")
    );
    drop(server);
}

/// Runs ApacheBench with `args` (ending with the URL): every one of the
/// `requests` must complete, none fail and none answer other than 2xx.
fn run_ab(ns: &Netns, args: &[&str], requests: u32) -> Finished {
    let mut all = vec!["ab"];
    all.extend_from_slice(args);
    let ab = ns.run(&all, Duration::from_secs(120));
    ab.assert_success();
    assert_eq!(
        ab_figure(&ab, "Complete requests:"),
        f64::from(requests),
        "{}",
        ab.transcript()
    );
    assert_eq!(
        ab_figure(&ab, "Failed requests:"),
        0.0,
        "{}",
        ab.transcript()
    );
    assert!(!ab.stdout.contains("Non-2xx"), "{}", ab.transcript());
    ab
}

/// The first number after `label` on a line of `ab`'s report.
fn ab_figure(done: &Finished, label: &str) -> f64 {
    let line = done.line_starting(label);
    line[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"))
}

/// CPU seconds a process has used (user and system), from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports these in USER_HZ, 100 on every architecture.
    ticks as f64 / 100.0
}

/// Asserts that the server, idle, uses (next to) no CPU time in a second
/// of wall time.
fn assert_idle(server: &mut Proc) {
    let pid = server.child().id();
    let before = cpu_seconds(pid);
    thread::sleep(Duration::from_secs(1));
    let idle = cpu_seconds(pid) - before;
    assert!(
        idle <= 0.05,
        "the idle server used {idle:.2} s of CPU in 1 s"
    );
}

/// hyper 1.x on netstrata's tokio adapter over the TAP (`examples/hyper`),
/// against curl (a page, 32 MiB byte-counted, a POST, connection reuse)
/// and ApacheBench (with and without keep-alive, no failure); and the
/// idle server uses no CPU (the driver task waits on the TAP's
/// descriptor and a timer, it does not poll in a loop).
#[test]
fn hyper_on_the_tokio_adapter_against_curl() {
    let Some(ns) = setup("hyper", &["curl", "ab"]) else {
        return;
    };
    let mut server = ns.spawn_tool("hyper", &["--port", "8080"]);
    server.wait_for_output("serving on", Duration::from_secs(10));
    let url = |path: &str| format!("http://{STACK_IP}:8080{path}");
    let curl = |args: &[&str]| {
        let mut all = vec!["curl", "-sS", "-m", "60"];
        all.extend_from_slice(args);
        let done = ns.run(&all, Duration::from_secs(90));
        done.assert_success();
        done.stdout
    };
    assert_eq!(curl(&[&url("/")]), "hello from hyper on netstrata\n");
    let size = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{size_download} %{speed_download}",
        &url(&format!("/bytes/{BLOB_LEN}")),
    ]);
    let (got, speed) = size.trim().split_once(' ').expect("two figures");
    assert_eq!(got, BLOB_LEN.to_string());
    eprintln!(
        "hyper on tokio: {} MiB to curl at {:.0} MiB/s",
        BLOB_LEN >> 20,
        speed.parse::<f64>().unwrap_or(0.0) / f64::from(1 << 20)
    );
    assert_eq!(
        curl(&["--data-binary", "0123456789", &url("/upload")]),
        "10 bytes\n"
    );
    let both = ns.run(
        &[
            "curl",
            "-sS",
            "-v",
            "-o",
            "/dev/null",
            &url("/"),
            &url("/bytes/10"),
        ],
        Duration::from_secs(60),
    );
    both.assert_success();
    assert!(
        both.stderr.contains("Re-using existing connection"),
        "{}",
        both.transcript()
    );
    // ApacheBench, with and without keep-alive: nothing fails.
    let index = url("/");
    let ab = run_ab(&ns, &["-k", "-n", "5000", "-c", "16", &index], 5000);
    let with_keep_alive = ab_figure(&ab, "Requests per second:");
    let ab = run_ab(&ns, &["-n", "2000", "-c", "8", &index], 2000);
    eprintln!(
        "hyper on tokio: ab -k {with_keep_alive:.0} requests/s, without keep-alive {:.0}",
        ab_figure(&ab, "Requests per second:")
    );
    assert_idle(&mut server);
    server.interrupt();
}

/// Opens `sys.argv[3]` connections to `sys.argv[1]:sys.argv[2]`, sends
/// each half a request head, prints `holding N` and keeps them open until
/// interrupted (at most two minutes).
const HALF_HEADS_PY: &str = r#"
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    held.append(s)
print("holding", len(held), flush=True)
try:
    time.sleep(120)
except KeyboardInterrupt:
    pass
"#;

/// The resident memory of a process, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// Opens `n` connections from the kernel's side to `server`, each sending
/// half a request head, and checks that curl is then answered at once
/// with `expected`, and that the server's resident memory grew by less
/// than `bound` bytes per connection (its side alone: TCP, the runtime
/// and the HTTP server).
fn holds_half_sent_heads(
    ns: &Netns,
    server: &mut Proc,
    (name, n, bound): (&str, usize, u64),
    expected: &str,
) {
    let pid = server.child().id();
    let before = resident_bytes(pid);
    let script = ns.path("half_heads.py");
    std::fs::write(&script, HALF_HEADS_PY).expect("write the script");
    let script = script.to_str().expect("UTF-8 path");
    let count = n.to_string();
    let mut idle = ns.spawn(&["python3", script, STACK_IP, "8080", &count]);
    idle.wait_for_output(&format!("holding {n}"), Duration::from_secs(90));
    let url = format!("http://{STACK_IP}:8080/");
    let done = ns.run(
        &["curl", "-sS", "-m", "5", "-w", "\n%{time_total}", &url],
        Duration::from_secs(30),
    );
    done.assert_success();
    let (body, took) = done.stdout.rsplit_once('\n').expect("a time");
    assert_eq!(body, expected);
    let took: f64 = took.trim().parse().expect("a number");
    let per_connection = resident_bytes(pid).saturating_sub(before) / n as u64;
    eprintln!(
        "{name}: {n} half-sent heads held, {per_connection} bytes resident per connection \
         (the server's side); curl answered in {took:.3} s"
    );
    assert!(took < 1.0, "the legitimate client waited {took} s");
    assert!(
        per_connection < bound,
        "{per_connection} bytes per connection"
    );
    idle.interrupt();
}

/// What `http_server` could not do before issue 13 (it held about 640):
/// 5,000 clients each send half a request head and wait, and the
/// server's event loop holds them all while a legitimate client is
/// answered at once.
#[test]
fn http_server_holds_5000_half_sent_heads_and_answers_at_once() {
    let Some(ns) = setup("halfheads2", &["curl", "python3"]) else {
        return;
    };
    let www = ns.path("www");
    std::fs::create_dir_all(&www).expect("make the web root");
    std::fs::write(www.join("index.html"), "<h1>netstrata</h1>\n").expect("write index");
    let root = www.to_str().expect("UTF-8 path");
    let mut server = ns.spawn_tool("http_server", &["--port", "8080", "--root", root]);
    server.wait_for_output("serving", Duration::from_secs(10));
    // The aim of issue 13 was 16 KiB per idle connection beyond TCP's
    // buffers; this bound includes them.
    holds_half_sent_heads(
        &ns,
        &mut server,
        ("http_server", 5000, 16 * 1024),
        "<h1>netstrata</h1>\n",
    );
    server.interrupt();
}

/// The same against hyper on netstrata's tokio adapter (`examples/hyper`),
/// one thread, a task per connection.
#[test]
fn the_tokio_adapter_holds_2000_half_sent_heads_and_answers_at_once() {
    let Some(ns) = setup("halfheads", &["curl", "python3"]) else {
        return;
    };
    let mut server = ns.spawn_tool("hyper", &["--port", "8080"]);
    server.wait_for_output("serving on", Duration::from_secs(10));
    holds_half_sent_heads(
        &ns,
        &mut server,
        ("hyper", 2000, 64 * 1024),
        "hello from hyper on netstrata\n",
    );
    server.interrupt();
}

/// `http_server` serving a directory to curl and ApacheBench on the
/// kernel's side: pages, HEAD, a 32 MiB file byte for byte, traversal
/// attempts refused, a redirect, connection reuse, `Expect:
/// 100-continue` answered at once, and `ab` with and without keep-alive
/// (HTTP/1.0 `Connection: keep-alive`) with no failed request.
#[test]
fn http_server_against_curl_and_ab() {
    let Some(ns) = setup("http", &["curl", "ab", "sha256sum"]) else {
        return;
    };
    let www = ns.path("www");
    std::fs::create_dir_all(www.join("sub")).expect("make the web root");
    std::fs::write(www.join("index.html"), "<h1>netstrata</h1>\n").expect("write index");
    write_blob(&www.join("blob.bin"), BLOB_LEN);
    std::fs::write(ns.path("secret.txt"), "secret\n").expect("write the secret");
    let root = www.to_str().expect("UTF-8 path");
    let mut server = ns.spawn_tool("http_server", &["--port", "8080", "--root", root]);
    server.wait_for_output("serving", Duration::from_secs(10));
    let url = |path: &str| format!("http://{STACK_IP}:8080{path}");
    let curl = |args: &[&str]| {
        let mut all = vec!["curl", "-sS", "-m", "60"];
        all.extend_from_slice(args);
        let done = ns.run(&all, Duration::from_secs(90));
        done.assert_success();
        done
    };

    assert_eq!(curl(&[&url("/")]).stdout, "<h1>netstrata</h1>\n");
    let head = curl(&["-I", &url("/blob.bin")]).stdout;
    for field in [
        "HTTP/1.1 200 OK",
        &format!("Content-Length: {BLOB_LEN}"),
        "Content-Type: application/octet-stream",
        "Server: netstrata",
        "Date: ",
        "Last-Modified: ",
    ] {
        assert!(head.contains(field), "no {field:?} in\n{head}");
    }

    let out = ns.path("blob.out");
    let out_arg = out.to_str().expect("UTF-8 path");
    let fetched = curl(&["-o", out_arg, "-w", "%{speed_download}", &url("/blob.bin")]);
    assert_same_file(&www.join("blob.bin"), &out);
    let speed: f64 = fetched.stdout.trim().parse().unwrap_or(0.0);
    eprintln!(
        "http_server: {} MiB to curl at {:.0} MiB/s",
        BLOB_LEN >> 20,
        speed / f64::from(1 << 20)
    );

    let status = |extra: &[&str], path: &str| {
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"];
        args.extend_from_slice(extra);
        let target = url(path);
        args.push(&target);
        curl(&args).stdout.trim().to_string()
    };
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/../../secret.txt",
    ] {
        assert_eq!(status(&["--path-as-is"], path), "403", "{path}");
    }
    assert_eq!(status(&[], "/nope"), "404");
    assert_eq!(status(&[], "/sub"), format!("301 {}", url("/sub/")));

    // Two URLs on one command line: curl reuses the connection.
    let both = curl(&["-v", "-o", "/dev/null", &url("/"), &url("/index.html")]);
    assert!(
        both.stderr.contains("Re-using existing connection"),
        "{}",
        both.transcript()
    );
    // curl sends `Expect: 100-continue` with a large body. The final
    // status comes at once, without the 100 and without the body: 405
    // from the handler, or 413 before it for more than the server's 8 MiB.
    let small = ns.path("post.bin");
    write_blob(&small, 3 << 20);
    for (file, expected) in [(&small, "405"), (&www.join("blob.bin"), "413")] {
        let data = format!("@{}", file.display());
        let post = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total}",
            "--data-binary",
            &data,
            &url("/"),
        ]);
        let (code, secs) = post.stdout.trim().split_once(' ').expect("code and time");
        assert_eq!(code, expected, "{}", post.transcript());
        assert!(
            secs.parse::<f64>().unwrap_or(9.0) < 0.9,
            "{}",
            post.transcript()
        );
    }

    let index = url("/index.html");
    let ab = run_ab(&ns, &["-k", "-n", "5000", "-c", "16", &index], 5000);
    assert_eq!(ab_figure(&ab, "Keep-Alive requests:"), 5000.0);
    let with_keep_alive = ab_figure(&ab, "Requests per second:");
    let ab = run_ab(&ns, &["-n", "2000", "-c", "8", &index], 2000);
    eprintln!(
        "http_server: ab -k {with_keep_alive:.0} requests/s, without keep-alive {:.0}",
        ab_figure(&ab, "Requests per second:")
    );
    // The event loop and the workers wait, they do not poll.
    assert_idle(&mut server);
    drop(server);
}
