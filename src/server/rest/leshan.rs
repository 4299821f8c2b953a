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

/// Authorise, read within the size limit, decode, store: one transaction.
async fn accept(state: &AppState, headers: &HeaderMap, body: Body, kind: UplinkKind) -> Receipt {
    authorize_ingest(state, headers).await?;
    let bytes = read_body(state, headers, body).await?;
    let uplink: Uplink = match kind {
        UplinkKind::Single => ingest::parse_single(&bytes)?,
        UplinkKind::Composite => ingest::parse_composite(&bytes)?,
    };
    let receipt = ingest::store(state, uplink, kind).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}
