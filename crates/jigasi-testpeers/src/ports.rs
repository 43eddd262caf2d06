//! Picking free loopback ports.
//!
//! The kernel hands out a free port when binding port 0; we check the same port is also free on
//! the other protocol, release both and return it. Another process may grab it before the peer
//! binds it: peers detect that (they do not own the socket) and retry on fresh ports. Within
//! one process, ports handed out recently are never handed out twice.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::{Mutex, PoisonError};

/// How many recently handed-out ports this process remembers (and never repeats).
const RECENT: usize = 4096;

static HANDED_OUT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());

/// Whether `port` can be bound on 127.0.0.1 for both TCP and UDP right now.
fn bindable(port: u16) -> bool {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
}

/// Remembers `ports` as handed out; false (and nothing remembered) if one already was.
fn claim(ports: &[u16]) -> bool {
    let mut recent = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    if ports.iter().any(|p| recent.contains(p)) {
        return false;
    }
    for &p in ports {
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(p);
    }
    true
}

/// A kernel-chosen port (TCP bind of port 0), or None if binding fails.
fn kernel_port() -> Option<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).ok()?;
    let port = listener.local_addr().ok()?.port();
    drop(listener);
    Some(port)
}

/// Returns a port that is free on both TCP and UDP `127.0.0.1` at the time of the call, and that
/// this process has not handed out recently. Never 5060 or 5222 (the kernel picks from the
/// ephemeral range).
///
/// # Panics
/// If no free port is found after many attempts (the loopback interface is unusable).
pub fn free_port() -> u16 {
    free_ports(1)
}

/// Returns the first of `count` consecutive ports, all free on TCP and UDP (for peers such as
/// baresip that also listen on `port + 1`).
///
/// # Panics
/// If no such range is found after many attempts.
pub(crate) fn free_ports(count: u16) -> u16 {
    for _ in 0..1000 {
        let Some(first) = kernel_port() else { continue };
        let Some(last) = first.checked_add(count.saturating_sub(1)) else {
            continue;
        };
        let range: Vec<u16> = (first..=last).collect();
        if range.iter().all(|&p| p != 5060 && p != 5222 && bindable(p)) && claim(&range) {
            return first;
        }
    }
    panic!("no free loopback port found after 1000 attempts: is 127.0.0.1 usable?");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn free_port_is_bindable_on_tcp_and_udp() {
        let port = free_port();
        assert_ne!(port, 0);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let _tcp = TcpListener::bind(addr).unwrap();
        let _udp = UdpSocket::bind(addr).unwrap();
    }

    #[test]
    fn free_port_never_repeats_within_a_process() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len());
    }

    #[test]
    fn free_ports_returns_a_consecutive_free_range() {
        let first = free_ports(2);
        assert!(bindable(first));
        assert!(bindable(first + 1));
    }

    #[test]
    fn claim_refuses_a_port_twice() {
        let port = free_port();
        assert!(!claim(&[port]));
    }

    #[test]
    fn a_bound_port_is_not_bindable() {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!bindable(port));
    }
}
