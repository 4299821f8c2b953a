use crate::error::AppError;
use crate::model::{EventListQuery, EventPage};
use leptos::prelude::*;

/// One page of events, newest first, each with the values it recorded.
#[server(prefix = "/sfn", endpoint = "events/list")]
pub async fn list_events(query: EventListQuery) -> Result<EventPage, AppError> {
    use crate::server::db::event::EventFilter;
    use crate::server::{context, db};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        let pool = &state.db.pool;
        let endpoint_id = if query.endpoint.is_empty() {
            None
        } else {
            match db::endpoint::id_by_name(pool, &query.endpoint).await? {
                Some(id) => Some(id),
                // No such endpoint: no events, rather than an error page.
                None => {
                    return Ok(EventPage {
                        events: Vec::new(),
                        next_before: None,
                    })
                }
            }
        };
        let filter = EventFilter {
            endpoint_id,
            types: if query.event_type.is_empty() {
                Vec::new()
            } else {
                vec![query.event_type.clone()]
            },
            from: query.from,
            to: query.to,
            before: query.before,
        };
        Ok(db::event::page(pool, &filter, EventListQuery::PAGE_SIZE).await?)
    })
    .await
}
