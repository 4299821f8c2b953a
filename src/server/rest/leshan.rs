//! `POST /leshan_api/resource/{single,composite}`: telemetry forwarded by the
//! LwM2M server.
use super::{authorize_ingest, read_body};
use crate::error::AppError;
use crate::server::ingest::{self, IngestReceipt, Uplink, UplinkKind};
use crate::server::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

type Receipt = Result<(StatusCode, Json<IngestReceipt>), AppError>;

pub async fn single(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Receipt {
    accept(&state, &headers, body, UplinkKind::Single).await
}

pub async fn composite(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Receipt {
    accept(&state, &headers, body, UplinkKind::Composite).await
}

/// Authorise, read within the size limit, decode, then store through the
/// group-commit writer: answered after the commit that holds the values.
async fn accept(state: &AppState, headers: &HeaderMap, body: Body, kind: UplinkKind) -> Receipt {
    authorize_ingest(state, headers).await?;
    let bytes = read_body(state, headers, body).await?;
    let uplink: Uplink = match kind {
        UplinkKind::Single => ingest::parse_single(&bytes)?,
        UplinkKind::Composite => ingest::parse_composite(&bytes)?,
    };
    let receipt = state.writer.submit(uplink, kind).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// `GET /leshan_api/data/{resource_name}/`: the original server's data API,
/// every value of the named resource type, oldest first; 404 for an unknown name.
pub async fn data(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Json<Vec<serde_json::Value>>, AppError> {
    super::authorize_api(&state, &headers).await?;
    let name = name.trim_end_matches('/');
    let (data_type, values) =
        crate::server::db::resource::values_by_type_name(&state.db.pool, name)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("resource type {name:?}")))?;
    Ok(Json(
        values
            .into_iter()
            .map(|(t, v)| {
                serde_json::json!({
                    "timestamp_created": chrono::DateTime::from_timestamp_millis(t)
                        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    "value": v.to_json(),
                    "resource_type": name,
                    "data_type": data_type,
                })
            })
            .collect(),
    ))
}
