use crate::error::AppError;
use crate::model::{ChartRange, EndpointDetail, EndpointListPage, EndpointListQuery};
use leptos::prelude::*;

/// One page of the endpoint table, filtered and sorted in the database.
#[server(prefix = "/sfn", endpoint = "endpoints/list")]
pub async fn list_endpoints(query: EndpointListQuery) -> Result<EndpointListPage, AppError> {
    use crate::server::{context, db, store};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        let mut conn = state.db.pool.acquire().await?;
        Ok(db::endpoint::list_page(&mut conn, &query, store::now_ms()).await?)
    })
    .await
}

/// Charts get about two values per horizontal pixel of a 720 px chart.
pub const CHART_MAX_POINTS: i64 = 1_440;
/// Newest events, commands and updates the endpoint page lists.
pub const DETAIL_LIST_LIMIT: i64 = 20;

/// One endpoint: identity, the latest value of every resource, a chart per
/// numeric resource that is pinned, observed or changed in `range`
/// (`model::chart_shown`; downsampled on the server for long ranges), its
/// newest events, commands and firmware updates.
#[server(prefix = "/sfn", endpoint = "endpoints/detail")]
pub async fn get_endpoint(id: i64, range: ChartRange) -> Result<EndpointDetail, AppError> {
    use crate::model::{
        chart_shown, Band, Chart, ChartChoice, Point, Series, SeriesData, UnchartedResource,
    };
    use crate::server::db::event::EventFilter;
    use crate::server::db::resource::SeriesKey;
    use crate::server::{context, db, series, store};
    context::respond(async move {
        let (state, _user) = context::require_role(crate::model::Role::Viewer).await?;
        let pool = &state.db.pool;
        let mut detail = db::endpoint::get(pool, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("endpoint {id}")))?;
        detail.latest = db::resource::latest_for_endpoint(pool, id).await?;
        let registration = db::lwm2m_registration::find_by_endpoint(pool, id).await?;
        let written = match registration {
            Some(_) => db::endpoint_operation::written_attributes(pool, id).await?,
            None => Vec::new(),
        };
        detail.native = registration.map(|r| crate::model::NativeConnection {
            observations: state
                .lwm2m
                .get()
                .map(|l| l.observations(&detail.summary.name))
                .unwrap_or_default()
                .into_iter()
                .map(|path| crate::server::command_args::observed(path, &written))
                .collect(),
            address: r.address,
            secure: r.secure,
            lwm2m_version: r.lwm2m_version,
            binding: r.binding,
            queue_mode: r.queue_mode,
            lifetime_s: r.lifetime_s,
            registered_at: r.registered_at,
            expires_at: r.expires_at,
            object_links: r.object_links,
        });
        let (from, to) = range.bounds(store::now_ms());
        detail.range = range;
        detail.from = from;
        detail.to = to;
        // What is observed: a native device's observations, else (a device
        // behind Leshan) the paths the server is configured to observe.
        let observed: Vec<String> = match &detail.native {
            Some(native) => native.observations.iter().map(|o| o.path.clone()).collect(),
            None => state
                .settings
                .lwm2m_observe
                .iter()
                .map(|p| p.to_string())
                .collect(),
        };
        let choices = db::endpoint_chart::for_endpoint(pool, id).await?;
        let choice_of = |object_id: i64, resource_id: i64| {
            choices
                .iter()
                .find(|(k, _)| *k == (object_id, resource_id))
                .map(|(_, c)| *c)
        };
        // Per chart: whether one of its series is observed or changed.
        let mut reasons: Vec<(bool, bool)> = Vec::new();
        for latest in detail.latest.iter().filter(|l| l.data_type.is_numeric()) {
            // Registration timestamps are TIME values, not telemetry to chart.
            if latest.path.object_id == crate::server::ingest::REGISTRATION_OBJECT {
                continue;
            }
            let (object_id, resource_id) = (latest.path.object_id, latest.path.resource_id);
            let choice = choice_of(object_id, resource_id);
            if choice == Some(ChartChoice::Hidden) {
                if !detail
                    .uncharted
                    .iter()
                    .any(|u| (u.object_id, u.resource_id) == (object_id, resource_id))
                {
                    detail.uncharted.push(UnchartedResource {
                        object_id,
                        resource_id,
                        name: latest.name.clone(),
                        hidden: true,
                    });
                }
                continue;
            }
            let Some((type_id, _)) = state
                .types
                .get((latest.path.object_id, latest.path.resource_id))
            else {
                continue;
            };
            let key = SeriesKey {
                endpoint_id: id,
                resource_type_id: type_id,
                instance_id: latest.path.instance_id,
                resource_instance_id: latest.path.resource_instance_id,
            };
            let mut data = SeriesData {
                endpoint: detail.summary.name.clone(),
                path: latest.path.to_string(),
                object_id: latest.path.object_id,
                instance_id: latest.path.instance_id,
                resource_id: latest.path.resource_id,
                resource_instance_id: latest.path.resource_instance_id,
                name: latest.name.clone(),
                unit: latest.unit.clone(),
                data_type: latest.data_type,
                from,
                to,
                max_points: CHART_MAX_POINTS,
                total: 0,
                downsampled: false,
                bucket_ms: None,
                truncated: false,
                points: Vec::new(),
                buckets: Vec::new(),
            };
            series::read(pool, &key, latest.data_type, &mut data).await?;
            let observed = series::covered_by(&observed, &data.path);
            let changed = series::changed(&data);
            let half = data.bucket_ms.unwrap_or(0) / 2;
            let one = Series {
                path: latest.path,
                name: latest.name.clone(),
                unit: latest.unit.clone(),
                points: if data.downsampled {
                    data.buckets
                        .iter()
                        .map(|b| Point {
                            t: b.t + half,
                            v: b.avg,
                        })
                        .collect()
                } else {
                    data.points
                        .iter()
                        .filter_map(|p| p.value.as_f64().map(|v| Point { t: p.t, v }))
                        .collect()
                },
                bands: data
                    .buckets
                    .iter()
                    .map(|b| Band {
                        t: b.t + half,
                        min: b.min,
                        max: b.max,
                    })
                    .collect(),
            };
            match detail
                .charts
                .iter()
                .position(|c| c.object_id == object_id && c.resource_id == resource_id)
            {
                Some(i) => {
                    detail.charts[i].series.push(one);
                    reasons[i].0 |= observed;
                    reasons[i].1 |= changed;
                }
                None => {
                    detail.charts.push(Chart {
                        object_id,
                        resource_id,
                        name: latest.name.clone(),
                        unit: latest.unit.clone(),
                        series: vec![one],
                        choice,
                    });
                    reasons.push((observed, changed));
                }
            }
        }
        let charts = std::mem::take(&mut detail.charts);
        for (chart, (observed, changed)) in charts.into_iter().zip(reasons) {
            if chart_shown(chart.choice, observed, changed) {
                detail.charts.push(chart);
            } else {
                detail.uncharted.push(UnchartedResource {
                    object_id: chart.object_id,
                    resource_id: chart.resource_id,
                    name: chart.name,
                    hidden: false,
                });
            }
        }
        detail
            .uncharted
            .sort_by_key(|u| (u.object_id, u.resource_id));
        let events = EventFilter {
            endpoint_id: Some(id),
            ..Default::default()
        };
        detail.events = db::event::page(pool, &events, DETAIL_LIST_LIMIT)
            .await?
            .events;
        let name = detail.summary.name.clone();
        detail.commands = crate::server::commands::list(
            &state,
            &crate::model::CommandQuery {
                endpoint: name.clone(),
                ..Default::default()
            },
        )
        .await?
        .commands;
        detail.commands.truncate(DETAIL_LIST_LIMIT as usize);
        detail.firmware_updates = crate::server::commands::list_updates(
            &state,
            &crate::model::UpdateQuery {
                endpoint: name,
                active: false,
            },
        )
        .await?;
        detail.firmware_updates.truncate(DETAIL_LIST_LIMIT as usize);
        detail.command_targets = crate::server::commands::command_targets(&state, id).await?;
        Ok(detail)
    })
    .await
}

/// Pins (always drawn), hides (never drawn) or, with an empty choice,
/// returns to the page's own pick one chart of an endpoint: the resource
/// `object_id`/`resource_id`, all its instances. Operators only.
#[server(prefix = "/sfn", endpoint = "endpoints/chart")]
pub async fn set_chart_choice(
    endpoint_id: i64,
    object_id: i64,
    resource_id: i64,
    /// `pinned`, `hidden`, or empty for the page's own pick.
    choice: String,
) -> Result<(), AppError> {
    use crate::model::ChartChoice;
    use crate::server::{context, db, store};
    context::respond(async move {
        let (state, user) = context::require_role(crate::model::Role::Operator).await?;
        let choice = match choice.as_str() {
            "" => None,
            other => Some(ChartChoice::parse(other).ok_or_else(|| {
                AppError::invalid_field("choice", "must be pinned, hidden or empty")
            })?),
        };
        for (field, id) in [("object_id", object_id), ("resource_id", resource_id)] {
            if !(0..=65535).contains(&id) {
                return Err(AppError::invalid_field(field, "must be 0-65535"));
            }
        }
        let pool = &state.db.pool;
        if db::endpoint::get(pool, endpoint_id).await?.is_none() {
            return Err(AppError::NotFound(format!("endpoint {endpoint_id}")));
        }
        db::endpoint_chart::set(
            pool,
            endpoint_id,
            (object_id, resource_id),
            choice,
            store::now_ms(),
        )
        .await?;
        tracing::info!(
            endpoint_id,
            object_id,
            resource_id,
            choice = choice.map_or("auto", |c| c.as_str()),
            by = user.username,
            "chart choice set"
        );
        Ok(())
    })
    .await
}
