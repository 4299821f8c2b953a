//! Commands and firmware updates from the dashboard. Reads need a viewer;
//! everything that sends something to a device needs an operator. The same
//! service (`server::commands`) backs the `/api/v1` routes.
use crate::error::AppError;
use crate::model::{
    CommandPage, CommandQuery, DownloadTransport, FirmwareChoice, UpdateQuery, UpdateStart,
    UpdateView,
};
use leptos::prelude::*;

/// One page of commands, newest first.
#[server(prefix = "/sfn", endpoint = "commands/list")]
pub async fn list_commands(query: CommandQuery) -> Result<CommandPage, AppError> {
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        commands::list(&state, &query).await
    })
    .await
}

/// Queues a command. `value` is the form's text: read as the resource's
/// data type for a write, the arguments for an execute, the attributes
/// for write-attributes (`pmin=10&pmax=60`), a JSON object of resource
/// values for a create.
#[server(prefix = "/sfn", endpoint = "commands/send")]
pub async fn send_command(
    endpoint: String,
    kind: String,
    path: String,
    #[server(default)] value: Option<String>,
) -> Result<i64, AppError> {
    use crate::model::{CommandKind, NewCommand, Role};
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Operator).await?;
        let kind = CommandKind::parse(kind.trim()).ok_or_else(|| {
            AppError::invalid_field(
                "kind",
                "must be write, execute, read, discover, create, delete, write_attributes, \
                 observe or cancel_observe",
            )
        })?;
        let new = NewCommand {
            endpoint,
            kind,
            path,
            value: value.map(serde_json::Value::String),
            expires_in_s: None,
        };
        let view = commands::create(&state, &commands::Actor::user(&user), &new).await?;
        Ok(view.id)
    })
    .await
}

/// Cancels a queued command.
#[server(prefix = "/sfn", endpoint = "commands/cancel")]
pub async fn cancel_command(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Operator).await?;
        commands::cancel(&state, &commands::Actor::user(&user), id).await?;
        Ok(())
    })
    .await
}

/// Queues a failed command again.
#[server(prefix = "/sfn", endpoint = "commands/retry")]
pub async fn retry_command(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Operator).await?;
        commands::retry(&state, &commands::Actor::user(&user), id).await?;
        Ok(())
    })
    .await
}

/// Firmware updates, newest first, each with its timeline.
#[server(prefix = "/sfn", endpoint = "updates/list")]
pub async fn list_updates(query: UpdateQuery) -> Result<Vec<UpdateView>, AppError> {
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        commands::list_updates(&state, &query).await
    })
    .await
}

/// The firmware images an update can target, newest first.
#[server(prefix = "/sfn", endpoint = "updates/firmware")]
pub async fn firmware_choices() -> Result<Vec<FirmwareChoice>, AppError> {
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        commands::firmware_choices(&state).await
    })
    .await
}

/// Starts updates of these endpoints to one firmware; each endpoint's
/// outcome is reported (one with an active update is skipped, not fatal).
#[server(prefix = "/sfn", endpoint = "updates/start")]
pub async fn start_updates(
    #[server(default)] endpoints: Vec<String>,
    firmware_id: i64,
    #[server(default)] transport: DownloadTransport,
) -> Result<Vec<UpdateStart>, AppError> {
    use crate::model::{NewUpdates, Role};
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Operator).await?;
        let new = NewUpdates {
            endpoints,
            firmware_id,
            transport,
        };
        commands::start_updates(&state, &commands::Actor::user(&user), &new).await
    })
    .await
}

/// Cancels an active update (and its commands still queued).
#[server(prefix = "/sfn", endpoint = "updates/cancel")]
pub async fn cancel_update(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Operator).await?;
        commands::cancel_update(&state, &commands::Actor::user(&user), id).await?;
        Ok(())
    })
    .await
}

/// Starts a failed, timed-out or cancelled update again, as a new update.
#[server(prefix = "/sfn", endpoint = "updates/retry")]
pub async fn retry_update(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{commands, context};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Operator).await?;
        commands::retry_update(&state, &commands::Actor::user(&user), id).await?;
        Ok(())
    })
    .await
}
