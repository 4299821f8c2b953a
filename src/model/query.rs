//! Page state that lives in the URL (filters, sort, page), so that the server
//! renders it and links can be shared. Parsing is lenient: a hand-edited or
//! stale link falls back to defaults instead of failing the page.

/// Percent-encodes a query value (everything but RFC 3986's unreserved
/// characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds `?k=v&...` from the pairs whose value is set; "" when none is.
pub fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode_component(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A positive page number from the URL; 1 when absent or invalid.
pub fn page_param(raw: Option<String>) -> u32 {
    raw.and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode_component("urn:imei 1&2"), "urn%3Aimei%201%262");
        assert_eq!(encode_component("ä"), "%C3%A4");
        assert_eq!(
            query_string(&[
                ("q", Some("a b".into())),
                ("x", None),
                ("page", Some("2".into()))
            ]),
            "?q=a%20b&page=2"
        );
        assert_eq!(query_string(&[("q", None)]), "");
    }

    #[test]
    fn page_numbers_fall_back_to_the_first() {
        assert_eq!(page_param(Some("3".into())), 3);
        assert_eq!(page_param(Some("0".into())), 1);
        assert_eq!(page_param(Some("-1".into())), 1);
        assert_eq!(page_param(Some("x".into())), 1);
        assert_eq!(page_param(None), 1);
    }
}
