use crate::model::{format_time, EpochMs};
use leptos::prelude::*;

/// An absolute UTC time in a <time> element. (Relative "2 min ago" text
/// would differ between the server render and hydration.)
#[component]
pub fn Timestamp(#[prop(into)] ms: Option<EpochMs>) -> impl IntoView {
    match ms {
        Some(ms) => {
            let iso = chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            view! { <time datetime=iso>{format_time(ms)}</time> }.into_any()
        }
        None => view! { <span class="text-slate-400">"never"</span> }.into_any(),
    }
}
