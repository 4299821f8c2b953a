//! The native LwM2M server's socket task: one UDP socket, read in a loop
//! that never waits on the database. Each request is handled on a task of
//! its own (at most `lwm2m_max_requests_in_progress` at a time, past which
//! a request is answered 5.03 with a time to retry after); a notification,
//! the bulk of the traffic, is decoded in the loop and queued to the
//! writer, and one task acknowledges notifications as their commits end.
//! An answer
//! goes out after the commit that holds what it reported, and is kept for
//! the exchange's lifetime so that a retransmitted request is answered
//! again without being processed twice (RFC 7252 §4.5).
//!
//! Served: the registration interface (`POST /rd`, `POST /rd/<id>`,
//! `DELETE /rd/<id>`), Send (`POST /dp`) and firmware downloads
//! (`GET /fw/<file>`, see `firmware`). What a device reports goes to the
//! same group-commit writer as the Leshan JSON routes, as a neutral
//! [`Uplink`]. A request sent block-wise (RFC 7959 Block1) is reassembled
//! first and handled once, as one request.
use super::coap::block::{finish_block1, Block1Assembler, Block1Config, Block1Outcome, BlockOpt};
use super::coap::dedup::{Check, Dedup, DedupConfig, Kind, Sameness};
use super::coap::message::{self as msg, DropReason, Inbound};
use super::coap::outbound::{Outbound, OutboundConfig};
use super::downlink::Downlink;
use super::link_format::{self, RegisterLinks};
use super::observe::NotificationCommit;
use super::registration::{self, RdRequest};
use super::registry::{Registration, Registry, RegistryFull, UpdateChanges};
use super::send;
use super::stats::Lwm2mStats;
use super::udp::RecvBatch;
use crate::error::AppError;
use crate::server::config::NosecPolicy;
use crate::server::db;
use crate::server::db::device_credential::SecurityMode;
use crate::server::db::endpoint::RegistrationChange;
use crate::server::ingest::{Connection, DecodedValue, Session, Uplink, UplinkKind};
use crate::server::state::AppState;
use crate::server::store::now_ms;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use futures::FutureExt;
use rand::Rng;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Semaphore};

/// The Max-Age of a 5.03 answered while `lwm2m_max_requests_in_progress`
/// requests are in progress: the seconds after which the client may retry
/// (RFC 7252 §5.9.3.4), drawn from this range so that a burst refused
/// together does not come back together.
const BUSY_RETRY_SECS: std::ops::RangeInclusive<u32> = 1..=4;
/// The largest datagram read. CoAP over UDP keeps messages under the path
/// MTU (RFC 7252 §4.6); larger ones are truncated by the kernel and then
/// fail to parse.
const MAX_DATAGRAM: usize = 65_535;
/// How often expired registrations are swept.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);
/// How often at most a kind of bad input is logged: a flood of garbage must
/// not become a flood of log lines. Every one is counted.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The running LwM2M server, for the metrics, the dashboard and the tests.
#[derive(Clone)]
pub struct Lwm2mHandle {
    pub local_addr: SocketAddr,
    pub stats: Arc<Lwm2mStats>,
    registry: Arc<Mutex<Registry>>,
    server: Arc<Server>,
}

impl Lwm2mHandle {
    /// Registrations held now.
    pub fn registered(&self) -> usize {
        lock(&self.registry).len()
    }

    /// The endpoint's registration, if it is registered here.
    pub fn registration(&self, endpoint: &str) -> Option<Registration> {
        lock(&self.registry).by_endpoint(endpoint).cloned()
    }

    /// Sends a claimed command over CoAP if the endpoint is registered
    /// here (see `command`); None when it is not.
    pub async fn command(
        &self,
        command: &crate::server::db::endpoint_operation::Claimed,
    ) -> Option<crate::server::dispatch::Answer> {
        self.server.command(command).await
    }

    /// The paths the server observes on the endpoint now.
    pub fn observations(&self, endpoint: &str) -> Vec<String> {
        let mut paths = self.server.observations_of(endpoint);
        paths.sort();
        paths
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) struct Server {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) state: AppState,
    pub(super) registry: Arc<Mutex<Registry>>,
    pub(super) dedup: Mutex<Dedup>,
    pub(super) downlink: Mutex<Downlink>,
    /// Block-wise requests being received.
    block1: Mutex<Block1Assembler>,
    pub(super) firmware_cache: Mutex<super::firmware::ImageCache>,
    pub(super) stats: Arc<Lwm2mStats>,
    in_progress: Arc<Semaphore>,
    /// Message ids of our non-confirmable answers.
    next_mid: std::sync::atomic::AtomicU16,
    warned: Mutex<Option<Instant>>,
}

/// Binds `addr` and serves LwM2M on it until the runtime ends.
pub async fn start(state: AppState, addr: SocketAddr) -> std::io::Result<Lwm2mHandle> {
    let socket = Arc::new(UdpSocket::bind(addr).await?);
    let local_addr = socket.local_addr()?;
    match super::udp::set_receive_buffer(&socket, super::udp::RECEIVE_BUFFER) {
        Ok(granted) if granted < super::udp::RECEIVE_BUFFER / 4 => tracing::warn!(
            granted_kib = granted / 1024,
            wanted_kib = super::udp::RECEIVE_BUFFER / 1024,
            "the LwM2M socket's receive buffer is small: bursts of datagrams may be dropped \
             (raise the sysctl net.core.rmem_max, see docs/lwm2m.md)"
        ),
        Ok(granted) => tracing::debug!(granted_kib = granted / 1024, "LwM2M socket receive buffer"),
        Err(e) => tracing::warn!(error = %e, "cannot set the LwM2M socket's receive buffer"),
    }
    if let Err(e) = super::udp::enable_timestamps(&socket) {
        tracing::warn!(error = %e, "no receive times from the kernel: notification latency counts from when a datagram is read");
    }
    let settings = &state.settings;
    let registry = Arc::new(Mutex::new(Registry::new(
        settings.lwm2m_max_registrations_per_ip as usize,
        settings.lwm2m_max_registrations as usize,
    )));
    let stats = Arc::new(Lwm2mStats::default());
    let server = Arc::new(Server {
        socket,
        state: state.clone(),
        registry: registry.clone(),
        dedup: Mutex::new(Dedup::new(DedupConfig::default())),
        downlink: Mutex::new(Downlink::new(Outbound::new(OutboundConfig::default()))),
        block1: Mutex::new(Block1Assembler::new(block1_config())),
        firmware_cache: Mutex::new(super::firmware::ImageCache::default()),
        stats: stats.clone(),
        in_progress: Arc::new(Semaphore::new(
            settings.lwm2m_max_requests_in_progress as usize,
        )),
        next_mid: std::sync::atomic::AtomicU16::new(rand::random()),
        warned: Mutex::new(None),
    });
    let (commits, queued) = mpsc::unbounded_channel();
    tokio::spawn(server.clone().receive(commits));
    tokio::spawn(server.clone().acknowledge_notifications(queued));
    tokio::spawn(server.clone().expire());
    tokio::spawn(server.clone().timers());
    tracing::info!(%local_addr, "LwM2M server listening (CoAP over UDP)");
    Ok(Lwm2mHandle {
        local_addr,
        stats,
        registry,
        server,
    })
}

impl Server {
    async fn receive(self: Arc<Self>, commits: mpsc::UnboundedSender<NotificationCommit>) {
        let mut batch = RecvBatch::new(MAX_DATAGRAM);
        loop {
            if let Err(e) = batch.recv(&self.socket).await {
                // ICMP errors of earlier sends surface here on Linux
                // (connection refused); the socket itself is fine.
                tracing::debug!(error = %e, "LwM2M socket receive error");
                continue;
            }
            for (bytes, peer, arrived) in batch.datagrams() {
                Lwm2mStats::bump(&self.stats.datagrams);
                if let Some(commit) = self.datagram(bytes, peer, arrived) {
                    let _ = commits.send(commit);
                }
            }
        }
    }

    /// Acknowledges notifications as the commits of their values end: one
    /// task for all of them, beside the socket loop, so that a
    /// notification costs no task of its own and a commit of many wakes
    /// this task once. The channel holds no more than the writer's queue
    /// does: each commit in it is a request the writer has taken.
    ///
    /// The writer ends its requests in the order it took them, so the task
    /// waits on the oldest one only, and takes the ones behind it that
    /// ended with it without waiting. (A set of futures woken one by one,
    /// thousands per commit at full load, cost a tenth of the runtime's
    /// time.) A request the writer refuses before its batch commits waits
    /// for the commit of the ones before it, one commit at most.
    async fn acknowledge_notifications(
        self: Arc<Self>,
        mut queued: mpsc::UnboundedReceiver<NotificationCommit>,
    ) {
        let mut pending: VecDeque<NotificationCommit> = VecDeque::new();
        let mut open = true;
        loop {
            let oldest = std::future::poll_fn(|cx| {
                while open {
                    match queued.poll_recv(cx) {
                        Poll::Ready(Some(commit)) => pending.push_back(commit),
                        Poll::Ready(None) => open = false,
                        Poll::Pending => break,
                    }
                }
                match pending.front_mut() {
                    Some(front) => front.poll_unpin(cx).map(Some),
                    None if open => Poll::Pending,
                    None => Poll::Ready(None),
                }
            })
            .await;
            let Some((stored, ack)) = oldest else {
                break;
            };
            pending.pop_front();
            // One commit ends many notifications: their acknowledgements
            // go out together.
            let mut acks = Vec::new();
            self.notification_committed(stored, ack, &mut acks);
            while let Some(Some((stored, ack))) = pending.front_mut().map(FutureExt::now_or_never) {
                pending.pop_front();
                self.notification_committed(stored, ack, &mut acks);
            }
            self.send_all(acks);
        }
    }

    fn datagram(
        self: &Arc<Self>,
        bytes: &[u8],
        peer: SocketAddr,
        arrived: SystemTime,
    ) -> Option<NotificationCommit> {
        match msg::classify(bytes) {
            Inbound::Request(packet) => {
                self.request(packet, peer);
                None
            }
            Inbound::Response(packet) | Inbound::Empty(packet) => {
                self.device_message(packet, peer, arrived)
            }
            Inbound::Rejected { reason, reply } => {
                if reason != DropReason::Ping {
                    Lwm2mStats::bump(&self.stats.malformed);
                    self.warn(peer, &format!("rejected a CoAP message: {reason:?}"));
                }
                if let Some(reply) = reply {
                    self.send_packet(&reply, peer);
                }
                None
            }
        }
    }

    fn request(self: &Arc<Self>, mut packet: Packet, peer: SocketAddr) {
        let MessageClass::Request(method) = packet.header.code else {
            return;
        };
        let mid = packet.header.message_id;
        let kind = match packet.header.get_type() {
            MessageType::Confirmable => Kind::Confirmable,
            _ => Kind::NonConfirmable,
        };
        match lock(&self.dedup).check(peer, mid, kind, Sameness::of(&packet), Instant::now()) {
            Check::New => {}
            Check::Resend(bytes) => {
                Lwm2mStats::bump(&self.stats.duplicates);
                self.send_bytes(bytes, peer);
                return;
            }
            Check::InFlight | Check::Drop => {
                Lwm2mStats::bump(&self.stats.duplicates);
                return;
            }
        }
        let Ok(permit) = self.in_progress.clone().try_acquire_owned() else {
            self.busy(&packet, peer);
            return;
        };
        let block1 = match self.reassemble(&mut packet, peer) {
            Some(block1) => block1,
            None => return,
        };
        let server = self.clone();
        tokio::spawn(async move {
            let (mut answer, registered) = server.handle(&packet, method, peer).await;
            // Free before the answer goes: a client that sends its next
            // request as soon as it has the answer must find room.
            drop(permit);
            if let Some(block1) = block1 {
                finish_block1(&mut answer, block1);
            }
            server.answer(&packet, answer, peer);
            // Only once the client has its 2.01: asked before, it could not
            // tell our requests from a server it is not registered with.
            if let Some(registration) = registered {
                server.onboard(registration).await;
            }
        });
    }

    /// Answers a request that finds `lwm2m_max_requests_in_progress` in
    /// progress: 5.03 with a Max-Age to retry after. Dropping it instead
    /// would leave its client to retransmit on CoAP's backoff (2, 4, 8, 16
    /// and 32 s and more), and a registration burst would take a minute
    /// or two to settle after the server caught up; with the answer the
    /// client neither retransmits nor waits longer than it must. The
    /// answer is kept, so that a retransmission is answered the same.
    fn busy(&self, request: &Packet, peer: SocketAddr) {
        Lwm2mStats::bump(&self.stats.limited);
        self.warn(
            peer,
            "answered 5.03: lwm2m_max_requests_in_progress requests are in progress",
        );
        let retry = rand::thread_rng().gen_range(BUSY_RETRY_SECS);
        let mut answer = error_response(
            request,
            ResponseType::ServiceUnavailable,
            "too many requests in progress; retry after Max-Age seconds",
        );
        answer.add_option(CoapOption::MaxAge, msg::encode_uint(retry));
        self.answer(request, answer, peer);
    }

    /// Block1 (RFC 7959 §2.3): an intermediate block is stored and
    /// answered 2.31 Continue here; the last one turns `packet` into the
    /// whole request (Some(its Block1), echoed on the final answer). None
    /// when the block is answered already.
    fn reassemble(&self, packet: &mut Packet, peer: SocketAddr) -> Option<Option<BlockOpt>> {
        let outcome = lock(&self.block1).on_request(peer, packet, Instant::now());
        match outcome {
            Block1Outcome::NotBlockwise => Some(None),
            Block1Outcome::Continue(answer) => {
                self.answer(packet, answer, peer);
                None
            }
            Block1Outcome::Reject { response, .. } => {
                Lwm2mStats::bump(&self.stats.block_errors);
                let code = match response.header.code {
                    MessageClass::Response(code) => code,
                    _ => ResponseType::BadRequest,
                };
                let reason = match code {
                    ResponseType::BadOption => "malformed Block1 option".to_string(),
                    ResponseType::RequestEntityIncomplete => {
                        "Block1: a block out of order or of no transfer in progress; \
                         start again at block 0"
                            .to_string()
                    }
                    ResponseType::RequestEntityTooLarge => format!(
                        "Block1: the body exceeds {} bytes",
                        block1_config().max_body
                    ),
                    ResponseType::ServiceUnavailable => {
                        "Block1: too many block-wise requests in progress".to_string()
                    }
                    _ => "Block1: the block's payload does not match its size".to_string(),
                };
                let mut answer = self.refuse(packet, code, &reason, peer);
                // Size1 tells the client the largest body taken (§4).
                if let Some(size1) = response.get_first_option(CoapOption::Size1) {
                    answer.add_option(CoapOption::Size1, size1.clone());
                }
                self.answer(packet, answer, peer);
                None
            }
            Block1Outcome::Complete { body, block1 } => {
                if block1.num > 0 {
                    Lwm2mStats::bump(&self.stats.block_transfers);
                }
                packet.payload = body;
                packet.clear_option(CoapOption::Block1);
                packet.clear_option(CoapOption::Size1);
                Some(Some(block1))
            }
        }
    }

    /// Sends `answer` and keeps it for retransmissions of the request.
    fn answer(&self, request: &Packet, mut answer: Packet, peer: SocketAddr) {
        if answer.header.get_type() == MessageType::NonConfirmable {
            answer.header.message_id = self
                .next_mid
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match answer.to_bytes() {
            Ok(bytes) => {
                lock(&self.dedup).complete(peer, request.header.message_id, bytes.clone());
                self.send_bytes(bytes, peer);
            }
            Err(e) => {
                tracing::error!(error = %e, %peer, "cannot encode a CoAP answer");
                lock(&self.dedup).forget(peer, request.header.message_id);
            }
        }
    }

    fn send_packet(&self, packet: &Packet, peer: SocketAddr) {
        if let Ok(bytes) = packet.to_bytes() {
            self.send_bytes(bytes, peer);
        }
    }

    pub(super) fn send_bytes(&self, bytes: Vec<u8>, peer: SocketAddr) {
        // try_send_to never waits: a full socket buffer drops the datagram,
        // as the network may, and the client retransmits.
        if let Err(e) = self.socket.try_send_to(&bytes, peer) {
            tracing::debug!(error = %e, %peer, "cannot send a CoAP datagram");
        }
    }

    /// Logs a warning about bad input at most once per `WARN_INTERVAL`.
    pub(super) fn warn(&self, peer: SocketAddr, what: &str) {
        let mut last = lock(&self.warned);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < WARN_INTERVAL) {
            return;
        }
        *last = Some(now);
        tracing::warn!(%peer, "{what} (further ones are counted, not logged, for 10 s)");
    }

    /// An error answer with a diagnostic payload (RFC 7252 §5.5.2), logged
    /// as a warning and counted.
    pub(super) fn refuse(
        &self,
        request: &Packet,
        code: ResponseType,
        reason: &str,
        peer: SocketAddr,
    ) -> Packet {
        Lwm2mStats::bump(&self.stats.client_errors);
        tracing::warn!(%peer, code = %MessageClass::Response(code), path = %uri_path(request), "{reason}");
        error_response(request, code, reason)
    }

    /// The answer to a request, and the registration it made, if any.
    async fn handle(
        &self,
        request: &Packet,
        method: RequestType,
        peer: SocketAddr,
    ) -> (Packet, Option<Registration>) {
        if let Some(rd) = registration::classify_rd_request(request) {
            return match rd {
                RdRequest::Register => self.register(request, peer).await,
                RdRequest::Update(id) => (self.update(request, &id, peer).await, None),
                RdRequest::Deregister(id) => (self.deregister(request, &id, peer).await, None),
            };
        }
        let path = uri_path(request);
        let answer = match (method, path.as_str()) {
            (RequestType::Post, "/dp") => self.send(request, peer).await,
            (RequestType::Get, p) if p.starts_with("/fw/") => {
                self.serve_firmware(request, peer).await
            }
            (_, "/dp") | (_, "/rd") => self.refuse(
                request,
                ResponseType::MethodNotAllowed,
                "method not allowed on this path",
                peer,
            ),
            (_, p) if p.starts_with("/rd/") || p.starts_with("/fw/") => self.refuse(
                request,
                ResponseType::MethodNotAllowed,
                "method not allowed on this path",
                peer,
            ),
            _ => self.refuse(request, ResponseType::NotFound, "no such resource", peer),
        };
        (answer, None)
    }

    /// The server's answer to a failure of ours (the database): 5.00, so
    /// that the client tries again later.
    pub(super) fn internal(&self, request: &Packet, e: &dyn std::fmt::Display) -> Packet {
        Lwm2mStats::bump(&self.stats.server_errors);
        tracing::error!(error = %e, path = %uri_path(request), "LwM2M request failed");
        error_response(request, ResponseType::InternalServerError, "internal error")
    }

    /// Whether `endpoint` may register over plain CoAP.
    async fn may_register(&self, endpoint: &str) -> Result<bool, sqlx::Error> {
        if self.state.settings.lwm2m_nosec == NosecPolicy::Open {
            return Ok(true);
        }
        let credential = db::device_credential::find(&self.state.db.pool, endpoint).await?;
        Ok(credential.is_some_and(|c| c.security_mode == SecurityMode::NoSec))
    }

    async fn register(&self, request: &Packet, peer: SocketAddr) -> (Packet, Option<Registration>) {
        match self.try_register(request, peer).await {
            Ok(registration) => (
                registration::register_created(request, &registration.id),
                Some(registration),
            ),
            Err(answer) => (answer, None),
        }
    }

    async fn try_register(
        &self,
        request: &Packet,
        peer: SocketAddr,
    ) -> Result<Registration, Packet> {
        let params = match registration::parse_register_query(registration::query_params(request)) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(request, e.response_code(), &e.to_string(), peer)),
        };
        let links = match self.links(request) {
            Ok(links) => links.unwrap_or_default(),
            Err(answer) => return Err(self.refuse(request, answer.0, &answer.1, peer)),
        };
        match self.may_register(&params.endpoint).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(self.refuse(
                    request,
                    ResponseType::Forbidden,
                    &format!(
                        "endpoint {:?} is not provisioned for plain CoAP (no security); \
                         provision it or set lwm2m_nosec = \"open\"",
                        params.endpoint
                    ),
                    peer,
                ))
            }
            Err(e) => return Err(self.internal(request, &e)),
        }
        if let Err(full) = lock(&self.registry).check(&params.endpoint, peer) {
            return Err(self.full(request, full, peer));
        }
        let now = now_ms();
        let registration = Registration {
            id: self.fresh_id(),
            endpoint: params.endpoint.clone(),
            address: peer,
            lwm2m_version: params.lwm2m_version.as_str().to_string(),
            binding: params.binding.clone(),
            queue_mode: params.queue_mode,
            lifetime_s: i64::from(params.lifetime_s),
            object_links: link_format::to_link_format(links.root.as_ref(), &links.objects),
            root_path: links.alternate_path().unwrap_or_default(),
            content_formats: links.content_formats().to_vec(),
            registered_at_ms: now,
            updated_at_ms: now,
        };
        if let Err(e) = self
            .record(&registration, RegistrationChange::Registered, now)
            .await
        {
            return Err(self.internal(request, &e));
        }
        let replaced = match lock(&self.registry).register(registration.clone()) {
            Ok(replaced) => replaced,
            // Another Register took the last place meanwhile.
            Err(full) => return Err(self.full(request, full, peer)),
        };
        // A new registration ends the old one's observations (the client
        // forgot them when it registered again).
        if let Some(old) = &replaced {
            self.forget_observations(&old.id);
        }
        Lwm2mStats::bump(&self.stats.registrations);
        tracing::info!(
            endpoint = %registration.endpoint,
            %peer,
            id = %registration.id,
            lwm2m = %registration.lwm2m_version,
            binding = %registration.binding,
            queue_mode = registration.queue_mode,
            lifetime_s = registration.lifetime_s,
            replaced = replaced.is_some(),
            "LwM2M client registered"
        );
        Ok(registration)
    }

    fn full(&self, request: &Packet, full: RegistryFull, peer: SocketAddr) -> Packet {
        Lwm2mStats::bump(&self.stats.limited);
        let code = match full {
            RegistryFull::PerAddress => ResponseType::TooManyRequests,
            RegistryFull::Total => ResponseType::ServiceUnavailable,
        };
        self.refuse(
            request,
            code,
            &format!("registration refused: {} reached", full.as_str()),
            peer,
        )
    }

    /// A registration id that no registration holds.
    fn fresh_id(&self) -> String {
        let mut rng = rand::thread_rng();
        loop {
            let id = registration::new_registration_id(&mut rng);
            if lock(&self.registry).get(&id).is_none() {
                return id;
            }
        }
    }

    /// The request's object list, if it has a payload: Ok(None) without.
    #[allow(clippy::result_large_err)]
    fn links(&self, request: &Packet) -> Result<Option<RegisterLinks>, (ResponseType, String)> {
        if request.payload.is_empty() {
            return Ok(None);
        }
        match msg::uint_option(request, CoapOption::ContentFormat) {
            None | Some(LINK_FORMAT) => {}
            Some(other) => {
                return Err((
                    ResponseType::UnsupportedContentFormat,
                    format!("content format {other}: the object list is link format (40)"),
                ))
            }
        }
        link_format::parse_register_payload(&request.payload)
            .map(Some)
            .map_err(|e| (ResponseType::BadRequest, format!("object list: {e}")))
    }

    async fn update(&self, request: &Packet, id: &str, peer: SocketAddr) -> Packet {
        let params = match registration::parse_update_query(registration::query_params(request)) {
            Ok(p) => p,
            Err(e) => return self.refuse(request, e.response_code(), &e.to_string(), peer),
        };
        let links = match self.links(request) {
            Ok(links) => links,
            Err(answer) => return self.refuse(request, answer.0, &answer.1, peer),
        };
        let now = now_ms();
        let changes = UpdateChanges {
            lifetime_s: params.lifetime_s.map(i64::from),
            binding: params.binding,
            queue_mode: params.queue_mode,
            object_links: links
                .as_ref()
                .map(|l| link_format::to_link_format(l.root.as_ref(), &l.objects)),
            root_path: links
                .as_ref()
                .map(|l| l.alternate_path().unwrap_or_default()),
            content_formats: links.as_ref().map(|l| l.content_formats().to_vec()),
        };
        let Some(registration) = lock(&self.registry).update(id, peer, changes, now) else {
            return self.refuse(
                request,
                ResponseType::NotFound,
                "no such registration; register again",
                peer,
            );
        };
        if let Err(e) = self
            .record(&registration, RegistrationChange::Updated, now)
            .await
        {
            return self.internal(request, &e);
        }
        Lwm2mStats::bump(&self.stats.updates);
        tracing::debug!(endpoint = %registration.endpoint, %peer, id, "LwM2M registration updated");
        msg::response_for(request, ResponseType::Changed)
    }

    async fn deregister(&self, request: &Packet, id: &str, peer: SocketAddr) -> Packet {
        let Some(registration) = lock(&self.registry).remove(id) else {
            return self.refuse(
                request,
                ResponseType::NotFound,
                "no such registration",
                peer,
            );
        };
        // Its observations end with it: the device's next notification is
        // answered with a reset (RFC 7641 §3.6), and nothing more is stored.
        self.forget_observations(id);
        if let Err(e) = self
            .record(&registration, RegistrationChange::Deregistered, now_ms())
            .await
        {
            return self.internal(request, &e);
        }
        Lwm2mStats::bump(&self.stats.deregistrations);
        tracing::info!(endpoint = %registration.endpoint, %peer, id, "LwM2M client deregistered");
        msg::response_for(request, ResponseType::Deleted)
    }

    /// Stores a registration change: the endpoint row, its event and live
    /// notice through the writer, then the registration row.
    async fn record(
        &self,
        registration: &Registration,
        change: RegistrationChange,
        now: i64,
    ) -> Result<(), AppError> {
        let field = match change {
            RegistrationChange::Registered => "register",
            RegistrationChange::Updated => "update",
            RegistrationChange::Deregistered => "deregister",
        };
        let uplink = Uplink {
            endpoint: registration.endpoint.clone(),
            kind: UplinkKind::Single,
            values: vec![DecodedValue::registration(change, now, field)],
            connection: Connection::Native((change != RegistrationChange::Deregistered).then(
                || Session {
                    binding: session_binding(registration),
                    lifetime_s: registration.lifetime_s,
                },
            )),
        };
        self.state.writer.submit(uplink).await?;
        let db = &self.state.db;
        let endpoint_id = db::endpoint::id_by_name(&db.pool, &registration.endpoint)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::Internal)?;
        let row = db::lwm2m_registration::Registration {
            endpoint_id,
            registration_id: registration.id.clone(),
            address: registration.address.to_string(),
            secure: false,
            lwm2m_version: registration.lwm2m_version.clone(),
            binding: registration.binding.clone(),
            queue_mode: registration.queue_mode,
            lifetime_s: registration.lifetime_s,
            object_links: registration.object_links.clone(),
            registered_at: registration.registered_at_ms,
            updated_at: registration.updated_at_ms,
            expires_at: registration.expires_at_ms(),
        };
        let mut tx = db.begin_gated().await.map_err(AppError::from)?;
        match change {
            RegistrationChange::Registered => {
                db::lwm2m_registration::upsert(&mut tx.conn(), &row).await
            }
            RegistrationChange::Updated => db::lwm2m_registration::update(&mut tx.conn(), &row)
                .await
                .map(|_| ()),
            RegistrationChange::Deregistered => {
                db::lwm2m_registration::delete(&mut tx.conn(), &row.registration_id)
                    .await
                    .map(|_| ())
            }
        }
        .map_err(AppError::from)?;
        tx.commit().await.map_err(AppError::from)?;
        Ok(())
    }

    /// Send (`POST /dp`): the values are stored, and the client gets its
    /// 2.04 after the commit that holds them.
    async fn send(&self, request: &Packet, peer: SocketAddr) -> Packet {
        let Some(endpoint) = lock(&self.registry)
            .by_address(peer)
            .map(|r| r.endpoint.clone())
        else {
            return self.refuse(
                request,
                ResponseType::NotFound,
                "no registration from this address; register first",
                peer,
            );
        };
        let types = &self.state.types;
        let values = match send::decode(request, now_ms(), |object_id, resource_id| {
            types
                .get((object_id, resource_id))
                .map(|(_, data_type)| data_type)
        }) {
            Ok(values) => values,
            Err((code, reason)) => return self.refuse(request, code, &reason, peer),
        };
        let count = values.len();
        let uplink = Uplink {
            endpoint,
            kind: UplinkKind::Composite,
            values,
            connection: Connection::Native(None),
        };
        match self.state.writer.submit(uplink).await {
            Ok(_) => {
                Lwm2mStats::bump(&self.stats.sends);
                self.stats
                    .values
                    .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
                msg::response_for(request, ResponseType::Changed)
            }
            Err(e) if e.status_code() < 500 => {
                self.refuse(request, ResponseType::BadRequest, &e.to_string(), peer)
            }
            Err(e) => self.internal(request, &e),
        }
    }

    /// Sweeps registrations whose lifetime ran out. The endpoint's presence
    /// already turns offline by its lifetime; this frees the registration's
    /// place and its address.
    async fn expire(self: Arc<Self>) {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let gone = lock(&self.registry).expire(now_ms());
            for r in gone {
                self.forget_observations(&r.id);
                Lwm2mStats::bump(&self.stats.expirations);
                tracing::info!(endpoint = %r.endpoint, id = %r.id, "LwM2M registration expired");
            }
            lock(&self.dedup).expire(Instant::now());
        }
    }
}

/// The bounds of Block1 reassembly: a body as large as any payload the
/// decoders take, a few such bodies per address.
fn block1_config() -> Block1Config {
    Block1Config {
        max_body: super::format::MAX_PAYLOAD_BYTES,
        max_per_peer: 2 * super::format::MAX_PAYLOAD_BYTES,
        ..Block1Config::default()
    }
}

/// The binding as the endpoint row keeps it: with a `Q` when the client is
/// in queue mode, whichever LwM2M version said so.
fn session_binding(r: &Registration) -> String {
    if r.queue_mode && !r.binding.contains('Q') {
        format!("{}Q", r.binding)
    } else {
        r.binding.clone()
    }
}

/// The request's path, `/a/b`, for logs and routing.
fn uri_path(request: &Packet) -> String {
    let mut path = String::new();
    if let Some(segments) = request.get_option(CoapOption::UriPath) {
        for s in segments {
            path.push('/');
            path.push_str(&String::from_utf8_lossy(s));
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// CoRE link format (RFC 6690), the content format of an object list.
const LINK_FORMAT: u32 = 40;

/// The longest diagnostic payload sent: an answer must fit one datagram.
const MAX_DIAGNOSTIC: usize = 256;

/// An error answer whose payload says why, in words (RFC 7252 §5.5.2).
fn error_response(request: &Packet, code: ResponseType, reason: &str) -> Packet {
    let mut answer = msg::response_for(request, code);
    let mut end = reason.len().min(MAX_DIAGNOSTIC);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    answer.payload = reason.as_bytes()[..end].to_vec();
    answer
}
