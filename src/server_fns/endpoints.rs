use crate::error::AppError;
use crate::model::{EndpointDetail, EndpointSummary};
use leptos::prelude::*;

#[server(prefix = "/sfn", endpoint = "endpoints/list")]
pub async fn list_endpoints() -> Result<Vec<EndpointSummary>, AppError> {
    use crate::model::Role;
    use crate::server::{context, db};
    context::respond(async {
        let (state, _user) = context::require_role(Role::Viewer).await?;
        Ok(db::endpoint::list(&state.db.pool, 10_000).await?)
    })
    .await
}

/// One endpoint with the latest value of every resource and, for each
/// numeric resource, its recent points for a chart.
#[server(prefix = "/sfn", endpoint = "endpoints/detail")]
pub async fn get_endpoint(id: i64) -> Result<EndpointDetail, AppError> {
    use crate::model::Role;
    use crate::model::Series;
    use crate::server::{context, db};
    context::respond(async move {
        const CHART_WINDOW_MS: i64 = 24 * 3_600_000;
        const CHART_MAX_POINTS: i64 = 1_000;
        let (state, _user) = context::require_role(Role::Viewer).await?;
        let pool = &state.db.pool;
        let mut detail = db::endpoint::get(pool, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("endpoint {id}")))?;
        detail.latest = db::resource::latest_for_endpoint(pool, id).await?;
        let now = db::now_ms();
        for latest in detail.latest.iter().filter(|l| l.data_type.is_numeric()) {
            // Registration timestamps are TIME values, not telemetry to chart.
            if latest.path.object_id == crate::server::ingest::REGISTRATION_OBJECT {
                continue;
            }
            let Some((type_id, _)) = state
                .types
                .get((latest.path.object_id, latest.path.resource_id))
            else {
                continue;
            };
            let points = db::resource::series_points(
                pool,
                id,
                type_id,
                &latest.path,
                now - CHART_WINDOW_MS,
                now + 60_000,
                CHART_MAX_POINTS,
            )
            .await?;
            detail.series.push(Series {
                path: latest.path,
                name: latest.name.clone(),
                unit: latest.unit.clone(),
                points,
            });
        }
        Ok(detail)
    })
    .await
}
