//! flownexus: device management and telemetry server for LwM2M fleets.
//!
//! The crate compiles twice: with `ssr` for the server binary and with
//! `hydrate` to WebAssembly for the browser. Everything under `server` is
//! server-only and gated here, once.
#![recursion_limit = "256"]

pub mod app;
pub mod chart;
pub mod error;
pub mod model;
pub mod server_fns;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
