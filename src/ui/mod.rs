pub mod components;
pub mod live_socket;
pub mod pages;
pub mod style;
pub mod throttle;
