use crate::error::AppError;
use crate::model::Role;
use crate::ui::style::ALERT_ERROR;
use leptos::prelude::*;

/// What a page shows when its server function answered 403: which role it
/// needs (the server refused the data; this only explains why).
#[component]
pub fn AccessDenied(least: Role) -> impl IntoView {
    view! {
        <div role="alert" class=ALERT_ERROR>
            <p class="font-medium">{format!("You need the {} role to open this page.", least.as_str())}</p>
            <p class="mt-1">"Ask an administrator if you need access."</p>
        </div>
    }
}

/// A page's data rendered by `render`, or, when the server refused it with
/// 403, the access-denied message. Other errors go to the error boundary.
pub fn or_access_denied<T>(
    result: Result<T, AppError>,
    least: Role,
    render: impl FnOnce(T) -> AnyView,
) -> Result<AnyView, AppError> {
    match result {
        Ok(data) => Ok(render(data)),
        Err(AppError::Forbidden) => Ok(view! { <AccessDenied least /> }.into_any()),
        Err(e) => Err(e),
    }
}
