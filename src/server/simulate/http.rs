//! The http:// firmware download (Firmware Update Protocol Support 2,
//! HTTP/1.1), through hyper's client.

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::firmware::{FwResult, MAX_IMAGE};

/// Whether devices announce and accept HTTP downloads.
pub const SUPPORTED: bool = true;

/// GETs the image: 4.04-like answers are an invalid URI (Result 7),
/// transport failures a lost connection (4), an oversized image not
/// enough flash (2).
pub async fn download(uri: &str) -> Result<Vec<u8>, FwResult> {
    let uri: hyper::Uri = uri.parse().map_err(|_| FwResult::InvalidUri)?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.get(uri).await.map_err(|e| {
        tracing::debug!("firmware download: {e}");
        FwResult::ConnectionLost
    })?;
    let status = resp.status();
    if status.is_client_error() {
        return Err(FwResult::InvalidUri);
    }
    if !status.is_success() {
        return Err(FwResult::ConnectionLost);
    }
    let body = Limited::new(resp.into_body(), MAX_IMAGE)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FwResult::NotEnoughFlash
            } else {
                FwResult::ConnectionLost
            }
        })?;
    Ok(body.to_bytes().to_vec())
}
