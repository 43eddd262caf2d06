//! Who owns a socket: `/proc/net/{tcp,udp}` and `/proc/<pid>/fd` (Linux).
//!
//! A peer is ready when the sockets it was told to open are held by its own process group. A
//! plain connect is not enough: another test's peer may hold the port (then ours failed to
//! bind, and may even keep running, as Prosody does).

use std::collections::HashSet;
use std::fs;

/// A transport protocol of a listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    /// A TCP socket in the LISTEN state.
    Tcp,
    /// A bound UDP socket.
    Udp,
}

/// Parses a `/proc/net/tcp` or `/proc/net/udp` table: inodes of the sockets bound to local
/// `port` (any address) that listen (TCP state `0A`) or are bound (UDP state `07`).
pub(crate) fn socket_inodes(table: &str, proto: Proto, port: u16) -> Vec<u64> {
    let want_state = match proto {
        Proto::Tcp => "0A",
        Proto::Udp => "07",
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?;
            let (_, port_hex) = local.rsplit_once(':')?;
            let local_port = u16::from_str_radix(port_hex, 16).ok()?;
            (local_port == port && state.eq_ignore_ascii_case(want_state))
                .then(|| inode.parse::<u64>().ok())
                .flatten()
        })
        .filter(|&inode| inode != 0)
        .collect()
}

/// Parses the process group id out of a `/proc/<pid>/stat` line.
pub(crate) fn stat_pgrp(stat: &str) -> Option<u32> {
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let _ppid = fields.next()?;
    fields.next()?.parse().ok()
}

/// Parses a `/proc/<pid>/fd/<n>` link target `socket:[12345]`.
pub(crate) fn socket_link_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Socket inodes held open by any process of process group `pgid`.
pub(crate) fn group_socket_inodes(pgid: u32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return inodes;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let in_group = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_pgrp(&s))
            == Some(pgid);
        if !in_group {
            continue;
        }
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Some(inode) = fs::read_link(fd.path())
                .ok()
                .and_then(|t| t.to_str().and_then(socket_link_inode))
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// Whether process group `pgid` holds a socket on local `port` for each `(proto, port)`.
pub(crate) fn group_owns(pgid: u32, sockets: &[(Proto, u16)]) -> bool {
    let tables = |proto: Proto| -> String {
        let names: &[&str] = match proto {
            Proto::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
            Proto::Udp => &["/proc/net/udp", "/proc/net/udp6"],
        };
        names
            .iter()
            .filter_map(|n| fs::read_to_string(n).ok())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let owned = group_socket_inodes(pgid);
    sockets.iter().all(|&(proto, port)| {
        socket_inodes(&tables(proto), proto, port)
            .iter()
            .any(|inode| owned.contains(inode))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   1: 0100007F:61E4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 13854 1 0000000017614f71 100 0 0 10 0
   2: 0100007F:61E4 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 13999 1 0000000017614f71 100 0 0 10 0
   3: 0100007F:61E5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 14000 1 0000000017614f71 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 4420: 0100007F:61E4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 13852 2 000000005bfb442d 0
";

    #[test]
    fn finds_listening_tcp_socket_only() {
        assert_eq!(socket_inodes(TCP, Proto::Tcp, 25060), vec![13854]);
        assert_eq!(socket_inodes(TCP, Proto::Tcp, 25061), vec![14000]);
        assert!(socket_inodes(TCP, Proto::Tcp, 25062).is_empty());
    }

    #[test]
    fn finds_bound_udp_socket() {
        assert_eq!(socket_inodes(UDP, Proto::Udp, 25060), vec![13852]);
        assert!(socket_inodes(UDP, Proto::Tcp, 25060).is_empty());
    }

    #[test]
    fn garbage_tables_yield_nothing() {
        assert!(socket_inodes("", Proto::Tcp, 1).is_empty());
        assert!(socket_inodes("header\nnot a table line\n1: zz:zz", Proto::Tcp, 1).is_empty());
    }

    #[test]
    fn parses_pgrp_even_with_odd_comm() {
        assert_eq!(stat_pgrp("123 (kamailio) S 1 123 123 0 -1"), Some(123));
        assert_eq!(stat_pgrp("77 (a b) c)) R 5 70 70 0"), Some(70));
        assert_eq!(stat_pgrp("garbage"), None);
        assert_eq!(stat_pgrp("1 (x) S 1"), None);
    }

    #[test]
    fn parses_socket_links() {
        assert_eq!(socket_link_inode("socket:[13852]"), Some(13852));
        assert_eq!(socket_link_inode("pipe:[13852]"), None);
        assert_eq!(socket_link_inode("socket:[x]"), None);
    }

    #[test]
    fn sees_own_listening_socket() {
        // Our own test process is its own group's member only if it leads a group, so check
        // through the inode of a socket we hold, via our pid's fd table.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let table = fs::read_to_string("/proc/net/tcp").unwrap();
        let inodes = socket_inodes(&table, Proto::Tcp, port);
        assert_eq!(inodes.len(), 1);
        let own: HashSet<u64> = fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|fd| {
                fs::read_link(fd.path())
                    .ok()
                    .and_then(|t| t.to_str().and_then(socket_link_inode))
            })
            .collect();
        assert!(own.contains(&inodes[0]));
    }
}
