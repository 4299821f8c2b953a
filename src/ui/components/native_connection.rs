use crate::model::{CommandKind, NativeConnection};
use crate::server_fns::commands::SendCommand;
use crate::ui::components::timestamp::Timestamp;
use crate::ui::style;
use leptos::prelude::*;

/// How a device is connected: through Leshan (no native registration), or
/// to flownexus's own LwM2M server, with its registration, object list and
/// the paths observed on it with their notification attributes; an
/// operator can cancel each (a queued Cancel Observation command) or
/// change its attributes (a queued Write-Attributes).
#[component]
pub fn NativeConnectionView(
    native: Option<NativeConnection>,
    endpoint: String,
    /// For operators: the action that queues a command.
    send: Option<ServerAction<SendCommand>>,
) -> impl IntoView {
    let Some(n) = native else {
        return view! {
            <section aria-labelledby="connection-heading" class="mb-8">
                <h2 id="connection-heading" class=style::H2>"Connection"</h2>
                <p class=style::MUTED>
                    "Not registered with flownexus's LwM2M server: its values arrive through a Leshan server."
                </p>
            </section>
        }
        .into_any();
    };
    let links = n.links();
    let observed = n.observations.clone();
    let how = format!(
        "Native LwM2M {} over CoAP{}",
        n.lwm2m_version,
        if n.secure {
            " (DTLS)"
        } else {
            " (no security)"
        }
    );
    let binding = format!(
        "{}{}",
        n.binding,
        if n.queue_mode { ", queue mode" } else { "" }
    );
    view! {
        <section aria-labelledby="connection-heading" class="mb-8">
            <h2 id="connection-heading" class=style::H2>"Connection"</h2>
            <dl class="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
                <Item label="Connected">{how}</Item>
                <Item label="Address">{n.address.clone()}</Item>
                <Item label="Binding">{binding}</Item>
                <Item label="Lifetime">{format!("{} s", n.lifetime_s)}</Item>
                <Item label="Registered"><Timestamp ms=Some(n.registered_at) /></Item>
                <Item label="Expires"><Timestamp ms=Some(n.expires_at) /></Item>
            </dl>
            <div class="mt-3 grid gap-3 sm:grid-cols-2">
                <div class=format!("{} p-3", style::CARD)>
                    <h3 class=format!("text-xs uppercase tracking-wide {}", style::MUTED)>"Objects"</h3>
                    <ul aria-label="Registered objects" class="mt-1 flex flex-wrap gap-1 text-sm">
                        {links
                            .into_iter()
                            .map(|l| view! { <li class="rounded bg-slate-100 px-1.5 py-0.5 font-mono text-xs dark:bg-slate-800">{l}</li> })
                            .collect_view()}
                    </ul>
                </div>
                <div class=format!("{} p-3", style::CARD)>
                    <h3 class=format!("text-xs uppercase tracking-wide {}", style::MUTED)>"Observed"</h3>
                    {if observed.is_empty() {
                        view! { <p class=format!("mt-1 text-sm {}", style::MUTED)>"Nothing observed."</p> }.into_any()
                    } else {
                        view! {
                            <ul aria-label="Observed paths" class="mt-1 space-y-1 text-sm">
                                {observed
                                    .into_iter()
                                    .map(|o| {
                                        let p = o.path.clone();
                                        let attributes = o.attributes_text();
                                        let current = attributes.replace(' ', "&");
                                        let composite = p.contains(',');
                                        let cancel = send.map(|action| {
                                            let (endpoint, p) = (endpoint.clone(), p.clone());
                                            let label = format!("Cancel observation of {p}");
                                            view! {
                                                <ActionForm action attr:class="inline">
                                                    <input type="hidden" name="endpoint" value=endpoint.clone() />
                                                    <input type="hidden" name="kind" value=CommandKind::CancelObserve.as_str() />
                                                    <input type="hidden" name="path" value=p />
                                                    <button type="submit" class=format!("{} text-xs", style::LINK) aria-label=label>
                                                        "cancel"
                                                    </button>
                                                </ActionForm>
                                            }
                                        });
                                        // Attributes attach to one path (Core §5.1.2): a
                                        // composite's are changed path by path.
                                        let change = send.filter(|_| !composite).map(|action| {
                                            let (endpoint, p) = (endpoint.clone(), p.clone());
                                            view! {
                                                <ActionForm action attr:class="inline-flex items-center gap-1">
                                                    <input type="hidden" name="endpoint" value=endpoint.clone() />
                                                    <input type="hidden" name="kind" value=CommandKind::WriteAttributes.as_str() />
                                                    <input type="hidden" name="path" value=p.clone() />
                                                    <input
                                                        type="text"
                                                        name="value"
                                                        value=current.clone()
                                                        placeholder="pmin=10&pmax=60"
                                                        aria-label=format!("New attributes of {p}")
                                                        class=format!("{} w-40 py-0.5 font-mono text-xs", style::INPUT)
                                                    />
                                                    <button type="submit" class=format!("{} text-xs", style::LINK) aria-label=format!("Set attributes of {p}")>
                                                        "set"
                                                    </button>
                                                </ActionForm>
                                            }
                                        });
                                        view! {
                                            <li class="flex flex-wrap items-center gap-2">
                                                <span class="rounded bg-blue-50 px-1.5 py-0.5 font-mono text-xs text-blue-800 dark:bg-blue-950 dark:text-blue-200">
                                                    {p.clone()}
                                                </span>
                                                <span class=format!("font-mono text-xs {}", style::MUTED)>
                                                    {if attributes.is_empty() { "no attributes".to_string() } else { attributes }}
                                                </span>
                                                {cancel}
                                                {change}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                        .into_any()
                    }}
                </div>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn Item(label: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class=format!("{} p-3", style::CARD)>
            <dt class=format!("text-xs uppercase tracking-wide {}", style::MUTED)>{label}</dt>
            <dd class="mt-1 truncate text-sm">{children()}</dd>
        </div>
    }
}
