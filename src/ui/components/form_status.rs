use crate::error::AppError;
use crate::ui::style::{ALERT_ERROR, ALERT_OK};
use leptos::prelude::*;

/// The message of a failed action: the reason given for the first field,
/// naming it, or the error itself.
pub fn action_error<T>(value: Option<Result<T, AppError>>) -> Option<String> {
    let e = value?.err()?;
    Some(match e.details().first() {
        Some(d) => format!("{}: {}", d.path.replace('_', " "), d.reason),
        None => e.to_string(),
    })
}

/// An error (red) or success (green) message next to a form; nothing when
/// both are empty.
#[component]
pub fn FormStatus(
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional, into)] ok: Option<Signal<Option<String>>>,
) -> impl IntoView {
    move || match (error.get(), ok.and_then(|ok| ok.get())) {
        (Some(text), _) => Some(view! { <p role="alert" class=ALERT_ERROR>{text}</p> }.into_any()),
        (None, Some(text)) => Some(view! { <p role="status" class=ALERT_OK>{text}</p> }.into_any()),
        (None, None) => None,
    }
}
