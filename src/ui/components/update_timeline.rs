use crate::model::UpdateStep;
use crate::ui::components::relative_time::RelativeTime;
use crate::ui::style;
use leptos::prelude::*;

/// One step of an update in words: "Package URI written", "Downloading",
/// "Failed: integrity check failed".
pub fn step_text(step: &UpdateStep) -> String {
    let detail = step.detail.clone().filter(|d| !d.is_empty());
    let with_detail = |words: &str| match &detail {
        Some(d) => format!("{words}: {d}"),
        None => words.to_string(),
    };
    let t = step.event_type.as_str();
    // Command details read "write /5/0/1 = coap://…" or "execute /5/0/2".
    let about = |path: &str| {
        detail
            .as_deref()
            .is_some_and(|d| d.split_whitespace().nth(1) == Some(path))
    };
    match t {
        // Its detail is "to <version>".
        "firmware_update_started" => match &detail {
            Some(d) => format!("Update {d} started"),
            None => "Update started".into(),
        },
        "firmware_pending" => "Pending".into(),
        "firmware_downloading" => "Downloading".into(),
        "firmware_downloaded" => "Downloaded".into(),
        "firmware_updating" => "Updating".into(),
        "firmware_succeeded" => "Succeeded".into(),
        "firmware_failed" => with_detail("Failed"),
        "firmware_timed_out" => with_detail("Timed out"),
        "firmware_cancelled" | "firmware_update_cancelled" => with_detail("Cancelled"),
        "firmware_update_retried" | "firmware_retried" => with_detail("Retried"),
        // The commands an update sends: the package URI write and the
        // Execute of 5/0/2 read as what they mean.
        "command_confirmed" if about("/5/0/1") => "Package URI written".into(),
        "command_confirmed" if about("/5/0/2") => "Update executed".into(),
        "command_queued" if about("/5/0/1") => "Package URI write queued".into(),
        "command_queued" if about("/5/0/2") => "Update execute queued".into(),
        _ => with_detail(&sentence(t)),
    }
}

/// `command_failed` -> `Command failed`.
fn sentence(event_type: &str) -> String {
    let spaced = event_type.replace('_', " ");
    let mut c = spaced.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Whether a step reports trouble (drawn red).
fn is_bad(event_type: &str) -> bool {
    event_type.ends_with("failed") || event_type.ends_with("timed_out")
}

/// An update's steps, oldest first, as a vertical timeline with times and
/// who did each step.
#[component]
pub fn UpdateTimeline(steps: Vec<UpdateStep>) -> impl IntoView {
    if steps.is_empty() {
        return view! { <p class=format!("text-xs {}", style::MUTED)>"No steps recorded yet."</p> }
            .into_any();
    }
    view! {
        <ol class="relative ml-1.5 border-l border-slate-200 dark:border-slate-700" aria-label="Timeline">
            {steps
                .into_iter()
                .map(|s| {
                    let dot = if is_bad(&s.event_type) {
                        "bg-red-500"
                    } else if s.event_type == "firmware_succeeded" {
                        "bg-emerald-500"
                    } else {
                        "bg-blue-500"
                    };
                    view! {
                        <li class="mb-2 ml-4 last:mb-0" data-step=s.event_type.clone()>
                            <span class=format!(
                                "absolute -left-[5px] mt-1.5 h-2.5 w-2.5 rounded-full ring-2 ring-white dark:ring-slate-900 {dot}",
                            )></span>
                            <p class="text-sm">{step_text(&s)}</p>
                            <p class=format!("text-xs {}", style::MUTED)>
                                <RelativeTime ms=Some(s.at) />
                                {s.actor.clone().map(|a| format!(" · {a}"))}
                            </p>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(event_type: &str, detail: Option<&str>) -> UpdateStep {
        UpdateStep {
            event_type: event_type.into(),
            detail: detail.map(str::to_string),
            actor: None,
            at: 0,
        }
    }

    #[test]
    fn steps_read_as_words() {
        assert_eq!(
            step_text(&step("firmware_downloading", None)),
            "Downloading"
        );
        assert_eq!(
            step_text(&step("firmware_failed", Some("integrity check failed"))),
            "Failed: integrity check failed"
        );
        assert_eq!(
            step_text(&step(
                "command_confirmed",
                Some("write /5/0/1 = coap://fw/1.bin")
            )),
            "Package URI written"
        );
        assert_eq!(
            step_text(&step("command_confirmed", Some("execute /5/0/2"))),
            "Update executed"
        );
        assert_eq!(
            step_text(&step("firmware_update_started", Some("to 1.2.3"))),
            "Update to 1.2.3 started"
        );
        assert_eq!(step_text(&step("something_new", None)), "Something new");
    }
}
