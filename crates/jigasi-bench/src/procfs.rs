//! Reading a process's CPU time and memory from `/proc` (the gateway runs as a child process).

use std::path::Path;
use std::time::Duration;

/// CPU time (user + system, all threads) of a process from the text of `/proc/<pid>/stat`, in
/// clock ticks. The command name (field 2) may contain spaces and parentheses, so fields are
/// counted after the last `)`.
pub(crate) fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field (`VmRSS`, `VmHWM`, ...) of `/proc/<pid>/status`, in bytes.
pub(crate) fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 if it cannot be asked.
pub(crate) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// CPU time used so far by process `pid`.
pub(crate) fn cpu_time(pid: u32, ticks_per_second: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    Some(Duration::from_micros(
        ticks.saturating_mul(1_000_000) / ticks_per_second.max(1),
    ))
}

/// Resident set size of process `pid`, in bytes.
pub(crate) fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, "VmRSS")
}

/// Time the threads of process `pid` spent runnable but waiting for a CPU (sum over
/// `/proc/<pid>/task/*/schedstat`, second field, ns): how much the gateway's core was taken by
/// others.
pub(crate) fn run_queue_wait(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let total: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| parse_schedstat_wait(&text))
        .sum();
    Some(Duration::from_nanos(total))
}

/// The run-queue wait (second field, ns) of a `schedstat` line.
pub(crate) fn parse_schedstat_wait(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The first process whose command line contains every one of `needles` (the gateway's unique
/// configuration directory identifies it).
pub(crate) fn find_process(needles: &[&str]) -> Option<u32> {
    let own = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .find(|pid| {
            let Ok(raw) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
            else {
                return false;
            };
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            // `taskset` execs the gateway, so the process keeps its PID but changes its name.
            !cmdline.starts_with("taskset") && needles.iter().all(|n| cmdline.contains(n))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (jigasi (rs) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status = "Name:\tjigasi-rs\nVmHWM:\t   20000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(12_345 * 1024));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(20_000 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        assert_eq!(parse_status_kb("VmRSS:\tlots kB\n", "VmRSS"), None);
    }

    #[test]
    fn schedstat_wait_is_the_second_field() {
        assert_eq!(parse_schedstat_wait("123456 7890 12\n"), Some(7_890));
        assert_eq!(parse_schedstat_wait("123456"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss(pid).unwrap() > 0);
        assert!(cpu_time(pid, clock_ticks()).is_some());
        assert!(run_queue_wait(pid).is_some());
    }
}
