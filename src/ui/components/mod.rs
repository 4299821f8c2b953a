pub mod error_view;
pub mod layout;
pub mod live_chart;
pub mod page_header;
pub mod presence_badge;
pub mod timestamp;
