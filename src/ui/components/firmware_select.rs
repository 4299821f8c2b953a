use crate::model::DownloadTransport;
use crate::server_fns::commands::firmware_choices;
use crate::ui::style;
use leptos::prelude::*;

/// A select of the uploaded firmware images (name `firmware_id`), newest
/// first, how devices download it (`transport`: HTTP or CoAP), and a
/// submit button; when none is uploaded, says so and links to
/// the Firmware page instead.
#[component]
pub fn FirmwareSelect(
    /// The submit button's text.
    #[prop(into)]
    button: String,
) -> impl IntoView {
    let choices = Resource::new(|| (), |_| firmware_choices());
    view! {
        <Suspense fallback=|| view! { <span class=style::MUTED>"Loading firmware…"</span> }>
            {move || {
                let button = button.clone();
                Suspend::new(async move {
                    match choices.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class=format!("text-sm {}", style::MUTED)>
                                "No firmware uploaded yet. "
                                <a href="/firmware" class=style::LINK>"Upload one on the Firmware page"</a>
                                "."
                            </p>
                        }
                        .into_any(),
                        Ok(list) => view! {
                            <label class=style::LABEL>
                                "Firmware"
                                <select name="firmware_id" required class=style::INPUT>
                                    {list
                                        .into_iter()
                                        .map(|f| view! { <option value=f.id>{f.version}</option> })
                                        .collect_view()}
                                </select>
                            </label>
                            <label class=style::LABEL>
                                "Download over"
                                <select name="transport" class=style::INPUT>
                                    {DownloadTransport::ALL
                                        .into_iter()
                                        .map(|t| {
                                            view! {
                                                <option
                                                    value=t.as_str()
                                                    selected=t == DownloadTransport::default()
                                                >
                                                    {t.label()}
                                                </option>
                                            }
                                        })
                                        .collect_view()}
                                </select>
                            </label>
                            <button type="submit" class=style::BUTTON_PRIMARY>{button}</button>
                        }
                        .into_any(),
                        Err(e) => view! {
                            <p role="alert" class=style::ALERT_ERROR>{format!("Cannot list firmware: {e}")}</p>
                        }
                        .into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
