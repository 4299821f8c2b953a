//! CoRE link format (RFC 6690, Content-Format 40) as used by the LwM2M
//! Register and Update payloads.
//!
//! The payload lists the client's objects and object instances, e.g.
//! `</>;ct=112,</1/0>,</3/0>,</3303/0>;ver=1.1`. An optional root link
//! (`</>` or an alternate path such as `</lwm2m>;rt="oma.lwm2m"`) carries the
//! supported content formats in `ct` and, when it is not `/`, the path prefix
//! every request to that client must use.
//!
//! The parser is hand-written rather than taken from `coap-lite` so that
//! errors can name the byte position and so that input size and link count
//! are bounded before any allocation grows with the input.

use std::fmt::Write as _;

/// Upper bound on the number of links accepted in one payload. A client
/// with more objects than this is implausible; the bound keeps a hostile
/// payload from costing more than a few kilobytes of state.
pub const MAX_LINKS: usize = 1024;
/// Upper bound on the payload size (after Block1 reassembly).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Upper bound on one attribute value (quoted or not).
pub const MAX_ATTR_VALUE: usize = 256;
/// Upper bound on the number of content formats in the root `ct` attribute.
pub const MAX_CONTENT_FORMATS: usize = 32;

/// Object ID of the Security object; never exposed to the server.
pub const SECURITY_OBJECT: u16 = 0;
/// Object ID of the OSCORE object; also a bootstrap-only credential object.
pub const OSCORE_OBJECT: u16 = 21;

/// `rt` value marking the LwM2M root / alternate path link.
pub const RT_LWM2M: &str = "oma.lwm2m";

/// One object or object instance announced by the client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectLink {
    pub object_id: u16,
    pub instance_id: Option<u16>,
    /// The `ver` attribute (object version, e.g. "1.1"); absent means the
    /// default version of the object for the client's LwM2M version.
    pub version: Option<String>,
}

/// The root link (`</>` or the alternate path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootLink {
    /// Path segments of the alternate path; empty for `</>`.
    pub segments: Vec<String>,
    /// Whether `rt="oma.lwm2m"` was present.
    pub rt_lwm2m: bool,
    /// Content formats from the `ct` attribute, in the order given.
    pub content_formats: Vec<u16>,
}

impl RootLink {
    /// The alternate path as `/seg1/seg2`, or `None` when the root is `/`.
    pub fn alternate_path(&self) -> Option<String> {
        if self.segments.is_empty() {
            None
        } else {
            Some(self.segments.iter().fold(String::new(), |mut s, seg| {
                s.push('/');
                s.push_str(seg);
                s
            }))
        }
    }
}

/// Parsed Register/Update payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterLinks {
    pub root: Option<RootLink>,
    pub objects: Vec<ObjectLink>,
}

impl RegisterLinks {
    /// Alternate path to prefix to every request to this client.
    pub fn alternate_path(&self) -> Option<String> {
        self.root.as_ref().and_then(RootLink::alternate_path)
    }

    /// Content formats announced in the root link (empty if none).
    pub fn content_formats(&self) -> &[u16] {
        self.root
            .as_ref()
            .map(|r| r.content_formats.as_slice())
            .unwrap_or(&[])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkFormatError {
    #[error("link-format payload of {len} bytes exceeds {max}")]
    TooLarge { len: usize, max: usize },
    #[error("more than {max} links")]
    TooManyLinks { max: usize },
    #[error("payload is not UTF-8 (byte {position})")]
    NotUtf8 { position: usize },
    #[error("syntax error at byte {position}: expected {expected}")]
    Syntax {
        position: usize,
        expected: &'static str,
    },
    #[error("invalid LwM2M path at byte {position}: {reason}")]
    BadPath {
        position: usize,
        reason: &'static str,
    },
    #[error("invalid value of attribute `{name}` at byte {position}")]
    BadAttribute { position: usize, name: String },
}

/// One raw link: target and its attributes, with positions for errors.
struct RawLink<'a> {
    target: &'a str,
    target_pos: usize,
    attrs: Vec<RawAttr<'a>>,
}

struct RawAttr<'a> {
    name: &'a str,
    /// Unquoted (and unescaped) value; `None` for a valueless attribute.
    value: Option<String>,
    pos: usize,
}

struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    // RFC 6690 has no whitespace between links, but several clients emit
    // newlines or spaces after commas; tolerating them costs nothing.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, expected: &'static str) -> Result<(), LinkFormatError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(LinkFormatError::Syntax {
                position: self.i,
                expected,
            })
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.i;
        while let Some(c) = self.peek() {
            // RFC 5987 / 8288 token characters; '*' allowed for `title*`.
            if c.is_ascii_alphanumeric() || b"!#$&+-.^_`|~*".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.i]
    }

    fn quoted(&mut self) -> Result<String, LinkFormatError> {
        let start = self.i;
        self.expect(b'"', "'\"'")?;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(LinkFormatError::Syntax {
                        position: start,
                        expected: "closing '\"'",
                    })
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(ch) = self.s[self.i..].chars().next() else {
                        return Err(LinkFormatError::Syntax {
                            position: self.i,
                            expected: "escaped character",
                        });
                    };
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
                Some(_) => {
                    let ch = self.s[self.i..].chars().next().unwrap_or('\0');
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
            if out.len() > MAX_ATTR_VALUE {
                return Err(LinkFormatError::Syntax {
                    position: start,
                    expected: "shorter quoted value",
                });
            }
        }
    }

    fn link(&mut self) -> Result<RawLink<'a>, LinkFormatError> {
        self.expect(b'<', "'<'")?;
        let target_pos = self.i;
        let end = self.s[self.i..].find('>').ok_or(LinkFormatError::Syntax {
            position: target_pos,
            expected: "'>'",
        })?;
        let target = &self.s[self.i..self.i + end];
        if target.contains(['<', ',', '"']) {
            return Err(LinkFormatError::Syntax {
                position: target_pos,
                expected: "URI reference",
            });
        }
        self.i += end + 1;
        let mut attrs = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() != Some(b';') {
                break;
            }
            self.i += 1;
            self.skip_ws();
            let pos = self.i;
            let name = self.token();
            if name.is_empty() {
                return Err(LinkFormatError::Syntax {
                    position: pos,
                    expected: "attribute name",
                });
            }
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                if self.peek() == Some(b'"') {
                    Some(self.quoted()?)
                } else {
                    let vpos = self.i;
                    let v = self.ptoken();
                    if v.is_empty() {
                        return Err(LinkFormatError::Syntax {
                            position: vpos,
                            expected: "attribute value",
                        });
                    }
                    if v.len() > MAX_ATTR_VALUE {
                        return Err(LinkFormatError::Syntax {
                            position: vpos,
                            expected: "shorter attribute value",
                        });
                    }
                    Some(v.to_owned())
                }
            } else {
                None
            };
            // Attributes beyond what any LwM2M link carries are only
            // stored up to a small bound; unknown ones are ignored later.
            if attrs.len() < 16 {
                attrs.push(RawAttr { name, value, pos });
            }
        }
        Ok(RawLink {
            target,
            target_pos,
            attrs,
        })
    }

    /// Unquoted attribute value: RFC 6690 `ptoken` (plus ':' and '/').
    fn ptoken(&mut self) -> &'a str {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'()*+-./:<=>?@[]^_`{|}~".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.i]
    }
}

fn parse_links(payload: &[u8]) -> Result<Vec<RawLink<'_>>, LinkFormatError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(LinkFormatError::TooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let s = std::str::from_utf8(payload).map_err(|e| LinkFormatError::NotUtf8 {
        position: e.valid_up_to(),
    })?;
    let mut c = Cursor {
        s,
        b: s.as_bytes(),
        i: 0,
    };
    let mut links = Vec::new();
    c.skip_ws();
    if c.peek().is_none() {
        return Ok(links);
    }
    loop {
        c.skip_ws();
        if links.len() >= MAX_LINKS {
            return Err(LinkFormatError::TooManyLinks { max: MAX_LINKS });
        }
        links.push(c.link()?);
        c.skip_ws();
        match c.peek() {
            None => return Ok(links),
            Some(b',') => c.i += 1,
            Some(_) => {
                return Err(LinkFormatError::Syntax {
                    position: c.i,
                    expected: "',' or end of payload",
                })
            }
        }
    }
}

fn path_segments(target: &str, pos: usize) -> Result<Vec<&str>, LinkFormatError> {
    let rest = target.strip_prefix('/').ok_or(LinkFormatError::BadPath {
        position: pos,
        reason: "path must start with '/'",
    })?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    // A trailing slash (`</lwm2m/>`) is tolerated; empty inner segments are not.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(LinkFormatError::BadPath {
            position: pos,
            reason: "empty path segment",
        });
    }
    Ok(segs)
}

fn parse_id(seg: &str, pos: usize) -> Result<u16, LinkFormatError> {
    // 65535 is reserved (MAX_ID) in the LwM2M object model.
    if seg.is_empty() || seg.len() > 5 || !seg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkFormatError::BadPath {
            position: pos,
            reason: "object and instance IDs must be decimal numbers",
        });
    }
    match seg.parse::<u32>() {
        Ok(v) if v < 65535 => Ok(v as u16),
        _ => Err(LinkFormatError::BadPath {
            position: pos,
            reason: "ID out of range 0..=65534",
        }),
    }
}

fn valid_version(v: &str) -> bool {
    let mut parts = v.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn parse_ct(value: &str, pos: usize) -> Result<Vec<u16>, LinkFormatError> {
    let bad = || LinkFormatError::BadAttribute {
        position: pos,
        name: "ct".into(),
    };
    let mut out = Vec::new();
    for part in value.split(' ').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_CONTENT_FORMATS || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        out.push(part.parse::<u16>().map_err(|_| bad())?);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn is_root_candidate(link: &RawLink<'_>) -> bool {
    link.attrs
        .iter()
        .any(|a| a.name == "rt" && a.value.as_deref() == Some(RT_LWM2M))
}

/// Parses a Register or Update payload.
///
/// Security (`/0`) and OSCORE (`/21`) links are dropped: they are never
/// addressable by a server, and listing them is a client bug rather than
/// a reason to refuse the registration.
pub fn parse_register_payload(payload: &[u8]) -> Result<RegisterLinks, LinkFormatError> {
    let links = parse_links(payload)?;
    let mut out = RegisterLinks::default();

    // The alternate path must be known before the object links that use it;
    // clients put it first, but nothing in RFC 6690 orders links, so look
    // ahead for it.
    let mut alt: Vec<&str> = Vec::new();
    for l in &links {
        if is_root_candidate(l) {
            alt = path_segments(l.target, l.target_pos)?;
            break;
        }
    }

    for l in &links {
        let segs = path_segments(l.target, l.target_pos)?;
        let is_root = segs.is_empty() || is_root_candidate(l) || (!alt.is_empty() && segs == alt);
        if is_root {
            if out.root.is_some() {
                return Err(LinkFormatError::BadPath {
                    position: l.target_pos,
                    reason: "more than one root link",
                });
            }
            let mut root = RootLink {
                segments: segs.iter().map(|s| (*s).to_owned()).collect(),
                ..RootLink::default()
            };
            for a in &l.attrs {
                match (a.name, &a.value) {
                    ("rt", Some(v)) if v == RT_LWM2M => root.rt_lwm2m = true,
                    ("ct", Some(v)) => root.content_formats = parse_ct(v, a.pos)?,
                    ("ct", None) => {
                        return Err(LinkFormatError::BadAttribute {
                            position: a.pos,
                            name: "ct".into(),
                        })
                    }
                    _ => {}
                }
            }
            out.root = Some(root);
            continue;
        }
        let ids = if alt.is_empty() {
            &segs[..]
        } else if segs.len() > alt.len() && segs[..alt.len()] == alt[..] {
            &segs[alt.len()..]
        } else {
            return Err(LinkFormatError::BadPath {
                position: l.target_pos,
                reason: "link outside the alternate path",
            });
        };
        if ids.len() > 2 {
            return Err(LinkFormatError::BadPath {
                position: l.target_pos,
                reason: "only objects and object instances may be listed",
            });
        }
        let object_id = parse_id(ids[0], l.target_pos)?;
        let instance_id = ids.get(1).map(|s| parse_id(s, l.target_pos)).transpose()?;
        let mut version = None;
        for a in &l.attrs {
            if a.name == "ver" {
                match &a.value {
                    Some(v) if valid_version(v) => version = Some(v.clone()),
                    _ => {
                        return Err(LinkFormatError::BadAttribute {
                            position: a.pos,
                            name: "ver".into(),
                        })
                    }
                }
            }
        }
        if object_id == SECURITY_OBJECT || object_id == OSCORE_OBJECT {
            continue;
        }
        out.objects.push(ObjectLink {
            object_id,
            instance_id,
            version,
        });
    }
    Ok(out)
}

/// Writes a root link (if any) and the object list in the format clients
/// send, e.g. `</>;ct="60 112",</1/0>,</3303/0>;ver=1.1`. Object links are
/// prefixed with the alternate path, as the Register payload does.
pub fn to_link_format(root: Option<&RootLink>, objects: &[ObjectLink]) -> String {
    let mut s = String::new();
    let prefix = root.and_then(RootLink::alternate_path).unwrap_or_default();
    if let Some(r) = root {
        s.push('<');
        s.push_str(if prefix.is_empty() { "/" } else { &prefix });
        s.push('>');
        if r.rt_lwm2m {
            s.push_str(";rt=\"oma.lwm2m\"");
        }
        match r.content_formats.as_slice() {
            [] => {}
            [one] => {
                let _ = write!(s, ";ct={one}");
            }
            many => {
                s.push_str(";ct=\"");
                for (i, cf) in many.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{cf}");
                }
                s.push('"');
            }
        }
    }
    for o in objects {
        if !s.is_empty() {
            s.push(',');
        }
        let _ = write!(s, "<{prefix}/{}", o.object_id);
        if let Some(i) = o.instance_id {
            let _ = write!(s, "/{i}");
        }
        s.push('>');
        if let Some(v) = &o.version {
            let _ = write!(s, ";ver={v}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(o: u16, i: Option<u16>, v: Option<&str>) -> ObjectLink {
        ObjectLink {
            object_id: o,
            instance_id: i,
            version: v.map(str::to_owned),
        }
    }

    #[test]
    fn zephyr_payload() {
        let p = b"</>;ct=112,</1/0>,</3/0>,</5/0>,</3303/0>;ver=1.1";
        let r = parse_register_payload(p).unwrap();
        let root = r.root.as_ref().unwrap();
        assert!(!root.rt_lwm2m);
        assert_eq!(root.content_formats, vec![112]);
        assert_eq!(r.alternate_path(), None);
        assert_eq!(
            r.objects,
            vec![
                obj(1, Some(0), None),
                obj(3, Some(0), None),
                obj(5, Some(0), None),
                obj(3303, Some(0), Some("1.1")),
            ]
        );
        // Writing it back gives the same bytes.
        assert_eq!(
            to_link_format(r.root.as_ref(), &r.objects).as_bytes(),
            &p[..]
        );
    }

    #[test]
    fn leshan_style_root_with_rt_and_ct() {
        let p = br#"</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</6/0>,</3303/0>"#;
        let r = parse_register_payload(p).unwrap();
        let root = r.root.unwrap();
        assert!(root.rt_lwm2m);
        assert_eq!(root.content_formats, vec![11543]);
        assert!(root.segments.is_empty());
        assert_eq!(r.objects.len(), 4);
    }

    #[test]
    fn alternate_path_prefixes_objects() {
        let p = br#"</lwm2m>;rt="oma.lwm2m";ct="60 110 112 11543", </lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/1>;ver=1.1"#;
        let r = parse_register_payload(p).unwrap();
        assert_eq!(r.alternate_path().as_deref(), Some("/lwm2m"));
        assert_eq!(r.content_formats(), &[60, 110, 112, 11543]);
        assert_eq!(
            r.objects,
            vec![
                obj(1, Some(0), None),
                obj(3, Some(0), None),
                obj(1, None, Some("1.1"))
            ]
        );
        let written = to_link_format(r.root.as_ref(), &r.objects);
        assert_eq!(
            written,
            r#"</lwm2m>;rt="oma.lwm2m";ct="60 110 112 11543",</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/1>;ver=1.1"#
        );
        assert_eq!(parse_register_payload(written.as_bytes()).unwrap(), r);
    }

    #[test]
    fn multi_segment_alternate_path() {
        let p = br#"</a/b>;rt="oma.lwm2m",</a/b/3/0>"#;
        let r = parse_register_payload(p).unwrap();
        assert_eq!(r.alternate_path().as_deref(), Some("/a/b"));
        assert_eq!(r.objects, vec![obj(3, Some(0), None)]);
    }

    #[test]
    fn alternate_path_listed_after_objects_is_found() {
        let p = br#"</lw/3/0>,</lw>;rt="oma.lwm2m""#;
        let r = parse_register_payload(p).unwrap();
        assert_eq!(r.alternate_path().as_deref(), Some("/lw"));
        assert_eq!(r.objects, vec![obj(3, Some(0), None)]);
    }

    #[test]
    fn security_and_oscore_skipped() {
        let p = b"</0/0>,</0/1>,</0>,</21/0>,</1/0>,</3/0>";
        let r = parse_register_payload(p).unwrap();
        assert_eq!(
            r.objects,
            vec![obj(1, Some(0), None), obj(3, Some(0), None)]
        );
        assert!(r.root.is_none());
    }

    #[test]
    fn quoted_values_unknown_attrs_and_whitespace() {
        let p = b"</1/0>;foo;bar=\"x,y;z\\\"q\"; obs,\n </3/0>;ver=\"1.2\";title=hello";
        let r = parse_register_payload(p).unwrap();
        assert_eq!(
            r.objects,
            vec![obj(1, Some(0), None), obj(3, Some(0), Some("1.2"))]
        );
    }

    #[test]
    fn empty_payload_is_empty_list() {
        assert_eq!(
            parse_register_payload(b"").unwrap(),
            RegisterLinks::default()
        );
        assert_eq!(
            parse_register_payload(b"  \n").unwrap(),
            RegisterLinks::default()
        );
    }

    #[test]
    fn errors_name_position() {
        assert_eq!(
            parse_register_payload(b"</1/0>,garbage").unwrap_err(),
            LinkFormatError::Syntax {
                position: 7,
                expected: "'<'"
            }
        );
        assert_eq!(
            parse_register_payload(b"</1/0></3/0>").unwrap_err(),
            LinkFormatError::Syntax {
                position: 6,
                expected: "',' or end of payload"
            }
        );
        assert!(matches!(
            parse_register_payload(b"</1/0>,</3/x>").unwrap_err(),
            LinkFormatError::BadPath { position: 8, .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</1/0>,</3/0/1>").unwrap_err(),
            LinkFormatError::BadPath { position: 8, .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</70000/0>").unwrap_err(),
            LinkFormatError::BadPath { position: 1, .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</1/65535>").unwrap_err(),
            LinkFormatError::BadPath { .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</3/0>;ver=abc").unwrap_err(),
            LinkFormatError::BadAttribute { position: 7, .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</>;ct=\"60 x\"").unwrap_err(),
            LinkFormatError::BadAttribute { position: 4, .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</1/0;x").unwrap_err(),
            LinkFormatError::Syntax { position: 1, .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</1>;a=\"open").unwrap_err(),
            LinkFormatError::Syntax { position: 7, .. }
        ));
        assert_eq!(
            parse_register_payload(b"</1/0>,\xff").unwrap_err(),
            LinkFormatError::NotUtf8 { position: 7 }
        );
        assert!(matches!(
            parse_register_payload(b"</1/0>,</3/0>,").unwrap_err(),
            LinkFormatError::Syntax { position: 14, .. }
        ));
        // Objects outside the declared alternate path.
        assert!(matches!(
            parse_register_payload(br#"</lwm2m>;rt="oma.lwm2m",</3/0>"#).unwrap_err(),
            LinkFormatError::BadPath { .. }
        ));
        assert!(matches!(
            parse_register_payload(b"</>,</>").unwrap_err(),
            LinkFormatError::BadPath { .. }
        ));
    }

    #[test]
    fn bounds() {
        let many: Vec<String> = (0..=MAX_LINKS).map(|i| format!("</3/{i}>")).collect();
        let p = many.join(",");
        assert_eq!(
            parse_register_payload(p.as_bytes()).unwrap_err(),
            LinkFormatError::TooManyLinks { max: MAX_LINKS }
        );
        let ok: Vec<String> = (0..MAX_LINKS).map(|i| format!("</3/{i}>")).collect();
        assert_eq!(
            parse_register_payload(ok.join(",").as_bytes())
                .unwrap()
                .objects
                .len(),
            MAX_LINKS
        );
        let big = vec![b' '; MAX_PAYLOAD + 1];
        assert!(matches!(
            parse_register_payload(&big).unwrap_err(),
            LinkFormatError::TooLarge { .. }
        ));
    }

    #[test]
    fn write_object_list_without_root() {
        let objs = vec![
            obj(1, None, Some("1.1")),
            obj(1, Some(0), None),
            obj(3, Some(0), None),
        ];
        let s = to_link_format(None, &objs);
        assert_eq!(s, "</1>;ver=1.1,</1/0>,</3/0>");
        assert_eq!(parse_register_payload(s.as_bytes()).unwrap().objects, objs);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_register_payload(&data);
            }

            #[test]
            fn never_panics_on_linkish_text(s in r#"[</>;,="\\ 0-9a-z.\n]{0,200}"#) {
                let _ = parse_register_payload(s.as_bytes());
            }

            #[test]
            fn roundtrip(objs in proptest::collection::vec(
                (1u16..65535, proptest::option::of(0u16..65535), proptest::option::of((0u8..10, 0u8..10))),
                0..20))
            {
                let objs: Vec<ObjectLink> = objs.into_iter()
                    .filter(|(o, _, _)| *o != OSCORE_OBJECT)
                    .map(|(o, i, v)| ObjectLink {
                        object_id: o,
                        instance_id: i,
                        version: v.map(|(a, b)| format!("{a}.{b}")),
                    })
                    .collect();
                let root = RootLink { segments: vec![], rt_lwm2m: true, content_formats: vec![60, 112] };
                let s = to_link_format(Some(&root), &objs);
                let back = parse_register_payload(s.as_bytes()).unwrap();
                prop_assert_eq!(back.objects, objs);
                prop_assert_eq!(back.root, Some(root));
            }
        }
    }
}
