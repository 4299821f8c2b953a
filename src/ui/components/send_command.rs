use crate::model::{CommandKind, CommandTarget, DataType};
use crate::server_fns::commands::SendCommand;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::style;
use leptos::prelude::*;

/// The management operations the card offers, with their labels.
const MANAGEMENT: [(CommandKind, &str); 6] = [
    (CommandKind::Observe, "Observe"),
    (CommandKind::CancelObserve, "Cancel observation"),
    (CommandKind::WriteAttributes, "Write attributes"),
    (CommandKind::Discover, "Discover"),
    (CommandKind::Create, "Create instance"),
    (CommandKind::Delete, "Delete instance"),
];

/// A small framed form in the card's grid.
const TILE: &str =
    "flex flex-col gap-2 rounded-lg border border-slate-200 p-3 dark:border-slate-800";

/// The operator's card on the endpoint page: one small form per writable
/// resource (its input typed by the data type), a button per executable
/// resource and a read form. Each is its own plain form posting to
/// `send_command`, so the card works without JavaScript; the server's
/// refusal (field and reason) shows under the card.
#[component]
pub fn SendCommandCard(
    endpoint: String,
    targets: Vec<CommandTarget>,
    /// Paths a read may ask for: the endpoint's objects, e.g. `/3`.
    read_paths: Vec<String>,
    /// The latest value of each writable resource by path, as a hint.
    #[prop(optional)]
    current: Vec<(String, String)>,
    action: ServerAction<SendCommand>,
) -> impl IntoView {
    let error = Signal::derive(move || action_error(action.value().get()));
    let ok = Signal::derive(move || {
        action
            .value()
            .get()
            .and_then(|r| r.ok())
            .map(|id| format!("Command {id} queued."))
    });
    let (writes, executes): (Vec<_>, Vec<_>) = targets
        .into_iter()
        .partition(|t| t.kind == CommandKind::Write);
    let write_forms = writes
        .into_iter()
        .map(|t| {
            let hint = current
                .iter()
                .find(|(p, _)| *p == t.path)
                .map(|(_, v)| v.clone());
            write_form(&endpoint, t, hint, action)
        })
        .collect_view();
    let no_writes = write_forms.is_empty();
    let execute_forms = executes
        .into_iter()
        .map(|t| execute_form(&endpoint, t, action))
        .collect_view();
    let no_executes = execute_forms.is_empty();
    let first = read_paths.first().cloned().unwrap_or_else(|| "/3".into());
    let endpoint_again = endpoint.clone();
    view! {
        <section aria-labelledby="send-heading" class=format!("{} p-4", style::CARD)>
            <h3 id="send-heading" class="mb-3 text-sm font-semibold">"Send command"</h3>
            <div class="mb-3 empty:hidden">
                <FormStatus error ok />
            </div>
            {(!no_writes)
                .then(|| {
                    view! {
                        <h4 class=format!("mb-2 text-xs font-medium uppercase tracking-wide {}", style::MUTED)>
                            "Write"
                        </h4>
                        <div class="mb-4 grid gap-3 md:grid-cols-2 xl:grid-cols-3">{write_forms}</div>
                    }
                })}
            {(!no_executes)
                .then(|| {
                    view! {
                        <h4 class=format!("mb-2 text-xs font-medium uppercase tracking-wide {}", style::MUTED)>
                            "Execute"
                        </h4>
                        <div class="mb-4 flex flex-wrap gap-2">{execute_forms}</div>
                    }
                })}
            <h4 class=format!("mb-2 text-xs font-medium uppercase tracking-wide {}", style::MUTED)>"Read"</h4>
            <ActionForm action attr:class="flex flex-wrap items-end gap-2" attr:aria-label="Read">
                <input type="hidden" name="endpoint" value=endpoint.clone() />
                <input type="hidden" name="kind" value="read" />
                <label class=style::LABEL>
                    "Path to read"
                    <input
                        name="path"
                        required
                        list="read-paths"
                        value=first
                        placeholder="/3/0/13"
                        class=format!("{} w-40 font-mono", style::INPUT)
                    />
                </label>
                <datalist id="read-paths">
                    {read_paths.into_iter().map(|p| view! { <option value=p></option> }).collect_view()}
                </datalist>
                <button type="submit" class=style::BUTTON_SECONDARY>"Read"</button>
            </ActionForm>
            <h4 class=format!("mb-2 mt-4 text-xs font-medium uppercase tracking-wide {}", style::MUTED)>
                "Device management"
            </h4>
            <ActionForm action attr:class="flex flex-wrap items-end gap-2" attr:aria-label="Device management">
                <input type="hidden" name="endpoint" value=endpoint_again />
                <label class=style::LABEL>
                    "Operation"
                    <select name="kind" class=style::INPUT>
                        {MANAGEMENT
                            .iter()
                            .map(|(kind, text)| view! { <option value=kind.as_str()>{*text}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label class=style::LABEL>
                    "Path"
                    <input
                        name="path"
                        required
                        placeholder="/3303/0/5700"
                        class=format!("{} w-56 font-mono", style::INPUT)
                    />
                </label>
                <label class=style::LABEL>
                    "Arguments"
                    <input
                        name="value"
                        placeholder="pmin=10&pmax=60"
                        class=format!("{} w-56 font-mono", style::INPUT)
                    />
                </label>
                <button type="submit" class=style::BUTTON_SECONDARY>"Send"</button>
            </ActionForm>
            <p class=format!("mt-1 text-xs {}", style::MUTED)>
                "For devices registered with flownexus itself. Observe takes several comma-separated paths \
                (observe-composite); write attributes takes pmin, pmax, gt, lt, st (a name alone clears it); \
                create takes a JSON object of resource ids to values, e.g. {\"5750\": \"kitchen\"}."
            </p>
        </section>
    }
}

/// The hidden fields every command form posts.
fn hidden_fields(endpoint: &str, kind: CommandKind, path: &str) -> impl IntoView {
    let (endpoint, path) = (endpoint.to_string(), path.to_string());
    view! {
        <input type="hidden" name="endpoint" value=endpoint />
        <input type="hidden" name="kind" value=kind.as_str() />
        <input type="hidden" name="path" value=path />
    }
}

/// The value control for a data type: numbers for numeric types, a
/// true/false choice for BOOLEAN (radio buttons post "true" or "false" with
/// or without JavaScript, which a checkbox cannot), a UTC date and time for
/// TIME, text for the rest.
fn value_input(t: &CommandTarget, label: String, hint: Option<String>) -> AnyView {
    let input_class = format!("{} min-w-0 flex-1", style::INPUT);
    let placeholder = hint
        .filter(|h| !h.is_empty())
        .map(|h| format!("now {h}"))
        .unwrap_or_default();
    match t.data_type {
        DataType::Integer | DataType::UnsignedInteger | DataType::Float => {
            let step = if t.data_type == DataType::Float { "any" } else { "1" };
            let min = (t.data_type == DataType::UnsignedInteger).then_some("0");
            view! {
                <input
                    type="number"
                    name="value"
                    required
                    step=step
                    min=min
                    placeholder=placeholder
                    aria-label=label
                    class=input_class
                />
            }
            .into_any()
        }
        DataType::Boolean => view! {
            <fieldset class="flex flex-1 gap-1 rounded-md border border-slate-300 p-0.5 text-sm dark:border-slate-700" aria-label=label>
                <label class="flex flex-1 cursor-pointer items-center justify-center gap-1 rounded px-2 py-1 has-[:checked]:bg-blue-600 has-[:checked]:text-white">
                    <input type="radio" name="value" value="true" class="sr-only" required />
                    "true"
                </label>
                <label class="flex flex-1 cursor-pointer items-center justify-center gap-1 rounded px-2 py-1 has-[:checked]:bg-blue-600 has-[:checked]:text-white">
                    <input type="radio" name="value" value="false" class="sr-only" />
                    "false"
                </label>
            </fieldset>
        }
        .into_any(),
        // The server reads `YYYY-MM-DDTHH:MM` as UTC.
        DataType::Time => view! {
            <input type="datetime-local" name="value" required aria-label=format!("{label} (UTC)") class=input_class />
        }
        .into_any(),
        _ => view! {
            <input type="text" name="value" placeholder=placeholder aria-label=label class=input_class />
        }
        .into_any(),
    }
}

fn write_form(
    endpoint: &str,
    t: CommandTarget,
    hint: Option<String>,
    action: ServerAction<SendCommand>,
) -> impl IntoView {
    let label = format!("{} ({})", t.name, t.path);
    let unit = t.unit.clone().filter(|u| !u.is_empty());
    let time_note = (t.data_type == DataType::Time).then_some("UTC");
    let form_label = format!("Write {}", t.name);
    let hidden = hidden_fields(endpoint, CommandKind::Write, &t.path);
    let input = value_input(&t, label, hint);
    view! {
        <ActionForm action attr:class=TILE attr:aria-label=form_label>
            {hidden}
            <div class="flex items-baseline justify-between gap-2 text-sm">
                <span class="truncate font-medium" title=t.name.clone()>{t.name.clone()}</span>
                <span class=format!("shrink-0 font-mono text-xs {}", style::MUTED)>
                    {t.path.clone()} " · " {t.data_type.as_str()}
                </span>
            </div>
            <div class="flex items-center gap-2">
                {input}
                {unit.or(time_note.map(str::to_string)).map(|u| view! { <span class=format!("text-xs {}", style::MUTED)>{u}</span> })}
                <button type="submit" class=style::BUTTON_PRIMARY>"Write"</button>
            </div>
        </ActionForm>
    }
}

fn execute_form(
    endpoint: &str,
    t: CommandTarget,
    action: ServerAction<SendCommand>,
) -> impl IntoView {
    let label = format!("Execute {}", human_name(&t.name));
    let hidden = hidden_fields(endpoint, CommandKind::Execute, &t.path);
    let form_label = label.clone();
    view! {
        <ActionForm action attr:aria-label=form_label>
            {hidden}
            <button type="submit" class=style::BUTTON_SECONDARY title=t.path.clone()>
                {label}
                <span class=format!("font-mono text-xs {}", style::MUTED)>{t.path.clone()}</span>
            </button>
        </ActionForm>
    }
}

/// `reboot` -> `Reboot`, `reset_error_code` -> `Reset error code`.
pub fn human_name(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut c = spaced.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_read_as_words() {
        assert_eq!(super::human_name("reboot"), "Reboot");
        assert_eq!(super::human_name("reset_error_code"), "Reset error code");
        assert_eq!(super::human_name(""), "");
    }
}
