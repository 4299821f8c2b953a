//! The native LwM2M server: LwM2M 1.0–1.2 clients register and report to
//! flownexus itself over CoAP/UDP (`lwm2m_coap_addr`), with no LwM2M
//! server in between. What they report goes to the same group-commit
//! writer, presence, events and live hub as the Leshan JSON routes.
//!
//! Protocol code is sans-IO and unit-tested with bytes from the specs:
//! `coap` (message checks, duplicate detection, block-wise, our requests),
//! `link_format` and `registration` (the registration interface's payload
//! and parameters), `format` (the LwM2M content formats) and `registry`
//! (registrations in memory). `server` is the thin socket task that drives
//! them (`udp`: its datagrams in batches); `send` turns a Send into the
//! writer's neutral values; `latency` times notifications from arrival to
//! acknowledgement.
pub mod coap;
pub mod command;
pub mod downlink;
pub mod firmware;
pub mod format;
pub mod latency;
pub mod link_format;
pub mod manage;
pub mod observe;
pub mod registration;
pub mod registry;
pub mod send;
pub mod server;
pub mod stats;
pub mod udp;

pub use server::{start, Lwm2mHandle};
