use crate::server_fns::update_forms::{outcome_from_param, StartUpdatesForm, OUTCOME_PARAM};
use crate::ui::components::form_status::action_error;
use crate::ui::style;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// What a "Start update" did, per endpoint: started or why not. After a
/// hydrated submit the action holds it; after a plain form post the
/// redirect's URL does.
#[component]
pub fn UpdateStartResults(action: ServerAction<StartUpdatesForm>) -> impl IntoView {
    let params = use_query_map();
    let from_url = Memo::new(move |_| outcome_from_param(params.with(|p| p.get(OUTCOME_PARAM))));
    move || {
        let result = action.value().get().or_else(|| from_url.get().map(Ok))?;
        if let Some(text) = action_error(Some(result.clone())) {
            return Some(view! { <p role="alert" class=style::ALERT_ERROR>{text}</p> }.into_any());
        }
        let starts = result.ok()?;
        let started = starts.iter().filter(|s| s.update_id.is_some()).count();
        let alert = if started == starts.len() {
            style::ALERT_OK
        } else {
            style::ALERT_ERROR
        };
        Some(
            view! {
                <div role="status" class=alert aria-label="Update results">
                    <p class="font-medium">
                        {format!("Started {started} of {} updates.", starts.len())}
                        " "
                        <a href="/updates?active=1" class="underline">"Follow them on the Updates page"</a>
                    </p>
                    <ul class="mt-1 list-inside list-disc">
                        {starts
                            .into_iter()
                            .map(|s| {
                                let outcome = match (s.update_id, s.error) {
                                    (Some(id), _) => format!("started (update {id})"),
                                    (None, Some(e)) => format!("not started: {e}"),
                                    (None, None) => "not started".to_string(),
                                };
                                view! {
                                    <li>
                                        <span class="font-mono">{s.endpoint}</span>
                                        " – "
                                        {outcome}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </div>
            }
            .into_any(),
        )
    }
}
