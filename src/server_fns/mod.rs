//! Server functions, by resource. Each checks the session and the role
//! itself (`context::require_role`): the page redirect in the router and the
//! hidden navigation links are conveniences, not the access control.
//!
//! | functions                                   | least role                |
//! |---------------------------------------------|---------------------------|
//! | `auth`: login, logout, whoami               | none (they manage it)     |
//! | `endpoints`: list, detail (reads)           | viewer                    |
//! | `events`, `overview` (reads)                | viewer                    |
//! | `resource_types::list_resource_types`       | viewer                    |
//! | `resource_types`: update, create            | admin                     |
//! | `users`: everything                         | admin                     |
//! | `tokens`: everything                        | admin                     |
//! | `firmware::list_firmware`                   | viewer                    |
//! | `firmware::delete_firmware`                 | admin                     |
//! | `account::change_password` (own password)   | viewer (any signed-in)    |
pub mod account;
pub mod auth;
pub mod commands;
pub mod endpoints;
pub mod events;
pub mod firmware;
pub mod overview;
pub mod resource_types;
pub mod tokens;
pub mod update_forms;
pub mod users;
