use crate::chart::push_point;
use crate::model::{
    to_datetime_local, Chart, ChartRange, CommandQuery, EndpointDetail, LatestValue, LiveMessage,
    LiveValue, Point, Presence, RangePreset, Topic, UpdateQuery,
};
use crate::server_fns::commands::{list_commands, list_updates, SendCommand};
use crate::server_fns::endpoints::{get_endpoint, SetChartChoice, DETAIL_LIST_LIMIT};
use crate::server_fns::update_forms::StartUpdatesForm;
use crate::ui::components::chart_choice_button::ChartChoiceButton;
use crate::ui::components::command_table::CommandActions;
use crate::ui::components::current_user::{may_operate, use_current_user};
use crate::ui::components::endpoint_commands::EndpointCommands;
use crate::ui::components::endpoint_updates::EndpointUpdates;
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::event_list::EventList;
use crate::ui::components::live_chart::LiveChart;
use crate::ui::components::native_connection::NativeConnectionView;
use crate::ui::components::page_header::PageHeader;
use crate::ui::components::presence_badge::PresenceBadge;
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::components::uncharted_list::UnchartedList;
use crate::ui::components::update_table::UpdateActions;
use crate::ui::live_socket;
use crate::ui::style;
use crate::ui::throttle::Throttle;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

/// One endpoint: identity, charts over a chosen range, latest values,
/// events, commands and firmware updates; values stream in live.
#[component]
pub fn EndpointPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let range = Memo::new(move |_| {
        query.with(|q| ChartRange::from_params(|k| q.get(k).map(|v| v.to_string())))
    });
    let detail = Resource::new(
        move || (id(), range.get()),
        |(id, range)| async move {
            match id {
                Some(id) => get_endpoint(id, range).await,
                None => Err(crate::error::AppError::NotFound("endpoint".into())),
            }
        },
    );
    let user = use_current_user();
    view! {
        <Transition fallback=|| view! { <p class=style::MUTED>"Loading endpoint…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    let operate = may_operate(&user.await);
                    detail
                        .await
                        .map(|d| view! { <EndpointView detail=d operate refetch=move || detail.refetch() /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// Applies one live value to the page's state. Returns false when the
/// value is of a resource the page does not show yet.
fn apply_live(
    value: &LiveValue,
    latest: &mut [LatestValue],
    charts: &mut [Chart],
    live_charts: bool,
) -> bool {
    let Some(row) = latest.iter_mut().find(|l| l.path == value.path) else {
        return false;
    };
    // A value measured before the one shown (a device sending what it
    // buffered offline) goes into the chart, not into the latest values.
    if value.measured_at >= row.measured_at {
        row.value = value.value.clone();
        row.received_at = value.received_at;
        row.measured_at = value.measured_at;
    }
    if let (true, Some(v)) = (live_charts, value.numeric) {
        if let Some(s) = charts
            .iter_mut()
            .flat_map(|c| c.series.iter_mut())
            .find(|s| s.path == value.path)
        {
            push_point(
                &mut s.points,
                Point {
                    t: value.measured_at,
                    v,
                },
            );
        }
    }
    true
}

/// What a live value says about presence: a registration or an update
/// means the device listens now, a deregistration that it left. (A queue-mode
/// device falls asleep again later; the next page load shows that.)
fn presence_after(value: &LiveValue) -> Option<Presence> {
    if value.path.object_id != crate::model::REGISTRATION_OBJECT {
        return None;
    }
    match value.path.resource_id {
        0 | 2 => Some(Presence::Online),
        1 => Some(Presence::Offline),
        _ => None,
    }
}

/// Resources of object 3 (Device) shown as the endpoint's identity.
const IDENTITY: &[(i64, &str)] = &[
    (0, "Manufacturer"),
    (1, "Model"),
    (2, "Serial number"),
    (3, "Firmware version"),
    (9, "Battery"),
    (10, "Free memory"),
];

#[component]
fn Fact(label: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class=format!("{} p-3", style::CARD)>
            <dt class=format!("text-xs uppercase tracking-wide {}", style::MUTED)>{label}</dt>
            <dd class="mt-1 truncate text-sm">{children()}</dd>
        </div>
    }
}

#[component]
fn EndpointView(
    detail: EndpointDetail,
    /// Whether the user may send commands and start updates.
    operate: bool,
    refetch: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let name = detail.summary.name.clone();
    let latest = RwSignal::new(detail.latest.clone());
    let charts = RwSignal::new(detail.charts.clone());
    let live_charts = detail.range.is_live();
    let presence = RwSignal::new(detail.summary.presence);
    // A value of a resource the page did not know yet: offer a refresh.
    let unseen = RwSignal::new(0usize);
    let on_resync = refetch.clone();
    live_socket::subscribe(
        vec![Topic::Endpoint { name: name.clone() }],
        move |message| {
            if let LiveMessage::Value(value) = message {
                if let Some(p) = presence_after(&value) {
                    presence.set(p);
                }
                let mut known = true;
                latest.update(|l| charts.update(|c| known = apply_live(&value, l, c, live_charts)));
                if !known {
                    unseen.update(|n| *n += 1);
                }
            }
        },
        on_resync,
    );

    let activity = live_activity(&detail, operate);
    // Pinning or hiding a chart changes which charts the page has: read it again.
    let chart_action = operate.then(ServerAction::<SetChartChoice>::new);
    if let Some(action) = chart_action {
        let refetch = refetch.clone();
        Effect::new(move |previous: Option<usize>| {
            let version = action.version().get();
            if previous.is_some_and(|p| p != version) {
                refetch();
            }
            version
        });
    }
    let endpoint_id = detail.summary.id;

    let s = detail.summary.clone();
    let identity = IDENTITY
        .iter()
        .map(|(rid, label)| {
            let text = detail
                .device_fact(*rid)
                .map(|l| match &l.unit {
                    Some(u) if !u.is_empty() => format!("{} {u}", l.value),
                    _ => l.value.clone(),
                })
                .unwrap_or_else(|| "–".into());
            view! { <Fact label=*label><span title=text.clone()>{text.clone()}</span></Fact> }
        })
        .collect_view();
    let binding = format!(
        "{}{}",
        detail.binding.clone().unwrap_or_else(|| "unknown".into()),
        if detail.queue_mode {
            " (queue mode)"
        } else {
            ""
        }
    );
    let lifetime = detail
        .lifetime_s
        .map(|l| format!("{l} s"))
        .unwrap_or_else(|| "default (86400 s)".into());

    view! {
        <Title text=name.clone() />
        <nav aria-label="Breadcrumb" class=format!("mb-2 text-sm {}", style::MUTED)>
            <a href="/endpoints" class=style::LINK>"Endpoints"</a>
            " / "
        </nav>
        <PageHeader title=name.clone()>
            {move || view! { <PresenceBadge presence=presence.get() /> }}
        </PageHeader>

        <section aria-label="Identity" class="mb-8">
            <dl class="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
                {identity}
                <Fact label="Last seen"><RelativeTime ms=s.last_seen_at /></Fact>
                <Fact label="Registered"><RelativeTime ms=detail.last_registration_at /></Fact>
                <Fact label="Last update"><RelativeTime ms=detail.last_update_at /></Fact>
                <Fact label="Lifetime">{lifetime}</Fact>
                <Fact label="Binding">{binding}</Fact>
                <Fact label="Resources">{s.resource_count}</Fact>
            </dl>
        </section>

        <NativeConnectionView
            native=detail.native.clone()
            endpoint=name.clone()
            send=activity.command_actions.map(|(send, _)| send)
        />

        <section aria-labelledby="charts-heading" class="mb-8">
            <div class="mb-3 flex flex-wrap items-center gap-3">
                <h2 id="charts-heading" class=format!("{} mb-0", style::H2)>"Charts"</h2>
                <RangePicker
                    base=format!("/endpoints/{}", s.id)
                    range=detail.range
                    from=detail.from
                    to=detail.to
                />
            </div>
            {(charts.with_untracked(|c| c.is_empty()) && detail.uncharted.is_empty())
                .then(|| view! { <p class=style::MUTED>"No numeric resources yet."</p> })}
            {(charts.with_untracked(|c| c.is_empty()) && !detail.uncharted.is_empty())
                .then(|| view! { <p class=style::MUTED>"Nothing observed or changed in this range."</p> })}
            <div class="grid gap-4 xl:grid-cols-2">
                {(0..charts.with_untracked(|c| c.len()))
                    .map(|i| {
                        let one = Signal::derive(move || charts.with(|c| c[i].clone()));
                        let (object_id, resource_id, chart_name, pinned) = charts.with_untracked(|c| {
                            (
                                c[i].object_id,
                                c[i].resource_id,
                                c[i].name.clone(),
                                c[i].choice == Some(crate::model::ChartChoice::Pinned),
                            )
                        });
                        let buttons = chart_action.map(|action| {
                            let (choice, text, verb) = if pinned {
                                ("", "Unpin", "Unpin")
                            } else {
                                ("pinned", "Pin", "Pin")
                            };
                            view! {
                                <div class="mt-1 flex justify-end gap-3">
                                    <ChartChoiceButton
                                        action
                                        endpoint_id
                                        object_id
                                        resource_id
                                        choice
                                        text
                                        label=format!("{verb} chart {chart_name}")
                                    />
                                    <ChartChoiceButton
                                        action
                                        endpoint_id
                                        object_id
                                        resource_id
                                        choice="hidden"
                                        text="Hide"
                                        label=format!("Hide chart {chart_name}")
                                    />
                                </div>
                            }
                        });
                        view! {
                            <div class="min-w-0">
                                <LiveChart chart=one endpoint=name.clone() from=detail.from to=detail.to />
                                {buttons}
                            </div>
                        }
                    })
                    .collect_view()}
            </div>
            <UnchartedList uncharted=detail.uncharted.clone() endpoint_id action=chart_action />
        </section>

        <section aria-labelledby="values-heading" class="mb-8">
            <h2 id="values-heading" class=style::H2>"Latest values"</h2>
            {move || {
                (unseen.get() > 0)
                    .then(|| {
                        let refetch = refetch.clone();
                        view! {
                            <p class="mb-2 text-sm text-amber-700 dark:text-amber-300">
                                "New resources reported. "
                                <button type="button" class=style::LINK on:click=move |_| refetch()>
                                    "Show them"
                                </button>
                            </p>
                        }
                    })
            }}
            <LatestValues latest />
        </section>

        // Commands get the full width: their table has many columns and the
        // send card a grid of forms.
        <div class="mb-8">
            <EndpointCommands
                endpoint=name.clone()
                commands=activity.commands
                targets=detail.command_targets.clone()
                read_paths=read_paths(&detail.latest)
                current=current_values(&detail.latest)
                actions=activity.command_actions
            />
        </div>
        <div class="grid gap-8 xl:grid-cols-2">
            <section aria-labelledby="events-heading">
                <div class="mb-3 flex items-center justify-between">
                    <h2 id="events-heading" class=format!("{} mb-0", style::H2)>"Events"</h2>
                    <a
                        href=format!("/events?endpoint={}", crate::model::query::encode_component(&name))
                        class=format!("{} text-sm", style::LINK)
                    >
                        "All events of this endpoint"
                    </a>
                </div>
                <div class=style::CARD>
                    <EventList events=detail.events.clone() />
                </div>
            </section>
            <div class="min-w-0">
                <EndpointUpdates
                    endpoint=name.clone()
                    updates=activity.updates
                    actions=activity.update_actions
                />
            </div>
        </div>
    }
}

/// The endpoint's commands and updates as the page shows them, and the
/// operator's actions on them (None for viewers).
struct Activity {
    commands: RwSignal<Vec<crate::model::CommandView>>,
    updates: RwSignal<Vec<crate::model::UpdateView>>,
    command_actions: Option<(ServerAction<SendCommand>, CommandActions)>,
    update_actions: Option<(ServerAction<StartUpdatesForm>, UpdateActions)>,
}

/// Keeps the commands and updates live: they are read again (not the whole
/// page, whose charts would start over) when a notice for this endpoint
/// arrives on the Commands topic, after a reconnect, and after the user's
/// own action completed. Without JavaScript each action's form post reloads
/// the page instead.
fn live_activity(detail: &EndpointDetail, operate: bool) -> Activity {
    let name = detail.summary.name.clone();
    let commands = RwSignal::new(detail.commands.clone());
    let updates = RwSignal::new(detail.firmware_updates.clone());
    let reload = move || {
        let name = name.clone();
        leptos::task::spawn_local(async move {
            let query = CommandQuery {
                endpoint: name.clone(),
                ..Default::default()
            };
            if let Ok(mut page) = list_commands(query).await {
                page.commands.truncate(DETAIL_LIST_LIMIT as usize);
                commands.set(page.commands);
            }
            let query = UpdateQuery {
                endpoint: name,
                active: false,
            };
            if let Ok(mut list) = list_updates(query).await {
                list.truncate(DETAIL_LIST_LIMIT as usize);
                updates.set(list);
            }
        });
    };
    let throttle = Throttle::new(500, reload.clone());
    let mine = detail.summary.name.clone();
    live_socket::subscribe(
        vec![Topic::Commands],
        move |message| {
            if matches!(&message, LiveMessage::Command(n) if n.endpoint == mine) {
                throttle.request();
            }
        },
        reload,
    );
    let command_actions =
        operate.then(|| (ServerAction::<SendCommand>::new(), CommandActions::new()));
    let update_actions = operate.then(|| {
        (
            ServerAction::<StartUpdatesForm>::new(),
            UpdateActions::new(),
        )
    });
    if let (Some((send, c)), Some((start, u))) = (command_actions, update_actions) {
        // Effects run only in the browser: a completed action refetches.
        Effect::new(move |previous: Option<[usize; 6]>| {
            let versions = [
                send.version().get(),
                c.cancel.version().get(),
                c.retry.version().get(),
                start.version().get(),
                u.cancel.version().get(),
                u.retry.version().get(),
            ];
            if previous.is_some_and(|p| p != versions) {
                throttle.request();
            }
            versions
        });
    }
    Activity {
        commands,
        updates,
        command_actions,
        update_actions,
    }
}

/// What a read may ask for: each object the endpoint reported (not the
/// server's registration pseudo-object).
fn read_paths(latest: &[LatestValue]) -> Vec<String> {
    let mut objects: Vec<i64> = latest
        .iter()
        .map(|l| l.path.object_id)
        .filter(|o| *o != crate::model::REGISTRATION_OBJECT)
        .collect();
    objects.sort_unstable();
    objects.dedup();
    objects.into_iter().map(|o| format!("/{o}")).collect()
}

/// The latest values by path, shown as hints next to the write inputs.
fn current_values(latest: &[LatestValue]) -> Vec<(String, String)> {
    latest
        .iter()
        .map(|l| (l.path.to_string(), l.value.clone()))
        .collect()
}

/// Range buttons (links, so they work without JavaScript and can be shared)
/// and a custom range form.
#[component]
fn RangePicker(base: String, range: ChartRange, from: i64, to: i64) -> impl IntoView {
    let buttons = RangePreset::ALL
        .into_iter()
        .map(|p| {
            let current = range == ChartRange::Last(p);
            let class = if current {
                "rounded-md bg-blue-600 px-2.5 py-1 text-xs font-medium text-white"
            } else {
                "rounded-md px-2.5 py-1 text-xs font-medium text-slate-600 hover:bg-slate-100 dark:text-slate-300 dark:hover:bg-slate-800"
            };
            view! {
                <a
                    href=format!("{base}{}", ChartRange::Last(p).to_query())
                    class=class
                    aria-current=current.then_some("true")
                >
                    {p.label()}
                </a>
            }
        })
        .collect_view();
    let custom = matches!(range, ChartRange::Custom { .. });
    view! {
        <div class="flex flex-wrap items-center gap-3">
            <div
                role="group"
                aria-label="Chart range"
                class="inline-flex gap-1 rounded-lg border border-slate-200 bg-white p-1 dark:border-slate-800 dark:bg-slate-900"
            >
                {buttons}
            </div>
            <details class="text-xs" open=custom>
                <summary class=format!("cursor-pointer {}", style::LINK)>"Custom"</summary>
                <Form method="GET" action=base.clone() attr:class="mt-2 flex flex-wrap items-end gap-2">
                    <label class=style::LABEL>
                        "From (UTC)"
                        <input type="datetime-local" name="from" required value=to_datetime_local(from) class=style::INPUT />
                    </label>
                    <label class=style::LABEL>
                        "To (UTC)"
                        <input type="datetime-local" name="to" value=to_datetime_local(to) class=style::INPUT />
                    </label>
                    <button type="submit" class=style::BUTTON_SECONDARY>"Show range"</button>
                </Form>
            </details>
        </div>
    }
}

/// Latest values grouped by object and instance.
#[component]
fn LatestValues(latest: RwSignal<Vec<LatestValue>>) -> impl IntoView {
    // Groups of (object, instance) and the indexes of their rows; the rows
    // themselves stay reactive.
    let groups = move || {
        latest.with(|l| {
            let mut groups: Vec<((i64, i64), Vec<usize>)> = Vec::new();
            for (i, v) in l.iter().enumerate() {
                let key = (v.path.object_id, v.path.instance_id);
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, rows)) => rows.push(i),
                    None => groups.push((key, vec![i])),
                }
            }
            groups
        })
    };
    view! {
        <div class="grid gap-4 lg:grid-cols-2">
            <For each=groups key=|(k, rows)| (*k, rows.len()) let((key, rows))>
                <div class=format!("{} overflow-x-auto", style::CARD)>
                    <table class=style::TABLE>
                        <caption class="px-4 pt-3 text-left text-sm font-semibold">
                            {format!("Object {} / instance {}", key.0, key.1)}
                        </caption>
                        <thead class=style::THEAD>
                            <tr>
                                <th scope="col" class=style::TH>"Path"</th>
                                <th scope="col" class=style::TH>"Resource"</th>
                                <th scope="col" class=style::TH>"Value"</th>
                                <th scope="col" class=style::TH>"Measured"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows
                                .into_iter()
                                .map(|i| {
                                    let row = move || latest.with(|l| l.get(i).cloned());
                                    view! {
                                        <tr class=style::TR>
                                            <td class=format!("{} font-mono text-xs {}", style::TD, style::MUTED)>
                                                {move || row().map(|r| r.path.to_string()).unwrap_or_default()}
                                            </td>
                                            <td class=style::TD>
                                                {move || row().map(|r| r.name).unwrap_or_default()}
                                            </td>
                                            <td class=format!("{} font-mono", style::TD) data-testid="latest-value">
                                                {move || {
                                                    row()
                                                        .map(|r| {
                                                            let unit = r.unit.map(|u| format!(" {u}")).unwrap_or_default();
                                                            format!("{}{unit}", r.value)
                                                        })
                                                        .unwrap_or_default()
                                                }}
                                            </td>
                                            <td class=format!("{} whitespace-nowrap text-slate-600 dark:text-slate-300", style::TD)>
                                                <RelativeTime ms=Signal::derive(move || row().map(|r| r.measured_at)) />
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            </For>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DataType, ResourcePath, Series};

    #[test]
    fn live_values_update_the_row_and_the_chart() {
        let path = ResourcePath {
            object_id: 3303,
            instance_id: 0,
            resource_id: 5700,
            resource_instance_id: None,
        };
        let mut latest = vec![LatestValue {
            path,
            name: "temperature".into(),
            unit: None,
            data_type: DataType::Float,
            value: "1".into(),
            received_at: 1,
            measured_at: 1,
        }];
        let mut charts = vec![Chart {
            object_id: 3303,
            resource_id: 5700,
            name: "temperature".into(),
            unit: None,
            series: vec![Series {
                path,
                name: "temperature".into(),
                unit: None,
                points: vec![],
                bands: vec![],
            }],
            choice: None,
        }];
        let value = LiveValue {
            endpoint: "e".into(),
            path,
            value: "2.5".into(),
            numeric: Some(2.5),
            received_at: 5,
            measured_at: 4,
        };
        assert!(apply_live(&value, &mut latest, &mut charts, true));
        assert_eq!(latest[0].value, "2.5");
        // Charted at the time the device measured it.
        assert_eq!(charts[0].series[0].points, vec![Point { t: 4, v: 2.5 }]);
        // A past range keeps its chart but still shows the latest value.
        assert!(apply_live(
            &LiveValue {
                received_at: 6,
                measured_at: 6,
                ..value.clone()
            },
            &mut latest,
            &mut charts,
            false
        ));
        assert_eq!(charts[0].series[0].points.len(), 1);
        assert_eq!(latest[0].received_at, 6);
        // A value measured earlier (a buffered batch) is charted in its
        // place but does not replace the latest value.
        assert!(apply_live(
            &LiveValue {
                value: "9".into(),
                numeric: Some(9.0),
                received_at: 7,
                measured_at: 2,
                ..value.clone()
            },
            &mut latest,
            &mut charts,
            true
        ));
        assert_eq!(latest[0].value, "2.5");
        assert_eq!(
            charts[0].series[0].points,
            vec![Point { t: 2, v: 9.0 }, Point { t: 4, v: 2.5 }]
        );
        let other = LiveValue {
            path: ResourcePath {
                resource_id: 5701,
                ..path
            },
            ..value
        };
        assert!(!apply_live(&other, &mut latest, &mut charts, true));
    }

    #[test]
    fn registration_values_set_presence() {
        let at = |resource_id| LiveValue {
            endpoint: "e".into(),
            path: ResourcePath {
                object_id: crate::model::REGISTRATION_OBJECT,
                instance_id: 0,
                resource_id,
                resource_instance_id: None,
            },
            value: "1".into(),
            numeric: Some(1.0),
            received_at: 1,
            measured_at: 1,
        };
        assert_eq!(presence_after(&at(0)), Some(Presence::Online));
        assert_eq!(presence_after(&at(2)), Some(Presence::Online));
        assert_eq!(presence_after(&at(1)), Some(Presence::Offline));
        assert_eq!(presence_after(&at(3)), None);
    }
}
