//! The resource type catalogue: every signed-in user reads it; admins
//! rename types, set units and add types for custom objects.
use crate::error::AppError;
use crate::model::ResourceTypeList;
use leptos::prelude::*;

/// Longest type name and unit accepted.
pub const MAX_NAME_LEN: usize = 100;
pub const MAX_UNIT_LEN: usize = 32;

/// Every resource type whose name, path, unit, type or origin contains `q`
/// (case-insensitive; all of them without `q`), by object and resource.
#[server(prefix = "/sfn", endpoint = "resource_types/list")]
pub async fn list_resource_types(q: Option<String>) -> Result<ResourceTypeList, AppError> {
    use crate::model::{ResourceTypeInfo, Role};
    use crate::server::{context, db};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Viewer).await?;
        let needle = q.unwrap_or_default().trim().to_lowercase();
        let types = db::resource_type::list(&state.db.pool)
            .await?
            .into_iter()
            .map(|t| ResourceTypeInfo {
                id: t.id,
                object_id: t.object_id,
                resource_id: t.resource_id,
                name: t.name,
                data_type: t.data_type,
                unit: t.unit,
                origin: t.origin.as_str().to_string(),
            })
            .filter(|t| {
                needle.is_empty()
                    || [
                        t.name.to_lowercase(),
                        format!("/{}/{}", t.object_id, t.resource_id),
                        t.unit.clone().unwrap_or_default().to_lowercase(),
                        t.data_type.as_str().to_lowercase(),
                        t.origin.clone(),
                    ]
                    .iter()
                    .any(|field| field.contains(&needle))
            })
            .collect();
        Ok(ResourceTypeList {
            types,
            can_edit: user.role.allows(Role::Admin),
        })
    })
    .await
}

/// Renames a type and sets (or, when empty, clears) its unit. Admin only.
#[server(prefix = "/sfn", endpoint = "resource_types/update")]
pub async fn update_resource_type(id: i64, name: String, unit: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::{context, db, store};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Admin).await?;
        let name = checked::name(&name)?;
        let unit = checked::unit(&unit)?;
        let pool = &state.db.pool;
        let mut tx = store::begin_write(pool).await?;
        checked::name_is_free(&mut tx, name, Some(id)).await?;
        if !db::resource_type::update_name_unit(&mut *tx, id, name, unit).await? {
            return Err(AppError::NotFound(format!("resource type {id}")));
        }
        tx.commit().await?;
        state.types.load(pool).await?;
        tracing::info!(id, name, unit, by = user.username, "resource type updated");
        Ok(())
    })
    .await
}

/// Adds a type for a custom object: (object, resource) must be new. The
/// ids come as text so that a bad one is reported by field. Admin only.
#[server(prefix = "/sfn", endpoint = "resource_types/create")]
pub async fn create_resource_type(
    object_id: String,
    resource_id: String,
    name: String,
    data_type: String,
    unit: String,
) -> Result<(), AppError> {
    use crate::model::{DataType, Role};
    use crate::server::context;
    use crate::server::db::resource_type::{self, NewResourceType, Origin};
    context::respond(async move {
        let (state, user) = context::require_role(Role::Admin).await?;
        let object_id = checked::lwm2m_id("object_id", &object_id)?;
        let resource_id = checked::lwm2m_id("resource_id", &resource_id)?;
        let name = checked::name(&name)?;
        let data_type = DataType::parse(data_type.trim())
            .ok_or_else(|| AppError::invalid_field("data_type", "unknown data type"))?;
        let unit = checked::unit(&unit)?;
        let pool = &state.db.pool;
        let mut tx = crate::server::store::begin_write(pool).await?;
        checked::name_is_free(&mut tx, name, None).await?;
        let added = resource_type::insert_if_missing(
            &mut *tx,
            &NewResourceType {
                object_id,
                resource_id,
                name,
                data_type,
                unit,
                writable: false,
                executable: data_type == DataType::None,
                origin: Origin::Custom,
            },
        )
        .await?;
        if added == 0 {
            return Err(AppError::invalid_field(
                "resource_id",
                format!("/{object_id}/{resource_id} already has a type"),
            ));
        }
        tx.commit().await?;
        state.types.load(pool).await?;
        tracing::info!(
            object_id,
            resource_id,
            name,
            by = user.username,
            "custom resource type added"
        );
        Ok(())
    })
    .await
}

/// Input checks shared by the update and create functions.
#[cfg(feature = "ssr")]
mod checked {
    use super::{MAX_NAME_LEN, MAX_UNIT_LEN};
    use crate::error::AppError;
    use crate::server::db;

    pub fn name(name: &str) -> Result<&str, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(AppError::invalid_field(
                "name",
                format!("must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        Ok(name)
    }

    /// An empty unit is no unit.
    pub fn unit(unit: &str) -> Result<Option<&str>, AppError> {
        let unit = unit.trim();
        if unit.chars().count() > MAX_UNIT_LEN {
            return Err(AppError::invalid_field(
                "unit",
                format!("must be at most {MAX_UNIT_LEN} characters"),
            ));
        }
        Ok((!unit.is_empty()).then_some(unit))
    }

    pub fn lwm2m_id(field: &str, text: &str) -> Result<i64, AppError> {
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=65535).contains(n))
            .ok_or_else(|| AppError::invalid_field(field, "must be a number from 0 to 65535"))
    }

    /// Names select types in the data API, so no two types share one.
    pub async fn name_is_free(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        name: &str,
        own_id: Option<i64>,
    ) -> Result<(), AppError> {
        match db::resource_type::id_by_name(&mut **tx, name).await? {
            Some(other) if Some(other) != own_id => Err(AppError::invalid_field(
                "name",
                format!("{name:?} is already the name of another type"),
            )),
            _ => Ok(()),
        }
    }
}
