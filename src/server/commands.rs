//! Commands and firmware updates: what the dashboard's server functions and
//! the `/api/v1` routes call. Each call is one transaction; audit events
//! record who did what (shown in the endpoint's timeline); the dispatcher
//! and the pages hear of it after the commit.
use super::after_commit::AfterCommit;
use super::auth::Caller;
use super::command_args;
use super::db;
use super::db::endpoint_operation::{self as ops, NewOperation, Settle};
use super::db::firmware_update as updates;
use super::db::resource::Columns;
use super::domain::DomainEvent;
use super::ingest::parse::{decode_value, parse_lwm2m_path};
use super::state::AppState;
use super::store::{self, Db};
use crate::error::{AppError, FieldError};
use crate::model::{
    CommandKind, CommandPage, CommandQuery, CommandTarget, CommandView, CurrentUser, DataType,
    DownloadTransport, FirmwareChoice, FirmwareUpdateState, NewCommand, NewUpdates, UpdateQuery,
    UpdateStart, UpdateStep, UpdateView, Value,
};
use serde_json::Value as Json;

/// The package URI resource and the firmware object's resources.
pub const PACKAGE_URI_PATH: &str = "/5/0/1";
/// Commands may wait for a device this long at most.
const MAX_EXPIRY_S: i64 = 30 * 86_400;

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

    /// The actor of an API caller: a session's user or a token by name.
    pub async fn of_caller(state: &AppState, caller: &Caller) -> Result<Actor, AppError> {
        match caller {
            Caller::User(user) => Ok(Actor::user(user)),
            Caller::Token { id, .. } => {
                let name: Option<String> =
                    sqlx::query_scalar("SELECT name FROM api_token WHERE id = $1")
                        .bind(*id)
                        .fetch_optional(&state.db.pool)
                        .await?;
                Ok(Actor {
                    user_id: None,
                    name: format!("token {}", name.unwrap_or_else(|| id.to_string())),
                })
            }
            Caller::Anonymous => Err(AppError::Unauthorized),
        }
    }
}

/// The domain event of a command's (or an update's) new status, which the
/// pages that list them refetch on.
pub(crate) fn status_changed(
    endpoint: &str,
    command_id: Option<i64>,
    update_id: Option<i64>,
    status: &str,
) -> DomainEvent {
    DomainEvent::CommandChanged {
        endpoint: endpoint.to_string(),
        command_id,
        update_id,
        status: status.to_string(),
    }
}

/// Reads a command's value as the resource's data type. Forms send text;
/// JSON clients may send numbers and booleans as such.
pub fn parse_command_value(value: &Json, data_type: DataType) -> Result<Value, String> {
    let Json::String(text) = value else {
        let mut problems: Vec<FieldError> = Vec::new();
        return decode_value(Some(value), data_type, "value", &mut problems).ok_or_else(|| {
            problems
                .into_iter()
                .map(|p| p.reason)
                .collect::<Vec<_>>()
                .join("; ")
        });
    };
    let t = text.trim();
    match data_type {
        DataType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(Value::Boolean(true)),
            "false" | "off" | "0" | "no" => Ok(Value::Boolean(false)),
            _ => Err(format!("{t:?} is not a boolean: use true or false")),
        },
        DataType::Time => {
            let ms = crate::model::from_datetime_local(t).or_else(|| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|d| d.timestamp_millis())
            });
            ms.map(Value::Time).ok_or_else(|| {
                format!("{t:?} is not a time: use epoch ms, 2026-11-29T18:00 (UTC) or RFC 3339")
            })
        }
        DataType::Integer | DataType::UnsignedInteger | DataType::Float => {
            let number = if data_type == DataType::Float {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| serde_json::json!(f))
            } else {
                t.parse::<i64>().ok().map(|i| serde_json::json!(i))
            };
            let Some(number) = number else {
                return Err(format!("{t:?} is not a valid {data_type} number"));
            };
            parse_command_value(&number, data_type)
        }
        DataType::None => Err("this resource takes no value".into()),
        // Strings keep their spaces; the rest read their wire text.
        DataType::String | DataType::Corelink => {
            let mut problems: Vec<FieldError> = Vec::new();
            decode_value(Some(value), data_type, "value", &mut problems)
                .ok_or_else(|| problems.into_iter().map(|p| p.reason).collect())
        }
        DataType::Opaque | DataType::Objlnk => {
            let mut problems: Vec<FieldError> = Vec::new();
            decode_value(
                Some(&Json::String(t.to_string())),
                data_type,
                "value",
                &mut problems,
            )
            .ok_or_else(|| problems.into_iter().map(|p| p.reason).collect())
        }
    }
}

/// Queues a command after checking it against the resource model.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    new: &NewCommand,
) -> Result<CommandView, AppError> {
    let pool = &state.db.pool;
    let endpoint = new.endpoint.trim();
    if let Some(problem) = crate::model::endpoint_name_problem(endpoint) {
        return Err(AppError::invalid_field("endpoint", problem));
    }
    let Some(endpoint_id) = db::endpoint::id_by_name(pool, endpoint).await? else {
        return Err(AppError::invalid_field(
            "endpoint",
            format!("no endpoint is named {endpoint:?}"),
        ));
    };
    let path = new.path.trim().trim_end_matches('/');
    // An observe (and its cancel) may name several paths
    // (observe-composite): kept as one canonical, comma-separated text.
    let observed = match new.kind {
        CommandKind::Observe | CommandKind::CancelObserve => Some(
            command_args::observe_paths(path)
                .map_err(|reason| AppError::invalid_field("path", reason))?,
        ),
        _ => None,
    };
    let path = match &observed {
        Some(paths) => paths
            .iter()
            .map(|ids| ids.iter().map(|i| format!("/{i}")).collect::<String>())
            .collect::<Vec<_>>()
            .join(","),
        None => path.to_string(),
    };
    let path = path.as_str();
    let Some(ids) = observed
        .as_ref()
        .map(|paths| paths[0].clone())
        .or_else(|| parse_lwm2m_path(path))
    else {
        return Err(AppError::invalid_field(
            "path",
            format!("{path:?} is not an LwM2M path such as /3/0/13"),
        ));
    };
    if let Some(s) = new.expires_in_s {
        if !(1..=MAX_EXPIRY_S).contains(&s) {
            return Err(AppError::invalid_field(
                "expires_in_s",
                format!("must be between 1 and {MAX_EXPIRY_S} seconds"),
            ));
        }
    }
    let resource_type = match ids[..] {
        [object_id, _, resource_id] => {
            db::resource_type::find(pool, object_id, resource_id).await?
        }
        _ => None,
    };
    let (columns, detail) = match new.kind {
        CommandKind::Write => {
            if ids.len() != 3 {
                return Err(AppError::invalid_field(
                    "path",
                    "a write needs an /object/instance/resource path",
                ));
            }
            let Some(t) = &resource_type else {
                return Err(AppError::invalid_field(
                    "path",
                    format!(
                        "{path} is not a known resource type; add it on the Resource types page"
                    ),
                ));
            };
            if !t.writable {
                return Err(AppError::invalid_field(
                    "path",
                    format!("{} ({path}) is not writable", t.name),
                ));
            }
            let Some(raw) = new.value.as_ref().filter(|v| !v.is_null()) else {
                return Err(AppError::invalid_field("value", "a write needs a value"));
            };
            let value = parse_command_value(raw, t.data_type)
                .map_err(|reason| AppError::invalid_field("value", reason))?;
            (
                Columns::from_value(&value),
                format!("write {path} = {value}"),
            )
        }
        CommandKind::Execute => {
            if ids.len() != 3 {
                return Err(AppError::invalid_field(
                    "path",
                    "an execute needs an /object/instance/resource path",
                ));
            }
            match &resource_type {
                Some(t) if t.executable || t.data_type == DataType::None => {}
                Some(t) => {
                    return Err(AppError::invalid_field(
                        "path",
                        format!("{} ({path}) is not executable", t.name),
                    ))
                }
                None => {
                    return Err(AppError::invalid_field(
                        "path",
                        format!(
                        "{path} is not a known resource type; add it on the Resource types page"
                    ),
                    ))
                }
            }
            let arguments = match &new.value {
                None | Some(Json::Null) => None,
                Some(Json::String(s)) if s.trim().is_empty() => None,
                Some(Json::String(s)) if s.contains('\0') || s.len() > 1024 => {
                    return Err(AppError::invalid_field(
                        "value",
                        "arguments must be text of at most 1024 bytes without NUL",
                    ))
                }
                Some(Json::String(s)) => Some(s.trim().to_string()),
                Some(_) => {
                    return Err(AppError::invalid_field(
                        "value",
                        "execute arguments must be text, e.g. 0='a',1",
                    ))
                }
            };
            let detail = match &arguments {
                Some(a) => format!("execute {path} ({a})"),
                None => format!("execute {path}"),
            };
            (
                Columns {
                    text_value: arguments,
                    ..Default::default()
                },
                detail,
            )
        }
        CommandKind::Read => {
            if ids.len() > 3 {
                return Err(AppError::invalid_field(
                    "path",
                    "a read takes an object, instance or resource path",
                ));
            }
            if new.value.as_ref().is_some_and(|v| !v.is_null() && v != "") {
                return Err(AppError::invalid_field("value", "a read takes no value"));
            }
            (Columns::default(), format!("read {path}"))
        }
        kind => management_arguments(state, kind, path, &ids, new.value.as_ref())?,
    };
    let now = store::now_ms();
    let mut tx = store::begin_write(pool).await?;
    let id = ops::enqueue_by(
        &mut *tx,
        &NewOperation {
            endpoint_id,
            resource_type_id: resource_type.as_ref().map(|t| t.id),
            path,
            operation_type: new.kind,
            value: columns,
            created_by: actor.user_id,
            now,
        },
        Some(&actor.name),
        new.expires_in_s.map(|s| now + s * 1000),
    )
    .await?;
    db::event::insert_audit(
        &mut *tx,
        endpoint_id,
        "command_queued",
        Some(&actor.name),
        Some(&detail),
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        operation = id,
        endpoint,
        by = actor.name,
        detail,
        "command queued"
    );
    state.after_commit.domain_events([
        DomainEvent::OperationQueued {
            operation_id: id,
            endpoint_id,
        },
        status_changed(endpoint, Some(id), None, "queued"),
    ]);
    get(state, id).await
}

/// The stored value and the audit detail of a device-management command
/// (discover, create, delete, write-attributes, observe, cancel-observe),
/// after checking its path depth and arguments.
fn management_arguments(
    state: &AppState,
    kind: CommandKind,
    path: &str,
    ids: &[i64],
    value: Option<&Json>,
) -> Result<(Columns, String), AppError> {
    let (depth, shape) = match kind {
        CommandKind::Discover => (1..=3, "an object, instance or resource path"),
        CommandKind::Create => (
            1..=2,
            "an object path, or object/instance for a chosen instance id",
        ),
        CommandKind::Delete => (2..=2, "an /object/instance path"),
        _ => (
            1..=4,
            "an object, instance, resource or resource instance path",
        ),
    };
    if !depth.contains(&ids.len()) {
        return Err(AppError::invalid_field(
            "path",
            format!("{kind} takes {shape}"),
        ));
    }
    let no_value = || {
        if value.is_some_and(|v| !v.is_null() && v != "") {
            Err(AppError::invalid_field(
                "value",
                format!("{kind} takes no value"),
            ))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        CommandKind::WriteAttributes => {
            let Some(Json::String(query)) = value else {
                return Err(AppError::invalid_field(
                    "value",
                    "write-attributes needs attributes as text, e.g. pmin=10&pmax=60",
                ));
            };
            let attributes = command_args::parse_attributes(query)
                .map_err(|reason| AppError::invalid_field("value", reason))?;
            let query = command_args::attribute_queries(&attributes).join("&");
            let detail = format!("write attributes {path}?{query}");
            (
                Columns {
                    text_value: Some(query),
                    ..Default::default()
                },
                detail,
            )
        }
        CommandKind::Create => {
            let object_id = ids[0];
            // A form sends the object as text.
            let parsed = match value {
                Some(Json::String(text)) => serde_json::from_str(text).ok(),
                other => other.cloned(),
            };
            let values = command_args::create_values(
                parsed.as_ref(),
                |resource_id| state.types.get((object_id, resource_id)).map(|(_, t)| t),
                parse_command_value,
            )
            .map_err(|(field, reason)| AppError::invalid_field(field, reason))?;
            let json: serde_json::Map<String, Json> = values
                .iter()
                .map(|(id, v)| (id.to_string(), v.to_json()))
                .collect();
            let text = Json::Object(json).to_string();
            let detail = format!("create {path} {text}");
            (
                Columns {
                    text_value: Some(text),
                    ..Default::default()
                },
                detail,
            )
        }
        _ => {
            no_value()?;
            let verb = match kind {
                CommandKind::CancelObserve => "cancel observation of".to_string(),
                other => other.to_string(),
            };
            (Columns::default(), format!("{verb} {path}"))
        }
    })
}

/// One command.
pub async fn get(state: &AppState, id: i64) -> Result<CommandView, AppError> {
    ops::view(&state.db.pool, id, store::now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("command {id}")))
}

/// Cancels a queued command (409 in any other status).
pub async fn cancel(state: &AppState, actor: &Actor, id: i64) -> Result<CommandView, AppError> {
    change(state, actor, id, Change::Cancel).await
}

/// Queues a failed command again (409 in any other status).
pub async fn retry(state: &AppState, actor: &Actor, id: i64) -> Result<CommandView, AppError> {
    change(state, actor, id, Change::Retry).await
}

/// What an operator does to an existing command.
#[derive(Clone, Copy, PartialEq)]
enum Change {
    Cancel,
    Retry,
}

/// Cancels or retries a command in one transaction with its audit event;
/// a command in another status is a 409 that says which it is.
async fn change(
    state: &AppState,
    actor: &Actor,
    id: i64,
    change: Change,
) -> Result<CommandView, AppError> {
    let current = get(state, id).await?;
    let now = store::now_ms();
    let mut tx = store::begin_write(&state.db.pool).await?;
    let (changed, only, event_type, status) = match change {
        Change::Cancel => (
            ops::cancel(&mut *tx, id, now).await?,
            "only a queued command can be cancelled",
            "command_cancelled",
            "cancelled",
        ),
        Change::Retry => (
            ops::requeue_failed(&mut *tx, id, now).await?,
            "only a failed command can be retried",
            "command_retried",
            "queued",
        ),
    };
    let Some(endpoint_id) = changed else {
        return Err(AppError::Conflict(format!(
            "command {id} is {}, {only}",
            current.status
        )));
    };
    db::event::insert_audit(
        &mut *tx,
        endpoint_id,
        event_type,
        Some(&actor.name),
        Some(&command_words(&current)),
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        operation = id,
        by = actor.name,
        event_type,
        "command changed"
    );
    let queued = (change == Change::Retry).then_some(DomainEvent::OperationQueued {
        operation_id: id,
        endpoint_id,
    });
    state
        .after_commit
        .domain_events(queued.into_iter().chain([status_changed(
            &current.endpoint,
            Some(id),
            None,
            status,
        )]));
    get(state, id).await
}

fn command_words(c: &CommandView) -> String {
    match (&c.kind, &c.value) {
        (CommandKind::Write, Some(v)) => format!("write {} = {v}", c.path),
        (kind, _) => format!("{kind} {}", c.path),
    }
}

/// One page of commands, newest first.
pub async fn list(state: &AppState, query: &CommandQuery) -> Result<CommandPage, AppError> {
    let pool = &state.db.pool;
    let endpoint_id = if query.endpoint.trim().is_empty() {
        None
    } else {
        match db::endpoint::id_by_name(pool, query.endpoint.trim()).await? {
            Some(id) => Some(id),
            None => {
                return Ok(CommandPage {
                    commands: Vec::new(),
                    next_before: None,
                })
            }
        }
    };
    let limit = CommandQuery::PAGE_SIZE;
    let mut commands = ops::page(pool, query, endpoint_id, limit + 1, store::now_ms()).await?;
    let next_before = if commands.len() as i64 > limit {
        commands.truncate(limit as usize);
        commands.last().map(|c| c.id)
    } else {
        None
    };
    Ok(CommandPage {
        commands,
        next_before,
    })
}

/// The dispatcher's record of a send: the command's new status, and what it
/// means for the firmware update it belongs to, in one transaction. Returns
/// the command's endpoint when the command changed.
pub async fn settle_command(
    db_: &Db,
    id: i64,
    settle: &Settle<'_>,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = store::begin_write(&db_.pool).await?;
    if !ops::settle(&mut *tx, id, settle, now).await? {
        tx.commit().await?;
        return Ok(None);
    }
    let view = ops::view(&mut *tx, id, now).await?;
    let Some(view) = view else {
        tx.commit().await?;
        return Ok(None);
    };
    let update = updates::of_operation(&mut *tx, id).await?;
    let words = command_words(&view);
    match settle {
        Settle::Confirmed { .. } => {
            db::event::insert_audit(
                &mut *tx,
                view.endpoint_id,
                "command_confirmed",
                None,
                Some(&words),
                update.map(|u| u.0),
                now,
            )
            .await?;
        }
        Settle::Failed { error, .. } => {
            let detail = format!("{words}: {error}");
            db::event::insert_audit(
                &mut *tx,
                view.endpoint_id,
                "command_failed",
                None,
                Some(&detail),
                update.map(|u| u.0),
                now,
            )
            .await?;
            if let Some((update_id, is_uri)) = update {
                let what = if is_uri {
                    "the package URI write failed"
                } else {
                    "the update Execute failed"
                };
                let reason = format!("{what}: {error}");
                if updates::finish(
                    &mut *tx,
                    update_id,
                    FirmwareUpdateState::Failed,
                    &reason,
                    now,
                )
                .await?
                .is_some()
                {
                    ops::cancel_for_update(&mut *tx, update_id, now).await?;
                    db::event::insert_audit(
                        &mut *tx,
                        view.endpoint_id,
                        "firmware_failed",
                        None,
                        Some(&reason),
                        Some(update_id),
                        now,
                    )
                    .await?;
                }
            }
        }
        Settle::AwaitWake { .. } | Settle::Retry { .. } => {}
    }
    tx.commit().await?;
    Ok(Some(view.endpoint_id))
}

/// The firmware update a command belongs to.
pub async fn update_of_command(pool: &store::Pool, id: i64) -> Result<Option<i64>, sqlx::Error> {
    Ok(updates::of_operation(pool, id).await?.map(|u| u.0))
}

/// Times out active updates without progress since `cutoff`, cancelling
/// their queued commands. Returns how many.
pub async fn time_out_updates(
    db_: &Db,
    after_commit: &AfterCommit,
    now: i64,
    cutoff: i64,
) -> Result<usize, sqlx::Error> {
    let stalled = updates::stalled(&db_.pool, cutoff).await?;
    let mut count = 0;
    for (update_id, endpoint_id) in stalled {
        let minutes = (now - cutoff) / 60_000;
        let reason = format!("no progress for {minutes} min");
        let mut tx = store::begin_write(&db_.pool).await?;
        if updates::finish(
            &mut *tx,
            update_id,
            FirmwareUpdateState::TimedOut,
            &reason,
            now,
        )
        .await?
        .is_none()
        {
            continue;
        }
        ops::cancel_for_update(&mut *tx, update_id, now).await?;
        db::event::insert_audit(
            &mut *tx,
            endpoint_id,
            "firmware_timed_out",
            None,
            Some(&reason),
            Some(update_id),
            now,
        )
        .await?;
        let endpoint: String = sqlx::query_scalar("SELECT name FROM endpoint WHERE id = $1")
            .bind(endpoint_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        count += 1;
        after_commit.domain_events([status_changed(
            &endpoint,
            None,
            Some(update_id),
            "timed_out",
        )]);
    }
    Ok(count)
}

/// Where devices reach the CoAP server: `lwm2m_public_coap_url` (by
/// default derived from `lwm2m_coap_addr`), else the address the running
/// LwM2M server is bound to; None without an LwM2M server.
fn public_coap_url(state: &AppState) -> Option<String> {
    state.settings.lwm2m_public_coap_url.clone().or_else(|| {
        state
            .lwm2m
            .get()
            .map(|h| format!("coap://{}", h.local_addr))
    })
}

/// Starts an update of each endpoint to one firmware: creates the update
/// and queues the write of its absolute package URI (5/0/1). An endpoint
/// that is unknown or already updating is reported, not fatal.
pub async fn start_updates(
    state: &AppState,
    actor: &Actor,
    new: &NewUpdates,
) -> Result<Vec<UpdateStart>, AppError> {
    let pool = &state.db.pool;
    let names: Vec<&str> = new
        .endpoints
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if names.is_empty() {
        return Err(AppError::invalid_field(
            "endpoints",
            "choose at least one endpoint",
        ));
    }
    for (i, name) in new.endpoints.iter().enumerate() {
        if let Some(problem) =
            crate::model::endpoint_name_problem(name.trim()).filter(|_| !name.trim().is_empty())
        {
            return Err(AppError::invalid_field(format!("endpoints[{i}]"), problem));
        }
    }
    if names.len() > 1000 {
        return Err(AppError::invalid_field(
            "endpoints",
            "at most 1000 endpoints at once",
        ));
    }
    let Some(firmware) = db::firmware::find_by_id(pool, new.firmware_id).await? else {
        return Err(AppError::invalid_field(
            "firmware_id",
            format!("no firmware has id {}", new.firmware_id),
        ));
    };
    let version = firmware.version;
    let package_uri = match new.transport {
        DownloadTransport::Http => super::firmware_store::package_uri(
            &state.settings.public_base_url,
            &firmware.stored_file,
        ),
        DownloadTransport::Coap => {
            let Some(base) = public_coap_url(state) else {
                return Err(AppError::invalid_field(
                    "transport",
                    "the native LwM2M server is off (lwm2m_coap_addr), so there is no CoAP download",
                ));
            };
            super::firmware_store::coap_package_uri(&base, &firmware.stored_file)
        }
    };
    let uri_type = db::resource_type::find(pool, 5, 1).await?;
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let Some(endpoint_id) = db::endpoint::id_by_name(pool, name).await? else {
            results.push(UpdateStart {
                endpoint: name.to_string(),
                update_id: None,
                error: Some("no such endpoint".into()),
            });
            continue;
        };
        let now = store::now_ms();
        let mut tx = store::begin_write(pool).await?;
        let update_id = match updates::create_by(
            &mut *tx,
            endpoint_id,
            new.firmware_id,
            actor.user_id,
            &actor.name,
            now,
        )
        .await
        {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                results.push(UpdateStart {
                    endpoint: name.to_string(),
                    update_id: None,
                    error: Some("an update is already active".into()),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let op_id = ops::enqueue_by(
            &mut *tx,
            &NewOperation {
                endpoint_id,
                resource_type_id: uri_type.as_ref().map(|t| t.id),
                path: PACKAGE_URI_PATH,
                operation_type: CommandKind::Write,
                value: Columns {
                    text_value: Some(package_uri.clone()),
                    ..Default::default()
                },
                created_by: actor.user_id,
                now,
            },
            Some(&actor.name),
            None,
        )
        .await?;
        updates::set_send_uri_operation(&mut *tx, update_id, op_id).await?;
        db::event::insert_audit(
            &mut *tx,
            endpoint_id,
            "firmware_update_started",
            Some(&actor.name),
            Some(&format!("to {version}")),
            Some(update_id),
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            endpoint = name,
            version,
            by = actor.name,
            "firmware update started"
        );
        state.after_commit.domain_events([
            DomainEvent::OperationQueued {
                operation_id: op_id,
                endpoint_id,
            },
            status_changed(name, Some(op_id), Some(update_id), "pending"),
        ]);
        results.push(UpdateStart {
            endpoint: name.to_string(),
            update_id: Some(update_id),
            error: None,
        });
    }
    Ok(results)
}

async fn update_view(state: &AppState, id: i64) -> Result<UpdateView, AppError> {
    let (endpoint_id, _, _) = updates::get(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("firmware update {id}")))?;
    let mut views = updates::list_views(&state.db.pool, Some(endpoint_id), false, 1000).await?;
    views.retain(|v| v.id == id);
    attach_steps(&state.db.pool, &mut views).await?;
    views
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("firmware update {id}")))
}

/// Cancels an active update and its queued commands.
pub async fn cancel_update(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<UpdateView, AppError> {
    let (_, _, current) = updates::get(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("firmware update {id}")))?;
    let now = store::now_ms();
    let reason = format!("cancelled by {}", actor.name);
    let mut tx = store::begin_write(&state.db.pool).await?;
    let Some(endpoint_id) =
        updates::finish(&mut *tx, id, FirmwareUpdateState::Cancelled, &reason, now).await?
    else {
        return Err(AppError::Conflict(format!(
            "firmware update {id} is {current}, only an active update can be cancelled"
        )));
    };
    ops::cancel_for_update(&mut *tx, id, now).await?;
    db::event::insert_audit(
        &mut *tx,
        endpoint_id,
        "firmware_update_cancelled",
        Some(&actor.name),
        None,
        Some(id),
        now,
    )
    .await?;
    tx.commit().await?;
    let view = update_view(state, id).await?;
    state
        .after_commit
        .domain_events([status_changed(&view.endpoint, None, Some(id), "cancelled")]);
    Ok(view)
}

/// Starts a failed, timed-out or cancelled update again, as a new update of
/// the same endpoint to the same firmware.
pub async fn retry_update(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<UpdateView, AppError> {
    let old = update_view(state, id).await?;
    if !old.can_retry() {
        return Err(AppError::Conflict(format!(
            "firmware update {id} is {}, only a failed, timed-out or cancelled update can be retried",
            old.state
        )));
    }
    // The same transport as before: the scheme of the URI it wrote.
    let transport = match updates::package_uri(&state.db.pool, id).await? {
        Some(uri) if uri.starts_with("coap://") => DownloadTransport::Coap,
        _ => DownloadTransport::Http,
    };
    let started = start_updates(
        state,
        actor,
        &NewUpdates {
            endpoints: vec![old.endpoint.clone()],
            firmware_id: old.firmware_id,
            transport,
        },
    )
    .await?;
    match started.into_iter().next() {
        Some(UpdateStart {
            update_id: Some(new_id),
            ..
        }) => update_view(state, new_id).await,
        Some(UpdateStart { error, .. }) => Err(AppError::Conflict(
            error.unwrap_or_else(|| "the update could not start".into()),
        )),
        None => Err(AppError::Internal),
    }
}

/// Firmware updates, newest first, each with its steps.
pub async fn list_updates(
    state: &AppState,
    query: &UpdateQuery,
) -> Result<Vec<UpdateView>, AppError> {
    let pool = &state.db.pool;
    let endpoint_id = if query.endpoint.trim().is_empty() {
        None
    } else {
        match db::endpoint::id_by_name(pool, query.endpoint.trim()).await? {
            Some(id) => Some(id),
            None => return Ok(Vec::new()),
        }
    };
    let mut views =
        updates::list_views(pool, endpoint_id, query.active, UpdateQuery::PAGE_SIZE).await?;
    attach_steps(pool, &mut views).await?;
    Ok(views)
}

/// Fills each update's steps with one query: steps linked to an update go
/// to it; the ingest tracker's `firmware_*` steps go to the endpoint's
/// update that was the newest when they happened.
async fn attach_steps(pool: &store::Pool, views: &mut [UpdateView]) -> Result<(), sqlx::Error> {
    let Some(since) = views.iter().map(|v| v.created_at).min() else {
        return Ok(());
    };
    let mut endpoint_ids: Vec<i64> = views.iter().map(|v| v.endpoint_id).collect();
    endpoint_ids.sort_unstable();
    endpoint_ids.dedup();
    let steps = db::event::update_steps(pool, &endpoint_ids, since).await?;
    for (endpoint_id, linked, event_type, detail, actor, at) in steps {
        let target = match linked {
            Some(update_id) => views.iter_mut().find(|v| v.id == update_id),
            // Updates are newest first: the first one of this endpoint that
            // started at or before the step.
            None => views
                .iter_mut()
                .find(|v| v.endpoint_id == endpoint_id && v.created_at <= at),
        };
        if let Some(view) = target {
            view.steps.push(UpdateStep {
                event_type,
                detail,
                actor,
                at,
            });
        }
    }
    Ok(())
}

/// The resources of an endpoint's objects that can be written or executed.
pub async fn command_targets(
    state: &AppState,
    endpoint_id: i64,
) -> Result<Vec<CommandTarget>, AppError> {
    let rows = db::resource_type::command_targets(&state.db.pool, endpoint_id).await?;
    Ok(rows
        .into_iter()
        .map(|(instance_id, t)| CommandTarget {
            path: format!("/{}/{}/{}", t.object_id, instance_id, t.resource_id),
            name: t.name,
            data_type: t.data_type,
            unit: t.unit,
            kind: if t.writable && t.data_type != DataType::None {
                CommandKind::Write
            } else {
                CommandKind::Execute
            },
        })
        .collect())
}

/// The firmware images an update can target, newest first.
pub async fn firmware_choices(state: &AppState) -> Result<Vec<FirmwareChoice>, AppError> {
    Ok(db::firmware::list(&state.db.pool)
        .await?
        .into_iter()
        .map(|f| FirmwareChoice {
            id: f.id,
            version: f.version,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_text_is_read_as_the_resource_type() {
        assert_eq!(
            parse_command_value(&json!(" 300 "), DataType::Integer),
            Ok(Value::Integer(300))
        );
        assert_eq!(
            parse_command_value(&json!(300), DataType::Integer),
            Ok(Value::Integer(300))
        );
        assert_eq!(
            parse_command_value(&json!("2.5"), DataType::Float),
            Ok(Value::Float(2.5))
        );
        assert!(parse_command_value(&json!("NaN"), DataType::Float).is_err());
        assert!(parse_command_value(&json!("-1"), DataType::UnsignedInteger).is_err());
        assert!(parse_command_value(&json!("12x"), DataType::Integer).is_err());
        assert_eq!(
            parse_command_value(&json!("on"), DataType::Boolean),
            Ok(Value::Boolean(true))
        );
        assert_eq!(
            parse_command_value(&json!(false), DataType::Boolean),
            Ok(Value::Boolean(false))
        );
        assert!(parse_command_value(&json!("maybe"), DataType::Boolean).is_err());
        assert_eq!(
            parse_command_value(&json!("2024-05-31T16:08"), DataType::Time),
            Ok(Value::Time(1_717_171_680_000))
        );
        assert_eq!(
            parse_command_value(&json!("2024-05-31T18:08:00+02:00"), DataType::Time),
            Ok(Value::Time(1_717_171_680_000))
        );
        assert_eq!(
            parse_command_value(&json!(" keep spaces "), DataType::String),
            Ok(Value::String(" keep spaces ".into()))
        );
        assert_eq!(
            parse_command_value(&json!("0aFF"), DataType::Opaque),
            Ok(Value::Opaque(vec![0x0a, 0xff]))
        );
        assert!(parse_command_value(&json!("x"), DataType::None).is_err());
    }
}
