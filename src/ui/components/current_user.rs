use crate::error::AppError;
use crate::model::{CurrentUser, Role};
use crate::server_fns::auth::whoami;
use leptos::prelude::*;

/// The signed-in user as the layout read it once per page load; pages use it
/// to hide actions the user's role may not take (the server checks again:
/// hiding them is courtesy, not protection).
#[derive(Clone, Copy)]
pub struct CurrentUserResource(pub Resource<Result<Option<CurrentUser>, AppError>>);

/// Reads the user once and provides it to the component tree (the layout).
pub fn provide_current_user() -> Resource<Result<Option<CurrentUser>, AppError>> {
    let user = Resource::new(|| (), |_| whoami());
    provide_context(CurrentUserResource(user));
    user
}

/// The layout's user resource, or a fresh one outside the layout (tests that
/// render a page alone).
pub fn use_current_user() -> Resource<Result<Option<CurrentUser>, AppError>> {
    use_context::<CurrentUserResource>()
        .map(|r| r.0)
        .unwrap_or_else(|| Resource::new(|| (), |_| whoami()))
}

/// Whether the user may send commands and start or stop updates.
pub fn may_operate(user: &Result<Option<CurrentUser>, AppError>) -> bool {
    matches!(user, Ok(Some(u)) if u.role.allows(Role::Operator))
}
