//! The dashboard's "Start update" forms. A form post without JavaScript is
//! answered with a redirect back to the page, which loses the server
//! function's result; this one puts the per-endpoint outcome into that
//! redirect's URL, so the page can show it either way.
use crate::error::AppError;
use crate::model::{DownloadTransport, UpdateStart};
use leptos::prelude::*;

/// The URL parameter that carries a plain form post's outcome (JSON).
pub const OUTCOME_PARAM: &str = "update_results";

/// `start_updates`, and for a plain form post a redirect to the page it
/// came from with the outcome in `OUTCOME_PARAM`.
#[server(prefix = "/sfn", endpoint = "updates/start-form")]
pub async fn start_updates_form(
    #[server(default)] endpoints: Vec<String>,
    firmware_id: i64,
    #[server(default)] transport: DownloadTransport,
) -> Result<Vec<UpdateStart>, AppError> {
    use crate::server::context;
    let result = super::commands::start_updates(endpoints, firmware_id, transport).await;
    if let Ok(starts) = &result {
        if context::is_plain_form_post() {
            let referer = use_context::<axum::http::request::Parts>().and_then(|p| {
                p.headers
                    .get(axum::http::header::REFERER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            });
            if let (Some(back), Ok(json)) = (referer, serde_json::to_string(starts)) {
                leptos_axum::redirect(&with_outcome(&back, &json));
            }
        }
    }
    result
}

/// `url` with its previous outcome dropped and this one added.
pub fn with_outcome(url: &str, json: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let prefix = format!("{OUTCOME_PARAM}=");
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    pairs.push(format!(
        "{prefix}{}",
        crate::model::query::encode_component(json)
    ));
    format!("{base}?{}", pairs.join("&"))
}

/// The outcome a redirect carried; None when absent or not ours.
pub fn outcome_from_param(raw: Option<String>) -> Option<Vec<UpdateStart>> {
    serde_json::from_str(&raw?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_round_trips_through_the_url() {
        let starts = vec![
            UpdateStart {
                endpoint: "dev 1".into(),
                update_id: Some(4),
                error: None,
            },
            UpdateStart {
                endpoint: "dev&2".into(),
                update_id: None,
                error: Some("an update is already active".into()),
            },
        ];
        let json = serde_json::to_string(&starts).unwrap();
        let url = with_outcome("http://h/endpoints?q=dev&update_results=old", &json);
        assert!(url.starts_with("http://h/endpoints?q=dev&update_results="));
        assert_eq!(url.matches("update_results").count(), 1);
        let raw = url.split("update_results=").nth(1).unwrap();
        let decoded = percent_decode(raw);
        assert_eq!(outcome_from_param(Some(decoded)), Some(starts));
        assert_eq!(outcome_from_param(Some("nonsense".into())), None);
        assert_eq!(
            with_outcome("/endpoints/3", "[]"),
            "/endpoints/3?update_results=%5B%5D"
        );
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
