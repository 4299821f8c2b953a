//! The native LwM2M server's counters, for `/api/v1/metrics` and the
//! benchmark. Every refusal and every drop is counted here as well as
//! logged.
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Lwm2mStats {
    pub datagrams: AtomicU64,
    /// Datagrams that are not CoAP messages at all: dropped.
    pub malformed: AtomicU64,
    /// Retransmitted requests answered from the cache, not processed again.
    pub duplicates: AtomicU64,
    pub registrations: AtomicU64,
    pub updates: AtomicU64,
    pub deregistrations: AtomicU64,
    pub expirations: AtomicU64,
    /// Send (`POST /dp`) requests stored.
    pub sends: AtomicU64,
    /// Values stored from Send requests, read answers and notifications.
    pub values: AtomicU64,
    /// Observations the server started.
    pub observations: AtomicU64,
    /// Notifications stored.
    pub notifications: AtomicU64,
    /// Notifications older than one already received (RFC 7641 §3.4);
    /// stored like the others.
    pub stale_notifications: AtomicU64,
    /// Requests answered with a 4.xx: bad input, refused registrations,
    /// unknown registrations.
    pub client_errors: AtomicU64,
    /// Requests answered with a 5.xx (the database failed).
    pub server_errors: AtomicU64,
    /// Requests dropped because a bound was reached (requests in progress,
    /// registrations per address or in all).
    pub limited: AtomicU64,
    /// Block-wise bodies completed (RFC 7959): requests reassembled from
    /// Block1, answers and notifications fetched with Block2.
    pub block_transfers: AtomicU64,
    /// Block-wise transfers refused or abandoned: out of order, too large,
    /// a changed ETag, a bad block option.
    pub block_errors: AtomicU64,
    /// Firmware blocks served over CoAP (`GET /fw/<file>`).
    pub firmware_blocks: AtomicU64,
    /// Stored notifications, from arrival to acknowledgement.
    pub commit_latency: super::latency::CommitLatency,
}

/// A snapshot of the counters, as `/api/v1/metrics` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lwm2mCounters {
    pub registered: u64,
    pub datagrams: u64,
    pub malformed: u64,
    pub duplicates: u64,
    pub registrations: u64,
    pub updates: u64,
    pub deregistrations: u64,
    pub expirations: u64,
    pub sends: u64,
    pub values: u64,
    pub observations: u64,
    pub notifications: u64,
    pub stale_notifications: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub limited: u64,
    pub block_transfers: u64,
    pub block_errors: u64,
    pub firmware_blocks: u64,
}

impl Lwm2mStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, registered: usize) -> Lwm2mCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Lwm2mCounters {
            registered: registered as u64,
            datagrams: get(&self.datagrams),
            malformed: get(&self.malformed),
            duplicates: get(&self.duplicates),
            registrations: get(&self.registrations),
            updates: get(&self.updates),
            deregistrations: get(&self.deregistrations),
            expirations: get(&self.expirations),
            sends: get(&self.sends),
            values: get(&self.values),
            observations: get(&self.observations),
            notifications: get(&self.notifications),
            stale_notifications: get(&self.stale_notifications),
            client_errors: get(&self.client_errors),
            server_errors: get(&self.server_errors),
            limited: get(&self.limited),
            block_transfers: get(&self.block_transfers),
            block_errors: get(&self.block_errors),
            firmware_blocks: get(&self.firmware_blocks),
        }
    }
}

impl Lwm2mCounters {
    /// The counters as (metric name suffix, help, value), for the
    /// Prometheus text of `/api/v1/metrics`.
    pub fn named(&self) -> [(&'static str, &'static str, u64); 18] {
        [
            ("datagrams", "UDP datagrams received.", self.datagrams),
            (
                "malformed",
                "Datagrams rejected as malformed CoAP (dropped or reset).",
                self.malformed,
            ),
            (
                "duplicates",
                "Retransmitted messages answered from the cache or dropped, not processed again.",
                self.duplicates,
            ),
            ("registrations", "Registers accepted.", self.registrations),
            ("updates", "Registration updates accepted.", self.updates),
            (
                "deregistrations",
                "De-registers accepted.",
                self.deregistrations,
            ),
            (
                "expirations",
                "Registrations that ran out of lifetime.",
                self.expirations,
            ),
            ("sends", "Send requests stored.", self.sends),
            (
                "values",
                "Values stored from Send requests, read answers and notifications.",
                self.values,
            ),
            (
                "observations",
                "Observations the server started.",
                self.observations,
            ),
            ("notifications", "Notifications stored.", self.notifications),
            (
                "stale_notifications",
                "Notifications older than one already received (stored like the others).",
                self.stale_notifications,
            ),
            (
                "client_errors",
                "Requests answered with a 4.xx.",
                self.client_errors,
            ),
            (
                "server_errors",
                "Requests answered with a 5.xx.",
                self.server_errors,
            ),
            (
                "limited",
                "Requests refused or dropped because a bound was reached.",
                self.limited,
            ),
            (
                "block_transfers",
                "Block-wise bodies completed (Block1 requests, Block2 answers and notifications).",
                self.block_transfers,
            ),
            (
                "block_errors",
                "Block-wise transfers refused or abandoned.",
                self.block_errors,
            ),
            (
                "firmware_blocks",
                "Firmware blocks served over CoAP.",
                self.firmware_blocks,
            ),
        ]
    }
}
