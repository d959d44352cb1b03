//! The process's own metrics, read from `/proc` at each scrape, under the
//! names of the Prometheus client guidelines that dashboards expect:
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds` and `process_threads`. Linux only: elsewhere
//! there are none (nothing is registered).
//!
//! A small reader rather than a crate: the maintained collector for
//! `prometheus-client` (`kubert-prometheus-process`) is built against an
//! older major version of it (0.23, whose `Collector` is another trait) and
//! brings `procfs`; what is needed here is one line of `/proc/self/stat`,
//! one of `/proc/stat`, a directory count and `getrlimit`. A value that
//! cannot be read is left out of that scrape.

#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// What `/proc/self/stat` says (`proc_pid_stat(5)`), in its own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// User and system CPU time, in clock ticks.
    cpu_ticks: u64,
    threads: u64,
    /// Start time after boot, in clock ticks.
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

/// Reads a `stat` line. The second field, the command name, is in
/// parentheses and may itself hold spaces and parentheses: the fields are
/// counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    // `rest` starts at field 3 (the state): field n is at index n - 3.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// The boot time in seconds since the Unix epoch, from `/proc/stat`.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// The collector (registered on Linux only).
#[derive(Debug)]
pub(super) struct Linux {
    /// Start time in seconds since the Unix epoch: it does not change.
    start_time: Option<f64>,
}

#[cfg(target_os = "linux")]
impl Linux {
    pub(super) fn new() -> Self {
        let start_ticks = read_stat().map(|s| s.start_ticks);
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| parse_boot_time(&t));
        let start_time = start_ticks
            .zip(boot)
            .map(|(ticks, boot)| boot as f64 + ticks as f64 / ticks_per_second());
        Self { start_time }
    }
}

#[cfg(target_os = "linux")]
fn read_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

#[cfg(target_os = "linux")]
fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

#[cfg(target_os = "linux")]
impl Collector for Linux {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        if let Some(stat) = read_stat() {
            let e = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds.",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(stat.cpu_ticks as f64 / ticks_per_second()).encode(e)?;
            let page = rustix::param::page_size() as u64;
            let gauges = [
                (
                    "process_resident_memory",
                    "Resident memory size in bytes.",
                    Some(Unit::Bytes),
                    stat.resident_pages.saturating_mul(page),
                ),
                (
                    "process_virtual_memory",
                    "Virtual memory size in bytes.",
                    Some(Unit::Bytes),
                    stat.virtual_bytes,
                ),
                ("process_threads", "Number of OS threads in the process.", None, stat.threads),
            ];
            for (name, help, unit, value) in gauges {
                let e = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
                ConstGauge::new(value).encode(e)?;
            }
        }
        // The directory's own descriptor, open while it is read, is counted
        // too (as the Go client does).
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let e = encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(dir.count() as u64).encode(e)?;
        }
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(max) = limit.current {
            let e = encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(max).encode(e)?;
        }
        if let Some(start) = self.start_time {
            let e = encoder.encode_descriptor(
                "process_start_time",
                "Start time of the process since unix epoch in seconds.",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            ConstGauge::new(start).encode(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: Option<Stat>) {
        assert_eq!(parse_stat(line), expected, "{line}");
    }

    #[test]
    fn stat_lines_parse() {
        let stat = |cpu_ticks, threads| Stat {
            cpu_ticks,
            threads,
            start_ticks: 410_899,
            virtual_bytes: 3_133_440,
            resident_pages: 413,
        };
        let tail = "R 1 1 1 0 -1 4194304 99 0 0 0 7 5 0 0 20 0 3 0 410899 3133440 413 \
                    18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        check(&format!("16636 (escalations) {tail}"), Some(stat(12, 3)));
        // A command name with spaces and parentheses of its own.
        check(&format!("16636 (tokio-rt (w) 1) {tail}"), Some(stat(12, 3)));
        check("16636 (cut short) R 1 1", None);
        check("no parentheses at all", None);
        check(&format!("16636 (x) {}", tail.replace(" 7 5 ", " seven 5 ")), None);
    }

    #[test]
    fn the_boot_time_is_found() {
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nintr 5\nbtime 1796144337\nprocesses 9\n"),
            Some(1_796_144_337)
        );
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
    }
}
