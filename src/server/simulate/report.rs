//! Run counters: one shared set of atomics that every device bumps, and
//! the plain snapshot [`SimReport`] the CLI prints.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters shared by the devices of one run.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
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

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in self.fields() {
            writeln!(f, "{name:>24}: {v}")?;
        }
        Ok(())
    }
}
