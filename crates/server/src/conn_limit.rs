//! A cap on the connections one client address holds open at once (issue #29): without
//! it one address could open thousands of idle or slow connections and hold a file
//! descriptor and a task each. Addresses are counted as the rate limits count them (an
//! IPv6 client by its /64, decisions.md 6); the trusted proxies
//! (`--proxy-trusted-origins`) carry everyone's connections and are not capped. One past
//! the cap gets a 429 and is closed before its request is read.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

use ipnet::IpNet;

#[derive(Debug)]
pub struct ConnectionCap {
    max: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection, counted until it is dropped.
#[derive(Debug)]
pub struct Held {
    cap: Arc<ConnectionCap>,
    key: IpAddr,
}

/// The address already holds as many connections as it may.
#[derive(Debug, PartialEq, Eq)]
pub struct AtCap;

/// What the refused connection reads before it is closed.
pub const REFUSAL: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
    Content-Type: application/json\r\n\
    Connection: close\r\n\
    Content-Length: 70\r\n\r\n\
    {\"message\":\"Too many open connections from this address. Close some.\"}";

fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

impl ConnectionCap {
    /// `None` when `max` is 0: no cap.
    pub fn new(max: usize, exempt: Vec<IpNet>) -> Option<Arc<ConnectionCap>> {
        (max > 0).then(|| {
            Arc::new(ConnectionCap {
                max,
                exempt,
                open: Mutex::default(),
            })
        })
    }

    /// `Ok(None)` for an exempt peer, `Err(AtCap)` when the address is at its cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Option<Held>, AtCap> {
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return Ok(None);
        }
        let key = key_of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return Err(AtCap);
        }
        *count += 1;
        Ok(Some(Held {
            cap: self.clone(),
            key,
        }))
    }

    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&key_of(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_the_cap_and_a_closed_connection_frees_its_place() {
        let cap = ConnectionCap::new(2, vec!["10.0.0.0/8".parse().unwrap()]).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = cap.admit(a).unwrap();
        let _second = cap.admit(a).unwrap();
        assert!(cap.admit(a).is_err());
        assert!(
            cap.admit("192.0.2.2".parse().unwrap()).is_ok(),
            "per address"
        );
        drop(first);
        assert!(cap.admit(a).is_ok());
        for _ in 0..10 {
            assert!(matches!(cap.admit("10.1.2.3".parse().unwrap()), Ok(None)));
        }
        // IPv6 by /64, as the rate limits count it.
        let _x = cap.admit("2001:db8::1".parse().unwrap()).unwrap();
        let _y = cap.admit("2001:db8::2".parse().unwrap()).unwrap();
        assert!(cap.admit("2001:db8::ffff".parse().unwrap()).is_err());
        assert_eq!(cap.open_from("2001:db8::3".parse().unwrap()), 2);
        assert!(ConnectionCap::new(0, Vec::new()).is_none());
    }

    #[test]
    fn the_refusal_is_a_whole_http_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
