use crate::model::{CommandTarget, CommandView};
use crate::server_fns::commands::SendCommand;
use crate::ui::components::command_table::{CommandActions, CommandTable};
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::send_command::SendCommandCard;
use crate::ui::style;
use leptos::prelude::*;

/// The endpoint page's Commands section: its newest commands (kept live by
/// the page) and, for operators, the card to send one.
#[component]
pub fn EndpointCommands(
    endpoint: String,
    commands: RwSignal<Vec<CommandView>>,
    targets: Vec<CommandTarget>,
    read_paths: Vec<String>,
    current: Vec<(String, String)>,
    /// None for viewers: no forms, no row actions.
    actions: Option<(ServerAction<SendCommand>, CommandActions)>,
) -> impl IntoView {
    let row_actions = actions.map(|(_, a)| a);
    let row_error = Signal::derive(move || {
        row_actions.and_then(|a| {
            action_error(a.cancel.value().get()).or_else(|| action_error(a.retry.value().get()))
        })
    });
    let href = format!(
        "/commands?endpoint={}",
        crate::model::query::encode_component(&endpoint)
    );
    view! {
        <section aria-labelledby="commands-heading" class="flex flex-col gap-3">
            <div class="flex items-center justify-between">
                <h2 id="commands-heading" class=format!("{} mb-0", style::H2)>"Commands"</h2>
                <a href=href class=format!("{} text-sm", style::LINK)>"All commands of this endpoint"</a>
            </div>
            <FormStatus error=row_error />
            <div class=format!("{} overflow-x-auto", style::CARD)>
                {move || {
                    view! {
                        <CommandTable
                            commands=commands.get()
                            actions=row_actions
                            empty_text="No commands yet."
                        />
                    }
                }}
            </div>
            {actions
                .map(|(send, _)| {
                    view! {
                        <SendCommandCard
                            endpoint=endpoint.clone()
                            targets=targets.clone()
                            read_paths=read_paths.clone()
                            current=current.clone()
                            action=send
                        />
                    }
                })}
        </section>
    }
}
