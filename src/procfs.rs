//! The process's memory and the pipeline's CPU time, from Linux's `/proc`.

use std::fs;

/// Resident set size, bytes, of process `pid` (a number, or `self`):
/// `VmRSS` of its `/proc/{pid}/status`.
pub fn rss_bytes(pid: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time, ns, of this process's threads named `name` (their `comm`), from
/// the scheduler's own accounting (`schedstat`, nanosecond resolution).
pub fn thread_cpu_ns(name: &str) -> Option<u64> {
    tasks_cpu_ns("self", |comm| comm == name)
}

/// CPU time, ns, of the threads of process `pid` (a number, or `self`)
/// whose name (`comm`) `wanted` accepts, from `schedstat`; `None` when
/// there are none (or the process is gone). Threads that have ended are
/// not counted.
pub fn tasks_cpu_ns(pid: &str, wanted: impl Fn(&str) -> bool) -> Option<u64> {
    let mut total = None;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let path = task.path();
        let Ok(comm) = fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !wanted(comm.trim_end()) {
            continue;
        }
        let Ok(schedstat) = fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        if let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            *total.get_or_insert(0) += ns;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(rss_bytes("self").unwrap() > 1 << 20);
        let spin = std::thread::Builder::new()
            .name("procfs-spin".into())
            .spawn(|| {
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed() < std::time::Duration::from_millis(50) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                thread_cpu_ns("procfs-spin")
            })
            .unwrap();
        let ns = spin.join().unwrap().unwrap();
        assert!(ns >= 10_000_000, "{ns}");
        assert_eq!(thread_cpu_ns("no-such-thread"), None);
    }
}
