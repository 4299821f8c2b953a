use crate::error::AppError;
use crate::model::{DataType, ResourceTypeInfo};
use crate::server_fns::resource_types::{
    list_resource_types, CreateResourceType, UpdateResourceType,
};
use crate::ui::components::error_view::ErrorView;
use crate::ui::components::form_status::{action_error, FormStatus};
use crate::ui::components::origin_badge::OriginBadge;
use crate::ui::components::page_header::PageHeader;
use crate::ui::style::{
    BUTTON_PRIMARY, BUTTON_SECONDARY, CARD, H2, INPUT, LABEL, MUTED, TABLE, TD, TH, THEAD, TR,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

/// The resource type catalogue with a search (a GET query parameter, so it
/// works without JavaScript). Admins edit names and units in place and add
/// types for custom objects; everyone else only reads.
#[component]
pub fn ResourceTypesPage() -> impl IntoView {
    let update = ServerAction::<UpdateResourceType>::new();
    let create = ServerAction::<CreateResourceType>::new();
    let query = use_query_map();
    let q = move || query.read().get("q").filter(|q| !q.trim().is_empty());
    let types = Resource::new(
        move || (q(), update.version().get(), create.version().get()),
        |(q, _, _)| list_resource_types(q),
    );
    let update_error = Signal::derive(move || action_error(update.value().get()));
    let update_ok = Signal::derive(move || {
        update
            .value()
            .get()
            .and_then(|r| r.ok())
            .map(|_| "Saved.".to_string())
    });
    view! {
        <Title text="Resource types" />
        <PageHeader
            title="Resource types"
            subtitle="The LwM2M objects and resources the server knows: seeded with the release, discovered from device data, or added for custom objects."
        >
            <Form method="GET" action="/resource-types" attr:class="flex items-end gap-2" attr:role="search">
                <label class=LABEL>
                    "Search"
                    <input
                        type="search"
                        name="q"
                        class=format!("{INPUT} w-64")
                        placeholder="name, /object/resource, unit…"
                        value=q
                    />
                </label>
                <button type="submit" class=BUTTON_SECONDARY>
                    "Search"
                </button>
            </Form>
        </PageHeader>
        <Suspense fallback=|| view! { <p class=MUTED>"Loading resource types…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorView errors /> }>
                {move || Suspend::new(async move {
                    let list = types.await?;
                    let can_edit = list.can_edit;
                    let total = list.types.len();
                    let rows = list
                        .types
                        .into_iter()
                        .map(|t| type_row(t, can_edit, update))
                        .collect_view();
                    Ok::<_, AppError>(
                        view! {
                            <div class="mb-3">
                                <FormStatus error=update_error ok=update_ok />
                            </div>
                            <div class=format!("{CARD} overflow-x-auto")>
                                <table class=TABLE>
                                    <caption class="sr-only">"Resource types"</caption>
                                    <thead class=THEAD>
                                        <tr>
                                            <th scope="col" class=TH>"Object"</th>
                                            <th scope="col" class=TH>"Resource"</th>
                                            <th scope="col" class=TH>"Name"</th>
                                            <th scope="col" class=TH>"Type"</th>
                                            <th scope="col" class=TH>"Unit"</th>
                                            <th scope="col" class=TH>"Origin"</th>
                                            {can_edit
                                                .then(|| {
                                                    view! {
                                                        <th scope="col" class=TH>
                                                            <span class="sr-only">"Edit"</span>
                                                        </th>
                                                    }
                                                })}
                                        </tr>
                                    </thead>
                                    <tbody>{rows}</tbody>
                                </table>
                                {(total == 0)
                                    .then(|| {
                                        view! {
                                            <p class=format!("{MUTED} p-6 text-center")>
                                                "No resource type matches."
                                            </p>
                                        }
                                    })}
                            </div>
                            {can_edit.then(|| add_type_form(create))}
                        },
                    )
                })}
            </ErrorBoundary>
        </Suspense>
    }
}

/// One row; for an admin, the name and unit are inputs of the row's form
/// (linked by the `form` attribute, since a form cannot span table cells).
fn type_row(
    t: ResourceTypeInfo,
    can_edit: bool,
    update: ServerAction<UpdateResourceType>,
) -> impl IntoView {
    let path = format!("/{}/{}", t.object_id, t.resource_id);
    let form_id = format!("rt-{}", t.id);
    let unit = t.unit.clone().unwrap_or_default();
    let save_label = format!("Save {path}");
    let (name_cell, unit_cell) = if can_edit {
        (
            view! {
                <input
                    form=form_id.clone()
                    name="name"
                    required
                    value=t.name.clone()
                    aria-label=format!("Name of {path}")
                    class=format!("{INPUT} w-full min-w-40")
                />
            }
            .into_any(),
            view! {
                <input
                    form=form_id.clone()
                    name="unit"
                    value=unit
                    aria-label=format!("Unit of {path}")
                    class=format!("{INPUT} w-24")
                />
            }
            .into_any(),
        )
    } else {
        (
            view! { <span>{t.name.clone()}</span> }.into_any(),
            view! { <span>{unit}</span> }.into_any(),
        )
    };
    view! {
        <tr class=TR data-path=path>
            <td class=format!("{TD} tabular-nums")>{t.object_id}</td>
            <td class=format!("{TD} tabular-nums")>{t.resource_id}</td>
            <td class=TD>{name_cell}</td>
            <td class=format!("{TD} font-mono text-xs")>{t.data_type.as_str()}</td>
            <td class=TD>{unit_cell}</td>
            <td class=TD>
                <OriginBadge origin=t.origin.clone() />
            </td>
            {can_edit
                .then(|| {
                    view! {
                        <td class=TD>
                            <ActionForm action=update attr:id=form_id.clone()>
                                <input type="hidden" name="id" value=t.id />
                                <button
                                    type="submit"
                                    class=BUTTON_SECONDARY
                                    aria-label=save_label
                                >
                                    "Save"
                                </button>
                            </ActionForm>
                        </td>
                    }
                })}
        </tr>
    }
}

/// The admin's form for a type of a custom object.
fn add_type_form(create: ServerAction<CreateResourceType>) -> impl IntoView {
    let error = Signal::derive(move || action_error(create.value().get()));
    let ok = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.ok())
            .map(|_| "Type added.".to_string())
    });
    view! {
        <section class=format!("{CARD} mt-6 p-4")>
            <h2 class=H2>"Add a type for a custom object"</h2>
            <ActionForm action=create attr:class="flex flex-wrap items-end gap-3">
                <label class=LABEL>
                    "Object ID"
                    <input name="object_id" inputmode="numeric" required class=format!("{INPUT} w-28") />
                </label>
                <label class=LABEL>
                    "Resource ID"
                    <input name="resource_id" inputmode="numeric" required class=format!("{INPUT} w-28") />
                </label>
                <label class=LABEL>
                    "Type name"
                    <input name="name" required class=INPUT />
                </label>
                <label class=LABEL>
                    "Data type"
                    <select name="data_type" class=INPUT>
                        {DataType::ALL
                            .into_iter()
                            .map(|d| view! { <option value=d.as_str()>{d.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label class=LABEL>
                    "Unit"
                    <input name="unit" class=format!("{INPUT} w-24") />
                </label>
                <button type="submit" class=BUTTON_PRIMARY disabled=move || create.pending().get()>
                    "Add type"
                </button>
            </ActionForm>
            <div class="mt-3">
                <FormStatus error ok />
            </div>
        </section>
    }
}
