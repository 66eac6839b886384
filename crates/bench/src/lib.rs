//! What the benchmark binaries share: latency summaries, the machine's
//! load (every figure is printed with it, since these machines are shared
//! and noisy), a process's CPU time and memory, a directory's size on disk
//! and a plain text table; and, for the benchmarks that run the real
//! server, hookd itself on loopback (`server`), the load sent to it
//! (`client`), the webhook receiver (`receiver`) and per-event timestamps
//! (`stamps`).
//!
//! The binaries themselves are `delivery` (entity write to webhook
//! received, against a bare hyper client), `soak` (rounds of published
//! events through one hookd: its memory and its store's bytes on disk per
//! retained delivery), `store` (the store's share of that path, without
//! HTTP), `lambda` (a fresh wasm instance per event, against LuaJIT as
//! Kong runs it) and `template`; `just bench` runs them all.
#![deny(missing_docs)]

pub mod client;
pub mod receiver;
pub mod report;
pub mod server;
pub mod stamps;

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::Duration;

/// `HOOKD_BIN` if set; otherwise the `hookd` built next to this benchmark
/// (`just bench` builds both in one cargo invocation, so neither is stale
/// and cargo does not rebuild one for the other's features).
pub fn locate_hookd() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HOOKD_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe().context("locating this benchmark's executable")?;
    let bin = exe.with_file_name(format!("hookd{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "no hookd next to {}: run `just bench`, or build it with \
             `cargo build --release -p hookd -p hookd-bench`, or set HOOKD_BIN",
            exe.display()
        );
    }
    Ok(bin)
}

/// Rate and latency of one measured run.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Operations measured.
    pub count: usize,
    /// Operations per second of wall time over the whole run.
    pub rate: f64,
    /// Operations per second of CPU time, when it was measured: what the
    /// rate would be on an otherwise idle CPU.
    pub cpu_rate: Option<f64>,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Summary {
    /// `count` operations over `elapsed`, with their latencies (in any order).
    pub fn new(count: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Summary {
            count,
            rate: count as f64 / elapsed.as_secs_f64(),
            cpu_rate: None,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
        }
    }

    /// The same run, knowing the CPU time it took.
    pub fn with_cpu(self, cpu: Option<Duration>) -> Self {
        Summary {
            cpu_rate: cpu
                .filter(|c| !c.is_zero())
                .map(|c| self.count as f64 / c.as_secs_f64()),
            ..self
        }
    }
}

/// The nearest-rank percentile of sorted values; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time the calling thread has run, from the scheduler's own count
/// (`/proc/thread-self/schedstat`, nanoseconds, updated at least every
/// scheduler tick). On a loaded machine the wall clock also counts the
/// time other processes held the CPU; this does not.
pub fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time (user and system, all threads) process `pid` has used, from
/// `/proc/<pid>/stat`, in clock ticks of 10 ms.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    /// Linux reports these times in USER_HZ, 100 per second on every
    /// architecture it runs on.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Resident memory of process `pid` now and at its peak, bytes: `VmRSS`
/// and `VmHWM` of `/proc/<pid>/status`.
pub fn resident_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(field))?;
        let kib = line.trim_start_matches(':').split_whitespace().next()?;
        Some(kib.parse::<u64>().ok()? * 1024)
    };
    Some((kib("VmRSS")?, kib("VmHWM")?))
}

/// Bytes the files under `dir` take on disk (allocated blocks, as `du`
/// counts them: a sparse file's holes are not counted).
pub fn disk_usage(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        bytes += if meta.is_dir() {
            disk_usage(&entry.path())?
        } else {
            // st_blocks counts 512-byte units whatever the block size.
            meta.blocks() * 512
        };
    }
    Ok(bytes)
}

/// The 1, 5 and 15 minute load averages and the number of CPUs, e.g.
/// `load average 1.52 1.31 0.98 on 2 CPUs`.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("load average {load} on {cpus} CPUs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn cpu_times_are_read() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(thread_cpu_time().unwrap() > Duration::ZERO);
        assert!(process_cpu_time(std::process::id()).is_some());
    }

    #[test]
    fn memory_and_disk_are_read() {
        let (rss, peak) = resident_memory(std::process::id()).unwrap();
        assert!(rss > 0 && peak >= rss);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), vec![1u8; 10_000]).unwrap();
        assert!(disk_usage(dir.path()).unwrap() >= 10_000);
    }

    #[test]
    fn a_summary_is_count_over_time() {
        let s = Summary::new(
            500,
            Duration::from_millis(250),
            vec![Duration::from_millis(3), Duration::from_millis(1)],
        );
        assert_eq!(s.rate, 2000.0);
        assert_eq!(s.cpu_rate, None);
        assert_eq!(
            s.with_cpu(Some(Duration::from_millis(100))).cpu_rate,
            Some(5000.0)
        );
        assert_eq!(s.p50, Duration::from_millis(1));
        assert_eq!(s.p99, Duration::from_millis(3));
    }
}
