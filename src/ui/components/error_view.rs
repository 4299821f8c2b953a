use leptos::prelude::*;

/// What an ErrorBoundary shows: the errors' messages (never internals; the
/// server already reduced those to "internal error").
#[component]
pub fn ErrorView(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div role="alert" class="rounded-md border border-red-200 bg-red-50 p-4 text-red-800">
            <p class="font-medium">"Something went wrong"</p>
            <ul class="mt-1 list-disc pl-5 text-sm">
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|(_, e)| {
                            let text = e.to_string();
                            let login = text.contains("authentication required");
                            view! {
                                <li>
                                    {text}
                                    {login
                                        .then(|| {
                                            view! {
                                                " "
                                                <a class="underline" href="/login">
                                                    "Sign in"
                                                </a>
                                            }
                                        })}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}
