use crate::model::UnchartedResource;
use crate::server_fns::endpoints::SetChartChoice;
use crate::ui::components::chart_choice_button::ChartChoiceButton;
use crate::ui::style;
use leptos::prelude::*;

/// The numeric resources the page does not chart: unchanged in the range
/// and not observed, or hidden by an operator. Operators can chart them.
#[component]
pub fn UnchartedList(
    uncharted: Vec<UnchartedResource>,
    endpoint_id: i64,
    /// For operators; None shows the list without buttons.
    action: Option<ServerAction<SetChartChoice>>,
) -> impl IntoView {
    if uncharted.is_empty() {
        return ().into_any();
    }
    let items = uncharted
        .into_iter()
        .map(|u| {
            let what = format!("{} (/{}/*/{})", u.name, u.object_id, u.resource_id);
            let note = if u.hidden { "hidden" } else { "unchanged" };
            let button = action.map(|action| {
                let (choice, text, verb) = if u.hidden {
                    ("", "Unhide", "Unhide")
                } else {
                    ("pinned", "Chart", "Pin")
                };
                view! {
                    <ChartChoiceButton
                        action
                        endpoint_id
                        object_id=u.object_id
                        resource_id=u.resource_id
                        choice
                        text
                        label=format!("{verb} chart {}", u.name)
                    />
                }
            });
            view! {
                <li class="flex items-center gap-2">
                    <span>{what}</span>
                    <span class=format!("text-xs {}", style::MUTED)>{note}</span>
                    {button}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="mt-3 text-sm">
            <h3 class="font-medium">"Not charted"</h3>
            <ul aria-label="Not charted" class="mt-1 flex flex-wrap gap-x-6 gap-y-1">
                {items}
            </ul>
        </div>
    }
    .into_any()
}
