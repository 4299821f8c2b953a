use crate::error::AppError;
use crate::model::{format_bytes, FirmwareView};
use crate::server_fns::firmware::{list_firmware, DeleteFirmware};
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::page_header::PageHeader;
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::style::{
    BUTTON_DANGER, BUTTON_PRIMARY, CARD, H2, INPUT, LABEL, LINK, MUTED, TABLE, TD, TH, THEAD, TR,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Firmware images: every signed-in user sees them and their download
/// links; admins upload (a plain multipart form to the REST route, which
/// streams the file to disk and redirects back here with `?uploaded=` or
/// `?error=`, so it works with or without JavaScript) and delete unused
/// ones.
#[component]
pub fn FirmwarePage() -> impl IntoView {
    let delete = ServerAction::<DeleteFirmware>::new();
    let query = use_query_map();
    let firmware = Resource::new(move || delete.version().get(), |_| list_firmware());
    let delete_error = Signal::derive(move || action_error(delete.value().get()));
    let upload_error = Signal::derive(move || query.read().get("error"));
    let upload_ok = Signal::derive(move || {
        query
            .read()
            .get("uploaded")
            .map(|v| format!("Uploaded firmware {v}."))
    });
    view! {
        <Title text="Firmware" />
        <PageHeader
            title="Firmware"
            subtitle="Images for over-the-air updates. Devices download them from their absolute URL, with range requests; the SHA-256 is the ETag."
        />
        <Suspense fallback=|| view! { <p class=MUTED>"Loading firmware…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    let list = firmware.await?;
                    let can_manage = list.can_manage;
                    let total = list.firmware.len();
                    let rows = list
                        .firmware
                        .into_iter()
                        .map(|f| firmware_row(f, can_manage, delete))
                        .collect_view();
                    Ok::<_, AppError>(
                        view! {
                            {can_manage
                                .then(|| upload_form(list.max_bytes, upload_error, upload_ok))}
                            <div class="mb-3">
                                <FormStatus error=delete_error />
                            </div>
                            <div class=format!("{CARD} overflow-x-auto")>
                                <table class=TABLE>
                                    <caption class="sr-only">"Firmware images"</caption>
                                    <thead class=THEAD>
                                        <tr>
                                            <th scope="col" class=TH>"Version"</th>
                                            <th scope="col" class=TH>"File name"</th>
                                            <th scope="col" class=TH>"Size"</th>
                                            <th scope="col" class=TH>"SHA-256"</th>
                                            <th scope="col" class=TH>"Uploaded"</th>
                                            <th scope="col" class=TH>"Used by"</th>
                                            <th scope="col" class=TH>
                                                <span class="sr-only">"Actions"</span>
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody>{rows}</tbody>
                                </table>
                                {(total == 0)
                                    .then(|| {
                                        view! {
                                            <p class=format!("{MUTED} p-6 text-center")>
                                                "No firmware uploaded yet."
                                            </p>
                                        }
                                    })}
                            </div>
                        },
                    )
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

/// The upload form: a native multipart post (a server function would hold
/// the whole file in memory), answered with a redirect back to this page.
fn upload_form(
    max_bytes: u64,
    error: Signal<Option<String>>,
    ok: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <section class=format!("{CARD} mb-6 p-4")>
            <h2 class=H2>"Upload firmware"</h2>
            <form
                method="post"
                action="/api/v1/firmware"
                enctype="multipart/form-data"
                class="flex flex-wrap items-end gap-3"
            >
                <label class=LABEL>
                    "Version"
                    <input name="version" required maxlength="100" placeholder="1.2.3" class=INPUT />
                </label>
                <label class=LABEL>
                    "Firmware file"
                    <input
                        name="file"
                        type="file"
                        required
                        class=format!(
                            "{INPUT} file:mr-3 file:rounded file:border-0 file:bg-slate-100 file:px-2 file:py-1 file:text-sm dark:file:bg-slate-800 dark:file:text-slate-200",
                        )
                    />
                </label>
                <button type="submit" class=BUTTON_PRIMARY>
                    "Upload"
                </button>
            </form>
            <p class=format!("{MUTED} mt-2 text-sm")>
                {format!("One binary per version, up to {}.", format_bytes(max_bytes))}
            </p>
            <div class="mt-3">
                <FormStatus error ok />
            </div>
        </section>
    }
}

fn firmware_row(
    f: FirmwareView,
    can_manage: bool,
    delete: ServerAction<DeleteFirmware>,
) -> impl IntoView {
    let used_by = match f.updates_count {
        1 => "1 update".to_string(),
        n => format!("{n} updates"),
    };
    let size = u64::try_from(f.size_bytes).unwrap_or(0);
    let action = if !can_manage {
        None
    } else if f.updates_count > 0 {
        Some(view! { <span class=MUTED>"in use"</span> }.into_any())
    } else {
        let label = format!("Delete firmware {}", f.version);
        Some(
            view! {
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=f.id />
                    <button type="submit" class=BUTTON_DANGER aria-label=label>
                        "Delete"
                    </button>
                </ActionForm>
            }
            .into_any(),
        )
    };
    let download_label = format!("Download firmware {}", f.version);
    view! {
        <tr class=TR>
            <td class=format!("{TD} font-medium")>{f.version.clone()}</td>
            <td class=TD>{f.file_name.clone()}</td>
            <td class=format!("{TD} whitespace-nowrap") title=format!("{} bytes", f.size_bytes)>
                {format_bytes(size)}
            </td>
            <td class=format!("{TD} break-all font-mono text-xs")>{f.sha256.clone()}</td>
            <td class=format!("{TD} {MUTED} whitespace-nowrap")>
                <RelativeTime ms=Some(f.created_at) />
            </td>
            <td class=format!("{TD} whitespace-nowrap")>{used_by}</td>
            <td class=TD>
                <div class="flex items-center justify-end gap-3">
                    <a href=f.download_url.clone() class=LINK aria-label=download_label download>
                        "Download"
                    </a>
                    {action}
                </div>
            </td>
        </tr>
    }
}
