pub mod error_view;
pub mod event_list;
pub mod layout;
pub mod live_chart;
pub mod page_header;
pub mod presence_badge;
pub mod relative_time;
pub mod timestamp;
