//! `flownexus simulate`: a fleet of simulated LwM2M 1.1 devices (clients)
//! for load and interoperability tests of an LwM2M server.
//!
//! - [`objects`]: the object model (objects 1, 3, 5, 3303, 3304).
//! - [`observe`]: Write-Attributes and the notification schedule.
//! - [`firmware`]: the Firmware Update state machine.
//! - [`transport`]: retransmission of the device's own CON messages.
//! - [`device`]: one device, sans-IO.
//! - [`fleet`]: N devices on N sockets, the run and its report.

pub mod composite;
pub mod device;
pub mod firmware;
pub mod fleet;
pub mod http;
pub mod objects;
pub mod observe;
pub mod report;
pub mod transport;

pub use fleet::{run, run_counted, SimError, SimOptions};
pub use report::{Counters, Histogram, SimReport};
