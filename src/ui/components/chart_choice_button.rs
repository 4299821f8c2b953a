use crate::server_fns::endpoints::SetChartChoice;
use crate::ui::style;
use leptos::prelude::*;

/// One button that sets an operator's choice for a chart of an endpoint
/// (`choice`: `pinned`, `hidden`, or empty for the page's own pick). A
/// plain form, so it works without JavaScript (the post returns to the
/// page); with it, the page refetches when the action completes.
#[component]
pub fn ChartChoiceButton(
    action: ServerAction<SetChartChoice>,
    endpoint_id: i64,
    object_id: i64,
    resource_id: i64,
    choice: &'static str,
    /// The button's text, e.g. "Pin".
    text: &'static str,
    /// What the button does, for assistive technology, e.g. "Pin chart temperature".
    label: String,
) -> impl IntoView {
    view! {
        <ActionForm action=action attr:class="inline">
            <input type="hidden" name="endpoint_id" value=endpoint_id />
            <input type="hidden" name="object_id" value=object_id />
            <input type="hidden" name="resource_id" value=resource_id />
            <input type="hidden" name="choice" value=choice />
            <button type="submit" class=format!("{} text-xs", style::LINK) aria-label=label>
                {text}
            </button>
        </ActionForm>
    }
}
