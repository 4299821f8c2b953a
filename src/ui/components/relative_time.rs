use crate::model::{format_ago, format_time, EpochMs};
use leptos::prelude::*;

/// The page's notion of "now", for relative times. The server renders with
/// its clock; in the browser it ticks every 15 s so "2 min ago" stays true.
#[derive(Clone, Copy)]
pub struct Clock(pub RwSignal<EpochMs>);

fn wall_clock_ms() -> EpochMs {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as EpochMs
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as EpochMs)
            .unwrap_or(0)
    }
}

/// Provides the clock to the component tree; call once, in the layout.
pub fn provide_clock() {
    let now = RwSignal::new(wall_clock_ms());
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(
            move || now.set(wall_clock_ms()),
            std::time::Duration::from_secs(15),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    provide_context(Clock(now));
}

/// The clock's current reading (the wall clock when none was provided).
pub fn now_signal() -> Signal<EpochMs> {
    match use_context::<Clock>() {
        Some(Clock(now)) => now.into(),
        None => Signal::derive(wall_clock_ms),
    }
}

/// "5 min ago", with the exact UTC time on hover and in `datetime`.
#[component]
pub fn RelativeTime(#[prop(into)] ms: Signal<Option<EpochMs>>) -> impl IntoView {
    let now = now_signal();
    move || match ms.get() {
        Some(ms) => {
            let iso = chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            view! {
                <time datetime=iso title=format_time(ms)>
                    {move || format_ago(now.get(), ms)}
                </time>
            }
            .into_any()
        }
        None => {
            view! { <span class="text-slate-400 dark:text-slate-500">"never"</span> }.into_any()
        }
    }
}
