//! Streamed CSV answers. A producer task reads rows from the database as
//! they arrive and formats them into ~64 KiB chunks that go through a
//! bounded channel to the response body, so an export of millions of rows
//! holds a few chunks in memory, and a slow client slows the query down
//! instead of filling memory. A client that goes away drops the receiver;
//! the producer notices on its next send and stops, closing the cursor.
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use std::future::Future;
use tokio::sync::mpsc;

/// Chunk size sent to the client.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the producer and the response body.
const CHANNEL_CHUNKS: usize = 4;

type Item = Result<Bytes, std::io::Error>;

/// Why a producer stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The client went away: nothing to report.
    ClientGone,
    /// The database failed mid-stream; the headers are sent, so the only
    /// way left to tell the client is to break the body off.
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Stop::Database(e)
    }
}

/// Where a producer writes rows.
pub struct CsvSink {
    tx: mpsc::Sender<Item>,
    buf: String,
}

impl CsvSink {
    /// Appends one record; sends a chunk when the buffer is full.
    pub async fn row<I, S>(&mut self, fields: I) -> Result<(), Stop>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        write_record(&mut self.buf, fields);
        if self.buf.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK_BYTES + 1024));
        self.tx
            .send(Ok(Bytes::from(chunk)))
            .await
            .map_err(|_| Stop::ClientGone)
    }
}

/// Appends one CSV record (RFC 4180, CRLF line ends) to `buf`.
pub fn write_record<I, S>(buf: &mut String, fields: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        write_field(buf, field.as_ref());
    }
    buf.push_str("\r\n");
}

/// A field is quoted when it contains a comma, a quote or a line break, or
/// starts or ends with a space (which some readers trim); quotes inside are
/// doubled.
pub fn write_field(buf: &mut String, field: &str) {
    let needs_quotes =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        buf.push('"');
        for c in field.chars() {
            if c == '"' {
                buf.push('"');
            }
            buf.push(c);
        }
        buf.push('"');
    } else {
        buf.push_str(field);
    }
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A file name safe in a Content-Disposition header on every platform.
pub fn file_name(parts: &[&str]) -> String {
    let name: String = parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}.csv")
}

/// A 200 `text/csv` answer whose body `produce` writes after `header`.
/// `produce` runs in its own task; it returns its sink when done so the
/// last partial chunk is sent.
pub fn stream<F, Fut>(file_name: &str, header: &[&str], produce: F) -> Response
where
    F: FnOnce(CsvSink) -> Fut + Send + 'static,
    Fut: Future<Output = Result<CsvSink, Stop>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Item>(CHANNEL_CHUNKS);
    let mut buf = String::with_capacity(CHUNK_BYTES + 1024);
    write_record(&mut buf, header);
    let sink = CsvSink {
        tx: tx.clone(),
        buf,
    };
    let name = file_name.to_string();
    tokio::spawn(async move {
        let result = match produce(sink).await {
            Ok(mut sink) => sink.flush().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::debug!(file = name, "CSV export finished"),
            Err(Stop::ClientGone) => tracing::info!(file = name, "CSV export: client went away"),
            Err(Stop::Database(e)) => {
                tracing::error!(file = name, error = %e, "CSV export failed mid-stream; body cut off");
                // An error item makes the server abort the body, so the
                // client sees a broken transfer rather than a short file
                // that looks complete.
                let _ = tx
                    .send(Err(std::io::Error::other("database error during export")))
                    .await;
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut buf = String::new();
        write_record(
            &mut buf,
            [
                "plain",
                "a,b",
                "say \"hi\"",
                "two\nlines",
                " padded",
                "",
                "cr\r",
            ],
        );
        assert_eq!(
            buf,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" padded\",,\"cr\r\"\r\n"
        );
    }

    #[tokio::test]
    async fn a_database_error_mid_stream_breaks_the_body_off() {
        use http_body_util::BodyExt;
        let resp = stream("x.csv", &["n"], |mut sink| async move {
            for n in 0..20_000 {
                sink.row([n.to_string()]).await?;
            }
            Err(Stop::Database(sqlx::Error::PoolClosed))
        });
        assert!(resp.headers().get(header::CONTENT_LENGTH).is_none());
        let mut body = resp.into_body();
        let mut bytes = 0;
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => bytes += f.into_data().map(|d| d.len()).unwrap_or(0),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(
            bytes >= CHUNK_BYTES,
            "rows before the error were sent: {bytes}"
        );
        assert!(failed, "the body ends in an error, not silently");
    }

    #[tokio::test]
    async fn the_producer_stops_when_the_client_goes_away() {
        use http_body_util::BodyExt;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let resp = stream("x.csv", &["n"], |mut sink| async move {
            let mut n = 0u64;
            let result = loop {
                if let Err(e) = sink.row([n.to_string()]).await {
                    break e;
                }
                n += 1;
            };
            let _ = done_tx.send((n, matches!(result, Stop::ClientGone)));
            Err(result)
        });
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(first.starts_with(b"n\r\n0\r\n"));
        drop(body);
        let (rows, gone) = tokio::time::timeout(std::time::Duration::from_secs(10), done_rx)
            .await
            .expect("the producer stops")
            .unwrap();
        assert!(gone);
        // Bounded: a few chunks in flight, not everything it could produce.
        assert!(rows < 10 * CHUNK_BYTES as u64, "{rows} rows produced");
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(
            file_name(&["urn:imei:1", "3303-0-5700"]),
            "urn_imei_1_3303-0-5700.csv"
        );
        assert_eq!(file_name(&["a\"b/c"]), "a_b_c.csv");
    }
}
