use crate::error::AppError;
use crate::model::UpdateStart;
use crate::ui::components::form_status::action_error;
use crate::ui::style;
use leptos::prelude::*;

/// What a "Start update" did, per endpoint: started (with a link to the
/// update) or why not.
#[component]
pub fn UpdateStartResults(
    #[prop(into)] result: Signal<Option<Result<Vec<UpdateStart>, AppError>>>,
) -> impl IntoView {
    move || {
        let result = result.get()?;
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
