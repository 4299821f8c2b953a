//! The time from a notification's arrival (the kernel's receive time) to
//! its acknowledgement, sent once the commit that holds its values ended:
//! what a device waits for, less the network. A Prometheus histogram with
//! fixed buckets, fine around the 10 ms the server is meant to stay under
//! at half its maximum rate, so that a p99 read from it is good to half a
//! millisecond there.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (`+Inf` follows).
const BOUNDS_US: [u64; 28] = [
    250, 500, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 9_000, 10_000, 12_500,
    15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 75_000, 100_000, 150_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

#[derive(Debug, Default)]
pub struct CommitLatency {
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl CommitLatency {
    pub fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US.partition_point(|&b| b < us);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The Prometheus text of the histogram `name`: cumulative buckets,
    /// sum and count, in seconds.
    pub fn write_prometheus(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match BOUNDS_US.get(i) {
                Some(us) => format!("{}", *us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_time_lands_in_the_first_bucket_that_holds_it_and_buckets_add_up() {
        let h = CommitLatency::default();
        for us in [100, 250, 251, 9_999, 10_000, 10_001, 20_000_000] {
            h.record(Duration::from_micros(us));
        }
        let mut text = String::new();
        h.write_prometheus(&mut text, "x", "help");
        let bucket = |le: &str| -> u64 {
            let prefix = format!("x_bucket{{le=\"{le}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
            line[prefix.len()..].parse().unwrap()
        };
        // 100 and 250 µs are within 0.25 ms (bounds are inclusive).
        assert_eq!(bucket("0.00025"), 2);
        assert_eq!(bucket("0.0005"), 3);
        assert_eq!(bucket("0.009"), 3);
        assert_eq!(bucket("0.01"), 5);
        assert_eq!(bucket("0.0125"), 6);
        assert_eq!(bucket("10"), 6);
        assert_eq!(bucket("+Inf"), 7);
        assert!(text.contains("# TYPE x histogram"), "{text}");
        assert!(text.contains("\nx_count 7\n"), "{text}");
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("x_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 20.030_601).abs() < 1e-9, "{sum}");
    }
}
