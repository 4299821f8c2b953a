pub mod endpoint;
pub mod endpoints;
pub mod events;
pub mod login;
pub mod logout;
pub mod not_found;
