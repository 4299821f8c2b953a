pub mod error_view;
pub mod layout;
pub mod live_chart;
pub mod registration_badge;
pub mod timestamp;
