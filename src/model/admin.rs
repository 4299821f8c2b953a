//! What the administration pages show: resource types, users and tokens.
use super::{DataType, EpochMs, Role};
use serde::{Deserialize, Serialize};

/// One resource type as the resource types page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceTypeInfo {
    pub id: i64,
    pub object_id: i64,
    pub resource_id: i64,
    pub name: String,
    pub data_type: DataType,
    pub unit: Option<String>,
    /// `seeded`, `discovered` or `custom`.
    pub origin: String,
}

/// The resource types page: the (filtered) types and whether the viewer
/// may edit them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceTypeList {
    pub types: Vec<ResourceTypeInfo>,
    pub can_edit: bool,
}

/// A dashboard user, never with the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub active: bool,
    pub created_at: EpochMs,
}

/// The users page: every user, and which one is the signed-in admin (who
/// may not deactivate or demote themselves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
    pub me: i64,
}

/// A device or API token, never with its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    /// `device` or `api`.
    pub scope: String,
    /// The first characters of the secret, to recognise a token by.
    pub prefix: String,
    pub created_at: EpochMs,
    pub last_used_at: Option<EpochMs>,
    pub revoked_at: Option<EpochMs>,
}

/// The tokens page. `new_secret` carries the secret of a token created by
/// a plain form post (no JavaScript), once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
    pub new_secret: Option<String>,
}

/// A token just created: its secret is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub id: i64,
    pub name: String,
    pub secret: String,
}
