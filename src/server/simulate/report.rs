//! Run counters: one shared set of atomics that every device bumps, and
//! the plain snapshot [`SimReport`] the CLI prints.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters shared by the devices of one run.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// From sending a confirmable notification to its
            /// acknowledgement (which the server sends after the commit
            /// that holds its values).
            pub ack_latency: Histogram,
            /// How late a device's sensor change was handled after it was
            /// due: the load generator's own lag, which an acknowledgement
            /// latency should be read beside.
            pub send_lag: Histogram,
            /// From sending an LwM2M Send to its 2.04 (sent after the
            /// commit that holds its values).
            pub send_latency: Histogram,
        }

        /// What a run did, summed over its devices.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct SimReport {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            pub fn snapshot(&self) -> SimReport {
                SimReport {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }

        impl SimReport {
            /// (name, value) pairs in declaration order, for printing.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters! {
    /// Devices whose socket was bound and task started.
    devices_started,
    /// Successful Registers (2.01), re-registrations included.
    registered,
    /// Register attempts that failed (error code or no answer).
    register_failures,
    /// Register attempts answered 5.03 with a Max-Age (the server was
    /// busy): tried again after it.
    register_busy,
    /// Successful Updates (2.04).
    updates,
    /// Updates answered 4.04 (the device registers again).
    update_not_found,
    /// Successful De-registers (2.02).
    deregistered,
    /// Requests from the server, by operation.
    reads,
    discovers,
    observes,
    observe_cancels,
    composite_reads,
    writes,
    write_attributes,
    executes,
    creates,
    deletes,
    /// Requests answered with a 4.xx or 5.xx code.
    request_errors,
    /// Server requests whose body came in Block1 blocks (RFC 7959),
    /// reassembled and handled once.
    blockwise_requests,
    /// Retransmitted server requests answered from the duplicate cache.
    duplicates,
    /// Notifications sent (CON and NON).
    notifications_sent,
    /// CON notifications acknowledged.
    notifications_acked,
    /// Notifications answered with RST (observation dropped).
    notifications_reset,
    /// CON notifications never acknowledged (observation dropped).
    notifications_timed_out,
    /// LwM2M Send (POST /dp) messages sent and acknowledged with success.
    sends,
    sends_acked,
    /// Times a queue-mode device went to sleep.
    sleeps,
    /// Datagrams that arrived while a device slept and were discarded.
    dropped_while_asleep,
    /// Reboots (Execute 3/0/4, or after a firmware update).
    reboots,
    /// Firmware images downloaded and installed.
    firmware_downloads,
    firmware_updates,
    firmware_failures,
    /// Our CON requests that got no answer, and other protocol errors.
    timeouts,
    errors,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Durations in 50 µs buckets up to 250 ms, and one bucket beyond: fine
/// enough for a p99 of a few milliseconds, lock-free to record from every
/// device task.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

const BUCKET_US: u64 = 50;
const BUCKETS: usize = 5_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let i = ((d.as_micros() as u64) / BUCKET_US).min(BUCKETS as u64) as usize;
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Starts over (between the phases of a benchmark).
    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// The count in each bucket so far. Two of these subtracted give a
    /// window of the run, for [`Histogram::quantile_of`].
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// The upper edge of the bucket holding quantile `q` (0..=1); None
    /// without samples, `Duration::MAX` when it lies beyond 250 ms.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        Self::quantile_of(&self.counts(), q)
    }

    /// [`Histogram::quantile`] of bucket counts from [`Histogram::counts`].
    pub fn quantile_of(counts: &[u64], q: f64) -> Option<Duration> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(if i == BUCKETS {
                    Duration::MAX
                } else {
                    Duration::from_micros((i as u64 + 1) * BUCKET_US)
                });
            }
        }
        None
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in self.fields() {
            writeln!(f, "{name:>24}: {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us * 100));
        }
        assert_eq!(h.count(), 100);
        // 100 samples 0.1..10 ms: the median is 5 ms, p99 9.9 ms, in the
        // upper edges of their 50 µs buckets.
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(5_050)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(9_950)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_micros(10_050)));
        h.record(Duration::from_secs(2));
        assert_eq!(h.quantile(1.0), Some(Duration::MAX));
        h.reset();
        assert_eq!(h.count(), 0);
    }

    #[test]
    fn a_window_is_the_difference_of_two_snapshots() {
        let h = Histogram::default();
        for _ in 0..100 {
            h.record(Duration::from_millis(1));
        }
        let before = h.counts();
        h.record(Duration::from_millis(40));
        h.record(Duration::from_millis(60));
        let window: Vec<u64> = h.counts().iter().zip(&before).map(|(a, b)| a - b).collect();
        // The window holds only the two later samples; the whole run's
        // median stays at 1 ms.
        assert_eq!(
            Histogram::quantile_of(&window, 0.5),
            Some(Duration::from_micros(40_050))
        );
        assert_eq!(
            Histogram::quantile_of(&window, 1.0),
            Some(Duration::from_micros(60_050))
        );
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(1_050)));
        assert_eq!(Histogram::quantile_of(&vec![0; window.len()], 0.5), None);
    }
}
