//! Firmware images for the firmware page: every signed-in user reads the
//! list; admins delete unused images. (Uploads are a multipart form post to
//! `POST /api/v1/firmware`, which streams the file to disk; a server
//! function would buffer it.)
use crate::error::AppError;
use crate::model::FirmwareList;
use leptos::prelude::*;

/// Every image, newest first, whether the user may upload and delete, and
/// the size limit.
#[server(prefix = "/sfn", endpoint = "firmware/list")]
pub async fn list_firmware() -> Result<FirmwareList, AppError> {
    use crate::model::Role;
    use crate::server::{context, db, firmware_store};
    context::respond(async {
        let (state, user) = context::require_role(Role::Viewer).await?;
        let base = &state.settings.public_base_url;
        let firmware = db::firmware::list(&state.db.pool)
            .await?
            .into_iter()
            .map(|row| firmware_store::view(base, row))
            .collect();
        Ok(FirmwareList {
            firmware,
            can_manage: user.role.allows(Role::Admin),
            max_bytes: state.settings.firmware_max_bytes,
        })
    })
    .await
}

/// Deletes an image no firmware update references, and its file; 409
/// while updates use it.
#[server(prefix = "/sfn", endpoint = "firmware/delete")]
pub async fn delete_firmware(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::context;
    context::respond(async move {
        let (state, me) = context::require_role(Role::Admin).await?;
        crate::server::rest::firmware::delete_firmware(&state, id).await?;
        tracing::info!(id, by = me.username, "firmware deleted");
        Ok(())
    })
    .await
}
