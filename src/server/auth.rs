//! Passwords (argon2), login sessions (cookie) and bearer tokens.
use super::db::{self, api_token::Scope};
use super::state::AppState;
use super::store::{self, now_ms};
use crate::error::AppError;
use crate::model::{CurrentUser, Role};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "flownexus_session";
pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes a password with argon2id. CPU-heavy: runs off the async threads.
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| internal("password hashing task", e))?
    .map_err(|e| internal("password hashing", e))
}

/// Verifies a password against a stored hash. With no hash (unknown user),
/// verifies against a fixed hash anyway so that timing does not reveal
/// which usernames exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2ZkEC2w6PWUuDhmUJwvEd5Dfm8BLAzXl5o0mI1Y5ieI";
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY.to_string());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    ok && known
}

/// Checks a new password against the policy.
pub fn validate_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::invalid_field(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A human-typable random password (no look-alike characters).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buf = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Tokens and session ids are high-entropy random strings, so a plain
/// SHA-256 is a sufficient (and fast) one-way hash for storing them.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn internal(what: &str, e: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "{what} failed");
    AppError::Internal
}

/// Creates an API or device token; returns (id, the token in clear). The
/// clear token is shown once and never stored.
pub async fn create_token(
    pool: &store::Pool,
    name: &str,
    scope: Scope,
) -> Result<(i64, String), AppError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(AppError::invalid_field(
            "name",
            "must be 1 to 100 characters",
        ));
    }
    let kind = match scope {
        Scope::Device => "fxd",
        Scope::Api => "fxa",
    };
    let token = format!("{kind}_{}", random_secret(24));
    let prefix: String = token.chars().take(10).collect();
    let id =
        db::api_token::insert(pool, name, scope, &prefix, &hash_token(&token), now_ms()).await?;
    Ok((id, token))
}

/// Checks a username: 1 to 64 characters after trimming. Returns it trimmed.
pub fn validate_username(username: &str) -> Result<&str, AppError> {
    let username = username.trim();
    if username.is_empty() || username.chars().count() > 64 {
        return Err(AppError::invalid_field(
            "username",
            "must be 1 to 64 characters",
        ));
    }
    Ok(username)
}

/// Creates an active user (the CLI's `user add` and the users page).
/// Returns the new id.
pub async fn create_user(
    pool: &store::Pool,
    username: &str,
    password: &str,
    role: Role,
) -> Result<i64, AppError> {
    let username = validate_username(username)?;
    validate_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    match db::users::insert(pool, username, &hash, role, now_ms()).await {
        Ok(id) => {
            tracing::info!(username, role = role.as_str(), "user created");
            Ok(id)
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::invalid_field(
            "username",
            format!("{username:?} is already taken"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Sets a user's password and ends their sessions, in one transaction
/// (the CLI's `user passwd` and an admin's reset).
pub async fn reset_password(
    pool: &store::Pool,
    user_id: i64,
    password: &str,
) -> Result<(), AppError> {
    validate_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    let mut tx = store::begin_write(pool).await?;
    if !db::users::set_password(&mut *tx, user_id, &hash, now_ms()).await? {
        return Err(AppError::NotFound(format!("user {user_id}")));
    }
    db::sessions::delete_for_user(&mut *tx, user_id).await?;
    tx.commit().await?;
    tracing::info!(user_id, "password reset; sessions ended");
    Ok(())
}

/// Changes the signed-in user's own password after checking the current
/// one. Their other sessions end; the one making the change stays.
pub async fn change_own_password(
    pool: &store::Pool,
    user_id: i64,
    session_token_hash: &str,
    current: &str,
    new: &str,
) -> Result<(), AppError> {
    let user = db::users::find_by_id(pool, user_id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    if !verify_password(current.to_string(), Some(user.password_hash)).await {
        return Err(AppError::invalid_field(
            "current_password",
            "is not your current password",
        ));
    }
    validate_password(new).map_err(|e| match e.details().first() {
        Some(d) => AppError::invalid_field("new_password", d.reason.clone()),
        None => e,
    })?;
    let hash = hash_password(new.to_string()).await?;
    let mut tx = store::begin_write(pool).await?;
    db::users::set_password(&mut *tx, user_id, &hash, now_ms()).await?;
    db::sessions::delete_others(&mut *tx, user_id, session_token_hash).await?;
    tx.commit().await?;
    tracing::info!(username = user.username, "password changed by its user");
    Ok(())
}

/// Activates or deactivates a user. Deactivation ends their sessions in the
/// same transaction, so they are signed out at once.
pub async fn set_user_active(
    pool: &store::Pool,
    user_id: i64,
    active: bool,
) -> Result<(), AppError> {
    let mut tx = store::begin_write(pool).await?;
    if !db::users::set_active(&mut *tx, user_id, active, now_ms()).await? {
        return Err(AppError::NotFound(format!("user {user_id}")));
    }
    if !active {
        db::sessions::delete_for_user(&mut *tx, user_id).await?;
    }
    tx.commit().await?;
    tracing::info!(user_id, active, "user activation changed");
    Ok(())
}

/// Creates the first admin when there are no users. Returns the generated
/// password when one was generated (so the caller can show it once).
pub async fn ensure_admin(
    pool: &store::Pool,
    configured: Option<&str>,
) -> Result<Option<String>, AppError> {
    if db::users::count(pool).await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(p) => {
            validate_password(p)?;
            (p.to_string(), false)
        }
        None => (random_password(), true),
    };
    let hash = hash_password(password.clone()).await?;
    match db::users::insert(pool, "admin", &hash, Role::Admin, now_ms()).await {
        Ok(_) => Ok(generated.then_some(password)),
        // Another instance created it first.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks username and password; on success creates a session and returns
/// (user, session token). `addr` is the client's address when known.
///
/// While the username or the address waits after failed attempts (see
/// `login_throttle`), every attempt is refused with TooManyRequests before
/// the password is looked at, the right one included: otherwise the
/// answers would still let an attacker test a password per request.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    addr: Option<std::net::IpAddr>,
) -> Result<(CurrentUser, String), AppError> {
    let throttle = &state.login_throttle;
    if let Some(wait) = throttle.wait(username, addr, std::time::Instant::now()) {
        let retry_after_secs = super::login_throttle::retry_after_secs(wait);
        tracing::warn!(
            username,
            ?addr,
            retry_after_secs,
            "sign-in refused: too many failures"
        );
        return Err(AppError::TooManyRequests { retry_after_secs });
    }
    let user = db::users::find_by_username(&state.db.pool, username.trim()).await?;
    let ok = verify_password(
        password.to_string(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let user = match user {
        Some(u) if ok && u.active => u,
        _ => {
            tracing::warn!(username, ?addr, "failed login");
            throttle.failed(username, addr, std::time::Instant::now());
            return Err(AppError::Unauthorized);
        }
    };
    throttle.succeeded(username);
    let token = random_secret(32);
    let now = now_ms();
    let expires = now + i64::from(state.settings.session_ttl_hours) * 3_600_000;
    db::sessions::insert(&state.db.pool, &hash_token(&token), user.id, now, expires).await?;
    tracing::info!(username = user.username, "login");
    Ok((
        CurrentUser {
            id: user.id,
            username: user.username,
            role: user.role,
        },
        token,
    ))
}

/// The Set-Cookie value for a session: HttpOnly, SameSite=Lax, and Secure
/// when the public URL is https.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let max_age = u64::from(state.settings.session_ttl_hours) * 3600;
    let secure = if state.settings.https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie value is ASCII")
}

pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("flownexus_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The non-empty value of the named cookie of a request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// The user of the request's session cookie, if it is valid.
pub async fn session_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let user = db::sessions::find_user(&state.db.pool, &hash_token(&token), now_ms()).await?;
    Ok(user.map(|u| CurrentUser {
        id: u.id,
        username: u.username,
        role: u.role,
    }))
}

/// Who made an API request.
#[derive(Debug, Clone)]
pub enum Caller {
    Token {
        id: i64,
        scope: Scope,
    },
    User(CurrentUser),
    /// Ingest with `ingest_auth = "open"`.
    Anonymous,
}

/// Authenticates a request to the device or data API: a bearer token, or a
/// dashboard session (so the dashboard's own pages can use the API).
pub async fn api_caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AppError::Unauthorized)?;
        let hash = hash_token(token);
        match state.tokens.get(&hash) {
            Some(Cached::Fresh(id, scope)) => return Ok(Some(Caller::Token { id, scope })),
            // This request checks the token again for all of them.
            Some(Cached::Refresh) | None => {}
        }
        let Some((id, scope, last_used)) =
            db::api_token::find_active(&state.db.pool, &hash).await?
        else {
            state.tokens.remove(&hash);
            return Err(AppError::Unauthorized);
        };
        // Record use at most once a minute: the hot ingest path stays read-only here.
        let now = now_ms();
        if last_used.is_none_or(|t| now - t > 60_000) {
            db::api_token::touch(&state.db.pool, id, now).await?;
        }
        state.tokens.insert(hash, id, scope);
        return Ok(Some(Caller::Token { id, scope }));
    }
    Ok(session_user(state, headers).await?.map(Caller::User))
}

/// How long a verified token is trusted without asking the database again.
/// A token revoked in another process (the CLI) stops working within this
/// time; `revoke_token` in this process evicts it at once.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Verified API tokens by hash, so that ingest does not pay a database
/// round trip per request.
///
/// An entry is trusted for `TOKEN_CACHE_TTL` after its check. Past half
/// of that, the first request to see it checks the token again
/// (`Cached::Refresh`) while the others go on with the entry, so a busy
/// token is never found expired by every request in flight at once, and a
/// revoked one still stops within the TTL.
#[derive(Default)]
pub struct TokenCache(std::sync::RwLock<std::collections::HashMap<String, CachedToken>>);

struct CachedToken {
    id: i64,
    scope: Scope,
    checked_at: std::time::Instant,
    /// Set by the request that checks it again.
    refreshing: std::sync::atomic::AtomicBool,
}

/// What the cache says about a token.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached {
    /// Checked recently: (token id, scope).
    Fresh(i64, Scope),
    /// Checked a while ago: the caller checks it again for everyone.
    Refresh,
}

impl TokenCache {
    pub fn get(&self, hash: &str) -> Option<Cached> {
        let map = self.0.read().expect("token cache lock");
        let entry = map.get(hash)?;
        let age = entry.checked_at.elapsed();
        if age >= TOKEN_CACHE_TTL {
            return Some(Cached::Refresh);
        }
        if age >= TOKEN_CACHE_TTL / 2
            && !entry
                .refreshing
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return Some(Cached::Refresh);
        }
        Some(Cached::Fresh(entry.id, entry.scope))
    }

    pub fn insert(&self, hash: String, id: i64, scope: Scope) {
        let mut map = self.0.write().expect("token cache lock");
        // Expired entries go when the cache grows: it holds live tokens only.
        if map.len() >= 1024 {
            map.retain(|_, t| t.checked_at.elapsed() < TOKEN_CACHE_TTL);
        }
        map.insert(
            hash,
            CachedToken {
                id,
                scope,
                checked_at: std::time::Instant::now(),
                refreshing: false.into(),
            },
        );
    }

    fn remove(&self, hash: &str) {
        self.0.write().expect("token cache lock").remove(hash);
    }

    fn evict(&self, id: i64) {
        self.0
            .write()
            .expect("token cache lock")
            .retain(|_, t| t.id != id);
    }
}

/// Revokes a token with immediate effect in this server.
pub async fn revoke_token(state: &AppState, id: i64) -> Result<bool, AppError> {
    let revoked = db::api_token::revoke(&state.db.pool, id, now_ms()).await?;
    state.tokens.evict(id);
    Ok(revoked)
}

/// Paths reachable without a dashboard session. They protect themselves
/// (tokens for APIs, server functions check the session) or are public.
fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/favicon.ico"
        || path.starts_with("/pkg/")
        || path.starts_with("/assets/")
        || path.starts_with("/sfn/")
        || path.starts_with("/api/")
        || path.starts_with("/leshan_api/")
        // Firmware downloads: devices fetch their package URI without a
        // token; the route serves only names of uploaded images.
        || path.starts_with("/binaries/")
}

/// Redirects page requests without a valid session to /login.
pub async fn require_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    match session_user(&state, req.headers()).await {
        Ok(Some(_)) => next.run(req).await,
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => e.into_response(),
    }
}

/// A 401 that tells API clients how to authenticate.
pub fn unauthorized() -> Response {
    let mut resp = AppError::Unauthorized.into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hash_verifies_only_the_right_password() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; flownexus_session=abc; b=2"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("flownexus_session="),
        );
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn one_request_refreshes_a_token_past_half_its_time() {
        let cache = TokenCache::default();
        assert_eq!(cache.get("h"), None);
        cache.insert("h".into(), 7, Scope::Device);
        assert_eq!(cache.get("h"), Some(Cached::Fresh(7, Scope::Device)));
        // Checked half a TTL ago: the first caller refreshes, the rest go on.
        let set_age = |age: std::time::Duration| {
            let mut map = cache.0.write().unwrap();
            let entry = map.get_mut("h").unwrap();
            entry.checked_at = std::time::Instant::now() - age;
        };
        set_age(TOKEN_CACHE_TTL / 2 + std::time::Duration::from_millis(10));
        assert_eq!(cache.get("h"), Some(Cached::Refresh));
        for _ in 0..3 {
            assert_eq!(cache.get("h"), Some(Cached::Fresh(7, Scope::Device)));
        }
        // Past the TTL nobody trusts it, refreshing or not.
        set_age(TOKEN_CACHE_TTL + std::time::Duration::from_millis(10));
        assert_eq!(cache.get("h"), Some(Cached::Refresh));
        assert_eq!(cache.get("h"), Some(Cached::Refresh));
        // The refresh's answer starts a new period.
        cache.insert("h".into(), 7, Scope::Device);
        assert_eq!(cache.get("h"), Some(Cached::Fresh(7, Scope::Device)));
        cache.remove("h");
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn random_passwords_are_long_and_distinct() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
        assert!(validate_password(&a).is_ok());
        assert!(validate_password("short").is_err());
    }
}
