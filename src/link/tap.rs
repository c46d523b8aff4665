//! A Linux TAP device: Ethernet frames to and from the host's kernel.
//!
//! [`TapDevice`] attaches to a TAP interface through `/dev/net/tun` (see
//! the kernel's `Documentation/networking/tuntap.rst`) and is a
//! [`Device`]: every frame the kernel sends out of the interface is
//! [received](Device::receive) by the stack, and every frame the stack
//! [transmits](Device::transmit) arrives at the kernel as if it had come
//! in on the wire. The interface is opened with `IFF_TAP | IFF_NO_PI`, so
//! each `read(2)` and `write(2)` is exactly one Ethernet frame without FCS
//! and without the 4-byte packet-information prefix.
//!
//! # Privileges
//!
//! [`TapDevice::open`] attaches to the interface of the given name if it
//! exists, and otherwise asks the kernel to create it. Creating one needs
//! `CAP_NET_ADMIN`; such an interface is not persistent and disappears when
//! the device is dropped. Without privileges, have an administrator create
//! a persistent TAP owned by your user once:
//!
//! ```text
//! ip tuntap add dev tap0 mode tap user $USER
//! ip addr add 198.18.0.1/24 dev tap0
//! ip link set tap0 up
//! ```
//!
//! The interface's MTU and MAC address are read when it is opened. The MAC
//! is the *kernel's* address on the link: the stack is another host on the
//! same link and must use an address of its own (for instance
//! [`EthernetAddress::local`]) that differs from
//! [`TapDevice::kernel_mac`].
//!
//! # Checksums
//!
//! A plain TAP (no `IFF_VNET_HDR`) carries complete frames both ways: the
//! kernel fills in every checksum before handing a frame over and verifies
//! every checksum of the frames it is given, so no offload is advertised.
//!
//! By default ([`TapConfig::default`]) the device asks the kernel for
//! every offload below, and uses those it accepts;
//! [`TapConfig::plain`] asks for none.
//!
//! Opened with [`TapConfig::checksum_offload`], the descriptor carries a
//! virtio-net header in front of every frame ([`crate::link::vnet`]) and
//! the kernel is told the stack takes partial checksums
//! (`TUNSETOFFLOAD(TUN_F_CSUM)`). Each side then leaves the transport
//! checksum of what it sends to the other: the device advertises transmit
//! offload, the stack leaves TCP and UDP checksums partial, and the kernel,
//! delivering them to its own sockets, never sums them; the kernel's own
//! TCP and UDP output arrives partial as well, marked so
//! ([`crate::buf::L4Checksum`]), and the stack does not sum it either.
//! Frames the kernel did not vouch for are verified as usual. A kernel
//! that refuses the header or the offload gets a plain TAP (or a header
//! without offload); [`TapDevice::checksum_offload`] says which.
//!
//! # Waiting
//!
//! All I/O is non-blocking. A runtime sleeps in [`TapDevice::wait`] until
//! the interface has a frame or another thread calls
//! [`TapWaker::wake`] (an `eventfd(2)`), with a timeout taken from the
//! stack's next deadline.
//!
//! # Unsafe code
//!
//! This module is the only place in the crate that calls the operating
//! system directly. The unsafe calls (`ioctl`, `socket`, `eventfd`,
//! `ppoll`) sit in the private `sys` module, each with the reason it is
//! sound; reads and writes go through `std::fs::File`.
//!
//! # TUN
//!
//! [`TunDevice`] is the same device on a TUN interface (`IFF_TUN`): bare
//! IPv4 packets, no Ethernet header, no ARP; the interface runs on
//! [`Medium::Ip`]. It takes the same offloads.
//!
//! # Segmentation
//!
//! With [`TapConfig::segmentation`] as well, the stack's TCP hands down
//! super-segments of up to 64 KiB ([`DeviceCaps::segmentation`]), each
//! written once behind a `GSO_TCPV4` header: the kernel cuts it into the
//! segments the stack would have sent one by one, or, delivering to its
//! own TCP, takes it whole. With [`TapConfig::large_receive`] the kernel
//! does the same the other way.
//!
//! Deliberately not here: multiqueue (`IFF_MULTI_QUEUE`), configuring
//! the interface (addresses, routes, link state: that is the
//! administrator's job, done with `ip`), and noticing MTU changes made
//! after the interface was opened.
//!
//! # Example
//!
//! Not run here: it needs the `tap0` interface set up as above. One host on
//! the TAP, answering ARP and ping from the kernel's side of the link:
//!
//! ```no_run
//! use netstrata::link::{Device, EthernetAddress, TapDevice};
//! use netstrata::{Instant, Interface, InterfaceConfig};
//!
//! let mut tap = TapDevice::open("tap0")?;
//! assert_ne!(tap.kernel_mac(), EthernetAddress::local(2));
//! let cfg = InterfaceConfig::new(EthernetAddress::local(2), "198.18.0.2/24".parse()?);
//! let mut iface = Interface::new(cfg, tap.capabilities());
//! let start = std::time::Instant::now();
//! loop {
//!     let now = Instant::from_micros(start.elapsed().as_micros() as u64);
//!     iface.poll(now, &mut tap);
//!     let timeout = iface.poll_at(now).map(|t| t.saturating_duration_since(now));
//!     tap.wait(timeout)?;
//! }
//! # #[allow(unreachable_code)]
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use crate::buf::{BufferPool, POOL_BUFFERS, PacketBuf, frame_buffer_size};
use crate::link::device::{
    ChecksumOffload, Device, DeviceCaps, DeviceError, MAX_SUPER_SEGMENT, Medium,
};
use crate::link::ethernet::{EthernetAddress, HEADER_LEN};
use crate::link::vnet::{self, GSO_NONE, VnetHeader};
use crate::time::{Duration, Instant};
use bytes::BytesMut;

/// The clone device through which TUN/TAP interfaces are reached.
pub const TUN_PATH: &str = "/dev/net/tun";

/// Longest interface name, in bytes (`IFNAMSIZ` less the terminating NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// Room beyond MTU + Ethernet header accepted on receive: one 802.1Q tag.
pub const RX_SLACK: usize = 4;

/// The longest super-frame taken with [`TapConfig::large_receive`]: an
/// Ethernet header, a tag, and the largest IPv4 datagram.
pub const MAX_SUPER_FRAME: usize = HEADER_LEN + RX_SLACK + 65535;

/// How to open a TAP (or TUN) device: which offloads to ask the kernel
/// for. By default all of them, each used only if the kernel accepts it;
/// [`TapConfig::plain`] asks for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TapConfig {
    /// Exchange partial checksums with the kernel through a virtio-net
    /// header (see the module documentation), if it accepts. On by
    /// default.
    pub checksum_offload: bool,
    /// With [`TapConfig::checksum_offload`]: take the kernel's TCP
    /// super-frames (`TUN_F_TSO4`), each a segment of up to 64 KiB the
    /// kernel would otherwise have cut into MSS-sized frames, and hand
    /// them to the stack whole, as a NIC's large receive offload (and
    /// Linux's GRO) does. On by default.
    pub large_receive: bool,
    /// With [`TapConfig::checksum_offload`]: send TCP super-segments of
    /// up to 64 KiB behind a `GSO_TCPV4` header, which the kernel cuts
    /// into MSS-sized segments, or takes whole into its own TCP (TCP
    /// segmentation offload, [`DeviceCaps::segmentation`]). On by
    /// default.
    pub segmentation: bool,
}

impl Default for TapConfig {
    /// Every offload, where the kernel accepts it.
    fn default() -> Self {
        TapConfig {
            checksum_offload: true,
            large_receive: true,
            segmentation: true,
        }
    }
}

impl TapConfig {
    /// No offload: complete frames of at most the MTU both ways, no
    /// virtio-net header (and any offload a persistent interface kept
    /// from an earlier user turned off).
    pub fn plain() -> Self {
        TapConfig {
            checksum_offload: false,
            large_receive: false,
            segmentation: false,
        }
    }
}

/// Why a TAP device could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TapError {
    /// `/dev/net/tun` does not exist, or the driver behind it is missing.
    #[error("{TUN_PATH} not found: load the tun module (`modprobe tun`)")]
    NoDevice,
    /// The caller may not open the clone device or attach to the interface.
    #[error(
        "permission denied attaching to {mode} interface `{name}` ({syscall}): needs \
         CAP_NET_ADMIN, or a persistent {mode} owned by this user \
         (`ip tuntap add dev {name} mode {mode} user $USER`)"
    )]
    PermissionDenied {
        /// The interface name asked for.
        name: String,
        /// The call that was refused.
        syscall: &'static str,
        /// `tap` or `tun`: the kind of interface asked for.
        mode: &'static str,
    },
    /// The name cannot be an interface name.
    #[error("invalid interface name `{name}`: {reason}")]
    InvalidName {
        /// The name asked for.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The interface exists but is not a TAP device (it is a TUN, or not a
    /// TUN/TAP interface at all).
    #[error("interface `{name}` exists but is not a TAP device")]
    NotTap {
        /// The interface name.
        name: String,
    },
    /// The interface exists but is not a TUN device.
    #[error("interface `{name}` exists but is not a TUN device")]
    NotTun {
        /// The interface name.
        name: String,
    },
    /// Another file descriptor is already attached to the interface.
    #[error("interface `{name}` is busy: another process has it open")]
    Busy {
        /// The interface name.
        name: String,
    },
    /// Any other failure, with the system call that failed.
    #[error("{syscall} failed for TAP interface `{name}`: {source}")]
    Io {
        /// The interface name.
        name: String,
        /// The failing call, e.g. `ioctl(TUNSETIFF)`.
        syscall: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// Maps the failure of `syscall` while opening interface `name` to a
/// [`TapError`] that says what to do about it.
fn open_error(name: &str, syscall: &'static str, err: io::Error) -> TapError {
    let opening_node = syscall == SYSCALL_OPEN;
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) if opening_node => TapError::NoDevice,
        Some(libc::EACCES | libc::EPERM) if opening_node || syscall == SYSCALL_SETIFF => {
            TapError::PermissionDenied {
                name: name.to_owned(),
                syscall,
                mode: "tap",
            }
        }
        Some(libc::EINVAL) if syscall == SYSCALL_SETIFF => TapError::NotTap {
            name: name.to_owned(),
        },
        Some(libc::EBUSY) if syscall == SYSCALL_SETIFF => TapError::Busy {
            name: name.to_owned(),
        },
        _ => TapError::Io {
            name: name.to_owned(),
            syscall,
            source: err,
        },
    }
}

const SYSCALL_OPEN: &str = "open(/dev/net/tun)";
const SYSCALL_SETIFF: &str = "ioctl(TUNSETIFF)";
const SYSCALL_SOCKET: &str = "socket(AF_INET, SOCK_DGRAM)";
const SYSCALL_MTU: &str = "ioctl(SIOCGIFMTU)";
const SYSCALL_HWADDR: &str = "ioctl(SIOCGIFHWADDR)";
const SYSCALL_EVENTFD: &str = "eventfd";

/// Checks `name` the way the kernel does (`dev_valid_name`): 1 to 15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace. A `%d` template
/// (`tap%d`) is allowed: the kernel picks the number.
fn validate_name(name: &str) -> Result<(), TapError> {
    let bad = |reason| {
        Err(TapError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are reserved");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        return bad("contains `/`, `:`, NUL or whitespace");
    }
    Ok(())
}

/// Maps a failed `write(2)` of a frame to the device error the stack sees.
fn transmit_error(err: &io::Error) -> DeviceError {
    match err.raw_os_error() {
        // EIO: the interface is administratively down; EBADFD: it was
        // deleted while we held it.
        Some(libc::EIO | libc::EBADFD) => DeviceError::Down,
        _ if err.kind() == io::ErrorKind::WouldBlock => DeviceError::QueueFull,
        _ => DeviceError::Io(err.kind()),
    }
}

/// Largest frame accepted on receive for a link of `mtu`: MTU + Ethernet
/// header + [`RX_SLACK`] (a TUN's packets are shorter, and fit).
fn max_rx_frame(mtu: usize) -> usize {
    mtu.saturating_add(HEADER_LEN + RX_SLACK)
}

/// Largest frame the stack may transmit on a link of `mtu` and `medium`.
fn max_tx_frame(mtu: usize, medium: Medium) -> usize {
    mtu.saturating_add(medium.header_len())
}

/// Counters of one TAP device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapStats {
    /// Frames read from the interface and handed to the stack.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Reads that failed (other than "nothing to read"), and frames
    /// discarded: longer than MTU + 14 + 4 (a super-frame, longer than
    /// [`MAX_SUPER_FRAME`]), shorter than their header, or super-frames
    /// not asked for.
    pub rx_errors: u64,
    /// TCP super-frames among the frames received
    /// ([`TapConfig::large_receive`]).
    pub rx_super_frames: u64,
    /// Frames written to the interface.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames refused before writing: longer than MTU + 14
    /// ([`DeviceError::TooLarge`]) or shorter than an Ethernet header
    /// (discarded silently, as a switch does).
    pub tx_refused: u64,
    /// Writes refused because the kernel's queue was full.
    pub tx_queue_full: u64,
    /// Writes that failed otherwise (interface down, deleted, ...).
    pub tx_errors: u64,
}

/// A TAP interface opened for the stack; a [`Device`].
///
/// The file descriptors are closed when the device is dropped (the
/// wake-up eventfd once every [`TapWaker`] is gone as well); a
/// non-persistent interface then disappears.
pub struct TapDevice {
    /// Ethernet frames (TAP), or bare IP packets (TUN).
    medium: Medium,
    file: Arc<File>,
    name: String,
    mtu: usize,
    kernel_mac: EthernetAddress,
    pool: BufferPool,
    stats: TapStats,
    wake: Arc<File>,
    /// Every frame is preceded by a virtio-net header.
    vnet_hdr: bool,
    /// The kernel takes partial checksums (`TUN_F_CSUM`).
    checksum_offload: bool,
    /// The kernel sends TCP super-frames (`TUN_F_TSO4`).
    large_receive: bool,
    /// The stack sends TCP super-segments (`GSO_TCPV4` headers).
    segmentation: bool,
    /// The allocation large reads go into, between reads.
    spare_large: Option<BytesMut>,
}

impl TapDevice {
    /// Opens the TAP interface `name`, creating it if it does not exist
    /// (which needs `CAP_NET_ADMIN`; see the module documentation), and
    /// reads its MTU and MAC address.
    ///
    /// The descriptor is non-blocking and close-on-exec. A `%d` template
    /// such as `tap%d` lets the kernel choose a free name;
    /// [`TapDevice::name`] reports the one it chose. Every offload the
    /// kernel accepts is used ([`TapConfig::default`]).
    pub fn open(name: &str) -> Result<TapDevice, TapError> {
        TapDevice::open_with(name, TapConfig::default())
    }

    /// As [`TapDevice::open`], as `config` asks.
    pub fn open_with(name: &str, config: TapConfig) -> Result<TapDevice, TapError> {
        TapDevice::open_medium(name, config, Medium::Ethernet)
    }

    /// Opens a TAP (`Medium::Ethernet`) or a TUN (`Medium::Ip`) interface;
    /// an error says which kind was asked for.
    fn open_medium(name: &str, config: TapConfig, medium: Medium) -> Result<TapDevice, TapError> {
        TapDevice::open_kind(name, config, medium).map_err(|e| match e {
            TapError::PermissionDenied { name, syscall, .. } if medium == Medium::Ip => {
                TapError::PermissionDenied {
                    name,
                    syscall,
                    mode: "tun",
                }
            }
            other => other,
        })
    }

    fn open_kind(name: &str, config: TapConfig, medium: Medium) -> Result<TapDevice, TapError> {
        validate_name(name)?;
        let kind = match medium {
            Medium::Ethernet => libc::IFF_TAP,
            Medium::Ip => libc::IFF_TUN,
        };
        let setiff_error = |e: io::Error| match open_error(name, SYSCALL_SETIFF, e) {
            TapError::NotTap { name } if medium == Medium::Ip => TapError::NotTun { name },
            other => other,
        };
        let open = || {
            // std opens every file with O_CLOEXEC.
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(TUN_PATH)
                .map_err(|e| open_error(name, SYSCALL_OPEN, e))
        };
        let mut file = open()?;
        let mut vnet_hdr = false;
        let mut actual = None;
        if config.checksum_offload {
            match sys::tun_set_iff(file.as_fd(), name, kind, true) {
                Ok(n) => (vnet_hdr, actual) = (true, Some(n)),
                Err(e) => {
                    log::info!("TAP `{name}`: no virtio-net header ({e}): plain frames");
                    // A descriptor that failed TUNSETIFF may be left
                    // half-attached: start again with a fresh one.
                    file = open()?;
                }
            }
        }
        let actual = match actual {
            Some(n) => n,
            None => sys::tun_set_iff(file.as_fd(), name, kind, false).map_err(setiff_error)?,
        };
        let offload = |features| match sys::tun_set_offload(file.as_fd(), features) {
            Ok(()) => true,
            Err(e) => {
                log::info!("TAP `{actual}`: offloads {features:#x} refused ({e})");
                false
            }
        };
        let large_receive =
            vnet_hdr && config.large_receive && offload(libc::TUN_F_CSUM | libc::TUN_F_TSO4);
        let checksum_offload = large_receive || (vnet_hdr && offload(libc::TUN_F_CSUM));
        // The offloads are the interface's, not the descriptor's: a
        // persistent TAP keeps those of the last process that set them,
        // and the kernel would go on sending partial checksums (and
        // super-frames) to a reader that takes neither.
        // A kernel that refuses TUNSETOFFLOAD altogether cannot have any
        // set either (`offload` logs the refusal).
        if !checksum_offload {
            offload(0);
        }
        let ctl = sys::control_socket().map_err(|e| open_error(&actual, SYSCALL_SOCKET, e))?;
        let mtu = sys::interface_mtu(ctl.as_fd(), &actual)
            .map_err(|e| open_error(&actual, SYSCALL_MTU, e))?;
        // A TUN has no link address.
        let mac = match medium {
            Medium::Ethernet => sys::interface_mac(ctl.as_fd(), &actual)
                .map_err(|e| open_error(&actual, SYSCALL_HWADDR, e))?,
            Medium::Ip => [0; 6],
        };
        drop(ctl);
        let mut dev = TapDevice::from_parts(file, actual, mtu, EthernetAddress(mac))
            .map_err(|e| open_error(name, SYSCALL_EVENTFD, e))?;
        dev.medium = medium;
        dev.vnet_hdr = vnet_hdr;
        dev.checksum_offload = checksum_offload;
        dev.large_receive = large_receive;
        // The kernel reads a GSO header whatever the offloads it was told
        // of (those say what it may send): segmentation needs only the
        // partial checksums every super-segment goes with.
        dev.segmentation = checksum_offload && config.segmentation;
        let on = |b: bool| if b { "on" } else { "off" };
        log::debug!(
            "opened {:?} device `{}`: mtu {}, kernel MAC {}, checksum offload {}, large receive {}, \
             segmentation {}",
            medium,
            dev.name,
            dev.mtu,
            dev.kernel_mac,
            on(checksum_offload),
            on(large_receive),
            on(dev.segmentation),
        );
        Ok(dev)
    }

    /// A device over an already configured frame descriptor `file`
    /// (non-blocking, one frame per read and write).
    fn from_parts(
        file: File,
        name: String,
        mtu: usize,
        kernel_mac: EthernetAddress,
    ) -> io::Result<TapDevice> {
        let wake = File::from(sys::eventfd_nonblocking()?);
        Ok(TapDevice {
            medium: Medium::Ethernet,
            file: Arc::new(file),
            name,
            mtu,
            kernel_mac,
            // The stack's buffer size, so that buffers pass between the
            // two pools. It exceeds `max_rx_frame(mtu) + 1`: a frame longer
            // than allowed shows up as a read that fills `max + 1` bytes.
            // As many as the stack's pool keeps, so that a window's worth
            // of written frames is not freed only to be allocated again
            // for the acknowledgments that follow.
            pool: BufferPool::new(POOL_BUFFERS, frame_buffer_size(mtu)),
            stats: TapStats::default(),
            wake: Arc::new(wake),
            vnet_hdr: false,
            checksum_offload: false,
            large_receive: false,
            segmentation: false,
            spare_large: None,
        })
    }

    /// What the `n = read.len()` bytes of a read hold, with a header of
    /// `hdr` bytes: the header (empty without one), or why the read is
    /// discarded.
    fn check_read(&self, read: &[u8], hdr: usize) -> Result<VnetHeader, &'static str> {
        let Some(len) = read.len().checked_sub(hdr) else {
            return Err("shorter than its header");
        };
        let header = if self.vnet_hdr {
            VnetHeader::parse(read).ok_or("shorter than its header")?
        } else {
            VnetHeader::default()
        };
        let max = match header.gso_type & !vnet::GSO_ECN {
            GSO_NONE => max_rx_frame(self.mtu),
            vnet::GSO_TCPV4 if self.large_receive => MAX_SUPER_FRAME,
            _ => return Err("a super-frame of a kind not asked for"),
        };
        if len > max {
            return Err("longer than the link allows");
        }
        Ok(header)
    }

    /// Keeps the buffer of a read that gave no frame, for the next one.
    fn keep_read_buffer(&mut self, buf: BytesMut) {
        if self.large_receive {
            self.spare_large = Some(buf);
        } else {
            self.pool.recycle(PacketBuf::from_bytes_mut(buf));
        }
    }

    /// Whether checksums are exchanged partial with the kernel: asked for
    /// ([`TapConfig::checksum_offload`]) and accepted.
    pub fn checksum_offload(&self) -> bool {
        self.checksum_offload
    }

    /// Whether the kernel's TCP super-frames are taken whole: asked for
    /// ([`TapConfig::large_receive`]) and accepted.
    pub fn large_receive(&self) -> bool {
        self.large_receive
    }

    /// Whether the stack's TCP super-segments are handed to the kernel to
    /// cut: asked for ([`TapConfig::segmentation`]) with checksum offload,
    /// and that accepted.
    pub fn segmentation(&self) -> bool {
        self.segmentation
    }

    /// The interface's name (as the kernel reported it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's MTU when it was opened.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The kernel's MAC address on this link. The stack must use a
    /// different one.
    pub fn kernel_mac(&self) -> EthernetAddress {
        self.kernel_mac
    }

    /// The counters.
    pub fn stats(&self) -> TapStats {
        self.stats
    }

    /// A handle that interrupts [`TapDevice::wait`] from any thread.
    pub fn waker(&self) -> TapWaker {
        TapWaker {
            fd: Arc::clone(&self.wake),
        }
    }

    /// Blocks until the interface has a frame to read, a wake-up was
    /// requested through a [`TapWaker`], or `timeout` (if any) passes.
    ///
    /// Returns `Ok(true)` if there may be work (a frame is readable or a
    /// wake-up came; a pending wake-up is consumed), `Ok(false)` if the
    /// timeout passed. A signal interrupting the wait also gives
    /// `Ok(true)`: callers poll and wait again. An error is returned if
    /// the interface is gone (deleted while open) or `ppoll(2)` fails.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.sleeper().wait(timeout)
    }

    /// A handle that waits for this device's readiness (and its waker)
    /// from wherever the device itself has gone — a runtime thread holding
    /// the device inside a [`crate::link::PcapWriter`], say.
    pub fn sleeper(&self) -> TapSleeper {
        TapSleeper {
            tap: Arc::clone(&self.file),
            wake: Arc::clone(&self.wake),
            name: self.name.clone(),
        }
    }
}

/// A TUN interface opened for the stack: bare IPv4 packets to and from
/// the host's kernel, with no Ethernet header and no ARP (the interface
/// runs on [`Medium::Ip`]). This is the device of VPN endpoints and
/// tun2socks-style programs: the kernel routes into it what is meant for
/// the far side.
///
/// Everything but the framing is [`TapDevice`]'s: opening and
/// privileges, non-blocking I/O, waiting and waking, counters, and the
/// virtio-net offloads ([`TunDevice::open_with`]).
#[derive(Debug)]
pub struct TunDevice(TapDevice);

impl TunDevice {
    /// Opens the TUN interface `name`, creating it if it does not exist
    /// (as [`TapDevice::open`]; `ip tuntap add dev NAME mode tun user
    /// $USER` makes a persistent one), and reads its MTU.
    pub fn open(name: &str) -> Result<TunDevice, TapError> {
        TunDevice::open_with(name, TapConfig::default())
    }

    /// As [`TunDevice::open`], with the offloads `config` asks for (as
    /// [`TapDevice::open_with`]: checksums and large receive work the
    /// same on bare packets).
    pub fn open_with(name: &str, config: TapConfig) -> Result<TunDevice, TapError> {
        TapDevice::open_medium(name, config, Medium::Ip).map(TunDevice)
    }

    /// As [`TapDevice::checksum_offload`].
    pub fn checksum_offload(&self) -> bool {
        self.0.checksum_offload()
    }

    /// As [`TapDevice::large_receive`].
    pub fn large_receive(&self) -> bool {
        self.0.large_receive()
    }

    /// As [`TapDevice::segmentation`].
    pub fn segmentation(&self) -> bool {
        self.0.segmentation()
    }

    /// The interface's name (as the kernel reported it).
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The interface's MTU when it was opened.
    pub fn mtu(&self) -> usize {
        self.0.mtu()
    }

    /// The counters.
    pub fn stats(&self) -> TapStats {
        self.0.stats()
    }

    /// A handle that interrupts [`TunDevice::wait`] from any thread.
    pub fn waker(&self) -> TapWaker {
        self.0.waker()
    }

    /// As [`TapDevice::wait`].
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.0.wait(timeout)
    }

    /// As [`TapDevice::sleeper`].
    pub fn sleeper(&self) -> TapSleeper {
        self.0.sleeper()
    }
}

impl Device for TunDevice {
    /// The interface MTU, [`Medium::Ip`].
    fn capabilities(&self) -> DeviceCaps {
        self.0.capabilities()
    }
    fn refill(&mut self, pool: &mut BufferPool) {
        self.0.refill(pool);
    }
    fn spill(&mut self, pool: &mut BufferPool) {
        self.0.spill(pool);
    }
    /// One non-blocking `read(2)`: the next packet, if any.
    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        self.0.receive(now)
    }
    /// One non-blocking `write(2)` of the whole packet (at most the MTU).
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        self.0.transmit(now, frame)
    }
    fn poll_at(&self) -> Option<Instant> {
        self.0.poll_at()
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for TunDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for TapDevice {
    /// The descriptor of the TAP interface, for a caller's own event loop
    /// (readable when a frame is waiting).
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for TapDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// A device whose descriptor tokio's reactor may watch (feature `tokio`):
/// what [`crate::tokio::Stack::on_fd`] drives.
#[cfg(feature = "tokio")]
pub trait AsyncDevice: Device + AsRawFd + Sized {
    /// Registers the descriptor with the current tokio runtime, for
    /// readability; the device goes inside the returned [`AsyncFd`](tokio::io::unix::AsyncFd).
    fn into_async_fd(self) -> io::Result<tokio::io::unix::AsyncFd<Self>>;
}

#[cfg(feature = "tokio")]
impl AsyncDevice for TapDevice {
    fn into_async_fd(self) -> io::Result<tokio::io::unix::AsyncFd<Self>> {
        sys::watch_readable(self)
    }
}

#[cfg(feature = "tokio")]
impl AsyncDevice for TunDevice {
    fn into_async_fd(self) -> io::Result<tokio::io::unix::AsyncFd<Self>> {
        sys::watch_readable(self)
    }
}

/// A device that owns its descriptor for as long as it lives, neither
/// closing nor replacing it: what makes registering it with tokio's
/// reactor sound.
#[cfg(feature = "tokio")]
trait OwnsItsFd: AsRawFd {}

#[cfg(feature = "tokio")]
impl OwnsItsFd for TapDevice {}

#[cfg(feature = "tokio")]
impl OwnsItsFd for TunDevice {}

impl fmt::Debug for TapDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapDevice")
            .field("name", &self.name)
            .field("fd", &self.file.as_raw_fd())
            .field("mtu", &self.mtu)
            .field("kernel_mac", &self.kernel_mac)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Device for TapDevice {
    /// The interface MTU; transmit checksum offload if the kernel takes
    /// partial checksums (see the module docs). Receive offload is told
    /// frame by frame.
    fn capabilities(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.mtu,
            checksum: ChecksumOffload {
                tx: self.checksum_offload,
                rx: false,
            },
            medium: self.medium,
            segmentation: if self.segmentation {
                MAX_SUPER_SEGMENT
            } else {
                0
            },
        }
    }

    /// Hands the stack half of the buffers of frames it wrote (rounded
    /// up), keeping the rest to read into: a sender writes more frames
    /// than it reads, and a device left with none would allocate for the
    /// acknowledgments it reads until the stack's next spill.
    fn refill(&mut self, pool: &mut BufferPool) {
        self.pool.move_spares(pool, self.pool.spare().div_ceil(2));
    }

    /// Takes half of the stack's full pool, to read frames into.
    fn spill(&mut self, pool: &mut BufferPool) {
        pool.move_spares(&mut self.pool, pool.spare() / 2);
    }

    /// One non-blocking `read(2)`: the next frame, or `None` if there is
    /// none (or the read failed, which is counted and logged). Frames
    /// longer than MTU + 14 + 4 are discarded and counted, but for the
    /// TCP super-frames of [`TapConfig::large_receive`] (up to a 64 KiB
    /// datagram), which come in an allocation of their own; other frames
    /// read that way are copied into a pool buffer, and the large one is
    /// read into again.
    fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
        let hdr = if self.vnet_hdr { vnet::HEADER_LEN } else { 0 };
        let most = if self.large_receive {
            MAX_SUPER_FRAME
        } else {
            max_rx_frame(self.mtu)
        };
        // No headroom: the buffer's data is empty, and the read fills it.
        let mut buf = match self.spare_large.take() {
            Some(b) => b,
            None => self.pool.alloc(0, hdr + most + 1).into_inner(),
        };
        buf.clear();
        let n = match sys::read_append(self.file.as_fd(), &mut buf, hdr + most + 1) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    log::debug!("TAP `{}`: read failed: {e}", self.name);
                    self.stats.rx_errors += 1;
                }
                self.keep_read_buffer(buf);
                return None;
            }
        };
        let header = match self.check_read(&buf[..n], hdr) {
            Ok(h) => h,
            Err(why) => {
                log::debug!("TAP `{}`: discarding a {n}-byte read: {why}", self.name);
                self.stats.rx_errors += 1;
                self.keep_read_buffer(buf);
                return None;
            }
        };
        let len = n - hdr;
        let mut p = if !self.large_receive {
            let mut p = PacketBuf::from_bytes_mut(buf);
            p.pull_header(hdr);
            p
        } else if header.gso_type & !vnet::GSO_ECN == GSO_NONE {
            let mut p = self.pool.alloc(0, len);
            p.extend_from_slice(&buf[hdr..n]);
            self.spare_large = Some(buf);
            p
        } else {
            self.stats.rx_super_frames += 1;
            let mut p = PacketBuf::from_bytes_mut(buf);
            p.pull_header(hdr);
            p.set_segment_size(header.gso_size);
            p
        };
        p.set_l4_checksum(header.l4_checksum());
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += len as u64;
        Some(p)
    }

    /// One non-blocking `write(2)` of the whole frame. Frames longer than
    /// MTU + 14 are refused with [`DeviceError::TooLarge`], but for TCP
    /// super-segments with [`TapConfig::segmentation`] (up to
    /// [`MAX_SUPER_SEGMENT`]); frames shorter
    /// than an Ethernet header are discarded (and counted). A full kernel
    /// queue gives [`DeviceError::QueueFull`]; an interface that is down or
    /// deleted, [`DeviceError::Down`]. The frame's allocation is kept for
    /// reuse by [`receive`](Device::receive) when it is of the right size.
    fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        let len = frame.len();
        let max = if self.segmentation && frame.segment_size() > 0 {
            MAX_SUPER_SEGMENT + self.medium.header_len()
        } else {
            max_tx_frame(self.mtu, self.medium)
        };
        if len > max {
            self.stats.tx_refused += 1;
            return Err(DeviceError::TooLarge { len, max });
        }
        if len == 0 || len < self.medium.header_len() {
            log::debug!("TAP `{}`: discarding {len}-byte runt", self.name);
            self.stats.tx_refused += 1;
            return Ok(());
        }
        let res = if self.vnet_hdr {
            let mut frame = frame;
            let header = if self.checksum_offload {
                let size = if self.segmentation {
                    frame.segment_size()
                } else {
                    0
                };
                vnet::prepare_transmit(frame.data_mut(), self.medium, size)
            } else {
                VnetHeader::default()
            };
            let header = header.to_bytes();
            let res = (&*self.file)
                .write_vectored(&[IoSlice::new(&header), IoSlice::new(frame.data())])
                .map(|n| n.saturating_sub(header.len()));
            self.pool.recycle(frame);
            res
        } else {
            let res = (&*self.file).write(frame.data());
            self.pool.recycle(frame);
            res
        };
        match res {
            Ok(n) if n == len => {
                self.stats.tx_frames += 1;
                self.stats.tx_bytes += len as u64;
                Ok(())
            }
            Ok(n) => {
                // A TAP write is all or nothing; a short count means the
                // descriptor is not what we think it is.
                log::debug!("TAP `{}`: short write {n} of {len}", self.name);
                self.stats.tx_errors += 1;
                Err(DeviceError::Io(io::ErrorKind::WriteZero))
            }
            Err(e) => {
                let err = transmit_error(&e);
                if err == DeviceError::QueueFull {
                    self.stats.tx_queue_full += 1;
                } else {
                    log::debug!("TAP `{}`: write failed: {e}", self.name);
                    self.stats.tx_errors += 1;
                }
                Err(err)
            }
        }
    }

    /// [`Instant::ZERO`] if a frame is waiting now (a zero-timeout
    /// `ppoll(2)`), `None` otherwise. A real device cannot tell when the
    /// next frame will come: use [`TapDevice::wait`] to sleep until then.
    fn poll_at(&self) -> Option<Instant> {
        match sys::poll_in([self.file.as_fd()], Some(Duration::ZERO)) {
            Ok([r]) if r.readable => Some(Instant::ZERO),
            _ => None,
        }
    }
}

/// Waits until a TAP device has a frame or its [`TapWaker`] is woken
/// ([`TapDevice::sleeper`]).
#[derive(Debug, Clone)]
pub struct TapSleeper {
    tap: Arc<File>,
    wake: Arc<File>,
    name: String,
}

impl TapSleeper {
    /// Blocks until a frame is readable, a wake-up was requested, or
    /// `timeout` passes. `Ok(true)` when ready or woken, `Ok(false)` on
    /// timeout; an error if the interface went away.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let [tap, wake] = match sys::poll_in([self.tap.as_fd(), self.wake.as_fd()], timeout) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        if wake.readable {
            let mut counter = [0u8; 8];
            match (&*self.wake).read(&mut counter) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => log::debug!("TAP `{}`: draining wake-up eventfd: {e}", self.name),
            }
        }
        if tap.error && !tap.readable {
            return Err(io::Error::other(format!(
                "TAP interface `{}` reports an error (deleted while open?)",
                self.name
            )));
        }
        Ok(tap.readable || wake.readable)
    }

    /// The waker that interrupts [`TapSleeper::wait`].
    pub fn waker(&self) -> TapWaker {
        TapWaker {
            fd: Arc::clone(&self.wake),
        }
    }
}

/// Interrupts [`TapDevice::wait`] from another thread. Cheap to clone;
/// keeps the wake-up eventfd open while it lives.
#[derive(Clone)]
pub struct TapWaker {
    fd: Arc<File>,
}

impl TapWaker {
    /// Makes the current or next [`TapDevice::wait`] return at once.
    /// Wake-ups do not accumulate: several before a wait end one wait.
    pub fn wake(&self) {
        match (&*self.fd).write(&1u64.to_ne_bytes()) {
            Ok(_) => {}
            // The counter is saturated: a wake-up is pending anyway.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => log::debug!("TAP waker: eventfd write failed: {e}"),
        }
    }
}

impl fmt::Debug for TapWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapWaker")
            .field("eventfd", &self.fd.as_raw_fd())
            .finish()
    }
}

/// The converted form of a wait timeout for `ppoll(2)`: whole seconds
/// (clamped to what `time_t` holds) and nanoseconds.
fn timespec_parts(d: Duration) -> (libc::time_t, libc::c_long) {
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    // subsec_nanos() < 10^9 fits every c_long.
    (secs, libc::c_long::from(d.subsec_nanos() as i32))
}

/// Readiness of one descriptor after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Readiness {
    /// `POLLIN`.
    readable: bool,
    /// `POLLERR`, `POLLHUP` or `POLLNVAL`.
    error: bool,
}

/// The system calls, each wrapped in a safe function.
// Casts between C integer types are needed on some targets and not others
// (`Ioctl` and `c_char` differ between glibc, musl and architectures).
#[allow(unsafe_code, clippy::unnecessary_cast)]
mod sys {
    /// Registers a device's descriptor with the current tokio runtime,
    /// for readability.
    #[cfg(feature = "tokio")]
    pub(super) fn watch_readable<D: super::OwnsItsFd>(
        device: D,
    ) -> io::Result<tokio::io::unix::AsyncFd<D>> {
        // SAFETY: `OwnsItsFd` promises the descriptor stays open and
        // unchanged while the device lives, and the `AsyncFd` owns the
        // device: the registration ends before the descriptor does.
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(device, tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)
    }

    use std::io;
    use std::mem;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::ptr;

    use super::{Duration, MAX_NAME_LEN, Readiness, timespec_parts};

    /// An `ifreq` with the interface name filled in. `name` must be at
    /// most [`MAX_NAME_LEN`] bytes (checked by the caller; longer names
    /// are cut, never overflow).
    fn ifreq_named(name: &str) -> libc::ifreq {
        // SAFETY: `ifreq` is a plain C struct of byte arrays, integers,
        // `sockaddr`s and one raw pointer inside a union; all-zero bytes
        // are a valid value of each (the pointer is null).
        let mut req: libc::ifreq = unsafe { mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(MAX_NAME_LEN)) {
            *dst = src as libc::c_char;
        }
        req
    }

    /// The NUL-terminated name in an `ifreq`.
    fn ifreq_name(req: &libc::ifreq) -> String {
        let bytes: Vec<u8> = req
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `ioctl(fd, request, &mut req)` for the requests that take an
    /// `ifreq`.
    ///
    /// # Safety
    ///
    /// `request` must be one that reads and writes at most one `struct
    /// ifreq` through its argument (TUNSETIFF, SIOCGIFMTU, SIOCGIFHWADDR).
    unsafe fn ioctl_ifreq(
        fd: BorrowedFd<'_>,
        request: libc::c_ulong,
        req: &mut libc::ifreq,
    ) -> io::Result<()> {
        // SAFETY: `fd` is open for the duration of the call (it is
        // borrowed); `req` is a valid, exclusively borrowed `ifreq`, and
        // the caller guarantees the request accesses nothing beyond it.
        let rc = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                request as libc::Ioctl,
                req as *mut libc::ifreq,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Attaches the open `/dev/net/tun` descriptor to interface `name` of
    /// `kind` (`IFF_TAP` or `IFF_TUN`; with `IFF_NO_PI`, and
    /// `IFF_VNET_HDR` if `vnet_hdr`); returns the interface's actual
    /// name.
    pub(super) fn tun_set_iff(
        fd: BorrowedFd<'_>,
        name: &str,
        kind: libc::c_int,
        vnet_hdr: bool,
    ) -> io::Result<String> {
        let mut req = ifreq_named(name);
        let vnet = if vnet_hdr { libc::IFF_VNET_HDR } else { 0 };
        // The flags are at most 0x5002, well within c_short.
        req.ifr_ifru.ifru_flags = (kind | libc::IFF_NO_PI | vnet) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes back one `struct ifreq`.
        unsafe { ioctl_ifreq(fd, libc::TUNSETIFF as libc::c_ulong, &mut req)? };
        Ok(ifreq_name(&req))
    }

    /// `ioctl(TUNSETOFFLOAD, features)`: the `TUN_F_*` offloads the
    /// reader of the descriptor takes.
    pub(super) fn tun_set_offload(fd: BorrowedFd<'_>, features: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned
        // long of flags) and touches no memory of ours.
        let rc = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETOFFLOAD as libc::Ioctl,
                features as libc::c_ulong,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// One read(2) of at most `max` bytes into `buf`'s free space,
    /// appended to its data: the bytes read are the only ones the buffer
    /// gains, so its free space need not be zeroed first.
    pub(super) fn read_append(
        fd: BorrowedFd<'_>,
        buf: &mut bytes::BytesMut,
        max: usize,
    ) -> io::Result<usize> {
        buf.reserve(max);
        let spare = buf.spare_capacity_mut();
        let want = max.min(spare.len());
        // SAFETY: `spare` is valid for writes of `want` bytes, and read(2)
        // writes at most that many.
        let rc = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
        let n = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
        // SAFETY: read(2) initialised the first `n <= want` bytes of the
        // free space, which follow the data directly.
        unsafe { buf.set_len(buf.len() + n) };
        Ok(n)
    }

    /// A close-on-exec `AF_INET` datagram socket for interface ioctls.
    pub(super) fn control_socket() -> io::Result<OwnedFd> {
        // SAFETY: socket(2) takes no pointers.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2), is open, and is
        // owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The MTU of interface `name` (SIOCGIFMTU).
    pub(super) fn interface_mtu(sock: BorrowedFd<'_>, name: &str) -> io::Result<usize> {
        let mut req = ifreq_named(name);
        // SAFETY: SIOCGIFMTU reads the name and writes `ifru_mtu` of one
        // `struct ifreq`.
        unsafe { ioctl_ifreq(sock, libc::SIOCGIFMTU, &mut req)? };
        // SAFETY: the kernel filled the `ifru_mtu` member; any bit
        // pattern is a valid c_int.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        usize::try_from(mtu).map_err(|_| io::Error::other(format!("negative MTU {mtu}")))
    }

    /// The hardware address of Ethernet interface `name` (SIOCGIFHWADDR).
    pub(super) fn interface_mac(sock: BorrowedFd<'_>, name: &str) -> io::Result<[u8; 6]> {
        let mut req = ifreq_named(name);
        // SAFETY: SIOCGIFHWADDR reads the name and writes `ifru_hwaddr`
        // of one `struct ifreq`.
        unsafe { ioctl_ifreq(sock, libc::SIOCGIFHWADDR, &mut req)? };
        // SAFETY: the kernel filled the `ifru_hwaddr` member, a plain
        // `sockaddr` of integers.
        let addr = unsafe { req.ifr_ifru.ifru_hwaddr };
        if addr.sa_family != libc::ARPHRD_ETHER {
            return Err(io::Error::other(format!(
                "hardware type {} is not Ethernet",
                addr.sa_family
            )));
        }
        let mut mac = [0u8; 6];
        for (dst, src) in mac.iter_mut().zip(addr.sa_data.iter()) {
            *dst = *src as u8;
        }
        Ok(mac)
    }

    /// A non-blocking, close-on-exec eventfd with counter zero.
    pub(super) fn eventfd_nonblocking() -> io::Result<OwnedFd> {
        // SAFETY: eventfd(2) takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd(2), is open, and is
        // owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Waits until one of `fds` is readable (or in error) or `timeout`
    /// passes (`None`: no limit), with `ppoll(2)`. An interrupted wait
    /// is reported as `ErrorKind::Interrupted`.
    pub(super) fn poll_in<const N: usize>(
        fds: [BorrowedFd<'_>; N],
        timeout: Option<Duration>,
    ) -> io::Result<[Readiness; N]> {
        let mut pfds = fds.map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let ts = timeout.map(|d| {
            let (tv_sec, tv_nsec) = timespec_parts(d);
            libc::timespec { tv_sec, tv_nsec }
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `pfds` is a valid array of N `pollfd`s, exclusively
        // borrowed for the call, and its descriptors stay open (they are
        // borrowed); `ts_ptr` is null or points at a live `timespec`; a
        // null signal mask leaves the mask unchanged.
        let rc = unsafe { libc::ppoll(pfds.as_mut_ptr(), N as libc::nfds_t, ts_ptr, ptr::null()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(pfds.map(|p| Readiness {
            readable: p.revents & libc::POLLIN != 0,
            error: p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::L4Checksum;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;
    use std::sync::mpsc;
    use std::time::Instant as StdInstant;

    const T: Instant = Instant::ZERO;
    const MTU: usize = 100;

    /// A device whose "interface" is one end of a datagram socket pair:
    /// like a TAP, it moves whole frames, one per read or write.
    fn fake() -> (TapDevice, UnixDatagram) {
        let (ours, peer) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        let file = File::from(OwnedFd::from(ours));
        let dev = TapDevice::from_parts(
            file,
            "fake0".to_owned(),
            MTU,
            EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]),
        )
        .unwrap();
        (dev, peer)
    }

    fn frame(len: usize, fill: u8) -> PacketBuf {
        PacketBuf::from_payload(0, &vec![fill; len])
    }

    #[test]
    fn names_are_checked_like_the_kernel_does() {
        for good in ["tap0", "nstap-t4194304", "a", "tap%d", "fifteen-bytes-x"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "sixteen-bytes-xx",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\0b",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(matches!(err, TapError::InvalidName { .. }), "{bad:?}");
            assert!(err.to_string().contains("invalid interface name"));
        }
        assert!(matches!(
            TapDevice::open("much-too-long-for-linux"),
            Err(TapError::InvalidName { .. })
        ));
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let os = io::Error::from_raw_os_error;
        let e = open_error("tap0", SYSCALL_OPEN, os(libc::ENOENT));
        assert!(matches!(e, TapError::NoDevice));
        assert!(e.to_string().contains("load the tun module"), "{e}");
        assert!(matches!(
            open_error("tap0", SYSCALL_OPEN, os(libc::ENODEV)),
            TapError::NoDevice
        ));
        for (syscall, errno) in [(SYSCALL_OPEN, libc::EACCES), (SYSCALL_SETIFF, libc::EPERM)] {
            let e = open_error("tap0", syscall, os(errno));
            assert!(matches!(e, TapError::PermissionDenied { .. }), "{e:?}");
            let msg = e.to_string();
            assert!(msg.contains("CAP_NET_ADMIN"), "{msg}");
            assert!(
                msg.contains("ip tuntap add dev tap0 mode tap user $USER"),
                "{msg}"
            );
            assert!(msg.contains(syscall), "{msg}");
        }
        assert!(matches!(
            open_error("lo", SYSCALL_SETIFF, os(libc::EINVAL)),
            TapError::NotTap { .. }
        ));
        // A TUN's refusal tells how to make a TUN.
        let e = TapError::PermissionDenied {
            name: "tun0".into(),
            syscall: SYSCALL_SETIFF,
            mode: "tun",
        };
        assert!(
            e.to_string()
                .contains("ip tuntap add dev tun0 mode tun user $USER"),
            "{e}"
        );
        let e = open_error("tap0", SYSCALL_SETIFF, os(libc::EBUSY));
        assert!(matches!(e, TapError::Busy { .. }));
        assert!(e.to_string().contains("busy"), "{e}");
        // Anything else names the call; errnos only mean something
        // special for the call they came from.
        let e = open_error("tap0", SYSCALL_MTU, os(libc::ENODEV));
        assert!(matches!(e, TapError::Io { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("ioctl(SIOCGIFMTU)") && msg.contains("tap0"),
            "{msg}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(matches!(
            open_error("tap0", SYSCALL_EVENTFD, os(libc::EMFILE)),
            TapError::Io { .. }
        ));
    }

    #[test]
    fn write_errors_map_to_device_errors() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(transmit_error(&os(libc::EAGAIN)), DeviceError::QueueFull);
        assert_eq!(transmit_error(&os(libc::EIO)), DeviceError::Down);
        assert_eq!(transmit_error(&os(libc::EBADFD)), DeviceError::Down);
        assert_eq!(
            transmit_error(&os(libc::EINVAL)),
            DeviceError::Io(io::ErrorKind::InvalidInput)
        );
        assert_eq!(
            transmit_error(&os(libc::ENOBUFS)),
            DeviceError::Io(os(libc::ENOBUFS).kind())
        );
    }

    #[test]
    fn frame_size_limits() {
        assert_eq!(max_rx_frame(1500), 1518);
        assert_eq!(max_tx_frame(1500, Medium::Ethernet), 1514);
        assert_eq!(max_tx_frame(1500, Medium::Ip), 1500);
        assert_eq!(max_rx_frame(usize::MAX), usize::MAX);
        assert_eq!(max_tx_frame(usize::MAX, Medium::Ethernet), usize::MAX);
    }

    #[test]
    fn timeouts_convert_to_timespec() {
        assert_eq!(timespec_parts(Duration::ZERO), (0, 0));
        assert_eq!(
            timespec_parts(Duration::from_micros(1_500_250)),
            (1, 500_250_000)
        );
        assert_eq!(timespec_parts(Duration::MAX).0, libc::time_t::MAX);
        assert_eq!(timespec_parts(Duration::MAX).1, 999_999_999);
    }

    #[test]
    fn receive_reads_one_frame_at_a_time() {
        let (mut dev, peer) = fake();
        assert_eq!(dev.receive(T), None);
        assert_eq!(dev.poll_at(), None);
        peer.send(&[1; 60]).unwrap();
        peer.send(&[2; MTU + HEADER_LEN + RX_SLACK]).unwrap();
        assert_eq!(dev.poll_at(), Some(Instant::ZERO));
        let a = dev.receive(T).unwrap();
        assert_eq!(a.data(), &[1; 60][..]);
        let b = dev.receive(T).unwrap();
        assert_eq!(b.len(), MTU + 18);
        assert!(b.data().iter().all(|&x| x == 2));
        assert_eq!(dev.receive(T), None);
        assert_eq!(dev.poll_at(), None);
        let s = dev.stats();
        assert_eq!((s.rx_frames, s.rx_bytes, s.rx_errors), (2, 60 + 118, 0));
    }

    #[test]
    fn oversized_received_frames_are_discarded() {
        let (mut dev, peer) = fake();
        peer.send(&[7; MTU + 19]).unwrap();
        peer.send(&[8; 500]).unwrap();
        peer.send(&[9; 14]).unwrap();
        assert_eq!(dev.receive(T), None);
        assert_eq!(dev.receive(T), None);
        assert_eq!(dev.receive(T).unwrap().data(), &[9; 14][..]);
        let s = dev.stats();
        assert_eq!((s.rx_frames, s.rx_errors), (1, 2));
    }

    #[test]
    fn transmit_writes_whole_frames_and_checks_sizes() {
        let (mut dev, peer) = fake();
        assert_eq!(dev.capabilities().mtu, MTU);
        assert_eq!(dev.capabilities().checksum, Default::default());
        dev.transmit(T, frame(MTU + HEADER_LEN, 0xaa)).unwrap();
        dev.transmit(T, frame(HEADER_LEN, 0xbb)).unwrap();
        assert_eq!(
            dev.transmit(T, frame(MTU + HEADER_LEN + 1, 0)),
            Err(DeviceError::TooLarge {
                len: MTU + 15,
                max: MTU + 14
            })
        );
        // Runts are discarded, not written.
        dev.transmit(T, frame(13, 0xcc)).unwrap();
        dev.transmit(T, frame(0, 0xcc)).unwrap();
        let mut buf = [0u8; 512];
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0xaa; MTU + HEADER_LEN][..]);
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0xbb; HEADER_LEN][..]);
        assert_eq!(
            peer.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let s = dev.stats();
        assert_eq!(
            (s.tx_frames, s.tx_bytes, s.tx_refused),
            (2, (MTU + 28) as u64, 3)
        );
    }

    #[test]
    fn full_queue_is_reported_and_transmitted_buffers_feed_receive() {
        let (mut dev, peer) = fake();
        let mut full = None;
        // A datagram socket's queue holds a few hundred frames at most.
        for i in 0..100_000 {
            match dev.transmit(T, frame(60, 1)) {
                Ok(()) => {}
                Err(e) => {
                    full = Some((i, e));
                    break;
                }
            }
        }
        let (sent, err) = full.expect("queue never filled");
        assert_eq!(err, DeviceError::QueueFull);
        let s = dev.stats();
        assert_eq!((s.tx_frames, s.tx_queue_full), (sent as u64, 1));
        // Draining makes room again.
        let mut buf = [0u8; 128];
        while peer.recv(&mut buf).is_ok() {}
        dev.transmit(T, frame(60, 1)).unwrap();
        // Transmitted frames are too small to recycle, but a received one
        // dropped back into the pool is reused.
        peer.send(&[3; 20]).unwrap();
        let p = dev.receive(T).unwrap();
        dev.pool.recycle(p);
        peer.send(&[4; 20]).unwrap();
        let _ = dev.receive(T).unwrap();
        assert_eq!(dev.pool.stats(), (1, 1));
    }

    #[test]
    fn buffers_pass_between_the_device_and_the_stack() {
        let (mut dev, peer) = fake();
        let mut stack = BufferPool::new(8, frame_buffer_size(MTU));
        // The stack's frames, written, come back to it through `refill`.
        for _ in 0..4 {
            let mut p = stack.alloc(crate::buf::MAX_HEADROOM, 60);
            p.extend_from_slice(&[0x02; 60]);
            dev.transmit(T, p).unwrap();
        }
        assert_eq!((stack.spare(), dev.pool.spare()), (0, 4));
        dev.refill(&mut stack);
        assert_eq!((stack.spare(), dev.pool.spare()), (2, 2));
        let allocated = stack.stats().0;
        let _ = stack.alloc(crate::buf::MAX_HEADROOM, 60);
        assert_eq!(
            stack.stats().0,
            allocated,
            "a refilled buffer was not reused"
        );
        // A full stack pool leaves half to the device, which reads into it.
        while !stack.is_full() {
            stack.recycle(PacketBuf::with_headroom(0, frame_buffer_size(MTU)));
        }
        dev.spill(&mut stack);
        assert_eq!((stack.spare(), dev.pool.spare()), (4, 6));
        peer.send(&[5; 60]).unwrap();
        let _ = dev.receive(T).unwrap();
        assert_eq!(dev.pool.stats(), (0, 1));
    }

    /// A bulk sender's pattern: two frames written for each one read (an
    /// acknowledgment), with the stack's pool refilled when it runs dry
    /// and spilled when it is full, as the Ethernet endpoint does. After
    /// warm-up neither pool allocates.
    #[test]
    fn a_sender_reading_acknowledgments_allocates_nothing() {
        let (mut dev, peer) = fake();
        let mut stack = BufferPool::new(POOL_BUFFERS, frame_buffer_size(MTU));
        let mut sink = [0u8; 128];
        // A window's worth of segments in one burst, then the
        // acknowledgments of the previous one.
        let mut round = |dev: &mut TapDevice, stack: &mut BufferPool, burst: usize| {
            for _ in 0..burst {
                if stack.spare() == 0 {
                    dev.refill(stack);
                }
                let mut p = stack.alloc(crate::buf::MAX_HEADROOM, 60);
                p.extend_from_slice(&[0x02; 60]);
                dev.transmit(T, p).unwrap();
                peer.recv(&mut sink).unwrap();
            }
            for _ in 0..burst / 2 {
                peer.send(&[6; 60]).unwrap();
            }
            while let Some(ack) = dev.receive(T) {
                if stack.is_full() {
                    dev.spill(stack);
                }
                stack.recycle(ack);
            }
        };
        // Allocations only add to what circulates, and the pools free
        // none below their caps: once enough circulates for every window
        // size, none is allocated again.
        const WINDOWS: [usize; 4] = [2, 40, 150, 250];
        for burst in WINDOWS.into_iter().cycle().take(2000) {
            round(&mut dev, &mut stack, burst);
        }
        let before = (stack.stats().0, dev.pool.stats().0);
        for burst in WINDOWS.into_iter().cycle().take(2000) {
            round(&mut dev, &mut stack, burst);
        }
        assert_eq!((stack.stats().0, dev.pool.stats().0), before);
    }

    #[test]
    fn transmit_on_a_closed_peer_is_an_error() {
        let (mut dev, peer) = fake();
        drop(peer);
        let err = dev.transmit(T, frame(60, 0)).unwrap_err();
        assert!(matches!(err, DeviceError::Io(_)), "{err:?}");
        assert_eq!(dev.stats().tx_errors, 1);
    }

    #[test]
    fn wait_times_out_and_sees_frames() {
        let (dev, peer) = fake();
        let t0 = StdInstant::now();
        assert!(!dev.wait(Some(Duration::from_millis(20))).unwrap());
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert!(!dev.wait(Some(Duration::ZERO)).unwrap());
        peer.send(&[0; 20]).unwrap();
        assert!(dev.wait(None).unwrap());
        // Still readable: waiting does not consume the frame.
        assert!(dev.wait(Some(Duration::ZERO)).unwrap());
    }

    /// An Ethernet frame with an IPv4 TCP segment of `payload` bytes,
    /// every checksum zero (as the stack leaves them for offload).
    fn tcp_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (40 + payload) as u16;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 0, 2]);
        f[30..34].copy_from_slice(&[198, 18, 0, 1]);
        f[46] = 5 << 4;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    #[test]
    fn with_a_vnet_header_the_kernel_s_word_on_checksums_comes_with_each_frame() {
        let (mut dev, peer) = fake();
        dev.vnet_hdr = true;
        dev.checksum_offload = true;
        assert!(dev.capabilities().checksum.tx);
        assert!(!dev.capabilities().checksum.rx);
        let header = |flags, gso_type| {
            VnetHeader {
                flags,
                gso_type,
                ..VnetHeader::default()
            }
            .to_bytes()
        };
        let body = tcp_frame(10);
        for (flags, expect) in [
            (vnet::F_NEEDS_CSUM, L4Checksum::Partial),
            (vnet::F_DATA_VALID, L4Checksum::Verified),
            (0, L4Checksum::Unverified),
        ] {
            peer.send(&[&header(flags, GSO_NONE)[..], &body].concat())
                .unwrap();
            let got = dev.receive(T).expect("a frame");
            assert_eq!(got.data(), &body[..], "the header is not part of the frame");
            assert_eq!(got.l4_checksum(), expect);
        }
        assert_eq!(dev.stats().rx_frames, 3);
        assert_eq!(dev.stats().rx_bytes, 3 * body.len() as u64);
        // A super-frame (not asked for) and a read shorter than a header
        // are discarded and counted; a frame too long as well.
        peer.send(&[&header(0, 1)[..], &body].concat()).unwrap();
        peer.send(&[0u8; 4]).unwrap();
        peer.send(&vec![0u8; vnet::HEADER_LEN + max_rx_frame(MTU) + 1])
            .unwrap();
        for _ in 0..3 {
            assert!(dev.receive(T).is_none());
        }
        assert_eq!(dev.stats().rx_errors, 3);
        // The longest frame allowed still passes.
        peer.send(&vec![0u8; vnet::HEADER_LEN + max_rx_frame(MTU)])
            .unwrap();
        assert_eq!(dev.receive(T).map(|p| p.len()), Some(max_rx_frame(MTU)));

        // Sent: the header, then the frame with its checksums readied.
        let mut expected = tcp_frame(10);
        let want = vnet::prepare_transmit(&mut expected, Medium::Ethernet, 0);
        dev.transmit(T, PacketBuf::from_payload(0, &tcp_frame(10)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = peer.recv(&mut buf).unwrap();
        let h = VnetHeader::parse(&buf[..n]).unwrap();
        assert_eq!(h, want);
        assert_eq!(
            (h.flags, h.csum_start, h.csum_offset),
            (vnet::F_NEEDS_CSUM, 34, 16)
        );
        assert_eq!(&buf[vnet::HEADER_LEN..n], &expected[..]);
        assert_eq!(dev.stats().tx_frames, 1);
        assert_eq!(dev.stats().tx_bytes, expected.len() as u64);
    }

    #[test]
    fn large_receive_takes_super_frames_whole_and_copies_the_rest() {
        let (mut dev, peer) = fake();
        dev.vnet_hdr = true;
        dev.checksum_offload = true;
        dev.large_receive = true;
        let gso = VnetHeader {
            flags: vnet::F_NEEDS_CSUM,
            gso_type: vnet::GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let big = tcp_frame(40_000);
        peer.send(&[&gso.to_bytes()[..], &big].concat()).unwrap();
        let got = dev.receive(T).expect("the super-frame");
        assert_eq!(got.data(), &big[..]);
        assert_eq!(got.l4_checksum(), L4Checksum::Partial);
        assert_eq!(dev.stats().rx_super_frames, 1);
        // An ordinary frame comes in a pool buffer; the large one is kept
        // for the next read.
        let small = tcp_frame(20);
        let plain = VnetHeader::default().to_bytes();
        peer.send(&[&plain[..], &small].concat()).unwrap();
        let got = dev.receive(T).expect("the frame");
        assert_eq!(got.data(), &small[..]);
        assert!(got.truesize() < 4096, "{}", got.truesize());
        assert!(dev.spare_large.is_some());
        // The largest datagram passes; more, or an ordinary frame over the
        // MTU, or another kind of super-frame, does not.
        let most = vec![0u8; MAX_SUPER_FRAME];
        peer.send(&[&gso.to_bytes()[..], &most].concat()).unwrap();
        assert_eq!(dev.receive(T).map(|p| p.len()), Some(MAX_SUPER_FRAME));
        let udp = VnetHeader { gso_type: 5, ..gso };
        peer.send(&[&gso.to_bytes()[..], &most, &[0]].concat())
            .unwrap();
        peer.send(&[&plain[..], &vec![0u8; max_rx_frame(MTU) + 1]].concat())
            .unwrap();
        peer.send(&[&udp.to_bytes()[..], &small].concat()).unwrap();
        for _ in 0..3 {
            assert!(dev.receive(T).is_none());
        }
        assert_eq!(dev.stats().rx_errors, 3);
        assert_eq!(dev.stats().rx_frames, 3);
        assert_eq!(dev.stats().rx_super_frames, 2);
    }

    #[test]
    fn a_tun_moves_bare_packets_up_to_the_mtu() {
        let (mut dev, peer) = fake();
        dev.medium = Medium::Ip;
        let mut dev = TunDevice(dev);
        assert_eq!(dev.capabilities().medium, Medium::Ip);
        // A 20-byte packet is no runt on a TUN; the MTU is the whole
        // packet's limit.
        dev.transmit(T, frame(20, 0x45)).unwrap();
        dev.transmit(T, frame(MTU, 0x45)).unwrap();
        assert_eq!(
            dev.transmit(T, frame(MTU + 1, 0x45)),
            Err(DeviceError::TooLarge {
                len: MTU + 1,
                max: MTU
            })
        );
        assert_eq!(dev.transmit(T, frame(0, 0)), Ok(()));
        assert_eq!(dev.stats().tx_frames, 2);
        assert_eq!(dev.stats().tx_refused, 2);
        let mut buf = [0u8; 256];
        assert_eq!(peer.recv(&mut buf).unwrap(), 20);
        assert_eq!(peer.recv(&mut buf).unwrap(), MTU);
        peer.send(&[0x45; 40]).unwrap();
        assert_eq!(dev.receive(T).map(|p| p.len()), Some(40));
    }

    #[test]
    fn a_vnet_header_without_offload_leaves_frames_as_they_are() {
        let (mut dev, peer) = fake();
        dev.vnet_hdr = true;
        assert!(!dev.capabilities().checksum.tx);
        let frame = tcp_frame(5);
        dev.transmit(T, PacketBuf::from_payload(0, &frame)).unwrap();
        let mut buf = [0u8; 256];
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..vnet::HEADER_LEN], &[0u8; vnet::HEADER_LEN]);
        assert_eq!(&buf[vnet::HEADER_LEN..n], &frame[..]);
    }

    #[test]
    fn waker_interrupts_wait_from_another_thread() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<TapWaker>();
        let (dev, _peer) = fake();
        let waker = dev.waker();
        // Several wake-ups before a wait end that one wait only.
        waker.wake();
        waker.clone().wake();
        assert!(dev.wait(Some(Duration::from_secs(5))).unwrap());
        assert!(!dev.wait(Some(Duration::ZERO)).unwrap());

        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            waker.wake();
        });
        let t0 = StdInstant::now();
        tx.send(()).unwrap();
        assert!(dev.wait(Some(Duration::from_secs(10))).unwrap());
        let waited = t0.elapsed();
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        t.join().unwrap();
        assert!(!dev.wait(Some(Duration::ZERO)).unwrap());
        // The waker outlives the device harmlessly.
        let w = dev.waker();
        drop(dev);
        w.wake();
    }

    #[test]
    fn debug_output_names_the_interface() {
        let (dev, _peer) = fake();
        let s = format!("{dev:?} {:?}", dev.waker());
        assert!(s.contains("fake0") && s.contains("TapWaker"), "{s}");
        assert!(dev.as_raw_fd() >= 0);
    }

    // -----------------------------------------------------------------
    // The real thing, when the test runs with CAP_NET_ADMIN.
    // -----------------------------------------------------------------

    /// Deletes the interface when dropped, whatever happened.
    struct InterfaceGuard(String);

    impl Drop for InterfaceGuard {
        fn drop(&mut self) {
            if std::path::Path::new(&format!("/sys/class/net/{}", self.0)).exists() {
                let _ = std::process::Command::new("ip")
                    .args(["link", "del", "dev", &self.0])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }

    fn sysfs(name: &str, attr: &str) -> String {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{attr}"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn ip(args: &[&str]) -> bool {
        std::process::Command::new("ip")
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Receives until `want` accepts a frame or `limit` passes.
    fn receive_until(
        dev: &mut TapDevice,
        limit: Duration,
        mut want: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = StdInstant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(StdInstant::now()) {
            dev.wait(Some(left.min(Duration::from_millis(100))))
                .unwrap();
            while let Some(f) = dev.receive(T) {
                if want(f.data()) {
                    return Some(f.data().to_vec());
                }
            }
        }
        None
    }

    #[test]
    fn real_tap_when_privileged() {
        use crate::link::arp::{ArpPacket, Operation};
        use core::net::Ipv4Addr;

        let name = format!("nstap-t{}", std::process::id());
        let guard = InterfaceGuard(name.clone());
        let mut dev = match TapDevice::open(&name) {
            Ok(dev) => dev,
            Err(e @ (TapError::PermissionDenied { .. } | TapError::NoDevice)) => {
                println!("skipped: needs CAP_NET_ADMIN ({e})");
                return;
            }
            Err(e) => panic!("opening {name}: {e}"),
        };
        assert_eq!(dev.name(), name);
        assert_eq!(dev.mtu(), sysfs(&name, "mtu").parse::<usize>().unwrap());
        assert_eq!(dev.capabilities().mtu, dev.mtu());
        assert_eq!(dev.kernel_mac().to_string(), sysfs(&name, "address"));
        assert!(dev.kernel_mac().is_unicast());
        // Descriptor flags.
        let fl = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", dev.as_raw_fd())).unwrap();
        let flags = fl
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        assert_ne!(flags & libc::O_NONBLOCK as u32, 0, "not non-blocking");
        assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "not close-on-exec");

        // The kernel's refusals, mapped.
        assert!(matches!(TapDevice::open(&name), Err(TapError::Busy { .. })));
        assert!(matches!(
            TapDevice::open("lo"),
            Err(TapError::NotTap { .. })
        ));

        // While the link is down the kernel sends nothing: only a wake-up
        // ends the wait, promptly.
        let waker = dev.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake();
        });
        let t0 = StdInstant::now();
        assert!(dev.wait(Some(Duration::from_secs(10))).unwrap());
        assert!(t0.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        // Writing to a link that is down.
        assert_eq!(dev.transmit(T, frame(60, 0xff)), Err(DeviceError::Down));

        if !ip(&["-V"]) {
            println!("`ip` not found: skipping the frame exchange");
            return;
        }
        // Traffic stays on this link: 198.18.77.0/24 (RFC 2544 benchmark
        // space) is routed to the TAP and nowhere else.
        let kernel_ip = Ipv4Addr::new(198, 18, 77, 1);
        let stack_ip = Ipv4Addr::new(198, 18, 77, 2);
        assert!(ip(&["addr", "add", "198.18.77.1/24", "dev", &name]));
        assert!(ip(&["link", "set", "dev", &name, "up"]));

        // A datagram to the stack's address makes the kernel ask for it.
        let udp = std::net::UdpSocket::bind((kernel_ip, 0)).unwrap();
        udp.send_to(b"hello tap", (stack_ip, 9)).unwrap();
        let kmac = dev.kernel_mac();
        let request = receive_until(&mut dev, Duration::from_secs(5), |f| {
            f.len() >= 14 + 28
                && f[12..14] == [0x08, 0x06]
                && ArpPacket::new_checked(&f[14..]).is_ok_and(|a| {
                    a.operation() == Operation::Request && a.target_protocol_addr() == stack_ip
                })
        })
        .expect("no ARP request from the kernel");
        assert_eq!(&request[6..12], kmac.as_bytes());

        // Answer it; the kernel accepts the frame and sends the datagram.
        let our_mac = EthernetAddress([0x02, 0x4e, 0x53, 0, 0, 0x02]);
        assert_ne!(our_mac, kmac);
        let rx_before: u64 = sysfs(&name, "statistics/rx_packets").parse().unwrap();
        let mut reply = vec![0u8; 14 + 28];
        reply[0..6].copy_from_slice(kmac.as_bytes());
        reply[6..12].copy_from_slice(our_mac.as_bytes());
        reply[12..14].copy_from_slice(&[0x08, 0x06]);
        {
            let mut arp = ArpPacket::new_unchecked(&mut reply[14..]);
            arp.set_ethernet_ipv4();
            arp.set_operation(Operation::Reply);
            arp.set_sender_hardware_addr(our_mac);
            arp.set_sender_protocol_addr(stack_ip);
            arp.set_target_hardware_addr(kmac);
            arp.set_target_protocol_addr(kernel_ip);
        }
        dev.transmit(T, PacketBuf::from_payload(0, &reply)).unwrap();
        let datagram = receive_until(&mut dev, Duration::from_secs(5), |f| {
            f.len() >= 14 + 20 + 8 && f[0..6] == our_mac.0 && f[12..14] == [0x08, 0x00]
        })
        .expect("the queued datagram never came");
        assert!(datagram.ends_with(b"hello tap"));
        let rx_after: u64 = sysfs(&name, "statistics/rx_packets").parse().unwrap();
        assert!(rx_after > rx_before, "{rx_before} -> {rx_after}");
        let s = dev.stats();
        assert!(s.rx_frames >= 2 && s.tx_frames == 1, "{s:?}");

        drop(dev);
        // Not persistent: gone with its descriptor.
        assert!(!std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
        drop(guard);
    }
}
