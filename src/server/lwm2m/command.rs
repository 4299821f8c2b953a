//! The durable command queue's second transport: a command for an endpoint
//! registered here goes to the device over CoAP (Read, Write, Execute here;
//! the management commands in `manage`),
//! and its answer code becomes the command's outcome as the dispatcher
//! records it (`dispatch::Answer`). A read's values are stored like a
//! report.
use super::coap::message::encode_uint;
use super::downlink::DownlinkError;
use super::format::{self, ContentFormat, LwPath};
use super::observe::{formats_for, request_to, success};
use super::registry::Registration;
use super::server::{lock, Server};
use crate::model::CommandKind;
use crate::server::db::endpoint_operation::Claimed;
use crate::server::dispatch::Answer;
use coap_lite::{CoapOption, MessageClass, Packet, RequestType, ResponseType};

/// The name of an answer code, as Leshan's REST API names it (the
/// dispatcher records it as the device's status).
pub fn status_name(code: MessageClass) -> String {
    let MessageClass::Response(r) = code else {
        return code.to_string();
    };
    let name = match r {
        ResponseType::Created => "CREATED",
        ResponseType::Deleted => "DELETED",
        ResponseType::Valid => "VALID",
        ResponseType::Changed => "CHANGED",
        ResponseType::Content => "CONTENT",
        ResponseType::Continue => "CONTINUE",
        ResponseType::BadRequest => "BAD_REQUEST",
        ResponseType::Unauthorized => "UNAUTHORIZED",
        ResponseType::BadOption => "BAD_OPTION",
        ResponseType::Forbidden => "FORBIDDEN",
        ResponseType::NotFound => "NOT_FOUND",
        ResponseType::MethodNotAllowed => "METHOD_NOT_ALLOWED",
        ResponseType::NotAcceptable => "NOT_ACCEPTABLE",
        ResponseType::PreconditionFailed => "PRECONDITION_FAILED",
        ResponseType::RequestEntityTooLarge => "REQUEST_ENTITY_TOO_LARGE",
        ResponseType::UnsupportedContentFormat => "UNSUPPORTED_CONTENT_FORMAT",
        ResponseType::RequestEntityIncomplete => "REQUEST_ENTITY_INCOMPLETE",
        ResponseType::InternalServerError => "INTERNAL_SERVER_ERROR",
        ResponseType::NotImplemented => "NOT_IMPLEMENTED",
        ResponseType::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        _ => return code.to_string(),
    };
    name.to_string()
}

/// The command's outcome from the device's answer.
pub fn answer_of(packet: &Packet) -> Answer {
    let status = status_name(packet.header.code);
    if success(packet) {
        return Answer::Success {
            status,
            content: None,
        };
    }
    let message =
        (!packet.payload.is_empty()).then(|| String::from_utf8_lossy(&packet.payload).into_owned());
    Answer::DeviceError { status, message }
}

/// What a request that got no answer means for the command: a device in
/// queue mode is asleep (the command waits for it), any other one is a
/// transient failure that spends an attempt.
pub fn answer_to_silence(e: &DownlinkError, queue_mode: bool) -> Answer {
    match e {
        DownlinkError::Timeout | DownlinkError::NoSeparateResponse if queue_mode => {
            Answer::NotReachable(format!("the device sleeps ({e})"))
        }
        DownlinkError::Reset => Answer::DeviceError {
            status: "RESET".into(),
            message: Some(e.to_string()),
        },
        _ => Answer::Transient(e.to_string()),
    }
}

/// The format a write goes in: 1.0 clients read TLV; later ones the first
/// format they take several values in.
fn write_format(r: &Registration) -> ContentFormat {
    if r.lwm2m_version == "1.0" {
        ContentFormat::Tlv
    } else {
        formats_for(r)[0]
    }
}

impl Server {
    /// Sends a claimed command to the device, if the endpoint is
    /// registered here; None otherwise (it goes through Leshan).
    pub(super) async fn command(&self, command: &Claimed) -> Option<Answer> {
        let registration = lock(&self.registry)
            .by_endpoint(&command.endpoint)
            .cloned()?;
        match command.kind {
            CommandKind::Read | CommandKind::Write | CommandKind::Execute => {}
            // An observe may name several paths: `manage` reads its own.
            _ => return Some(self.manage(&registration, command).await),
        }
        let Some(path) =
            LwPath::parse(command.path.trim_end_matches('/')).filter(|p| !p.is_empty())
        else {
            return Some(Answer::Invalid(format!(
                "{:?} is not an LwM2M path",
                command.path
            )));
        };
        let answer = match command.kind {
            CommandKind::Read => match self.read(&registration, path, false).await {
                Ok((packet, ack)) => {
                    let mut stored = true;
                    if success(&packet) {
                        if let Err(e) = self
                            .store_answer(&registration.endpoint, path, &packet)
                            .await
                        {
                            stored = !matches!(e, super::observe::StoreError::Internal);
                            tracing::warn!(
                                operation = command.id,
                                "the read's answer was not stored: {e:?}"
                            );
                        }
                    }
                    self.settle_ack(ack, stored);
                    Ok(packet)
                }
                Err(e) => Err(e),
            },
            CommandKind::Write => {
                let Some(resource) = path.to_resource_path().filter(|_| path.len() >= 3) else {
                    return Some(Answer::Invalid(
                        "a write needs an /object/instance/resource path".into(),
                    ));
                };
                let Some(data_type) = command.data_type else {
                    return Some(Answer::Invalid(
                        "the resource's data type is unknown".into(),
                    ));
                };
                let value = command.value.to_value(data_type);
                let format = write_format(&registration);
                let payload = match format::encode(format, &[(resource, value)], &path) {
                    Ok(p) => p,
                    Err(e) => {
                        return Some(Answer::Invalid(format!("cannot encode the value: {e}")))
                    }
                };
                let mut request = request_to(&registration, RequestType::Put, &path);
                request.add_option(
                    CoapOption::ContentFormat,
                    encode_uint(u32::from(format.number())),
                );
                request.payload = payload;
                self.ask_settled(registration.address, request).await
            }
            CommandKind::Execute => {
                let mut request = request_to(&registration, RequestType::Post, &path);
                if let Some(arguments) = command
                    .value
                    .text_value
                    .as_deref()
                    .filter(|a| !a.is_empty())
                {
                    request.add_option(CoapOption::ContentFormat, encode_uint(0));
                    request.payload = arguments.as_bytes().to_vec();
                }
                self.ask_settled(registration.address, request).await
            }
            other => return Some(Answer::Invalid(format!("{other} is sent by `manage`"))),
        };
        Some(match answer {
            Ok(packet) => answer_of(&packet),
            Err(e) => answer_to_silence(&e, registration.queue_mode),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: ResponseType, payload: &[u8]) -> Packet {
        let mut p = Packet::new();
        p.header.code = MessageClass::Response(code);
        p.payload = payload.to_vec();
        p
    }

    #[test]
    fn answer_codes_become_outcomes() {
        assert_eq!(
            answer_of(&answer(ResponseType::Changed, b"")),
            Answer::Success {
                status: "CHANGED".into(),
                content: None
            }
        );
        assert_eq!(
            answer_of(&answer(ResponseType::Content, b"x")),
            Answer::Success {
                status: "CONTENT".into(),
                content: None
            }
        );
        assert_eq!(
            answer_of(&answer(ResponseType::NotFound, b"")),
            Answer::DeviceError {
                status: "NOT_FOUND".into(),
                message: None
            }
        );
        assert_eq!(
            answer_of(&answer(ResponseType::MethodNotAllowed, b"read-only")),
            Answer::DeviceError {
                status: "METHOD_NOT_ALLOWED".into(),
                message: Some("read-only".into())
            }
        );
    }

    #[test]
    fn silence_is_sleep_in_queue_mode_and_a_retry_otherwise() {
        assert!(matches!(
            answer_to_silence(&DownlinkError::Timeout, true),
            Answer::NotReachable(_)
        ));
        assert!(matches!(
            answer_to_silence(&DownlinkError::Timeout, false),
            Answer::Transient(_)
        ));
        assert!(matches!(
            answer_to_silence(&DownlinkError::Reset, false),
            Answer::DeviceError { .. }
        ));
    }
}
