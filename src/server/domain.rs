//! Domain events: what ingest and the command service changed that other
//! parts of the server act on. Published after the transaction that
//! recorded them commits, through `after_commit::AfterCommit`. The command
//! dispatcher subscribes to `DeviceAwake` to flush a device's queued
//! commands while it listens; it must also poll the queue, because a
//! broadcast subscriber that falls behind misses events.
use crate::model::FirmwareUpdateState;
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    /// The device registered (10240/0) or updated its registration (10240/2):
    /// it listens now, in queue mode only for a short window, so its pending
    /// commands should go out.
    DeviceAwake {
        endpoint_id: i64,
        endpoint: String,
        registered: bool,
        at: i64,
    },
    /// The device deregistered or its registration expired (10240/1).
    DeviceDeregistered {
        endpoint_id: i64,
        endpoint: String,
        at: i64,
    },
    /// These endpoints were heard from (any uplink) in one commit: a
    /// queue-mode device listens for a short while after it reports.
    EndpointsHeard { endpoint_ids: Vec<i64> },
    /// A command was queued for a device (e.g. the firmware Execute).
    OperationQueued { operation_id: i64, endpoint_id: i64 },
    /// An active firmware update moved to a new state.
    FirmwareUpdateChanged {
        update_id: i64,
        endpoint_id: i64,
        endpoint: String,
        state: FirmwareUpdateState,
        result: Option<i64>,
    },
    /// A command, or a firmware update through its commands, changed
    /// status by an operator's action or the dispatcher's housekeeping.
    CommandChanged {
        endpoint: String,
        command_id: Option<i64>,
        update_id: Option<i64>,
        /// Its new status or state, e.g. `queued` or `cancelled`.
        status: String,
    },
}

#[derive(Clone)]
pub struct DomainEvents(broadcast::Sender<DomainEvent>);

impl DomainEvents {
    pub fn new(capacity: usize) -> DomainEvents {
        DomainEvents(broadcast::channel(capacity).0)
    }

    pub fn publish(&self, event: DomainEvent) {
        // No subscriber is not an error: nothing needs to act on it.
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.0.subscribe()
    }
}
