//! Send (`POST /dp`, LwM2M 1.1 Information Reporting): a device reports
//! values it chose, with full paths and optional times, in SenML (JSON or
//! CBOR) or LwM2M CBOR. This turns the request into the writer's neutral
//! values; the socket task stores them and answers 2.04 after the commit.
use super::coap::message as msg;
use super::format::{self, ContentFormat, DecodeContext, FormatError, LwPath};
use crate::model::DataType;
use crate::server::ingest::DecodedValue;
use coap_lite::{CoapOption, Packet, ResponseType};

/// The content formats a Send may use (OMA LwM2M 1.1.1 Transport §6.4.3
/// and 1.2's LwM2M CBOR).
const SEND_FORMATS: [ContentFormat; 3] = [
    ContentFormat::SenmlCbor,
    ContentFormat::SenmlJson,
    ContentFormat::LwM2mCbor,
];

/// The request's values, or the answer to refuse it with and why.
pub fn decode(
    request: &Packet,
    now_ms: i64,
    resolve: impl Fn(i64, i64) -> Option<DataType>,
) -> Result<Vec<DecodedValue>, (ResponseType, String)> {
    let format = match msg::uint_option(request, CoapOption::ContentFormat) {
        None => {
            return Err((
                ResponseType::UnsupportedContentFormat,
                "a Send needs a Content-Format: SenML CBOR (112), SenML JSON (110) or LwM2M CBOR (11544)"
                    .into(),
            ))
        }
        Some(n) => u16::try_from(n)
            .ok()
            .and_then(ContentFormat::from_u16)
            .filter(|f| SEND_FORMATS.contains(f))
            .ok_or_else(|| {
                (
                    ResponseType::UnsupportedContentFormat,
                    format!(
                        "content format {n}: a Send is SenML CBOR (112), SenML JSON (110) or LwM2M CBOR (11544)"
                    ),
                )
            })?,
    };
    let ctx = DecodeContext {
        request_path: LwPath::ROOT,
        now_ms,
        resolve: &resolve,
    };
    let records = format::decode(format, &request.payload, &ctx).map_err(refusal)?;
    if records.is_empty() {
        return Err((ResponseType::BadRequest, "the Send holds no values".into()));
    }
    Ok(format::decoded_values(records))
}

/// The CoAP answer to a payload that cannot be decoded.
pub fn refusal(e: FormatError) -> (ResponseType, String) {
    let code = match e.coap_code() {
        (4, 13) => ResponseType::RequestEntityTooLarge,
        (4, 15) => ResponseType::UnsupportedContentFormat,
        (5, _) => ResponseType::InternalServerError,
        _ => ResponseType::BadRequest,
    };
    (code, e.to_string())
}
