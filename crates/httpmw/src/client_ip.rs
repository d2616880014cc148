//! The client's address: the TCP peer, or, when the peer is a trusted proxy, the address
//! the proxy reports (decisions.md 8; Coder's `httpmw.ExtractRealIP`).
//!
//! The gate resolves it once per request ([`client_address`]) and records it in the
//! request's [`RequestLog`], so that every later reader (rate limits, the request log, API
//! key `last_used` bookkeeping, login records) sees one answer.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{Extensions, HeaderMap, HeaderName, request::Parts},
};
use ipnet::IpNet;

use crate::request_log::RequestLog;

/// The client address as a bare IP string (`0.0.0.0` when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(peer_ip(&parts.extensions).to_string()))
    }
}

/// The request's client address as the gate resolved it (or, outside the gate, the
/// `ConnectInfo` peer), `0.0.0.0` when nothing recorded one.
pub fn peer_ip(extensions: &Extensions) -> IpAddr {
    RequestLog::client_in(extensions)
        .or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0))
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |addr| {
            addr.ip()
        })
}

/// Which proxies are believed, and which of their headers (`--proxy-trusted-origins`,
/// `--proxy-trusted-headers`). With either list empty no header is ever read.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    pub headers: Vec<HeaderName>,
    pub origins: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn is_enabled(&self) -> bool {
        !self.headers.is_empty() && !self.origins.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.origins.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request that arrived from `peer`.
    ///
    /// Only a trusted peer's headers count. The first trusted header present decides:
    /// its hops are read right to left, trusted proxies are skipped, and the first
    /// untrusted hop is the client (every hop left of it could have been written by the
    /// client itself). If every hop is trusted, the left-most is the client. A header that
    /// does not parse as a list of IP addresses is ignored and the peer address stands:
    /// garbage must never choose the address a limit is keyed on.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(value) = self.headers.iter().find_map(|name| headers.get(name)) else {
            return peer;
        };
        let Ok(value) = value.to_str() else {
            return peer;
        };
        let mut hops = Vec::new();
        for hop in value.split(',') {
            match parse_hop(hop) {
                Some(ip) => hops.push(ip),
                None => return peer,
            }
        }
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !self.trusts(*ip))
            .or_else(|| hops.first().copied())
            .unwrap_or(peer)
    }
}

/// One hop of `X-Forwarded-For`-style headers: a bare address, `[v6]`, or either with a
/// port (some proxies append one).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(canonical)
}

/// `::ffff:a.b.c.d` is the IPv4 address it maps, so one client is one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of a request that arrived from `peer`: the peer itself, or what
/// its headers say when it is a trusted proxy (the gate calls this before anything reads
/// the address).
pub fn client_address(
    trusted: Option<&TrustedProxies>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> SocketAddr {
    match trusted {
        Some(trusted) => SocketAddr::new(trusted.resolve(peer.ip(), headers), peer.port()),
        None => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(origins: &[&str]) -> TrustedProxies {
        TrustedProxies {
            headers: vec![
                HeaderName::from_static("cf-connecting-ip"),
                HeaderName::from_static("x-forwarded-for"),
            ],
            origins: origins.iter().map(|o| o.parse().unwrap()).collect(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(p.resolve(ip("192.0.2.7"), &h), ip("192.0.2.7"));
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        // The client wrote "6.6.6.6" itself; the first proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn every_hop_trusted_gives_the_left_most() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn headers_are_read_in_the_configured_order() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("cf-connecting-ip", "198.51.100.2"),
        ]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("198.51.100.2"));
    }

    #[test]
    fn garbage_leaves_the_peer_address() {
        let p = proxies(&["10.0.0.0/8"]);
        for garbage in [
            "not-an-ip",
            "1.2.3.4, ",
            "1.2.3.4,,5.6.7.8",
            "999.1.1.1",
            "1.2.3.4; drop table",
            "",
        ] {
            let h = headers(&[("x-forwarded-for", garbage)]);
            assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("10.0.0.2"), "{garbage:?}");
        }
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let p = proxies(&["10.0.0.0/8", "::1/128"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9:4711")]);
        assert_eq!(p.resolve(ip("::ffff:10.0.0.2"), &h), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443, ::1")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.4")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("198.51.100.4"));
    }

    #[test]
    fn no_trusted_header_present_leaves_the_peer() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-real-ip", "198.51.100.1")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }
}
