//! Register / Update / De-register parameters (LwM2M Core TS 1.1.1 §6.2,
//! Transport TS 1.1.1 §6.2 / Table "Registration Interface").
//!
//! `POST /rd?ep=…&lt=…&lwm2m=…&b=…[&Q][&sms=…]` carries its parameters as
//! separate Uri-Query options. CoAP option values are already decoded
//! (no percent-encoding), so each option is split once at the first `=`.

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use rand::RngCore;

/// Default lifetime when `lt` is absent (Core TS: 86400 s).
pub const DEFAULT_LIFETIME_S: u32 = 86_400;
/// Smallest accepted lifetime. Zephyr raises anything below 30 s itself,
/// but 1 s is what the spec allows, so only 0 is refused (1.2's "0 means
/// infinite" is a Server-object value, not a Register parameter).
pub const MIN_LIFETIME_S: u32 = 1;
/// Largest accepted lifetime: 60 days. Longer values are almost certainly
/// misconfiguration, and a registration that never expires would outlive
/// any NAT binding. The client is told 4.00 rather than silently clamped,
/// because a Register response cannot carry a different lifetime.
pub const MAX_LIFETIME_S: u32 = 60 * 86_400;
/// Endpoint names are bounded to keep keys and log lines small.
pub const MAX_ENDPOINT_LEN: usize = 255;
/// MSISDN in E.164 has at most 15 digits; allow a '+' and some slack.
pub const MAX_SMS_LEN: usize = 32;
/// Registration ids are 10 characters: fits Zephyr's 12-byte
/// Location-Path buffer with room to spare.
pub const REGISTRATION_ID_LEN: usize = 10;
/// Upper bound on Uri-Query options considered in one request.
pub const MAX_QUERY_PARAMS: usize = 32;

/// LwM2M enabler versions this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1_0,
    V1_1,
    V1_2,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterParams {
    pub endpoint: String,
    pub lifetime_s: u32,
    pub lwm2m_version: Version,
    /// Binding letters without the 1.0 `Q` marker, e.g. "U" or "US".
    pub binding: String,
    pub queue_mode: bool,
    pub sms: Option<String>,
}

/// Update parameters: every field is optional, absent keeps the old value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateParams {
    pub lifetime_s: Option<u32>,
    pub binding: Option<String>,
    /// `Some(true)` when `Q` or a `b=…Q…` was sent; `Some(false)` when a
    /// `b` without Q was sent (1.0 semantics); `None` when neither.
    pub queue_mode: Option<bool>,
    pub sms: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("missing mandatory parameter `{0}`")]
    Missing(&'static str),
    #[error("parameter `{field}` is malformed: {reason}")]
    Malformed {
        field: &'static str,
        reason: &'static str,
    },
    #[error("parameter `{0}` given more than once")]
    Duplicate(&'static str),
    #[error("unsupported LwM2M version `{0}`")]
    UnsupportedVersion(String),
}

impl RegistrationError {
    /// CoAP code to answer with: 4.12 for a version mismatch (Transport TS
    /// Register failure "LwM2M version not supported"), 4.00 otherwise.
    pub fn response_code(&self) -> ResponseType {
        match self {
            RegistrationError::UnsupportedVersion(_) => ResponseType::PreconditionFailed,
            _ => ResponseType::BadRequest,
        }
    }

    /// Name of the offending query parameter, for diagnostics payloads.
    pub fn field(&self) -> &'static str {
        match self {
            RegistrationError::Missing(f)
            | RegistrationError::Duplicate(f)
            | RegistrationError::Malformed { field: f, .. } => f,
            RegistrationError::UnsupportedVersion(_) => "lwm2m",
        }
    }
}

/// Checks an endpoint client name.
///
/// Refused: empty, longer than [`MAX_ENDPOINT_LEN`] bytes, control
/// characters (they corrupt logs and terminals), whitespace-only, and the
/// bidi embedding/override/isolate characters that let a name render as a
/// different one in the UI.
pub fn validate_endpoint(ep: &str) -> Result<(), RegistrationError> {
    let bad = |reason| RegistrationError::Malformed {
        field: "ep",
        reason,
    };
    if ep.is_empty() {
        return Err(bad("empty"));
    }
    if ep.len() > MAX_ENDPOINT_LEN {
        return Err(bad("longer than 255 bytes"));
    }
    if ep.chars().all(char::is_whitespace) {
        return Err(bad("whitespace only"));
    }
    for c in ep.chars() {
        if c.is_control() {
            return Err(bad("contains a control character"));
        }
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            return Err(bad("contains a bidi override character"));
        }
    }
    Ok(())
}

fn parse_lifetime(v: Option<&str>) -> Result<u32, RegistrationError> {
    let bad = |reason| RegistrationError::Malformed {
        field: "lt",
        reason,
    };
    let v = v.ok_or(bad("needs a value"))?;
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a positive decimal integer"));
    }
    let n: u64 = v
        .parse()
        .map_err(|_| bad("not a positive decimal integer"))?;
    if n < u64::from(MIN_LIFETIME_S) {
        return Err(bad("must be at least 1 s"));
    }
    if n > u64::from(MAX_LIFETIME_S) {
        return Err(bad("exceeds 60 days"));
    }
    Ok(n as u32)
}

/// Splits `b` into binding letters and the 1.0 queue flag.
///
/// 1.0 allows U, UQ, S, SQ, US, UQS; 1.1 has U, T, S, N (queue mode moved
/// to `Q`); 1.2 adds M, H. All letters are accepted for every version
/// because clients mix them up, and a Q in `b` is honoured for 1.1 too.
fn parse_binding(v: Option<&str>) -> Result<(String, bool), RegistrationError> {
    let bad = |reason| RegistrationError::Malformed { field: "b", reason };
    let v = v.ok_or(bad("needs a value"))?;
    if v.is_empty() || v.len() > 8 {
        return Err(bad("empty or too long"));
    }
    let mut letters = String::new();
    let mut queue = false;
    for c in v.chars() {
        match c {
            'Q' if !queue => queue = true,
            'U' | 'T' | 'S' | 'N' | 'M' | 'H' if !letters.contains(c) => letters.push(c),
            _ => return Err(bad("unknown or repeated binding letter")),
        }
    }
    if letters.is_empty() {
        return Err(bad("no transport letter"));
    }
    Ok((letters, queue))
}

fn parse_sms(v: Option<&str>) -> Result<String, RegistrationError> {
    let bad = |reason| RegistrationError::Malformed {
        field: "sms",
        reason,
    };
    let v = v.ok_or(bad("needs a value"))?;
    let digits = v.strip_prefix('+').unwrap_or(v);
    if digits.is_empty() || v.len() > MAX_SMS_LEN || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not an MSISDN"));
    }
    Ok(v.to_owned())
}

/// Raw query parameters, one slot per known key, duplicates refused.
#[derive(Default)]
struct Query<'a> {
    ep: Option<Option<&'a str>>,
    lt: Option<Option<&'a str>>,
    lwm2m: Option<Option<&'a str>>,
    b: Option<Option<&'a str>>,
    q: Option<Option<&'a str>>,
    sms: Option<Option<&'a str>>,
}

fn split_query<'a, I>(params: I) -> Result<Query<'a>, RegistrationError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut q = Query::default();
    for (n, raw) in params.into_iter().enumerate() {
        if n >= MAX_QUERY_PARAMS {
            return Err(RegistrationError::Malformed {
                field: "query",
                reason: "too many query parameters",
            });
        }
        let (key, value) = match raw.iter().position(|&b| b == b'=') {
            Some(i) => (&raw[..i], Some(&raw[i + 1..])),
            None => (raw, None),
        };
        let (slot, name) = match key {
            b"ep" => (&mut q.ep, "ep"),
            b"lt" => (&mut q.lt, "lt"),
            b"lwm2m" => (&mut q.lwm2m, "lwm2m"),
            b"b" => (&mut q.b, "b"),
            b"Q" => (&mut q.q, "Q"),
            b"sms" => (&mut q.sms, "sms"),
            // Unknown parameters are ignored (Core TS allows extensions;
            // Leshan and Wakaama do the same).
            _ => continue,
        };
        let value = value.map(std::str::from_utf8).transpose().map_err(|_| {
            RegistrationError::Malformed {
                field: name,
                reason: "not UTF-8",
            }
        })?;
        if slot.is_some() {
            return Err(RegistrationError::Duplicate(name));
        }
        *slot = Some(value);
    }
    if let Some(Some(v)) = q.q {
        // `Q` is a flag; `Q=` is tolerated as the same thing.
        if !v.is_empty() {
            return Err(RegistrationError::Malformed {
                field: "Q",
                reason: "takes no value",
            });
        }
    }
    Ok(q)
}

/// Parses Register query parameters (raw Uri-Query option values).
pub fn parse_register_query<'a, I>(params: I) -> Result<RegisterParams, RegistrationError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let q = split_query(params)?;
    // Version first: a client of an unknown major version may put its
    // other parameters differently, and 4.12 tells it to retry lower.
    let lwm2m_version = match q.lwm2m {
        None => Version::V1_0,
        Some(v) => {
            let v = v.unwrap_or("");
            Version::parse(v).ok_or_else(|| {
                RegistrationError::UnsupportedVersion(v.chars().take(16).collect())
            })?
        }
    };
    let endpoint = match q.ep {
        None => return Err(RegistrationError::Missing("ep")),
        Some(None) => {
            return Err(RegistrationError::Malformed {
                field: "ep",
                reason: "needs a value",
            })
        }
        Some(Some(ep)) => {
            validate_endpoint(ep)?;
            ep.to_owned()
        }
    };
    let lifetime_s = match q.lt {
        None => DEFAULT_LIFETIME_S,
        Some(v) => parse_lifetime(v)?,
    };
    let (binding, b_queue) = match q.b {
        None => ("U".to_owned(), false),
        Some(v) => parse_binding(v)?,
    };
    let sms = q.sms.map(parse_sms).transpose()?;
    Ok(RegisterParams {
        endpoint,
        lifetime_s,
        lwm2m_version,
        binding,
        queue_mode: b_queue || q.q.is_some(),
        sms,
    })
}

/// Parses Update query parameters. `ep` and `lwm2m` may not change in an
/// Update and are ignored like unknown parameters.
pub fn parse_update_query<'a, I>(params: I) -> Result<UpdateParams, RegistrationError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let q = split_query(params)?;
    let lifetime_s = q.lt.map(parse_lifetime).transpose()?;
    let (binding, b_queue) = match q.b {
        None => (None, None),
        Some(v) => {
            let (b, queue) = parse_binding(v)?;
            (Some(b), Some(queue))
        }
    };
    let queue_mode = if q.q.is_some() { Some(true) } else { b_queue };
    let sms = q.sms.map(parse_sms).transpose()?;
    Ok(UpdateParams {
        lifetime_s,
        binding,
        queue_mode,
        sms,
    })
}

/// Uri-Query option values of a request, for the parse functions above.
pub fn query_params(packet: &Packet) -> impl Iterator<Item = &[u8]> {
    packet
        .get_option(CoapOption::UriQuery)
        .into_iter()
        .flat_map(|l| l.iter().map(Vec::as_slice))
}

/// What a request to the registration interface addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdRequest {
    /// `POST /rd`
    Register,
    /// `POST /rd/<id>`
    Update(String),
    /// `DELETE /rd/<id>`
    Deregister(String),
}

/// Maps a request to a registration-interface operation; `None` when it is
/// not one (another path, or a method the interface does not define).
pub fn classify_rd_request(packet: &Packet) -> Option<RdRequest> {
    let path: Vec<&[u8]> = packet
        .get_option(CoapOption::UriPath)
        .map(|l| l.iter().map(Vec::as_slice).collect())
        .unwrap_or_default();
    match (packet.header.code, path.as_slice()) {
        (MessageClass::Request(RequestType::Post), [b"rd"]) => Some(RdRequest::Register),
        (MessageClass::Request(RequestType::Post), [b"rd", id]) => {
            registration_id_str(id).map(RdRequest::Update)
        }
        (MessageClass::Request(RequestType::Delete), [b"rd", id]) => {
            registration_id_str(id).map(RdRequest::Deregister)
        }
        _ => None,
    }
}

fn registration_id_str(id: &[u8]) -> Option<String> {
    // Anything that could not have been issued by `new_registration_id` is
    // still returned (as a 4.04 candidate) if it is short printable ASCII.
    if id.is_empty() || id.len() > 64 || !id.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    std::str::from_utf8(id).ok().map(str::to_owned)
}

const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A fresh registration id: 10 base32 characters (50 bits) from the given
/// RNG. Collisions must still be checked against the live registrations.
pub fn new_registration_id<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; REGISTRATION_ID_LEN];
    rng.fill_bytes(&mut bytes);
    bytes
        .iter()
        // 32 divides 256, so masking keeps the distribution uniform.
        .map(|b| ID_ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// Builds the `2.01 Created` piggybacked answer to a Register, with the
/// two Location-Path options `rd` and `<id>` that Zephyr requires.
pub fn register_created(request: &Packet, registration_id: &str) -> Packet {
    let mut p = super::coap::message::response_for(request, ResponseType::Created);
    p.add_option(CoapOption::LocationPath, b"rd".to_vec());
    p.add_option(
        CoapOption::LocationPath,
        registration_id.as_bytes().to_vec(),
    );
    p
}

/// Whether a Register arrived as CON (the normal case); a NON Register is
/// answered NON by `response_for` but still processed.
pub fn is_confirmable(request: &Packet) -> bool {
    request.header.get_type() == MessageType::Confirmable
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    fn reg(q: &[&str]) -> Result<RegisterParams, RegistrationError> {
        parse_register_query(q.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn defaults() {
        let p = reg(&["ep=dev1"]).unwrap();
        assert_eq!(
            p,
            RegisterParams {
                endpoint: "dev1".into(),
                lifetime_s: 86_400,
                lwm2m_version: Version::V1_0,
                binding: "U".into(),
                queue_mode: false,
                sms: None
            }
        );
    }

    #[test]
    fn zephyr_1_1_queue_mode() {
        let p = reg(&["ep=flownexus-1", "lt=86400", "lwm2m=1.1", "b=U", "Q"]).unwrap();
        assert_eq!(p.lwm2m_version, Version::V1_1);
        assert!(p.queue_mode);
        assert_eq!(p.binding, "U");
    }

    #[test]
    fn v1_0_queue_mode_via_binding() {
        let p = reg(&["ep=a", "b=UQ", "lwm2m=1.0", "sms=+4912345"]).unwrap();
        assert!(p.queue_mode);
        assert_eq!(p.binding, "U");
        assert_eq!(p.sms.as_deref(), Some("+4912345"));
        let p = reg(&["ep=a", "b=UQS"]).unwrap();
        assert!(p.queue_mode);
        assert_eq!(p.binding, "US");
    }

    #[test]
    fn unknown_params_ignored_and_value_with_equals() {
        let p = reg(&["foo=bar", "ep=urn:imei:1=2", "x", "lt=60"]).unwrap();
        assert_eq!(p.endpoint, "urn:imei:1=2");
        assert_eq!(p.lifetime_s, 60);
    }

    #[test]
    fn errors_and_codes() {
        let cases: &[(&[&str], &str, ResponseType)] = &[
            (&["lt=60"], "ep", ResponseType::BadRequest),
            (&["ep"], "ep", ResponseType::BadRequest),
            (&["ep="], "ep", ResponseType::BadRequest),
            (&["ep=a", "lt=0"], "lt", ResponseType::BadRequest),
            (&["ep=a", "lt=-5"], "lt", ResponseType::BadRequest),
            (&["ep=a", "lt=1.5"], "lt", ResponseType::BadRequest),
            (&["ep=a", "lt="], "lt", ResponseType::BadRequest),
            (&["ep=a", "lt=99999999999"], "lt", ResponseType::BadRequest),
            (&["ep=a", "lt=5184001"], "lt", ResponseType::BadRequest),
            (&["ep=a", "b=X"], "b", ResponseType::BadRequest),
            (&["ep=a", "b=UU"], "b", ResponseType::BadRequest),
            (&["ep=a", "b=Q"], "b", ResponseType::BadRequest),
            (&["ep=a", "sms=abc"], "sms", ResponseType::BadRequest),
            (&["ep=a", "Q=1"], "Q", ResponseType::BadRequest),
            (&["ep=a", "ep=b"], "ep", ResponseType::BadRequest),
            (
                &["ep=a", "lwm2m=2.0"],
                "lwm2m",
                ResponseType::PreconditionFailed,
            ),
            (
                &["ep=a", "lwm2m=1.3"],
                "lwm2m",
                ResponseType::PreconditionFailed,
            ),
            (
                &["ep=a", "lwm2m=garbage"],
                "lwm2m",
                ResponseType::PreconditionFailed,
            ),
            (
                &["ep=a", "lwm2m"],
                "lwm2m",
                ResponseType::PreconditionFailed,
            ),
        ];
        for (q, field, code) in cases {
            let e = reg(q).unwrap_err();
            assert_eq!(e.field(), *field, "{q:?}: {e}");
            assert_eq!(e.response_code(), *code, "{q:?}");
        }
        assert_eq!(
            reg(&["ep=a", "lt=5184000"]).unwrap().lifetime_s,
            MAX_LIFETIME_S
        );
        assert_eq!(
            reg(&["ep=a", "lwm2m=1.2"]).unwrap().lwm2m_version,
            Version::V1_2
        );
        assert!(reg(&["ep=a", "Q="]).unwrap().queue_mode);
    }

    #[test]
    fn endpoint_rules() {
        assert!(validate_endpoint("urn:dev:mac:0024befffe804ff1").is_ok());
        assert!(validate_endpoint("Grüße-设备").is_ok());
        assert!(validate_endpoint(&"a".repeat(255)).is_ok());
        assert!(validate_endpoint(&"a".repeat(256)).is_err());
        assert!(validate_endpoint("").is_err());
        assert!(validate_endpoint("   ").is_err());
        assert!(validate_endpoint("a\nb").is_err());
        assert!(validate_endpoint("a\u{7f}").is_err());
        assert!(validate_endpoint("a\u{85}").is_err());
        assert!(validate_endpoint("abc\u{202E}gpj.exe").is_err());
        assert!(validate_endpoint("x\u{2066}y").is_err());
        // Invalid UTF-8 is refused before validation.
        let e = parse_register_query([&b"ep=\xff\xfe"[..]]).unwrap_err();
        assert_eq!(e.field(), "ep");
    }

    #[test]
    fn update_params() {
        let u = |q: &[&str]| parse_update_query(q.iter().map(|s| s.as_bytes()));
        assert_eq!(u(&[]).unwrap(), UpdateParams::default());
        assert_eq!(
            u(&["lt=300", "b=UQ"]).unwrap(),
            UpdateParams {
                lifetime_s: Some(300),
                binding: Some("U".into()),
                queue_mode: Some(true),
                sms: None
            }
        );
        assert_eq!(u(&["Q"]).unwrap().queue_mode, Some(true));
        assert_eq!(u(&["b=U"]).unwrap().queue_mode, Some(false));
        assert_eq!(u(&["ep=x", "lwm2m=9.9"]).unwrap(), UpdateParams::default());
        assert_eq!(u(&["lt=0"]).unwrap_err().field(), "lt");
    }

    #[test]
    fn registration_ids() {
        let mut rng = StepRng::new(0x0123_4567_89ab_cdef, 0x1111_1111_1111_1111);
        let a = new_registration_id(&mut rng);
        let b = new_registration_id(&mut rng);
        assert_eq!(a.len(), REGISTRATION_ID_LEN);
        assert!(a.len() <= 12);
        assert!(a.bytes().all(|c| ID_ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn rd_paths_and_created_response() {
        let mut req = Packet::new();
        req.header.set_type(MessageType::Confirmable);
        req.header.code = MessageClass::Request(RequestType::Post);
        req.header.message_id = 0x1234;
        req.set_token(vec![1, 2]);
        req.add_option(CoapOption::UriPath, b"rd".to_vec());
        for q in ["ep=dev1", "lt=60", "lwm2m=1.1", "b=U"] {
            req.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        assert_eq!(classify_rd_request(&req), Some(RdRequest::Register));
        let params = parse_register_query(query_params(&req)).unwrap();
        assert_eq!(params.endpoint, "dev1");
        assert!(is_confirmable(&req));

        let resp = register_created(&req, "abcdefghij");
        // 0x62 = ver 1, ACK, TKL 2; 0x41 = 2.01; MID; token; Location-Path
        // (delta 8, len 2) "rd"; (delta 0, len 10) id.
        let mut want = vec![0x62, 0x41, 0x12, 0x34, 1, 2, 0x82, b'r', b'd', 0x0a];
        want.extend_from_slice(b"abcdefghij");
        assert_eq!(resp.to_bytes().unwrap(), want);

        req.clear_all_options();
        req.add_option(CoapOption::UriPath, b"rd".to_vec());
        req.add_option(CoapOption::UriPath, b"abc".to_vec());
        assert_eq!(
            classify_rd_request(&req),
            Some(RdRequest::Update("abc".into()))
        );
        req.header.code = MessageClass::Request(RequestType::Delete);
        assert_eq!(
            classify_rd_request(&req),
            Some(RdRequest::Deregister("abc".into()))
        );
        req.header.code = MessageClass::Request(RequestType::Get);
        assert_eq!(classify_rd_request(&req), None);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(params in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40)) {
                let _ = parse_register_query(params.iter().map(Vec::as_slice));
                let _ = parse_update_query(params.iter().map(Vec::as_slice));
            }

            #[test]
            fn control_char_endpoint_never_accepted(
                prefix in "[a-z]{0,10}",
                ctl in prop_oneof![0u32..0x20, 0x7fu32..0xa0].prop_map(|c| char::from_u32(c).unwrap()),
                suffix in "[a-z]{0,10}",
            ) {
                let ep = format!("ep={prefix}{ctl}{suffix}");
                prop_assert!(parse_register_query([ep.as_bytes()]).is_err());
            }

            #[test]
            fn accepted_endpoints_are_valid(ep in any::<String>()) {
                let q = format!("ep={ep}");
                if let Ok(p) = parse_register_query([q.as_bytes()]) {
                    prop_assert!(!p.endpoint.chars().any(char::is_control));
                    prop_assert!(p.endpoint.len() <= MAX_ENDPOINT_LEN);
                    prop_assert!(!p.endpoint.trim().is_empty());
                }
            }
        }
    }
}
