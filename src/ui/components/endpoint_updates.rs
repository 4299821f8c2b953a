use crate::model::UpdateView;
use crate::server_fns::update_forms::StartUpdatesForm;
use crate::ui::components::firmware_select::FirmwareSelect;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::update_start_results::UpdateStartResults;
use crate::ui::components::update_table::{UpdateActions, UpdateTable};
use crate::ui::style;
use leptos::prelude::*;

/// The endpoint page's Firmware updates section: its updates (kept live by
/// the page) and, for operators, Cancel/Retry and a form to start one.
#[component]
pub fn EndpointUpdates(
    endpoint: String,
    updates: RwSignal<Vec<UpdateView>>,
    /// None for viewers.
    actions: Option<(ServerAction<StartUpdatesForm>, UpdateActions)>,
) -> impl IntoView {
    let row_actions = actions.map(|(_, a)| a);
    let row_error = Signal::derive(move || {
        row_actions.and_then(|a| {
            action_error(a.cancel.value().get()).or_else(|| action_error(a.retry.value().get()))
        })
    });
    let href = format!(
        "/updates?endpoint={}",
        crate::model::query::encode_component(&endpoint)
    );
    view! {
        <section aria-labelledby="firmware-heading" class="flex flex-col gap-3">
            <div class="flex items-center justify-between">
                <h2 id="firmware-heading" class=format!("{} mb-0", style::H2)>"Firmware updates"</h2>
                <a href=href class=format!("{} text-sm", style::LINK)>"Updates of this endpoint"</a>
            </div>
            <FormStatus error=row_error />
            <div class=format!("{} overflow-x-auto", style::CARD)>
                {move || view! { <UpdateTable updates=updates.get() actions=row_actions /> }}
            </div>
            {actions
                .map(|(start, _)| {
                    view! {
                        <div class=format!("{} p-4", style::CARD)>
                            <h3 class="mb-3 text-sm font-semibold">"Start update"</h3>
                            <ActionForm action=start attr:class="flex flex-wrap items-end gap-3" attr:aria-label="Start update">
                                // One endpoint: the same server function as
                                // the endpoint table's bulk update.
                                <input type="hidden" name="endpoints[0]" value=endpoint.clone() />
                                <FirmwareSelect button="Start update" />
                            </ActionForm>
                            <div class="mt-3">
                                <UpdateStartResults action=start />
                            </div>
                        </div>
                    }
                })}
        </section>
    }
}
