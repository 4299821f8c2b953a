//! Requests from the server to devices, on the socket their requests came
//! in on (a device's NAT only lets that address and port back in): the
//! sans-IO `coap::outbound` engine decides what to send and when; this
//! edge sends it, runs its timers, and hands each answer to whoever waits
//! for it. Notifications of observations go to `observe`.
use super::coap::block::{
    Block1Upload, Block2Download, BlockError, BlockOpt, DownloadStep, UploadError, UploadStep,
    UPLOAD_SZX,
};
use super::coap::dedup::{Check, Kind, Sameness};
use super::coap::outbound::{Event, Handle, Outbound, TimerOutput, Transmit};
use super::format::LwPath;
use super::observe::{NotificationAck, NotificationCommit};
use super::server::{lock, Server};
use super::stats::Lwm2mStats;
use super::udp;
use coap_lite::{CoapOption, MessageType, Packet, RequestType};
use rand::RngCore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// How often the retransmission timers are looked at. The RFC's timeouts
/// are seconds; a tenth of one is precise enough.
const TIMER_TICK: Duration = Duration::from_millis(100);

/// The largest body fetched block by block (RFC 7959) from a device: far
/// more than any object a device reports, small enough that a device
/// cannot make the server buffer without bound.
pub const MAX_BLOCKWISE_BODY: usize = super::format::MAX_PAYLOAD_BYTES;

/// Why a request to a device got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownlinkError {
    #[error("the device did not answer (no acknowledgement after the retransmissions)")]
    Timeout,
    #[error("the device acknowledged the request but sent no answer")]
    NoSeparateResponse,
    #[error("the device rejected the request (reset)")]
    Reset,
    #[error("not sent: {0}")]
    Refused(String),
    #[error("the request was cancelled")]
    Cancelled,
    #[error("block-wise answer abandoned: {0}")]
    Blockwise(String),
    #[error("block-wise request abandoned: {0}")]
    BlockwiseRequest(UploadError),
}

/// An active observation: whose, and of what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub registration_id: String,
    pub endpoint: String,
    /// The observed path; the root for an observe-composite, whose
    /// notifications name their paths in full.
    pub path: LwPath,
    /// The paths of an observe-composite; empty for a single path.
    pub composite: Vec<LwPath>,
}

impl Observation {
    /// The observed paths, as `/3303/0/5700` or a composite's
    /// `/3303/0/5700,/3304/0/5700`.
    pub fn paths_text(&self) -> String {
        if self.composite.is_empty() {
            self.path.to_string()
        } else {
            self.composite
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

/// The answer a device's separate response (or an observe response that
/// came as one) still needs: sent by whoever stores its values, after the
/// commit (`Server::settle_ack`).
#[derive(Debug)]
pub(super) struct Ack {
    peer: SocketAddr,
    mid: u16,
    kind: Option<Kind>,
    reply: Option<Transmit>,
}

/// What a waiter gets: the final answer and the acknowledgement it owes.
type Answered = Result<(Packet, Option<Ack>), DownlinkError>;

/// The engine and who waits for what.
#[derive(Debug)]
pub(super) struct Downlink {
    pub engine: Outbound,
    waiters: HashMap<Handle, oneshot::Sender<Answered>>,
    pub observations: HashMap<Handle, Arc<Observation>>,
}

impl Downlink {
    pub fn new(engine: Outbound) -> Downlink {
        Downlink {
            engine,
            waiters: HashMap::new(),
            observations: HashMap::new(),
        }
    }
}

/// A request of `ask` whose answer has not come: dropping it cancels the
/// request in the engine (no more retransmissions; the next request to the
/// device may start) and forgets its waiter and observation.
struct PendingRequest<'a> {
    server: &'a Server,
    handle: Handle,
    armed: bool,
}

impl Drop for PendingRequest<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let transmits = {
            let mut d = lock(&self.server.downlink);
            d.waiters.remove(&self.handle);
            d.observations.remove(&self.handle);
            d.engine
                .cancel(self.handle, Instant::now(), &mut rand::thread_rng())
        };
        self.server.send_all(transmits);
    }
}

impl Server {
    /// Sends `request` to `peer` (queued behind the requests already in
    /// flight to it: one at a time, RFC 7252 NSTART 1) and waits for the
    /// final answer. With `observe`, the observation it starts is recorded
    /// under the returned handle.
    ///
    /// A request with a body goes through [`Block1Upload`]: one larger
    /// than a block is sent block-wise (RFC 7959 Block1), each block as a
    /// request of its own through the engine, and the answer to its last
    /// block is the answer returned (with the handle of that block's
    /// exchange, which holds the observation an Observe starts).
    pub(super) async fn ask(
        &self,
        peer: SocketAddr,
        request: Packet,
        observe: Option<Observation>,
    ) -> Result<(Handle, Packet, Option<Ack>), DownlinkError> {
        if request.payload.is_empty() {
            return self.ask_one(peer, request, observe).await;
        }
        self.ask_blockwise(peer, request, observe).await
    }

    /// `ask` for a request with a body: see [`Block1Upload`]. The answers
    /// to intermediate blocks (2.31 Continue) are acknowledged at once.
    async fn ask_blockwise(
        &self,
        peer: SocketAddr,
        mut request: Packet,
        observe: Option<Observation>,
    ) -> Result<(Handle, Packet, Option<Ack>), DownlinkError> {
        if request.get_token().is_empty() {
            // One token for every block of the transfer (see Block1Upload).
            let mut token = [0u8; 8];
            rand::thread_rng().fill_bytes(&mut token);
            request.set_token(token.to_vec());
        }
        let path = super::coap::message::uri_path(&request);
        let size = request.payload.len();
        let mut upload = Block1Upload::new(request, UPLOAD_SZX);
        let mut message = upload.start();
        loop {
            let observe = upload.is_last().then(|| observe.clone()).flatten();
            let (handle, answer, ack) = self.ask_one(peer, message, observe).await?;
            match upload.on_response(&answer) {
                Ok(UploadStep::Send(next)) => {
                    self.settle_ack(ack, true);
                    message = next;
                }
                Ok(UploadStep::Done(answer)) => {
                    if upload.is_blockwise() {
                        if super::observe::success(&answer) {
                            Lwm2mStats::bump(&self.stats.block_transfers);
                        }
                        tracing::debug!(%peer, %path, size, block = upload.block_size(), code = %answer.header.code, "block-wise request answered");
                    }
                    return Ok((handle, answer, ack));
                }
                Err(e) => {
                    self.settle_ack(ack, true);
                    Lwm2mStats::bump(&self.stats.block_errors);
                    tracing::warn!(%peer, %path, size, "block-wise request abandoned: {e}");
                    return Err(DownlinkError::BlockwiseRequest(e));
                }
            }
        }
    }

    /// One request, one exchange of the engine.
    async fn ask_one(
        &self,
        peer: SocketAddr,
        request: Packet,
        observe: Option<Observation>,
    ) -> Result<(Handle, Packet, Option<Ack>), DownlinkError> {
        let (tx, rx) = oneshot::channel();
        let handle = {
            let mut d = lock(&self.downlink);
            let (handle, transmit) = d
                .engine
                .send(peer, request, Instant::now(), &mut rand::thread_rng())
                .map_err(|e| DownlinkError::Refused(e.to_string()))?;
            d.waiters.insert(handle, tx);
            if let Some(o) = observe {
                d.observations.insert(handle, Arc::new(o));
            }
            if let Some(t) = transmit {
                self.send_bytes(t.bytes, t.peer);
            }
            handle
        };
        // Whoever waits may give up (the dispatcher's timeout drops this
        // future): the request must then stop too, or it would go on being
        // retransmitted and could reach the device after its command was
        // recorded as failed, and be carried out when retried.
        let mut pending = PendingRequest {
            server: self,
            handle,
            armed: true,
        };
        let answer = rx.await;
        pending.armed = false;
        match answer {
            Ok(answer) => answer.map(|(p, ack)| (handle, p, ack)),
            Err(_) => Err(DownlinkError::Cancelled),
        }
    }

    /// `ask`, and when the answer is the first block of a block-wise one
    /// (RFC 7959 Block2), the remaining blocks: the returned answer carries
    /// the whole body. This composes with a request sent block-wise: the
    /// answer to its last block may be the first block of the answer
    /// (RFC 7959 §2.7, Figure 8), and the rest is asked for as below.
    pub(super) async fn ask_whole(
        &self,
        peer: SocketAddr,
        request: Packet,
        observe: Option<Observation>,
    ) -> Result<(Handle, Packet, Option<Ack>), DownlinkError> {
        let template = follow_up_template(&request);
        let (handle, answer, ack) = self.ask(peer, request, observe).await?;
        match self.rest_of_blocks(peer, template, answer).await {
            Ok(whole) => Ok((handle, whole, ack)),
            Err(e) => {
                self.settle_ack(ack, true);
                Err(e)
            }
        }
    }

    /// Completes an answer (or a notification) whose first block arrived:
    /// each further block is asked for with `request` (new token and
    /// message id, Block2 set, no Observe: RFC 7959 §2.6), one at a time
    /// through the outbound engine. An answer without Block2, or with the
    /// last block, is returned as it is.
    pub(super) async fn rest_of_blocks(
        &self,
        peer: SocketAddr,
        request: Packet,
        first: Packet,
    ) -> Result<Packet, DownlinkError> {
        match BlockOpt::from_packet(&first, CoapOption::Block2) {
            Ok(Some(b)) if b.more || b.num > 0 => {}
            Ok(_) => return Ok(first),
            Err(e) => return Err(self.block_failure(peer, &request, e.to_string())),
        }
        let mut download = Block2Download::new(request.clone(), MAX_BLOCKWISE_BODY);
        let mut step = download
            .on_response(&first)
            .map_err(|e| self.block_failure(peer, &request, block_reason(e)))?;
        loop {
            match step {
                DownloadStep::Complete(body) => {
                    let mut whole = first;
                    whole.clear_option(CoapOption::Block2);
                    whole.clear_option(CoapOption::Size2);
                    whole.payload = body;
                    Lwm2mStats::bump(&self.stats.block_transfers);
                    return Ok(whole);
                }
                DownloadStep::Next(next) => {
                    let answer = self.ask_settled(peer, next).await?;
                    if !super::observe::success(&answer) {
                        return Err(self.block_failure(
                            peer,
                            &request,
                            format!(
                                "the device answered {} to a block request",
                                answer.header.code
                            ),
                        ));
                    }
                    step = download
                        .on_response(&answer)
                        .map_err(|e| self.block_failure(peer, &request, block_reason(e)))?;
                }
            }
        }
    }

    /// Logs and counts an abandoned block-wise answer.
    fn block_failure(&self, peer: SocketAddr, request: &Packet, reason: String) -> DownlinkError {
        Lwm2mStats::bump(&self.stats.block_errors);
        tracing::warn!(%peer, path = %super::coap::message::uri_path(request), "block-wise answer abandoned: {reason}");
        DownlinkError::Blockwise(reason)
    }

    /// `ask`, for a request whose answer stores nothing: its
    /// acknowledgement (if it owes one) goes out at once.
    pub(super) async fn ask_settled(
        &self,
        peer: SocketAddr,
        request: Packet,
    ) -> Result<Packet, DownlinkError> {
        let (_, packet, ack) = self.ask(peer, request, None).await?;
        self.settle_ack(ack, true);
        Ok(packet)
    }

    /// Sends the acknowledgement a device's answer is owed, once its values
    /// are stored (`stored`); when they could not be, forgets the message so
    /// that the device's retransmission is processed again.
    pub(super) fn settle_ack(&self, ack: Option<Ack>, stored: bool) {
        let Some(ack) = ack else { return };
        if stored {
            self.settle(ack.peer, ack.mid, ack.kind, ack.reply);
        } else if ack.kind.is_some() {
            lock(&self.dedup).forget(ack.peer, ack.mid);
        }
    }

    /// Forgets every observation of a registration (it ended or was
    /// replaced): the device's next notification is answered with a reset,
    /// which cancels it on the device (RFC 7641 §3.6).
    pub(super) fn forget_observations(&self, registration_id: &str) {
        let mut d = lock(&self.downlink);
        let handles: Vec<Handle> = d
            .observations
            .iter()
            .filter(|(_, o)| o.registration_id == registration_id)
            .map(|(h, _)| *h)
            .collect();
        let now = Instant::now();
        for h in handles {
            d.observations.remove(&h);
            let transmits = d.engine.cancel(h, now, &mut rand::thread_rng());
            self.send_all(transmits);
        }
    }

    /// The observations held now, each as its paths (`paths_text`).
    pub(super) fn observations_of(&self, endpoint: &str) -> Vec<String> {
        lock(&self.downlink)
            .observations
            .values()
            .filter(|o| o.endpoint == endpoint)
            .map(|o| o.paths_text())
            .collect()
    }

    /// Sends `transmits` in as few system calls as the platform allows.
    pub(super) fn send_all(&self, transmits: Vec<Transmit>) {
        let datagrams: Vec<(&[u8], SocketAddr)> = transmits
            .iter()
            .map(|t| (t.bytes.as_slice(), t.peer))
            .collect();
        udp::send_batch(&self.socket, &datagrams);
    }

    /// A response, an empty message or a notification from a device. A
    /// notification whose values went to the writer comes back as the
    /// commit to wait for (see `Server::notification`).
    pub(super) fn device_message(
        self: &Arc<Self>,
        packet: Packet,
        peer: SocketAddr,
        arrived: SystemTime,
    ) -> Option<NotificationCommit> {
        let now = Instant::now();
        let kind = match packet.header.get_type() {
            MessageType::Confirmable => Some(Kind::Confirmable),
            MessageType::NonConfirmable => Some(Kind::NonConfirmable),
            _ => None,
        };
        let mid = packet.header.message_id;
        if let Some(kind) = kind {
            match lock(&self.dedup).check(peer, mid, kind, Sameness::of(&packet), now) {
                Check::New => {}
                Check::Resend(bytes) => {
                    Lwm2mStats::bump(&self.stats.duplicates);
                    self.send_bytes(bytes, peer);
                    return None;
                }
                Check::InFlight | Check::Drop => {
                    Lwm2mStats::bump(&self.stats.duplicates);
                    return None;
                }
            }
        }
        let (received, waiter, observation) = {
            let mut d = lock(&self.downlink);
            let received = d
                .engine
                .on_message(peer, &packet, now, &mut rand::thread_rng());
            let (waiter, observation) = match &received.event {
                Event::Response {
                    handle, observing, ..
                } => {
                    if !observing {
                        d.observations.remove(handle);
                    }
                    (d.waiters.remove(handle), None)
                }
                Event::Reset { handle } => {
                    d.observations.remove(handle);
                    (d.waiters.remove(handle), None)
                }
                Event::Notification { handle, .. } => (None, d.observations.get(handle).cloned()),
                Event::ObservationEnded { handle, .. } => {
                    let ended = d.observations.remove(handle);
                    if let Some(o) = &ended {
                        tracing::info!(endpoint = %o.endpoint, path = %o.path, "the device ended an observation");
                    }
                    (None, None)
                }
                Event::Acked { .. } | Event::Unmatched => (None, None),
            };
            (received, waiter, observation)
        };
        self.send_all(received.transmits);
        match received.event {
            Event::Response { packet, .. } => {
                if let Some(w) = waiter {
                    // A separate response's acknowledgement waits for the
                    // waiter to store what it carries.
                    let ack = Ack {
                        peer,
                        mid,
                        kind,
                        reply: received.reply,
                    };
                    if let Err(Ok((_, Some(ack)))) = w.send(Ok((packet, Some(ack)))) {
                        self.settle_ack(Some(ack), true);
                    }
                    return None;
                }
            }
            Event::Reset { .. } => {
                if let Some(w) = waiter {
                    let _ = w.send(Err(DownlinkError::Reset));
                }
            }
            Event::Notification {
                handle,
                packet,
                fresh,
            } => {
                if let Some(o) = observation {
                    // A confirmable notification is acknowledged once its
                    // values are committed, never before.
                    let ack = NotificationAck {
                        observation: o,
                        peer,
                        mid,
                        kind,
                        reply: received.reply,
                        arrived,
                    };
                    return self.notification(ack, packet, fresh);
                }
                // An observation the engine still knew but this server had
                // let go of: rejected (which cancels it on the device),
                // never acknowledged without being stored.
                let transmits = lock(&self.downlink).engine.cancel(
                    handle,
                    Instant::now(),
                    &mut rand::thread_rng(),
                );
                self.send_all(transmits);
                let reset = Transmit {
                    peer,
                    bytes: super::coap::message::rst(mid)
                        .to_bytes()
                        .unwrap_or_default(),
                };
                self.settle(peer, mid, kind, Some(reset));
                return None;
            }
            _ => {}
        }
        self.settle(peer, mid, kind, received.reply);
        None
    }

    /// Sends the answer to a device's message (if any) and keeps it for
    /// the message's retransmissions.
    pub(super) fn settle(
        &self,
        peer: SocketAddr,
        mid: u16,
        kind: Option<Kind>,
        reply: Option<Transmit>,
    ) {
        if let Some(reply) = self.settled(peer, mid, kind, reply) {
            self.send_bytes(reply.bytes, reply.peer);
        }
    }

    /// `settle`, with the answer added to `out` rather than sent, so that
    /// many go out in one batch (`send_all`).
    pub(super) fn settle_into(
        &self,
        peer: SocketAddr,
        mid: u16,
        kind: Option<Kind>,
        reply: Option<Transmit>,
        out: &mut Vec<Transmit>,
    ) {
        out.extend(self.settled(peer, mid, kind, reply));
    }

    /// Keeps the answer for retransmissions; returns it, to be sent.
    fn settled(
        &self,
        peer: SocketAddr,
        mid: u16,
        kind: Option<Kind>,
        reply: Option<Transmit>,
    ) -> Option<Transmit> {
        match (kind, &reply) {
            (Some(_), Some(reply)) => lock(&self.dedup).ack_sent(peer, mid, reply.bytes.clone()),
            (Some(_), None) => lock(&self.dedup).complete_silent(peer, mid),
            (None, _) => {}
        }
        reply
    }

    /// Retransmits and fails our requests as their timers run out.
    pub(super) async fn timers(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TIMER_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut failed = Vec::new();
            {
                let mut d = lock(&self.downlink);
                let out = d
                    .engine
                    .poll_timeout(Instant::now(), &mut rand::thread_rng());
                for o in out {
                    match o {
                        TimerOutput::Transmit(t) => self.send_bytes(t.bytes, t.peer),
                        TimerOutput::Failed { handle, reason, .. } => {
                            d.observations.remove(&handle);
                            if let Some(w) = d.waiters.remove(&handle) {
                                failed.push((w, reason));
                            }
                        }
                    }
                }
            }
            for (w, reason) in failed {
                let e = match reason {
                    super::coap::outbound::FailReason::Timeout => DownlinkError::Timeout,
                    super::coap::outbound::FailReason::NoSeparateResponse => {
                        DownlinkError::NoSeparateResponse
                    }
                };
                let _ = w.send(Err(e));
            }
        }
    }
}

/// The request that asks for the further blocks of an answer to
/// `request`: the same method and options (Block2 is set per block). GET
/// and FETCH keep their body (a FETCH's body says what is fetched, RFC
/// 8132); the body of a POST, PUT or iPATCH is left out, since sending it
/// again would ask the device to act on it again: RFC 7959 §2.7 (Figure 8)
/// asks for the answer's further blocks without a payload.
fn follow_up_template(request: &Packet) -> Packet {
    let mut template = request.clone();
    if !matches!(
        template.header.code,
        coap_lite::MessageClass::Request(RequestType::Get | RequestType::Fetch)
    ) {
        template.payload.clear();
        template.clear_option(CoapOption::ContentFormat);
    }
    template
}

fn block_reason(e: BlockError) -> String {
    match e {
        BlockError::TooLarge { max } => {
            format!("the body exceeds {max} bytes (the server's bound on block-wise answers)")
        }
        other => other.to_string(),
    }
}
