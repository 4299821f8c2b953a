//! Query and path parameters of the data API, checked by hand so that every
//! problem is a 4xx JSON answer naming the parameter (axum's own extractor
//! rejections are plain text and name no field).
use crate::error::{AppError, FieldError};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap};

/// Epoch milliseconds accepted for `from`, `to`: 1970 to the end of year
/// 9999, so that range arithmetic cannot overflow and every bound has an
/// RFC 3339 form.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// The query string as (name, value) pairs, checked parameter by parameter.
/// Problems are collected so that one answer lists all of them.
pub struct Params {
    pairs: Vec<(String, String)>,
    problems: Vec<FieldError>,
}

impl Params {
    /// Takes the decoded pairs; refuses names not in `known` (the
    /// parameters the OpenAPI document lists, see [`documented`]), so that a
    /// misspelt parameter is an error rather than silently ignored.
    pub fn new(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        known: &[String],
    ) -> Result<Params, AppError> {
        let Query(pairs) = query.map_err(|e| {
            AppError::bad_request(
                "malformed query string",
                vec![FieldError::new("query", e.body_text())],
            )
        })?;
        let mut problems = Vec::new();
        for (name, _) in &pairs {
            if !known.contains(name) && !problems.iter().any(|p: &FieldError| &p.path == name) {
                let reason = if known.is_empty() {
                    "unknown parameter; this route takes none".to_string()
                } else {
                    format!("unknown parameter; expected one of: {}", known.join(", "))
                };
                problems.push(FieldError::new(name.clone(), reason));
            }
        }
        Ok(Params { pairs, problems })
    }

    pub fn problem(&mut self, name: &str, reason: impl Into<String>) {
        self.problems.push(FieldError::new(name, reason));
    }

    /// The values given for `name`; empty values count as not given (HTML
    /// forms send empty fields).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `name`, if given; given twice is a problem.
    pub fn one(&mut self, name: &str) -> Option<String> {
        let values = self.all(name);
        match values.as_slice() {
            [] => None,
            [v] => Some(v.to_string()),
            _ => {
                self.problem(name, "given more than once");
                None
            }
        }
    }

    /// An integer in [min, max].
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.one(name)?;
        match raw.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            Ok(_) => {
                self.problem(name, format!("must be between {min} and {max}"));
                None
            }
            Err(_) => {
                self.problem(name, format!("{raw:?} is not an integer"));
                None
            }
        }
    }

    /// A time: epoch milliseconds, or RFC 3339 such as `2026-11-24T18:00:00Z`.
    pub fn time(&mut self, name: &str) -> Option<i64> {
        let raw = self.one(name)?;
        match parse_time(&raw) {
            Some(t) if (0..=MAX_TIME_MS).contains(&t) => Some(t),
            Some(_) => {
                self.problem(
                    name,
                    "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z",
                );
                None
            }
            None => {
                self.problem(
                    name,
                    format!(
                        "{raw:?} is neither epoch milliseconds nor an RFC 3339 time \
                         such as 2026-11-24T18:00:00Z"
                    ),
                );
                None
            }
        }
    }

    /// Ends parameter checking: every problem found, as one 422.
    pub fn finish(self) -> Result<(), AppError> {
        match self.problems.len() {
            0 => Ok(()),
            1 => {
                let p = self.problems.into_iter().next().expect("one problem");
                Err(AppError::invalid_field(p.path, p.reason))
            }
            n => Err(AppError::Unprocessable {
                message: format!("{n} invalid fields"),
                details: self.problems,
            }),
        }
    }
}

/// The names of the query parameters a type documents: what a handler
/// accepts is what its OpenAPI operation lists.
pub fn documented<P: utoipa::IntoParams>() -> Vec<String> {
    P::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Epoch milliseconds or RFC 3339. A `+` in an unencoded query string
/// arrives as a space (`...T18:00:00 01:00`), so a space is read as `+`.
pub fn parse_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return Some(ms);
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&raw.replace(' ', "+")))
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Path parameters as strings; a path that is not valid UTF-8 after
/// percent-decoding is a JSON 400.
pub fn path_strings<T>(path: Result<Path<T>, PathRejection>) -> Result<T, AppError> {
    path.map(|Path(p)| p).map_err(|e| {
        AppError::bad_request(
            "malformed path",
            vec![FieldError::new("path", e.body_text())],
        )
    })
}

/// An LwM2M id (0..=65535) given in the path.
pub fn lwm2m_id(name: &str, raw: &str, problems: &mut Vec<FieldError>) -> i64 {
    match raw.parse::<i64>() {
        Ok(v) if (0..=65535).contains(&v) && !raw.starts_with('+') => v,
        _ => {
            problems.push(FieldError::new(
                name,
                format!("{raw:?} is not an LwM2M id between 0 and 65535"),
            ));
            0
        }
    }
}

/// How a list answer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// `?format=csv|json` wins; otherwise `Accept: text/csv` selects CSV.
pub fn format(params: &mut Params, headers: &HeaderMap) -> Format {
    match params.one("format").as_deref() {
        Some("csv") => return Format::Csv,
        Some("json") => return Format::Json,
        Some(other) => {
            params.problem("format", format!("{other:?} is not one of: json, csv"));
            return Format::Json;
        }
        None => {}
    }
    let wants_csv = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
        });
    if wants_csv {
        Format::Csv
    } else {
        Format::Json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_epoch_ms_or_rfc3339() {
        assert_eq!(parse_time("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500)
        );
        // An unencoded '+' decoded as a space.
        assert_eq!(
            parse_time("2023-11-14T23:13:20 01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2023-11-14"), None);
    }

    #[test]
    fn lwm2m_ids_are_bounded() {
        let mut problems = Vec::new();
        assert_eq!(lwm2m_id("object", "3303", &mut problems), 3303);
        assert_eq!(lwm2m_id("object", "65535", &mut problems), 65535);
        assert!(problems.is_empty());
        for bad in ["65536", "-1", "x", "+3", ""] {
            lwm2m_id("object", bad, &mut problems);
        }
        assert_eq!(problems.len(), 5);
        assert!(problems.iter().all(|p| p.path == "object"));
    }
}
