use crate::error::AppError;
use crate::model::Overview;
use leptos::prelude::*;

/// Latest events the overview lists.
pub const OVERVIEW_EVENTS: i64 = 8;

/// Fleet presence, the last hour's intake per minute, pending commands,
/// active updates and the latest events: a handful of indexed reads.
#[server(prefix = "/sfn", endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, AppError> {
    use crate::model::per_minute_filled;
    use crate::server::db::event::EventFilter;
    use crate::server::{context, db, store};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        let pool = &state.db.pool;
        let now = store::now_ms();
        let from = now - 3_600_000;
        let presence = db::endpoint::presence_counts(pool, "", now).await?;
        let counts = db::rollup::points_per_minute(pool, from, now).await?;
        let pending_commands = db::endpoint_operation::count_pending(pool).await?;
        let active_updates = db::firmware_update::count_active(pool).await?;
        let latest = db::event::page(pool, &EventFilter::default(), OVERVIEW_EVENTS).await?;
        Ok(Overview {
            presence,
            points_per_minute: per_minute_filled(&counts, from, now),
            pending_commands,
            active_updates,
            latest_events: latest.events,
        })
    })
    .await
}
