//! Server functions, by resource. Each checks the session itself: the page
//! redirect in the router is a convenience, not the access control.
pub mod auth;
pub mod endpoints;
pub mod events;
