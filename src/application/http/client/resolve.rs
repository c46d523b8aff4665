//! Turning a URL's host name into IPv4 addresses, through a small trait
//! the client is generic over.
//!
//! - [`NoResolver`]: the default; IPv4 literals need no resolver, and a
//!   name fails with [`LookupError::NoResolver`].
//! - [`Resolver`]`<N>`: netstrata's own stub resolver (RFC 1035 §7) over
//!   any [`Network`], shared by every request (it locks its cache only
//!   between network exchanges, so one slow lookup holds up no other).
//! - [`SystemResolver`]: the operating system's resolver
//!   ([`std::net::ToSocketAddrs`]: `/etc/hosts`, the system's DNS
//!   servers), for clients on [`StdNetwork`](crate::application::net::StdNetwork).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use crate::application::dns::resolver::{ResolveError, Resolver};
use crate::application::net::Network;

/// Why a host name has no addresses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The client was given no resolver.
    #[error("no resolver configured: use an IPv4 address, or give the client a resolver")]
    NoResolver,
    /// netstrata's DNS resolver failed (NXDOMAIN, timeout, ...).
    #[error("{0}")]
    Dns(#[from] ResolveError),
    /// The system resolver failed.
    #[error("{0}")]
    System(io::Error),
}

/// Resolves host names to IPv4 addresses.
pub trait Resolve {
    /// The IPv4 addresses of `host` (a DNS name, never a literal), in the
    /// order to try them; empty when the name exists without any.
    fn resolve_ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError>;
}

impl<R: Resolve + ?Sized> Resolve for &R {
    fn resolve_ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        (**self).resolve_ipv4(host)
    }
}

impl<R: Resolve + ?Sized> Resolve for std::sync::Arc<R> {
    fn resolve_ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        (**self).resolve_ipv4(host)
    }
}

/// No name resolution at all: only IPv4 literals can be requested.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResolver;

impl Resolve for NoResolver {
    fn resolve_ipv4(&self, _host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        Err(LookupError::NoResolver)
    }
}

/// netstrata's stub resolver; its cache is shared by every request.
impl<N: Network> Resolve for Resolver<N> {
    fn resolve_ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        Ok(self.lookup_ipv4(host)?)
    }
}

/// The operating system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve_ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        let addrs = (host, 0u16)
            .to_socket_addrs()
            .map_err(LookupError::System)?;
        let mut v4 = Vec::new();
        for addr in addrs {
            if let SocketAddr::V4(a) = addr {
                if !v4.contains(a.ip()) {
                    v4.push(*a.ip());
                }
            }
        }
        Ok(v4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_resolver_knows_localhost() {
        // /etc/hosts has localhost on every system the tests run on.
        let addrs = SystemResolver.resolve_ipv4("localhost").unwrap();
        assert!(addrs.contains(&Ipv4Addr::LOCALHOST), "{addrs:?}");
        assert!(matches!(
            NoResolver.resolve_ipv4("localhost"),
            Err(LookupError::NoResolver)
        ));
    }
}
