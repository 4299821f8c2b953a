//! Commands and firmware updates: what the dashboard's server functions and
//! the `/api/v1` routes call. Each call is one transaction; audit events
//! record who did what; the dispatcher is woken after the commit.
use super::auth::Caller;
use super::state::AppState;
use crate::error::AppError;
use crate::model::{
    CommandPage, CommandQuery, CommandTarget, CommandView, CurrentUser, FirmwareChoice, NewCommand,
    NewUpdates, UpdateQuery, UpdateStart, UpdateView,
};

/// Who did something, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    /// A username, or `token <name>`.
    pub name: String,
}

impl Actor {
    pub fn user(user: &CurrentUser) -> Actor {
        Actor {
            user_id: Some(user.id),
            name: user.username.clone(),
        }
    }

    pub async fn of_caller(_state: &AppState, _caller: &Caller) -> Result<Actor, AppError> {
        todo!()
    }
}

pub async fn create(
    _state: &AppState,
    _actor: &Actor,
    _new: &NewCommand,
) -> Result<CommandView, AppError> {
    todo!()
}
pub async fn cancel(_state: &AppState, _actor: &Actor, _id: i64) -> Result<CommandView, AppError> {
    todo!()
}
pub async fn retry(_state: &AppState, _actor: &Actor, _id: i64) -> Result<CommandView, AppError> {
    todo!()
}
pub async fn get(_state: &AppState, _id: i64) -> Result<CommandView, AppError> {
    todo!()
}
pub async fn list(_state: &AppState, _query: &CommandQuery) -> Result<CommandPage, AppError> {
    todo!()
}
pub async fn start_updates(
    _state: &AppState,
    _actor: &Actor,
    _new: &NewUpdates,
) -> Result<Vec<UpdateStart>, AppError> {
    todo!()
}
pub async fn cancel_update(
    _state: &AppState,
    _actor: &Actor,
    _id: i64,
) -> Result<UpdateView, AppError> {
    todo!()
}
pub async fn retry_update(
    _state: &AppState,
    _actor: &Actor,
    _id: i64,
) -> Result<UpdateView, AppError> {
    todo!()
}
pub async fn list_updates(
    _state: &AppState,
    _query: &UpdateQuery,
) -> Result<Vec<UpdateView>, AppError> {
    todo!()
}
pub async fn command_targets(
    _state: &AppState,
    _endpoint_id: i64,
) -> Result<Vec<CommandTarget>, AppError> {
    todo!()
}
pub async fn firmware_choices(_state: &AppState) -> Result<Vec<FirmwareChoice>, AppError> {
    todo!()
}
