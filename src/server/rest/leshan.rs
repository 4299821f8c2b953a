//! `POST /leshan_api/resource/{single,composite}`: telemetry forwarded by the
//! LwM2M server.
use super::{authorize_ingest, read_body};
use crate::error::AppError;
use crate::server::ingest::{self, IngestReceipt, UplinkKind};
use crate::server::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

pub async fn single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestReceipt>), AppError> {
    authorize_ingest(&state, &headers).await?;
    let bytes = read_body(&state, &headers, body).await?;
    let uplink = ingest::parse_single(&bytes)?;
    let receipt = ingest::store(&state, uplink, UplinkKind::Single).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

pub async fn composite(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestReceipt>), AppError> {
    authorize_ingest(&state, &headers).await?;
    let bytes = read_body(&state, &headers, body).await?;
    let uplink = ingest::parse_composite(&bytes)?;
    let receipt = ingest::store(&state, uplink, UplinkKind::Composite).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
