//! Firmware images on disk: naming, validation, the absolute package URI
//! devices download from, and the `Range` header of downloads. The HTTP
//! handlers are in `rest::firmware`; the rows in `db::firmware`.
use crate::error::AppError;
use crate::model::FirmwareView;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Where firmware images are served, below the public base URL.
pub const BINARIES_PREFIX: &str = "/binaries/";
/// Longest version accepted (the schema's check constraint).
pub const MAX_VERSION_LEN: usize = 100;
/// Longest file name kept (longer ones are cut).
const MAX_FILE_NAME_LEN: usize = 100;

/// The absolute URL of a stored image, as written to a device's package URI
/// (5/0/1): the public base URL and `/binaries/<stored_file>`, with exactly
/// one slash between them whatever the base URL ends with.
pub fn package_uri(public_base_url: &str, stored_file: &str) -> String {
    format!(
        "{}{BINARIES_PREFIX}{}",
        public_base_url.trim_end_matches('/'),
        stored_file.trim_start_matches('/')
    )
}

/// The package URI of a stored image served over CoAP by the native LwM2M
/// server: `<coap base>/fw/<stored_file>`.
pub fn coap_package_uri(public_coap_url: &str, stored_file: &str) -> String {
    format!(
        "{}/{}/{}",
        public_coap_url.trim_end_matches('/'),
        super::lwm2m::firmware::FW_SEGMENT,
        stored_file.trim_start_matches('/')
    )
}

/// The API's view of a firmware row.
pub fn view(public_base_url: &str, row: super::db::firmware::FirmwareRow) -> FirmwareView {
    FirmwareView {
        download_url: package_uri(public_base_url, &row.stored_file),
        id: row.id,
        version: row.version,
        file_name: row.file_name,
        size_bytes: row.size_bytes,
        sha256: row.sha256,
        created_at: row.created_at,
        updates_count: row.updates_count,
    }
}

/// Checks a version: trimmed, 1 to 100 characters, no control characters.
/// Returns it trimmed.
pub fn validate_version(raw: &str) -> Result<String, AppError> {
    let version = raw.trim();
    if version.is_empty() || version.chars().count() > MAX_VERSION_LEN {
        return Err(AppError::invalid_field(
            "version",
            format!("must be 1 to {MAX_VERSION_LEN} characters"),
        ));
    }
    if version.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "version",
            "must not contain control characters",
        ));
    }
    Ok(version.to_string())
}

/// Replaces everything but ASCII letters, digits, `.`, `-` and `_` with
/// `_`, and leading dots too (no hidden or `..` names). The result is safe
/// in a path, a URL and a quoted Content-Disposition filename.
fn safe_chars(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dots = out.len() - out.trim_start_matches('.').len();
    out.replace_range(..dots, &"_".repeat(dots));
    out
}

/// The uploaded file's name as kept: its last path component (browsers on
/// Windows may send a whole path), made safe, at most 100 characters;
/// `firmware.bin` when nothing is left.
pub fn sanitize_file_name(raw: Option<&str>) -> String {
    let base = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim();
    let name: String = safe_chars(base).chars().take(MAX_FILE_NAME_LEN).collect();
    if name.trim_matches('_').is_empty() {
        "firmware.bin".to_string()
    } else {
        name
    }
}

/// The name an image is stored and served under:
/// `<version made safe>-<first 16 hex digits of its SHA-256>.bin`. The
/// version makes it readable in a device log; the hash makes a guess at
/// another version's URL useless.
pub fn stored_file_name(version: &str, sha256_hex: &str) -> String {
    let prefix = sha256_hex.get(..16).unwrap_or(sha256_hex);
    format!("{}-{prefix}.bin", safe_chars(version))
}

/// Numbered names tried for one image before the upload is refused.
const MAX_NAME_ATTEMPTS: u32 = 100;

/// `base` for the first attempt, then `<stem>-<n>.bin`.
fn numbered(base: &str, n: u32) -> String {
    if n == 1 {
        return base.to_string();
    }
    let stem = base.strip_suffix(".bin").unwrap_or(base);
    format!("{stem}-{n}.bin")
}

/// Whether a requested `/binaries/` name could be a stored name at all;
/// anything else is refused before the database is asked. (Only names in
/// the `firmware` table are served in any case.)
pub fn is_plausible_stored_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 2 * MAX_VERSION_LEN
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// An image being received: a temporary file in the firmware directory,
/// hashed and counted as it is written. Dropped without `persist`, the
/// temporary file is removed, so a failed or refused upload leaves nothing.
pub struct IncomingFile {
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
}

/// A received image, moved to its stored name.
#[derive(Debug)]
pub struct StoredFile {
    pub stored_file: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl IncomingFile {
    /// Creates the firmware directory when missing and a temporary file in
    /// it (same file system as the final name, so the move is a link).
    pub async fn create(dir: &Path) -> Result<IncomingFile, AppError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error("creating the firmware directory", dir, e))?;
        let tmp = dir.join(format!(".upload-{}.part", super::auth::random_secret(12)));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| io_error("creating an upload file", &tmp, e))?;
        Ok(IncomingFile {
            dir: dir.to_path_buf(),
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        let Some(file) = self.file.as_mut() else {
            return Err(AppError::Internal);
        };
        file.write_all(chunk)
            .await
            .map_err(|e| io_error("writing an upload", &self.tmp, e))?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Flushes the file to disk and links it under its stored name. Refuses
    /// (AlreadyExists) rather than replaces an existing file: another
    /// image's file must never be overwritten.
    pub async fn persist(mut self, version: &str) -> Result<StoredFile, PersistError> {
        let file = self
            .file
            .take()
            .ok_or(PersistError::Other(AppError::Internal))?;
        file.sync_all()
            .await
            .map_err(|e| PersistError::Other(io_error("syncing an upload", &self.tmp, e)))?;
        drop(file);
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let base = stored_file_name(version, &sha256);
        // Versions that differ only in characters made safe (`qa/sub`,
        // `qa:sub`) share a base name with the same content: the next free
        // numbered name is theirs. The same version again takes one too,
        // and is then refused by the database's unique version, which
        // removes it.
        for n in 1..=MAX_NAME_ATTEMPTS {
            let stored_file = numbered(&base, n);
            let path = self.dir.join(&stored_file);
            // hard_link fails if the target exists, where rename would replace it.
            match tokio::fs::hard_link(&self.tmp, &path).await {
                // The temporary name goes in Drop.
                Ok(()) => {
                    return Ok(StoredFile {
                        stored_file,
                        path,
                        sha256,
                        size: self.size,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(PersistError::Other(io_error("storing an upload", &path, e))),
            }
        }
        Err(PersistError::Exists(base))
    }
}

impl Drop for IncomingFile {
    fn drop(&mut self) {
        // Synchronous, but one unlink of a file in a local directory.
        if let Err(e) = std::fs::remove_file(&self.tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.tmp.display(), error = %e, "cannot remove an upload's temporary file");
            }
        }
    }
}

#[derive(Debug)]
pub enum PersistError {
    /// Every name this image could be stored under is taken.
    Exists(String),
    Other(AppError),
}

/// Removes a stored image file; a file already gone is fine.
pub async fn remove_file(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot remove a firmware file")
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> AppError {
    tracing::error!(path = %path.display(), error = %e, "{what} failed");
    AppError::Internal
}

/// What a download answers, from its `Range` header and the file's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole file (no range, one we ignore, or several ranges).
    Full,
    /// `206`: bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// `416`: the range starts at or after the end of the file.
    Unsatisfiable,
}

/// Interprets a `Range` header (RFC 9110, section 14) for a file of `size`
/// bytes. One range is served as such: `bytes=a-b` (b clamped to the last
/// byte), `bytes=a-`, `bytes=-n` (the last n bytes). Several ranges get the
/// whole file, which the RFC allows. A header that does not parse, or
/// another unit, is ignored (the whole file), as the RFC asks.
pub fn parse_range(header: &str, size: u64) -> RangeAnswer {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.is_empty(), last.is_empty()) {
        // bytes=-n: a suffix.
        (true, false) => match number(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            None => RangeAnswer::Full,
        },
        // bytes=a-
        (false, true) => match number(first) {
            Some(start) if start >= size => RangeAnswer::Unsatisfiable,
            Some(start) => RangeAnswer::Partial {
                start,
                end: size - 1,
            },
            None => RangeAnswer::Full,
        },
        // bytes=a-b
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start > end => RangeAnswer::Full,
            (Some(start), Some(_)) if start >= size => RangeAnswer::Unsatisfiable,
            (Some(start), Some(end)) => RangeAnswer::Partial {
                start,
                end: end.min(size - 1),
            },
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

/// Whether an `If-None-Match` header matches this entity tag (quoted):
/// `*`, or any listed tag, weak or strong (the weak comparison the RFC
/// prescribes for this header).
pub fn if_none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coap_package_uri_is_below_fw() {
        assert_eq!(
            coap_package_uri("coap://fx.example:5683/", "2.0-ab.bin"),
            "coap://fx.example:5683/fw/2.0-ab.bin"
        );
    }

    #[test]
    fn package_uri_is_absolute_with_one_slash() {
        assert_eq!(
            package_uri("http://fx.example:3000", "1.2.3-abc.bin"),
            "http://fx.example:3000/binaries/1.2.3-abc.bin"
        );
        assert_eq!(
            package_uri("https://fx.example/base/", "/x.bin"),
            "https://fx.example/base/binaries/x.bin"
        );
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAnswer::*;
        let p = |start, end| Partial { start, end };
        assert_eq!(parse_range("bytes=0-9", 100), p(0, 9));
        assert_eq!(parse_range("bytes=10-", 100), p(10, 99));
        assert_eq!(parse_range("bytes=-5", 100), p(95, 99));
        assert_eq!(parse_range("bytes=-500", 100), p(0, 99));
        assert_eq!(parse_range("bytes=90-200", 100), p(90, 99));
        assert_eq!(parse_range("bytes=99-99", 100), p(99, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
        // Ignored: several ranges, other units, nonsense, reversed bounds.
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=a-b", 100), Full);
        assert_eq!(parse_range("bytes=-", 100), Full);
        assert_eq!(parse_range("bytes=5-1", 100), Full);
        assert_eq!(parse_range("bytes=+1-2", 100), Full);
        assert_eq!(parse_range("bytes=99999999999999999999-", 100), Full);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = "\"abc\"";
        assert!(if_none_match("\"abc\"", etag));
        assert!(if_none_match("\"x\", W/\"abc\"", etag));
        assert!(if_none_match("*", etag));
        assert!(!if_none_match("\"abd\"", etag));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_file_name(Some("fw.bin")), "fw.bin");
        assert_eq!(
            sanitize_file_name(Some("C:\\build\\out\\fw v2.bin")),
            "fw_v2.bin"
        );
        assert_eq!(sanitize_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(sanitize_file_name(Some("..")), "firmware.bin");
        assert_eq!(sanitize_file_name(Some("a\"b\r\n.bin")), "a_b__.bin");
        assert_eq!(sanitize_file_name(None), "firmware.bin");
        assert_eq!(
            stored_file_name("1.2.3 beta/ü", &"ab".repeat(32)),
            "1.2.3_beta__-abababababababab.bin"
        );
        assert_eq!(
            stored_file_name("..", &"0".repeat(64)),
            "__-0000000000000000.bin"
        );
        assert!(is_plausible_stored_name("1.2.3-abababababababab.bin"));
        assert!(!is_plausible_stored_name("../x.bin"));
        assert!(!is_plausible_stored_name(".upload-1.part"));
        assert!(!is_plausible_stored_name("a/b"));
    }

    #[test]
    fn versions_are_trimmed_and_checked() {
        assert_eq!(validate_version(" 1.2.3 ").unwrap(), "1.2.3");
        for bad in ["", "   ", "1.2\n3", &"x".repeat(101)] {
            let e = validate_version(bad).unwrap_err();
            assert_eq!(e.details()[0].path, "version");
        }
        assert!(validate_version(&"x".repeat(100)).is_ok());
    }
}
