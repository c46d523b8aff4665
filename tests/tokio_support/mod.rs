//! Stacks for the tokio adapter's tests.

use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
use netstrata::tokio::Stack;
use netstrata::{Interface, InterfaceConfig};

/// Two stacks on one in-memory switch: 192.0.2.1 and 192.0.2.2.
pub fn two_stacks() -> (Stack, Stack) {
    let net = MemoryNetwork::new(1500);
    let host = |n: u32| {
        let port = net.attach();
        let cidr = format!("192.0.2.{n}/24").parse().unwrap();
        let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr);
        Stack::on_memory(Interface::new(cfg, port.capabilities()), port)
    };
    (host(1), host(2))
}
