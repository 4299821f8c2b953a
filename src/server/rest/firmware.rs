//! Firmware images: upload (multipart, streamed to disk), list, delete, and
//! the public download route `/binaries/{file}` that devices fetch the
//! package from (with ranges, so an interrupted download can resume).
use super::authorize_api;
use super::openapi::ErrorBody;
use crate::error::AppError;
use crate::model::query::encode_component;
use crate::model::{FirmwareView, Role};
use crate::server::auth::Caller;
use crate::server::db::{self, firmware::Deleted};
use crate::server::firmware_store::{self as store, IncomingFile, PersistError, RangeAnswer};
use crate::server::state::AppState;
use crate::server::store::{begin_write, now_ms};
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Room for the multipart framing and the version field around the file:
/// a body may exceed `firmware_max_bytes` by this much before it is refused
/// unread.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Longest `version` field read (the valid ones are far shorter; this only
/// bounds what is buffered).
const MAX_VERSION_FIELD: usize = 4 * 1024;

/// Admins (session) and API tokens may change firmware; viewers and
/// operators only read it, devices not at all.
async fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let caller = authorize_api(state, headers).await?;
    match &caller {
        Caller::User(user) if !user.role.allows(Role::Admin) => Err(AppError::Forbidden),
        _ => Ok(caller),
    }
}

/// A plain HTML form post (no JavaScript): it is answered with a redirect
/// back to the firmware page rather than JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Upload a firmware image.
///
/// `multipart/form-data` with `version` (1 to 100 characters, unique) and
/// `file` (the image, at most `firmware_max_bytes`, default 16 MiB). The
/// image is stored under `<version>-<sha256 prefix>.bin` and served at
/// `download_url`. A browser form post (`Accept: text/html`) is answered
/// with `303` to `/firmware?uploaded=<version>` or
/// `/firmware?error=<message>`.
#[utoipa::path(
    post,
    path = "/api/v1/firmware",
    operation_id = "upload_firmware",
    tag = "firmware",
    security(("bearer" = []), ("session" = [])),
    request_body(content_type = "multipart/form-data", description = "Fields `version` (text) and `file` (the binary, with its file name)"),
    responses(
        (status = 201, description = "Stored", body = FirmwareView),
        (status = 303, description = "A browser form post: back to the firmware page"),
        (status = 400, description = "Not a well-formed multipart body", body = ErrorBody),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token, or the session of a viewer or operator", body = ErrorBody),
        (status = 409, description = "This version exists already", body = ErrorBody),
        (status = 413, description = "The file is larger than `firmware_max_bytes`", body = ErrorBody),
        (status = 422, description = "A field is missing, empty or invalid; `details` names it", body = ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let html = wants_html(&headers);
    // Refusals of the caller keep their status even for a form: there is
    // no page to show to someone who may not upload.
    let caller = authorize_admin(&state, &headers).await?;
    match receive(&state, &headers, multipart).await {
        Ok(view) => {
            tracing::info!(
                version = view.version,
                size = view.size_bytes,
                sha256 = view.sha256,
                by = ?caller_name(&caller),
                "firmware uploaded"
            );
            if html {
                let to = format!("/firmware?uploaded={}", encode_component(&view.version));
                return Ok(Redirect::to(&to).into_response());
            }
            Ok((StatusCode::CREATED, Json(view)).into_response())
        }
        Err(e) if html && e.status_code() < 500 => {
            tracing::warn!(error = %e, "firmware upload refused");
            let message = match e.details().first() {
                Some(d) => format!("{}: {}", d.path, d.reason),
                None => e.to_string(),
            };
            let to = format!("/firmware?error={}", encode_component(&message));
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => Err(e),
    }
}

fn caller_name(caller: &Caller) -> String {
    match caller {
        Caller::User(user) => user.username.clone(),
        Caller::Token { id, .. } => format!("token {id}"),
        Caller::Anonymous => "anonymous".into(),
    }
}

/// Reads the multipart body, stores the file and registers it.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<FirmwareView, AppError> {
    let limit = state.settings.firmware_max_bytes;
    let body_limit = limit.saturating_add(MULTIPART_OVERHEAD);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > body_limit) {
        return Err(too_large(limit));
    }
    let mut multipart = multipart.map_err(|e| {
        AppError::bad_request(
            format!("expected a multipart/form-data body: {}", e.body_text()),
            vec![crate::error::FieldError::new("body", e.body_text())],
        )
    })?;

    let mut version: Option<String> = None;
    let mut file: Option<(IncomingFile, String)> = None;
    let mut over_limit = false;
    // Bytes of the body read so far, whatever the field: bounds a body that
    // did not declare its length.
    let mut read: u64 = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "version" if version.is_none() => {
                let text = read_text(&mut field, &mut read).await?;
                version = Some(text);
            }
            "file" if file.is_none() => {
                let file_name = store::sanitize_file_name(field.file_name());
                let mut incoming = IncomingFile::create(&state.settings.firmware_dir).await?;
                while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                    read += chunk.len() as u64;
                    if incoming.size() + chunk.len() as u64 > limit {
                        // Keep reading (and dropping) what the client sends so
                        // that a browser sees the answer rather than a reset
                        // connection; the temporary file goes with `incoming`.
                        over_limit = true;
                        if read > body_limit {
                            return Err(too_large(limit));
                        }
                        continue;
                    }
                    incoming.write(&chunk).await?;
                }
                file = Some((incoming, file_name));
            }
            "version" | "file" => {
                return Err(AppError::invalid_field(&name, "given more than once"));
            }
            "" => {
                return Err(AppError::bad_request(
                    "a multipart field has no name",
                    vec![crate::error::FieldError::new("body", "a field has no name")],
                ))
            }
            other => {
                return Err(AppError::invalid_field(
                    other,
                    "unknown field: expected version and file",
                ))
            }
        }
        if read > body_limit {
            return Err(too_large(limit));
        }
    }
    if over_limit {
        return Err(too_large(limit));
    }
    let version = store::validate_version(
        &version.ok_or_else(|| AppError::invalid_field("version", "is required"))?,
    )?;
    let (incoming, file_name) =
        file.ok_or_else(|| AppError::invalid_field("file", "is required"))?;
    if incoming.size() == 0 {
        return Err(AppError::invalid_field("file", "is empty"));
    }
    let duplicate = || AppError::Conflict(format!("version {version:?} exists already"));
    let stored = match incoming.persist(&version).await {
        Ok(stored) => stored,
        Err(PersistError::Exists(name)) => {
            return Err(AppError::Conflict(format!(
                "too many uploads of this image under versions stored as {name:?}"
            )))
        }
        Err(PersistError::Other(e)) => return Err(e),
    };
    let size = i64::try_from(stored.size).map_err(|_| too_large(limit))?;
    let now = now_ms();
    let inserted = db::firmware::insert(
        &state.db.pool,
        &version,
        &file_name,
        size,
        &stored.sha256,
        &stored.stored_file,
        now,
    )
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(e) => {
            // No row, no file: the name was ours alone (the link above
            // refuses existing names).
            store::remove_file(&stored.path).await;
            return Err(match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => duplicate(),
                e => e.into(),
            });
        }
    };
    Ok(FirmwareView {
        id,
        version,
        file_name,
        size_bytes: size,
        download_url: store::package_uri(&state.settings.public_base_url, &stored.stored_file),
        sha256: stored.sha256,
        created_at: now,
        updates_count: 0,
    })
}

fn too_large(limit: u64) -> AppError {
    AppError::PayloadTooLarge(usize::try_from(limit).unwrap_or(usize::MAX))
}

fn malformed(e: axum::extract::multipart::MultipartError) -> AppError {
    AppError::bad_request(
        format!("malformed multipart body: {}", e.body_text()),
        vec![crate::error::FieldError::new("body", e.body_text())],
    )
}

/// A text field, at most `MAX_VERSION_FIELD` bytes of UTF-8.
async fn read_text(field: &mut Field<'_>, read: &mut u64) -> Result<String, AppError> {
    let name = field.name().unwrap_or_default().to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        *read += chunk.len() as u64;
        if bytes.len() + chunk.len() > MAX_VERSION_FIELD {
            return Err(AppError::invalid_field(
                &name,
                format!("must be 1 to {} characters", store::MAX_VERSION_LEN),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| AppError::invalid_field(&name, "must be UTF-8 text"))
}

/// List firmware images.
///
/// Every uploaded image, newest first, with its download URL and the number
/// of firmware updates that use it.
#[utoipa::path(
    get,
    path = "/api/v1/firmware",
    operation_id = "list_firmware",
    tag = "firmware",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Every image, newest first", body = Vec<FirmwareView>),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<FirmwareView>>, AppError> {
    authorize_api(&state, &headers).await?;
    let base = &state.settings.public_base_url;
    Ok(Json(
        db::firmware::list(&state.db.pool)
            .await?
            .into_iter()
            .map(|row| store::view(base, row))
            .collect(),
    ))
}

/// Delete a firmware image.
///
/// Only an image no firmware update references (of any state: the updates'
/// history keeps pointing at it) can be deleted; its file goes with it.
#[utoipa::path(
    delete,
    path = "/api/v1/firmware/{id}",
    operation_id = "delete_firmware",
    tag = "firmware",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "Firmware id")),
    responses(
        (status = 204, description = "Deleted, file included"),
        (status = 401, description = "No valid API token or session", body = ErrorBody),
        (status = 403, description = "A device token, or the session of a viewer or operator", body = ErrorBody),
        (status = 404, description = "No firmware with this id", body = ErrorBody),
        (status = 409, description = "Firmware updates use it", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, AppError> {
    let caller = authorize_admin(&state, &headers).await?;
    let id = super::params::path_strings(id)?;
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::invalid_field("id", format!("{id:?} is not an integer")))?;
    delete_firmware(&state, id).await?;
    tracing::info!(id, by = ?caller_name(&caller), "firmware deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an unused image and then its file (shared by the REST route and
/// the page's server function).
pub async fn delete_firmware(state: &AppState, id: i64) -> Result<(), AppError> {
    let mut tx = begin_write(&state.db.pool).await?;
    let outcome = db::firmware::delete_unused(&mut tx, id).await?;
    match outcome {
        Deleted::Removed { stored_file } => {
            tx.commit().await?;
            // After the commit: a rolled-back delete keeps its file.
            store::remove_file(&state.settings.firmware_dir.join(stored_file)).await;
            Ok(())
        }
        Deleted::InUse(n) => Err(AppError::Conflict(format!(
            "firmware {id} is used by {n} firmware update{}",
            if n == 1 { "" } else { "s" }
        ))),
        Deleted::NotFound => Err(AppError::NotFound(format!("firmware {id}"))),
    }
}

/// Download a firmware image.
///
/// Public, so that devices can fetch the package URI written to them
/// without a token; only names of uploaded images are served. `HEAD`
/// answers the same headers without the body. Supports one `Range` (`bytes=a-b`, `bytes=a-`, `bytes=-n`; several ranges
/// get the whole file), `If-Range` and `If-None-Match` against the ETag,
/// which is the image's SHA-256.
// Documented as GET only: axum answers HEAD from the GET route (and the
// handler skips the body), and one operation id cannot name two methods.
#[utoipa::path(
    get,
    path = "/binaries/{file}",
    operation_id = "download_firmware",
    tag = "firmware",
    params(
        ("file" = String, Path, description = "The stored file name, as in `download_url`"),
        ("Range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client has"),
        ("If-Range" = Option<String>, Header, description = "Serve the range only while the ETag is this"),
    ),
    responses(
        (status = 200, description = "The whole image", content_type = "application/octet-stream",
            headers(
                ("ETag" = String, description = "`\"<sha256>\"`"),
                ("Accept-Ranges" = String, description = "`bytes`"),
                ("Content-Disposition" = String, description = "`attachment; filename=\"<file_name>\"`"),
            )),
        (status = 206, description = "The requested range", content_type = "application/octet-stream",
            headers(("Content-Range" = String, description = "`bytes a-b/size`"))),
        (status = 304, description = "`If-None-Match` matches the ETag"),
        (status = 404, description = "No image of this name", body = ErrorBody),
        (status = 416, description = "The range starts beyond the end", headers(("Content-Range" = String, description = "`bytes */size`"))),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let name = super::params::path_strings(file)?;
    let not_found = || AppError::NotFound(format!("firmware file {name:?}"));
    if !store::is_plausible_stored_name(&name) {
        return Err(not_found());
    }
    let row = db::firmware::find_by_stored_file(&state.db.pool, &name)
        .await?
        .ok_or_else(not_found)?;
    let etag = format!("\"{}\"", row.sha256);
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| AppError::Internal)?;
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());

    if header_str(header::IF_NONE_MATCH).is_some_and(|v| store::if_none_match(v, &etag)) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }

    // The row names the file: a request never builds a path itself.
    let path = state.settings.firmware_dir.join(&row.stored_file);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "a registered firmware file cannot be opened");
            return Err(AppError::Internal);
        }
    };
    let size = file
        .metadata()
        .await
        .map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "cannot stat a firmware file");
            AppError::Internal
        })?
        .len();

    // If-Range: serve the range only if the client's copy is this one; we
    // have no Last-Modified, so a date never matches.
    let range_applies = header_str(header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let range = match header_str(header::RANGE) {
        Some(r) if range_applies => store::parse_range(r, size),
        _ => RangeAnswer::Full,
    };

    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::ETAG, etag_value);
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (status, start, len) = match range {
        RangeAnswer::Full => (StatusCode::OK, 0, size),
        RangeAnswer::Partial { start, end } => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{size}"))?,
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}"))?,
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
    };
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // file_name was made safe on upload (no quotes or control characters).
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!("attachment; filename=\"{}\"", row.file_name))?,
    );

    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| {
                    tracing::error!(path = %path.display(), error = %e, "cannot seek in a firmware file");
                    AppError::Internal
                })?;
        }
        // Streamed in 64 KiB reads: a 16 MiB image never sits in memory.
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            64 * 1024,
        ))
    };
    Ok((status, response_headers, body).into_response())
}

fn header_value(s: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(s).map_err(|_| AppError::Internal)
}
