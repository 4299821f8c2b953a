//! The Firmware Update object's state machine (Core TS 1.1.1 Appendix
//! E.6, object 5): State 5/0/3 and Update Result 5/0/5 as the server sees
//! them. Pure: the device runs the download and the timers.

use std::net::SocketAddr;

use super::objects::OpError;

/// 5/0/3 State.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwState {
    Idle = 0,
    Downloading = 1,
    Downloaded = 2,
    Updating = 3,
}

/// 5/0/5 Update Result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwResult {
    Initial = 0,
    Success = 1,
    NotEnoughFlash = 2,
    OutOfRam = 3,
    ConnectionLost = 4,
    IntegrityFailure = 5,
    UnsupportedPackage = 6,
    InvalidUri = 7,
    UpdateFailed = 8,
    UnsupportedProtocol = 9,
}

/// Where a pull download comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `coap://host[:port]/path?query`; the host is resolved by the caller.
    Coap {
        host: String,
        port: u16,
        path: Vec<String>,
        query: Vec<String>,
    },
    Http(String),
}

/// What the device must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Start a pull download.
    Download(Source),
    /// Abandon a running download.
    Cancel,
}

/// Largest image a simulated device accepts (its "flash").
pub const MAX_IMAGE: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Firmware {
    pub state: FwState,
    pub result: FwResult,
    pub uri: String,
    pub pkg_name: String,
    pub pkg_version: String,
    pub http_supported: bool,
}

impl Firmware {
    pub fn new(http_supported: bool) -> Firmware {
        Firmware {
            state: FwState::Idle,
            result: FwResult::Initial,
            uri: String::new(),
            pkg_name: String::new(),
            pkg_version: String::new(),
            http_supported,
        }
    }

    fn reset(&mut self) {
        self.state = FwState::Idle;
        self.result = FwResult::Initial;
        self.uri.clear();
        self.pkg_name.clear();
        self.pkg_version.clear();
    }

    fn fail(&mut self, r: FwResult) {
        self.state = FwState::Idle;
        self.result = r;
    }

    /// Write of 5/0/1. An empty URI cancels (any state but Updating); a
    /// URI starts a pull from Idle. A URI that does not parse sets Result
    /// 7, an unsupported scheme Result 9; the Write itself succeeds.
    pub fn write_uri(&mut self, uri: &str) -> Result<Effect, OpError> {
        if self.state == FwState::Updating {
            return Err(OpError::MethodNotAllowed);
        }
        if uri.is_empty() {
            let was_downloading = self.state == FwState::Downloading;
            self.reset();
            return Ok(if was_downloading {
                Effect::Cancel
            } else {
                Effect::None
            });
        }
        if self.state != FwState::Idle {
            return Err(OpError::MethodNotAllowed);
        }
        self.uri = uri.to_owned();
        match parse_uri(uri) {
            Ok(Source::Http(_)) if !self.http_supported => {
                self.fail(FwResult::UnsupportedProtocol);
                Ok(Effect::None)
            }
            Ok(src) => {
                self.state = FwState::Downloading;
                self.result = FwResult::Initial;
                Ok(Effect::Download(src))
            }
            Err(r) => {
                self.fail(r);
                Ok(Effect::None)
            }
        }
    }

    /// Write of 5/0/0 (push). Empty resets; an image from Idle is
    /// Downloaded at once (the transfer itself was the Write).
    pub fn write_package(&mut self, image: &[u8]) -> Result<Effect, OpError> {
        if self.state == FwState::Updating {
            return Err(OpError::MethodNotAllowed);
        }
        if image.is_empty() {
            let was_downloading = self.state == FwState::Downloading;
            self.reset();
            return Ok(if was_downloading {
                Effect::Cancel
            } else {
                Effect::None
            });
        }
        if self.state != FwState::Idle {
            return Err(OpError::MethodNotAllowed);
        }
        self.uri.clear();
        self.accept_image(image, format!("fw-{:08x}", fnv32(image)));
        Ok(Effect::None)
    }

    /// The pull download ended.
    pub fn download_finished(&mut self, outcome: Result<Vec<u8>, FwResult>) {
        if self.state != FwState::Downloading {
            return;
        }
        match outcome {
            Ok(image) => {
                let version = version_from_uri(&self.uri);
                self.accept_image(&image, version);
            }
            Err(r) => self.fail(r),
        }
    }

    fn accept_image(&mut self, image: &[u8], version: String) {
        if image.is_empty() {
            self.fail(FwResult::IntegrityFailure);
        } else if image.len() > MAX_IMAGE {
            self.fail(FwResult::NotEnoughFlash);
        } else {
            self.state = FwState::Downloaded;
            self.result = FwResult::Initial;
            self.pkg_name = "firmware".into();
            self.pkg_version = version;
        }
    }

    /// Execute of 5/0/2: only a Downloaded image can be installed.
    pub fn execute_update(&mut self) -> Result<(), OpError> {
        if self.state != FwState::Downloaded {
            return Err(OpError::MethodNotAllowed);
        }
        self.state = FwState::Updating;
        Ok(())
    }

    /// The installation finished: the new firmware version, if it did.
    pub fn update_finished(&mut self) -> Option<String> {
        if self.state != FwState::Updating {
            return None;
        }
        self.state = FwState::Idle;
        self.result = FwResult::Success;
        Some(if self.pkg_version.is_empty() {
            version_from_uri(&self.uri)
        } else {
            self.pkg_version.clone()
        })
    }
}

pub(super) fn fnv32(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(0x0100_0193)
    })
}

/// The package version a URI names: its last path segment without an
/// extension (`…/app-2.1.0.bin` → `app-2.1.0`).
pub fn version_from_uri(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            stem.to_owned()
        }
        _ => last.to_owned(),
    }
}

fn pct_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a Package URI (RFC 3986, as much as a device needs).
pub fn parse_uri(uri: &str) -> Result<Source, FwResult> {
    let (scheme, rest) = uri.split_once("://").ok_or(FwResult::InvalidUri)?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                return Err(FwResult::InvalidUri);
            }
            Ok(Source::Http(uri.to_owned()))
        }
        "coap" => {
            let rest = rest.split('#').next().unwrap_or("");
            let (authority, path_query) = match rest.find(['/', '?']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let (host, port) = split_host_port(authority)?;
            let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
            let path = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(pct_decode)
                .collect::<Option<Vec<_>>>()
                .ok_or(FwResult::InvalidUri)?;
            let query = query
                .split('&')
                .filter(|s| !s.is_empty())
                .map(pct_decode)
                .collect::<Option<Vec<_>>>()
                .ok_or(FwResult::InvalidUri)?;
            Ok(Source::Coap {
                host,
                port: port.unwrap_or(5683),
                path,
                query,
            })
        }
        "coaps" | "https" | "coap+tcp" | "coaps+tcp" => Err(FwResult::UnsupportedProtocol),
        _ => Err(FwResult::InvalidUri),
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), FwResult> {
    if authority.contains('@') {
        return Err(FwResult::InvalidUri);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(FwResult::InvalidUri)?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(FwResult::InvalidUri);
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| FwResult::InvalidUri))
        .transpose()?;
    Ok((host.to_owned(), port))
}

/// The socket address of a CoAP source whose host is an IP literal.
pub fn literal_addr(host: &str, port: u16) -> Option<SocketAddr> {
    host.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_download_then_update_succeeds() {
        let mut fw = Firmware::new(true);
        let e = fw
            .write_uri("coap://127.0.0.1:5690/fw/app-2.0.1.bin")
            .unwrap();
        assert_eq!(
            e,
            Effect::Download(Source::Coap {
                host: "127.0.0.1".into(),
                port: 5690,
                path: vec!["fw".into(), "app-2.0.1.bin".into()],
                query: vec![],
            })
        );
        assert_eq!(fw.state, FwState::Downloading);
        // No second URI while one is downloading.
        assert_eq!(fw.write_uri("coap://h/x"), Err(OpError::MethodNotAllowed));
        assert_eq!(fw.execute_update(), Err(OpError::MethodNotAllowed));
        fw.download_finished(Ok(vec![1, 2, 3]));
        assert_eq!(
            (fw.state, fw.result),
            (FwState::Downloaded, FwResult::Initial)
        );
        assert_eq!(fw.pkg_version, "app-2.0.1");
        fw.execute_update().unwrap();
        assert_eq!(fw.state, FwState::Updating);
        assert_eq!(fw.write_uri(""), Err(OpError::MethodNotAllowed));
        assert_eq!(fw.update_finished().as_deref(), Some("app-2.0.1"));
        assert_eq!((fw.state, fw.result), (FwState::Idle, FwResult::Success));
        assert_eq!(fw.update_finished(), None);
    }

    #[test]
    fn failures_set_the_result_and_return_to_idle() {
        let mut fw = Firmware::new(false);
        assert_eq!(fw.write_uri("ftp://x/y").unwrap(), Effect::None);
        assert_eq!((fw.state, fw.result), (FwState::Idle, FwResult::InvalidUri));
        fw.write_uri("coaps://x/y").unwrap();
        assert_eq!(fw.result, FwResult::UnsupportedProtocol);
        fw.write_uri("http://x/y").unwrap();
        assert_eq!(fw.result, FwResult::UnsupportedProtocol);
        fw.write_uri("coap://[::1]:99999/y").unwrap();
        assert_eq!(fw.result, FwResult::InvalidUri);

        fw.write_uri("coap://127.0.0.1/fw.bin").unwrap();
        fw.download_finished(Err(FwResult::ConnectionLost));
        assert_eq!(
            (fw.state, fw.result),
            (FwState::Idle, FwResult::ConnectionLost)
        );
        fw.write_uri("coap://127.0.0.1/fw.bin").unwrap();
        fw.download_finished(Ok(Vec::new()));
        assert_eq!(
            (fw.state, fw.result),
            (FwState::Idle, FwResult::IntegrityFailure)
        );
        // A late download result after a cancel changes nothing.
        assert!(matches!(
            fw.write_uri("coap://127.0.0.1/fw.bin"),
            Ok(Effect::Download(_))
        ));
        assert_eq!(fw.write_uri("").unwrap(), Effect::Cancel);
        fw.download_finished(Ok(vec![1]));
        assert_eq!((fw.state, fw.result), (FwState::Idle, FwResult::Initial));
    }

    #[test]
    fn push_goes_straight_to_downloaded() {
        let mut fw = Firmware::new(false);
        fw.write_package(b"image").unwrap();
        assert_eq!(fw.state, FwState::Downloaded);
        assert!(fw.pkg_version.starts_with("fw-"));
        assert_eq!(fw.write_package(b"again"), Err(OpError::MethodNotAllowed));
        assert_eq!(fw.write_package(b"").unwrap(), Effect::None);
        assert_eq!(fw.state, FwState::Idle);
    }

    #[test]
    fn uris_parse() {
        assert_eq!(version_from_uri("coap://h/a/b/v1.2.3"), "v1.2.3");
        assert_eq!(version_from_uri("http://h/fw/app-1.4.bin?x=1"), "app-1.4");
        assert_eq!(
            parse_uri("coap://[::1]/a%20b?x=1&y").unwrap(),
            Source::Coap {
                host: "::1".into(),
                port: 5683,
                path: vec!["a b".into()],
                query: vec!["x=1".into(), "y".into()],
            }
        );
        assert_eq!(parse_uri("coap:///x"), Err(FwResult::InvalidUri));
        assert_eq!(parse_uri("nonsense"), Err(FwResult::InvalidUri));
        assert!(matches!(parse_uri("HTTP://h:8080/f"), Ok(Source::Http(_))));
        assert_eq!(
            literal_addr("127.0.0.1", 5),
            Some(SocketAddr::from(([127, 0, 0, 1], 5)))
        );
        assert_eq!(literal_addr("example.com", 5), None);
    }
}
