//! What the server asks of a device on its own: after each Register it
//! reads the Device object and observes the configured paths
//! (`lwm2m_observe`); every answer and notification is stored like a
//! report, through the writer.
use super::coap::dedup::Kind;
use super::coap::message::{encode_uint, uint_option};
use super::coap::outbound::Transmit;
use super::downlink::{Ack, DownlinkError, Observation};
use super::format::{self, ContentFormat, DecodeContext, LwPath};
use super::registry::Registration;
use super::server::{lock, Server};
use super::stats::Lwm2mStats;
use crate::error::AppError;
use crate::server::ingest::writer::Queued;
use crate::server::ingest::{Connection, Uplink, UplinkKind};
use crate::server::store::now_ms;
use coap_lite::{CoapOption, MessageClass, Packet, RequestType, ResponseType};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

/// The Device object, read after each registration.
const DEVICE_OBJECT: u16 = 3;

/// Why an answer's values were not stored.
#[derive(Debug)]
pub(super) enum StoreError {
    /// The payload is not what it claims: storing it again will not help.
    Bad(String),
    /// Ours (the database): the device may send it again.
    Internal,
}

/// A request to `path` of a registered client, below its alternate path.
pub(super) fn request_to(r: &Registration, method: RequestType, path: &LwPath) -> Packet {
    let mut p = Packet::new();
    p.header.set_version(1);
    p.header.code = MessageClass::Request(method);
    for segment in r.root_path.split('/').filter(|s| !s.is_empty()) {
        p.add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
    }
    for id in path.ids() {
        p.add_option(CoapOption::UriPath, id.to_string().into_bytes());
    }
    p
}

/// The formats to ask a client for, best first: what it announced on its
/// root link, else what its LwM2M version makes likely (1.0: TLV; 1.1 and
/// later: SenML CBOR, which Zephyr answers by default), then the others
/// that carry several values.
pub(super) fn formats_for(r: &Registration) -> Vec<ContentFormat> {
    let mut out: Vec<ContentFormat> = Vec::new();
    for cf in [112u16, 110, 11542, 11544] {
        if r.content_formats.contains(&cf) {
            out.extend(ContentFormat::from_u16(cf));
        }
    }
    let fallback: &[ContentFormat] = if r.lwm2m_version == "1.0" {
        &[ContentFormat::Tlv, ContentFormat::SenmlJson]
    } else {
        &[
            ContentFormat::SenmlCbor,
            ContentFormat::Tlv,
            ContentFormat::SenmlJson,
        ]
    };
    for f in fallback {
        if !out.contains(f) {
            out.push(*f);
        }
    }
    out
}

/// Whether a response code is a success (2.xx).
pub(super) fn success(p: &Packet) -> bool {
    matches!(
        p.header.code,
        MessageClass::Response(
            ResponseType::Content
                | ResponseType::Changed
                | ResponseType::Created
                | ResponseType::Deleted
                | ResponseType::Valid
                | ResponseType::Continue
        )
    )
}

impl Server {
    /// Reads `path` (Read, or Observe with `observe`), asking for the
    /// client's formats in turn while it answers 4.06 Not Acceptable.
    pub(super) async fn read(
        &self,
        r: &Registration,
        path: LwPath,
        observe: bool,
    ) -> Result<(Packet, Option<Ack>), DownlinkError> {
        let mut last = None;
        for format in formats_for(r) {
            let mut request = request_to(r, RequestType::Get, &path);
            if observe {
                request.add_option(CoapOption::Observe, encode_uint(0));
            }
            request.add_option(CoapOption::Accept, encode_uint(u32::from(format.number())));
            let observation = observe.then(|| Observation {
                registration_id: r.id.clone(),
                endpoint: r.endpoint.clone(),
                path,
                composite: Vec::new(),
            });
            let (_, answer, ack) = self.ask_whole(r.address, request, observation).await?;
            if answer.header.code != MessageClass::Response(ResponseType::NotAcceptable) {
                return Ok((answer, ack));
            }
            self.settle_ack(ack, true);
            last = Some(answer);
        }
        last.map(|answer| (answer, None))
            .ok_or(DownlinkError::Cancelled)
    }

    /// After a Register: reads the Device object, then observes the
    /// configured paths of the objects the client has. Each answer's
    /// values are stored. Failures are logged; the registration stands.
    pub(super) async fn onboard(self: Arc<Self>, r: Registration) {
        let has = |object: u16| {
            r.object_links.contains(&format!("</{object}/"))
                || r.object_links.contains(&format!("</{object}>"))
        };
        if has(DEVICE_OBJECT) {
            let path = LwPath::new(&[DEVICE_OBJECT]).unwrap_or(LwPath::ROOT);
            self.read_and_store(&r, path, false).await;
        }
        let configured = self.state.settings.lwm2m_observe.clone();
        for path in &configured {
            if path.ids().first().is_some_and(|o| has(*o)) {
                self.read_and_store(&r, *path, true).await;
            }
        }
        // What operators observed with commands, made again: a new
        // registration ended the device's observations.
        let made = match crate::server::db::endpoint_operation::operator_observations(
            &self.state.db.pool,
            &r.endpoint,
        )
        .await
        {
            Ok(paths) => paths,
            Err(e) => {
                tracing::error!(endpoint = %r.endpoint, "cannot read the operators' observations: {e}");
                Vec::new()
            }
        };
        for text in made {
            if configured.iter().any(|p| p.to_string() == text) {
                continue;
            }
            let answer = self.observe_paths(&r, &text).await;
            if !matches!(answer, crate::server::dispatch::Answer::Success { .. }) {
                tracing::warn!(endpoint = %r.endpoint, paths = text, "an operator's observation was not made again: {answer:?}");
            } else {
                Lwm2mStats::bump(&self.stats.observations);
            }
        }
    }

    async fn read_and_store(&self, r: &Registration, path: LwPath, observe: bool) {
        match self.read(r, path, observe).await {
            Ok((answer, ack)) if success(&answer) => {
                match self.store_answer(&r.endpoint, path, &answer).await {
                    Ok(_) => self.settle_ack(ack, true),
                    Err(StoreError::Bad(reason)) => {
                        self.settle_ack(ack, true);
                        tracing::warn!(endpoint = %r.endpoint, %path, "the device's answer was not stored: {reason}")
                    }
                    Err(StoreError::Internal) => self.settle_ack(ack, false),
                }
                if observe {
                    Lwm2mStats::bump(&self.stats.observations);
                }
            }
            Ok((answer, ack)) => {
                self.settle_ack(ack, true);
                tracing::warn!(endpoint = %r.endpoint, %path, code = %answer.header.code, observe, "the device refused a request")
            }
            Err(e) => {
                tracing::warn!(endpoint = %r.endpoint, %path, observe, "no answer from the device: {e}")
            }
        }
    }

    /// Stores the values of an answer or a notification about `path`.
    pub(super) async fn store_answer(
        &self,
        endpoint: &str,
        path: LwPath,
        answer: &Packet,
    ) -> Result<usize, StoreError> {
        let records = self.decode_answer(path, answer)?;
        if records.is_empty() {
            return Ok(0);
        }
        let count = records.len();
        match self.state.writer.submit(uplink_of(endpoint, records)).await {
            Ok(_) => {
                self.stats.values.fetch_add(count as u64, Ordering::Relaxed);
                Ok(count)
            }
            Err(e) if e.status_code() < 500 => Err(StoreError::Bad(e.to_string())),
            Err(_) => Err(StoreError::Internal),
        }
    }

    /// The records of an answer about `path` (no await: the decoder's
    /// context borrows the type cache).
    fn decode_answer(
        &self,
        path: LwPath,
        answer: &Packet,
    ) -> Result<Vec<format::Record>, StoreError> {
        let types = &self.state.types;
        let resolve = |object_id: i64, resource_id: i64| {
            types
                .get((object_id, resource_id))
                .map(|(_, data_type)| data_type)
        };
        let format = match uint_option(answer, CoapOption::ContentFormat) {
            Some(n) => u16::try_from(n)
                .ok()
                .and_then(ContentFormat::from_u16)
                .ok_or_else(|| StoreError::Bad(format!("unknown content format {n}")))?,
            // Some 1.0 clients leave the format out: a single resource is
            // text, anything larger TLV (the 1.0 defaults).
            None if path.len() >= 3 => ContentFormat::Text,
            None => ContentFormat::Tlv,
        };
        let ctx = DecodeContext {
            request_path: path,
            now_ms: now_ms(),
            resolve: &resolve,
        };
        format::decode(format, &answer.payload, &ctx).map_err(|e| StoreError::Bad(e.to_string()))
    }

    /// A notification of `observation`: its values are stored, and a
    /// confirmable one is acknowledged after the commit. One the database
    /// could not take is not acknowledged, so the device sends it again.
    ///
    /// A notification in one datagram (nearly all) is decoded here and
    /// queued to the writer without a task of its own: the returned commit
    /// goes to the task that acknowledges notifications as their commits
    /// end (`notification_committed`). A block-wise one is completed on a
    /// task of its own, then queued and acknowledged the same way.
    pub(super) fn notification(
        self: &Arc<Self>,
        ack: NotificationAck,
        packet: Packet,
        fresh: bool,
    ) -> Option<NotificationCommit> {
        if !fresh {
            // Older than one already stored (RFC 7641 §3.4): still a value
            // the device measured, so it is stored like the others (an
            // acknowledged value is never dropped), and counted.
            Lwm2mStats::bump(&self.stats.stale_notifications);
        }
        if packet.get_option(CoapOption::Block2).is_some() {
            self.blockwise_notification(ack, packet);
            return None;
        }
        self.queue_notification(ack, packet)
    }

    /// Decodes a whole notification and queues its values to the writer.
    fn queue_notification(
        &self,
        ack: NotificationAck,
        packet: Packet,
    ) -> Option<NotificationCommit> {
        let (peer, mid) = (ack.peer, ack.mid);
        let records = match self.decode_answer(ack.observation.path, &packet) {
            Ok(records) => records,
            Err(e) => {
                self.end_alone(|out| self.notification_refused(e, ack, out));
                return None;
            }
        };
        if records.is_empty() {
            self.end_alone(|out| self.notification_committed(Ok(0), ack, out));
            return None;
        }
        match self
            .state
            .writer
            .try_queue(uplink_of(&ack.observation.endpoint, records))
        {
            Ok(queued) => Some(NotificationCommit {
                queued,
                ack: Some(ack),
            }),
            Err(_) => {
                // Not stored, so not acknowledged: the device retransmits.
                Lwm2mStats::bump(&self.stats.limited);
                lock(&self.dedup).forget(peer, mid);
                self.warn(peer, "dropped a notification: the writer's queue is full");
                None
            }
        }
    }

    /// Acknowledges a notification once the commit of its values is
    /// known (or refuses it when they were refused).
    pub(super) fn notification_committed(
        &self,
        stored: Result<usize, AppError>,
        ack: NotificationAck,
        out: &mut Vec<Transmit>,
    ) {
        match stored {
            Ok(count) => {
                self.stats.values.fetch_add(count as u64, Ordering::Relaxed);
                Lwm2mStats::bump(&self.stats.notifications);
                self.settle_into(ack.peer, ack.mid, ack.kind, ack.reply, out);
                // A clock set back meanwhile counts as no time at all.
                let waited = SystemTime::now()
                    .duration_since(ack.arrived)
                    .unwrap_or_default();
                self.stats.commit_latency.record(waited);
            }
            Err(e) if e.status_code() < 500 => {
                self.notification_refused(StoreError::Bad(e.to_string()), ack, out)
            }
            Err(_) => self.notification_refused(StoreError::Internal, ack, out),
        }
    }

    /// Ends one notification outside a commit's batch of them: its answer
    /// (`notification_committed` or `notification_refused`) goes out at once.
    fn end_alone(&self, end: impl FnOnce(&mut Vec<Transmit>)) {
        let mut out = Vec::with_capacity(1);
        end(&mut out);
        self.send_all(out);
    }

    fn notification_refused(&self, e: StoreError, ack: NotificationAck, out: &mut Vec<Transmit>) {
        match e {
            StoreError::Bad(reason) => {
                Lwm2mStats::bump(&self.stats.client_errors);
                tracing::warn!(endpoint = %ack.observation.endpoint, path = %ack.observation.path, "a notification was not stored: {reason}");
                self.settle_into(ack.peer, ack.mid, ack.kind, ack.reply, out);
            }
            // The device sends it again.
            StoreError::Internal => lock(&self.dedup).forget(ack.peer, ack.mid),
        }
    }

    /// A notification carrying the first block of its representation:
    /// the rest is fetched, then the whole is stored.
    fn blockwise_notification(self: &Arc<Self>, ack: NotificationAck, packet: Packet) {
        let server = self.clone();
        tokio::spawn(async move {
            let o = ack.observation.clone();
            let packet = match server.whole_notification(&o, packet, ack.peer).await {
                Ok(packet) => packet,
                // The device's values could not be fetched: not stored, so
                // not acknowledged either; a retransmission is processed
                // again. (A confirmable one, that is: a lost non-confirmable
                // block-wise notification is lost, as any NON may be.)
                Err(DownlinkError::Blockwise(_)) => {
                    server.settle(ack.peer, ack.mid, ack.kind, ack.reply);
                    return;
                }
                Err(e) => {
                    tracing::warn!(endpoint = %o.endpoint, path = %o.path, "the rest of a block-wise notification did not come: {e}");
                    lock(&server.dedup).forget(ack.peer, ack.mid);
                    return;
                }
            };
            if let Some(commit) = server.queue_notification(ack, packet) {
                let (stored, ack) = commit.await;
                server.end_alone(|out| server.notification_committed(stored, ack, out));
            }
        });
    }
}

/// The writer's input for the records of an answer or notification.
fn uplink_of(endpoint: &str, records: Vec<format::Record>) -> Uplink {
    Uplink {
        endpoint: endpoint.to_string(),
        kind: if records.len() > 1 {
            UplinkKind::Composite
        } else {
            UplinkKind::Single
        },
        values: format::decoded_values(records),
        connection: Connection::Native(None),
    }
}

/// Who a notification's acknowledgement goes to, once its values are
/// committed.
pub(super) struct NotificationAck {
    pub(super) observation: Arc<Observation>,
    pub(super) peer: SocketAddr,
    pub(super) mid: u16,
    pub(super) kind: Option<Kind>,
    pub(super) reply: Option<Transmit>,
    /// When the kernel received the notification.
    pub(super) arrived: SystemTime,
}

/// A notification queued to the writer, until its commit.
pub(super) struct NotificationCommit {
    queued: Queued,
    ack: Option<NotificationAck>,
}

impl std::future::Future for NotificationCommit {
    type Output = (Result<usize, AppError>, NotificationAck);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let stored = std::task::ready!(std::pin::Pin::new(&mut self.queued).poll(cx));
        let ack = self
            .ack
            .take()
            .expect("a notification commit polled after it ended");
        std::task::Poll::Ready((stored, ack))
    }
}

impl Server {
    /// A notification with its whole body: one that carries the first
    /// block of a block-wise representation is completed with GETs of the
    /// rest (FETCHes for an observe-composite), without Observe (RFC 7959
    /// §2.6), in the format it came in.
    async fn whole_notification(
        &self,
        observation: &Observation,
        packet: Packet,
        peer: SocketAddr,
    ) -> Result<Packet, DownlinkError> {
        if packet.get_option(CoapOption::Block2).is_none() {
            return Ok(packet);
        }
        let Some(r) = lock(&self.registry)
            .get(&observation.registration_id)
            .cloned()
        else {
            return Err(DownlinkError::Cancelled);
        };
        let format = uint_option(&packet, CoapOption::ContentFormat);
        let request = if observation.composite.is_empty() {
            let mut request = request_to(&r, RequestType::Get, &observation.path);
            if let Some(cf) = format {
                request.add_option(CoapOption::Accept, encode_uint(cf));
            }
            request
        } else {
            // An observe-composite's further blocks: the FETCH of its
            // paths again (its body says what is fetched, RFC 8132), in
            // the SenML format the notification came in.
            let format = match format {
                Some(110) => ContentFormat::SenmlJson,
                _ => ContentFormat::SenmlCbor,
            };
            let Some(body) = super::manage::composite_request_body(format, &observation.composite)
            else {
                return Err(DownlinkError::Cancelled);
            };
            let mut request = request_to(&r, RequestType::Fetch, &LwPath::ROOT);
            let number = encode_uint(u32::from(format.number()));
            request.add_option(CoapOption::ContentFormat, number.clone());
            request.add_option(CoapOption::Accept, number);
            request.payload = body;
            request
        };
        self.rest_of_blocks(peer, request, packet).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(version: &str, formats: Vec<u16>) -> Registration {
        Registration {
            id: "abc".into(),
            endpoint: "dev".into(),
            address: "127.0.0.1:5683".parse().unwrap(),
            lwm2m_version: version.into(),
            binding: "U".into(),
            queue_mode: false,
            lifetime_s: 60,
            object_links: "</3/0>".into(),
            root_path: "/lwm2m".into(),
            content_formats: formats,
            registered_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn formats_follow_the_root_link_then_the_version() {
        use ContentFormat::*;
        assert_eq!(
            formats_for(&registration("1.1", vec![112])),
            vec![SenmlCbor, Tlv, SenmlJson]
        );
        assert_eq!(
            formats_for(&registration("1.1", vec![110, 11542])),
            vec![SenmlJson, Tlv, SenmlCbor]
        );
        assert_eq!(
            formats_for(&registration("1.0", vec![])),
            vec![Tlv, SenmlJson]
        );
    }

    #[test]
    fn requests_go_below_the_alternate_path() {
        let r = registration("1.1", vec![]);
        let p = request_to(&r, RequestType::Get, &LwPath::parse("/3/0/9").unwrap());
        let segments: Vec<&[u8]> = p
            .get_option(CoapOption::UriPath)
            .unwrap()
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert_eq!(
            segments,
            vec![&b"lwm2m"[..], &b"3"[..], &b"0"[..], &b"9"[..]]
        );
    }
}
