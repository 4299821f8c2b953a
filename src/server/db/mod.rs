//! The table queries, one module per table (or group of tables), each a
//! set of free functions over an executor from `store`.
pub mod api_token;
pub mod device_credential;
pub mod endpoint;
pub mod endpoint_chart;
pub mod endpoint_operation;
pub mod event;
pub mod firmware;
pub mod firmware_update;
pub mod lwm2m_registration;
pub mod resource;
pub mod resource_type;
pub mod rollup;
pub mod seed;
pub mod sessions;
pub mod users;
