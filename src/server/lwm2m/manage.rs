//! Device management beyond read, write and execute, as the command queue
//! sends it to an endpoint registered here (LwM2M 1.1 Core §6.3-6.4, Transport
//! §6.4): Discover, Create, Delete, Write-Attributes, Observe (one path, or
//! several as an Observe-Composite FETCH) and Cancel Observation.
use super::coap::message::encode_uint;
use super::downlink::Observation;
use super::format::{self, ContentFormat, LwPath};
use super::link_format;
use super::observe::{formats_for, request_to, success};
use super::registry::Registration;
use super::server::{lock, Server};
use crate::model::{CommandKind, ResourcePath, Value};
use crate::server::db::endpoint_operation::Claimed;
use crate::server::dispatch::Answer;
use coap_lite::{CoapOption, Packet, RequestType};
use serde_json::Value as Json;

/// CoRE link format (RFC 6690), what a Discover answers in.
const LINK_FORMAT: u32 = 40;

fn parse_path(text: &str) -> Option<LwPath> {
    LwPath::parse(text.trim().trim_end_matches('/')).filter(|p| !p.is_empty())
}

/// The body of an Observe-Composite (or Read-Composite) request: the paths
/// as SenML records with names only (Transport §6.4.6), in SenML JSON or
/// SenML CBOR (name key 0, RFC 8428 §6).
pub fn composite_request_body(format: ContentFormat, paths: &[LwPath]) -> Option<Vec<u8>> {
    match format {
        ContentFormat::SenmlJson => {
            let records: Vec<Json> = paths
                .iter()
                .map(|p| serde_json::json!({ "n": p.to_string() }))
                .collect();
            Some(Json::Array(records).to_string().into_bytes())
        }
        ContentFormat::SenmlCbor => {
            let mut out = Vec::new();
            cbor_head(&mut out, 4, paths.len() as u64);
            for p in paths {
                let name = p.to_string();
                cbor_head(&mut out, 5, 1);
                out.push(0x00); // key 0: name
                cbor_head(&mut out, 3, name.len() as u64);
                out.extend_from_slice(name.as_bytes());
            }
            Some(out)
        }
        _ => None,
    }
}

/// A CBOR head: major type and argument (RFC 8949 §3).
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

/// The lowest instance id of `object_id` the client did not register
/// (a Create that names none gets it).
pub fn free_instance(object_links: &str, object_id: u16) -> u16 {
    let used: Vec<u16> = link_format::parse_register_payload(object_links.as_bytes())
        .map(|l| {
            l.objects
                .iter()
                .filter(|o| o.object_id == object_id)
                .filter_map(|o| o.instance_id)
                .collect()
        })
        .unwrap_or_default();
    (0..u16::MAX)
        .find(|i| !used.contains(i))
        .unwrap_or(u16::MAX)
}

impl Server {
    /// Sends a device-management command to a registered client.
    pub(super) async fn manage(&self, r: &Registration, command: &Claimed) -> Answer {
        let result = match command.kind {
            CommandKind::Observe => return self.observe_command(r, command).await,
            CommandKind::CancelObserve => return self.cancel_observe(r, &command.path),
            CommandKind::Discover => {
                let Some(path) = parse_path(&command.path) else {
                    return bad_path(&command.path);
                };
                let mut request = request_to(r, RequestType::Get, &path);
                request.add_option(CoapOption::Accept, encode_uint(LINK_FORMAT));
                match self.ask_settled(r.address, request).await {
                    Ok(packet) if success(&packet) => {
                        return Answer::Success {
                            status: super::command::status_name(packet.header.code),
                            content: Some(Json::String(
                                String::from_utf8_lossy(&packet.payload).into_owned(),
                            )),
                        }
                    }
                    other => other,
                }
            }
            CommandKind::Delete => {
                let Some(path) = parse_path(&command.path) else {
                    return bad_path(&command.path);
                };
                let request = request_to(r, RequestType::Delete, &path);
                self.ask_settled(r.address, request).await
            }
            CommandKind::WriteAttributes => {
                let Some(path) = parse_path(&command.path) else {
                    return bad_path(&command.path);
                };
                let mut request = request_to(r, RequestType::Put, &path);
                for q in command.value.text_value.as_deref().unwrap_or("").split('&') {
                    if !q.is_empty() {
                        request.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
                    }
                }
                self.ask_settled(r.address, request).await
            }
            CommandKind::Create => match self.create_request(r, command) {
                Ok(request) => self.ask_settled(r.address, request).await,
                Err(answer) => return answer,
            },
            CommandKind::Read | CommandKind::Write | CommandKind::Execute => {
                return Answer::Invalid(format!("{} is not a management command", command.kind))
            }
        };
        match result {
            Ok(packet) => super::command::answer_of(&packet),
            Err(e) => super::command::answer_to_silence(&e, r.queue_mode),
        }
    }

    /// The Create request: POST to the object with the new instance's
    /// resources, typed by the resource types, in the client's format.
    fn create_request(&self, r: &Registration, command: &Claimed) -> Result<Packet, Answer> {
        let Some(path) = parse_path(&command.path).filter(|p| p.len() <= 2) else {
            return Err(bad_path(&command.path));
        };
        let ids = path.ids();
        let object_id = ids[0];
        let instance_id = match ids.get(1) {
            Some(i) => *i,
            None => free_instance(&r.object_links, object_id),
        };
        let map: serde_json::Map<String, Json> = command
            .value
            .text_value
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let mut values: Vec<(ResourcePath, Value)> = Vec::with_capacity(map.len());
        for (key, raw) in &map {
            let Ok(resource_id) = key.parse::<u16>() else {
                return Err(Answer::Invalid(format!("{key:?} is not a resource id")));
            };
            let Some((_, data_type)) = self
                .state
                .types
                .get((i64::from(object_id), i64::from(resource_id)))
            else {
                return Err(Answer::Invalid(format!(
                    "/{object_id}/{resource_id} is not a known resource type"
                )));
            };
            let value = crate::server::commands::parse_command_value(raw, data_type)
                .map_err(|e| Answer::Invalid(format!("resource {resource_id}: {e}")))?;
            values.push((
                ResourcePath {
                    object_id: i64::from(object_id),
                    instance_id: i64::from(instance_id),
                    resource_id: i64::from(resource_id),
                    resource_instance_id: None,
                },
                value,
            ));
        }
        let object = LwPath::parse(&format!("/{object_id}")).expect("an object path");
        // A 1.0 client reads TLV; later ones the first format they take
        // several values in (as for a write).
        let format = if r.lwm2m_version == "1.0" {
            ContentFormat::Tlv
        } else {
            formats_for(r)[0]
        };
        let payload = format::encode(format, &values, &object)
            .map_err(|e| Answer::Invalid(format!("cannot encode the instance: {e}")))?;
        let mut request = request_to(r, RequestType::Post, &object);
        request.add_option(
            CoapOption::ContentFormat,
            encode_uint(u32::from(format.number())),
        );
        request.payload = payload;
        Ok(request)
    }

    /// An observe command: see `observe_paths`.
    async fn observe_command(&self, r: &Registration, command: &Claimed) -> Answer {
        self.observe_paths(r, &command.path).await
    }

    /// Observe of one path (its first answer stored like a read), or of
    /// several, comma-separated, as an Observe-Composite: a FETCH with the
    /// paths in SenML.
    pub(super) async fn observe_paths(&self, r: &Registration, text: &str) -> Answer {
        let mut paths = Vec::new();
        for part in text.split(',') {
            let Some(p) = parse_path(part) else {
                return bad_path(part);
            };
            paths.push(p);
        }
        let (path, answer) = if let [path] = paths[..] {
            (path, self.read(r, path, true).await)
        } else {
            let format = formats_for(r)
                .into_iter()
                .find(|f| matches!(f, ContentFormat::SenmlCbor | ContentFormat::SenmlJson))
                .unwrap_or(ContentFormat::SenmlCbor);
            let Some(body) = composite_request_body(format, &paths) else {
                return Answer::Invalid("no format for an observe-composite".into());
            };
            let mut request = request_to(r, RequestType::Fetch, &LwPath::ROOT);
            request.add_option(CoapOption::Observe, encode_uint(0));
            let number = encode_uint(u32::from(format.number()));
            request.add_option(CoapOption::ContentFormat, number.clone());
            request.add_option(CoapOption::Accept, number);
            request.payload = body;
            let observation = Observation {
                registration_id: r.id.clone(),
                endpoint: r.endpoint.clone(),
                path: LwPath::ROOT,
                composite: paths.clone(),
            };
            (
                LwPath::ROOT,
                self.ask_whole(r.address, request, Some(observation))
                    .await
                    .map(|(_, p, ack)| (p, ack)),
            )
        };
        match answer {
            Ok((packet, ack)) => {
                let mut stored = true;
                if success(&packet) {
                    if let Err(e) = self.store_answer(&r.endpoint, path, &packet).await {
                        stored = !matches!(e, super::observe::StoreError::Internal);
                        tracing::warn!(
                            endpoint = r.endpoint,
                            paths = text,
                            "the observe's first answer was not stored: {e:?}"
                        );
                    }
                } else {
                    // Refused: the observation the request recorded is void.
                    self.forget_observation(&r.endpoint, text);
                }
                self.settle_ack(ack, stored);
                super::command::answer_of(&packet)
            }
            Err(e) => {
                self.forget_observation(&r.endpoint, text);
                super::command::answer_to_silence(&e, r.queue_mode)
            }
        }
    }

    /// Cancel Observation: the server forgets the observation, so the
    /// device's next notification is answered with a reset, which ends it
    /// on the device (RFC 7641 §3.6).
    fn cancel_observe(&self, r: &Registration, path: &str) -> Answer {
        if self.forget_observation(&r.endpoint, path) == 0 {
            return Answer::DeviceError {
                status: "NOT_FOUND".into(),
                message: Some(format!("no observation of {path} is active")),
            };
        }
        Answer::Success {
            status: "CANCELLED".into(),
            content: None,
        }
    }

    /// Forgets the observations of `endpoint` whose paths read `paths`
    /// (one path, or a composite's comma-separated list); how many.
    pub(super) fn forget_observation(&self, endpoint: &str, paths: &str) -> usize {
        let mut d = lock(&self.downlink);
        let handles: Vec<_> = d
            .observations
            .iter()
            .filter(|(_, o)| o.endpoint == endpoint && o.paths_text() == paths)
            .map(|(h, _)| *h)
            .collect();
        let now = std::time::Instant::now();
        for h in &handles {
            d.observations.remove(h);
            let transmits = d.engine.cancel(*h, now, &mut rand::thread_rng());
            self.send_all(transmits);
        }
        handles.len()
    }
}

fn bad_path(text: &str) -> Answer {
    Answer::Invalid(format!("{text:?} is not an LwM2M path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_bodies_name_the_paths_in_senml() {
        let paths = [
            LwPath::parse("/3303/0/5700").unwrap(),
            LwPath::parse("/3304/0").unwrap(),
        ];
        assert_eq!(
            composite_request_body(ContentFormat::SenmlJson, &paths).unwrap(),
            br#"[{"n":"/3303/0/5700"},{"n":"/3304/0"}]"#.to_vec()
        );
        // RFC 8949: 0x82 array(2), 0xa1 map(1), 0x00 key 0, 0x6c text(12).
        let mut cbor = vec![0x82, 0xa1, 0x00, 0x6c];
        cbor.extend_from_slice(b"/3303/0/5700");
        cbor.extend_from_slice(&[0xa1, 0x00, 0x67]);
        cbor.extend_from_slice(b"/3304/0");
        assert_eq!(
            composite_request_body(ContentFormat::SenmlCbor, &paths).unwrap(),
            cbor
        );
        assert_eq!(composite_request_body(ContentFormat::Tlv, &paths), None);
    }

    #[test]
    fn a_create_without_an_instance_id_takes_the_lowest_free_one() {
        assert_eq!(free_instance("</3303/0>,</3303/1>,</3304/0>", 3303), 2);
        assert_eq!(free_instance("</3303/1>", 3303), 0);
        assert_eq!(free_instance("</3303>", 3303), 0);
        assert_eq!(free_instance("garbage", 3303), 0);
    }
}
