//! Our requests to devices (Read, Write, Execute, Observe, …) as
//! confirmable messages, RFC 7252 §4 and §5.3, plus RFC 7641 observations.
//!
//! - Message IDs are allocated per peer from a random start.
//! - Tokens are 8 random bytes from the caller's RNG.
//! - Retransmission: the first timeout is uniform in [ACK_TIMEOUT,
//!   ACK_TIMEOUT * ACK_RANDOM_FACTOR] = [2 s, 3 s] and doubles on every
//!   retransmission; after MAX_RETRANSMIT (4) retransmissions and one more
//!   doubled timeout the exchange fails (at most MAX_TRANSMIT_WAIT, 93 s).
//! - NSTART = 1: one outstanding interaction per peer; further requests
//!   wait in a bounded per-peer queue and start when the previous one is
//!   acknowledged, answered, reset or failed.
//! - ACK/RST match by (peer, MID); responses by (peer, token). A separate
//!   response (empty ACK, then a CON response) is acknowledged here.
//! - Notifications match active observations by (peer, token); an unknown
//!   token is answered with RST so the device stops notifying.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet};
use rand::{Rng, RngCore};

use super::limits::Refusal;
use super::message::{empty_ack, encode_uint, rst, uint_option};
use super::{ACK_TIMEOUT, ACK_TIMEOUT_MAX, EXCHANGE_LIFETIME, MAX_RETRANSMIT, OBSERVE_FRESHNESS};

#[derive(Debug, Clone, Copy)]
pub struct OutboundConfig {
    pub ack_timeout: Duration,
    /// ACK_TIMEOUT * ACK_RANDOM_FACTOR.
    pub ack_timeout_max: Duration,
    pub max_retransmit: u8,
    /// How long to wait for a separate response after an empty ACK. The
    /// RFC leaves it open; MAX_TRANSMIT_WAIT keeps it in line with how
    /// long an unacknowledged request may take.
    pub separate_response_timeout: Duration,
    pub max_queue_per_peer: usize,
    pub max_peers: usize,
    pub max_observations_per_peer: usize,
    pub max_observations: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            ack_timeout: ACK_TIMEOUT,
            ack_timeout_max: ACK_TIMEOUT_MAX,
            max_retransmit: MAX_RETRANSMIT,
            separate_response_timeout: super::MAX_TRANSMIT_WAIT,
            max_queue_per_peer: 32,
            max_peers: 100_000,
            max_observations_per_peer: 64,
            max_observations: 1_000_000,
        }
    }
}

/// Identifies one request we sent (and, for an Observe, the observation it
/// established).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u64);

/// Bytes to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: SocketAddr,
    pub bytes: Vec<u8>,
}

/// A CoAP token of 0..=8 bytes, stored inline so it can key maps cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    len: u8,
    bytes: [u8; 8],
}

impl Token {
    pub fn from_slice(t: &[u8]) -> Option<Token> {
        if t.len() > 8 {
            return None;
        }
        let mut bytes = [0; 8];
        bytes[..t.len()].copy_from_slice(t);
        Some(Token {
            len: t.len() as u8,
            bytes,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The final response to a request. `observing` is true when it
    /// established an observation: later notifications carry `handle`.
    Response {
        handle: Handle,
        packet: Packet,
        observing: bool,
    },
    /// Empty ACK: the device will send a separate response later.
    Acked { handle: Handle },
    /// The device rejected the request with RST.
    Reset { handle: Handle },
    /// A notification of an active observation. `fresh` is false for one
    /// that is older than the last seen (RFC 7641 §3.4): do not store it as
    /// the current value.
    Notification {
        handle: Handle,
        packet: Packet,
        fresh: bool,
    },
    /// The device ended the observation (error code, or no Observe option).
    ObservationEnded { handle: Handle, packet: Packet },
    /// Nothing matched (duplicate ACK, late response, unknown token).
    Unmatched,
}

/// What [`Outbound::on_message`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub event: Event,
    /// The answer to the received message itself (empty ACK to a CON
    /// response, or RST for an unknown token); cache it in dedup.
    pub reply: Option<Transmit>,
    /// Queued requests that may start now.
    pub transmits: Vec<Transmit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// No ACK after MAX_RETRANSMIT retransmissions. For a queue-mode
    /// device this means "asleep": re-queue rather than fail.
    Timeout,
    /// Empty ACK received, but no separate response in time.
    NoSeparateResponse,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimerOutput {
    Transmit(Transmit),
    Failed {
        handle: Handle,
        peer: SocketAddr,
        reason: FailReason,
        /// The request as given to `send`, for re-queueing.
        request: Packet,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error("not a request")]
    NotARequest,
    #[error("cannot encode request: {0}")]
    Encode(String),
    #[error("unknown handle")]
    UnknownHandle,
}

#[derive(Debug)]
enum ExState {
    Queued,
    AwaitingAck {
        mid: u16,
        retransmits: u8,
        timeout: Duration,
    },
    AwaitingResponse,
}

#[derive(Debug)]
struct Exchange {
    peer: SocketAddr,
    token: Token,
    request: Packet,
    bytes: Vec<u8>,
    observe_register: bool,
    state: ExState,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Observation {
    peer: SocketAddr,
    token: Token,
    request: Packet,
    last_seq: u32,
    last_time: Instant,
}

#[derive(Debug)]
struct PeerState {
    next_mid: u16,
    /// Holder of the NSTART = 1 slot.
    active: Option<Handle>,
    queue: VecDeque<Handle>,
    /// Exchanges of this peer in any state, plus observations.
    live: usize,
    observations: usize,
    idle_since: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Outbound {
    cfg: OutboundConfig,
    next_handle: u64,
    peers: HashMap<SocketAddr, PeerState>,
    exchanges: HashMap<Handle, Exchange>,
    by_mid: HashMap<(SocketAddr, u16), Handle>,
    by_token: HashMap<(SocketAddr, Token), Handle>,
    observations: HashMap<Handle, Observation>,
    obs_by_token: HashMap<(SocketAddr, Token), Handle>,
    timers: BTreeSet<(Instant, Handle)>,
    idle: VecDeque<(Instant, SocketAddr)>,
}

/// RFC 7641 §3.4 freshness of notification (v2, t2) after (v1, t1).
pub fn is_fresh(v1: u32, t1: Instant, v2: u32, t2: Instant) -> bool {
    const HALF: u32 = 1 << 23;
    (v1 < v2 && v2 - v1 < HALF) || (v1 > v2 && v1 - v2 > HALF) || t2 > t1 + OBSERVE_FRESHNESS
}

fn is_success(p: &Packet) -> bool {
    matches!(p.header.code, MessageClass::Response(r) if !r.is_error())
}

impl Outbound {
    pub fn new(cfg: OutboundConfig) -> Self {
        Outbound {
            cfg,
            ..Outbound::default()
        }
    }

    /// Earliest time `poll_timeout` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    pub fn in_flight(&self, peer: SocketAddr) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.active.is_some())
    }

    pub fn queued(&self, peer: SocketAddr) -> usize {
        self.peers.get(&peer).map_or(0, |p| p.queue.len())
    }

    pub fn is_observing(&self, handle: Handle) -> bool {
        self.observations.contains_key(&handle)
    }

    pub fn observation_count(&self) -> usize {
        self.observations.len()
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Queues or sends a request. The message type is forced to CON and
    /// a MID is assigned; an empty token is replaced by 8 random bytes
    /// (a non-empty one is kept, which is how an active Observe cancel
    /// reuses its observation's token).
    pub fn send<R: RngCore + ?Sized>(
        &mut self,
        peer: SocketAddr,
        mut request: Packet,
        now: Instant,
        rng: &mut R,
    ) -> Result<(Handle, Option<Transmit>), SendError> {
        if !matches!(request.header.code, MessageClass::Request(_)) {
            return Err(SendError::NotARequest);
        }
        let observe_register = uint_option(&request, CoapOption::Observe) == Some(0);
        let token = if request.get_token().is_empty() {
            self.fresh_token(peer, rng)
        } else {
            let t = Token::from_slice(request.get_token()).ok_or(SendError::NotARequest)?;
            if self.by_token.contains_key(&(peer, t)) {
                return Err(SendError::Refused(Refusal::TokenInUse));
            }
            t
        };
        request.set_token(token.as_slice().to_vec());
        request.header.set_type(MessageType::Confirmable);
        // Refusals are decided before any state is created.
        match self.peers.get(&peer) {
            None if self.peers.len() >= self.cfg.max_peers => {
                return Err(SendError::Refused(Refusal::TooManyPeers));
            }
            existing => {
                let (observations, busy, queued) = existing.map_or((0, false, 0), |p| {
                    (p.observations, p.active.is_some(), p.queue.len())
                });
                if observe_register
                    && (observations >= self.cfg.max_observations_per_peer
                        || self.observations.len() >= self.cfg.max_observations)
                {
                    return Err(SendError::Refused(Refusal::TooManyObservations));
                }
                if busy && queued >= self.cfg.max_queue_per_peer {
                    return Err(SendError::Refused(Refusal::QueueFull));
                }
            }
        }
        // Encode once with a placeholder MID to catch size errors before
        // any state changes; the MID is patched in when it starts.
        let bytes = request
            .to_bytes()
            .map_err(|e| SendError::Encode(e.to_string()))?;
        let ps = self.peers.entry(peer).or_insert_with(|| PeerState {
            next_mid: rng.gen(),
            active: None,
            queue: VecDeque::new(),
            live: 0,
            observations: 0,
            idle_since: None,
        });
        let handle = Handle(self.next_handle);
        self.next_handle += 1;
        ps.live += 1;
        ps.idle_since = None;
        let start_now = ps.active.is_none();
        if !start_now {
            ps.queue.push_back(handle);
        }
        self.by_token.insert((peer, token), handle);
        self.exchanges.insert(
            handle,
            Exchange {
                peer,
                token,
                request,
                bytes,
                observe_register,
                state: ExState::Queued,
                deadline: None,
            },
        );
        let tx = start_now.then(|| self.start(handle, now, rng));
        Ok((handle, tx))
    }

    /// A message ID for a message we originate outside an exchange (a NON
    /// response to a NON request), from the same per-peer sequence so it
    /// cannot collide with our CON requests. Refused when the peer table is
    /// full.
    pub fn allocate_mid<R: RngCore + ?Sized>(
        &mut self,
        peer: SocketAddr,
        now: Instant,
        rng: &mut R,
    ) -> Result<u16, Refusal> {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.cfg.max_peers {
            return Err(Refusal::TooManyPeers);
        }
        let ps = self.peers.entry(peer).or_insert_with(|| PeerState {
            next_mid: rng.gen(),
            active: None,
            queue: VecDeque::new(),
            live: 0,
            observations: 0,
            idle_since: None,
        });
        let mid = ps.next_mid;
        ps.next_mid = ps.next_mid.wrapping_add(1);
        // Re-arm the idle timer so the MID sequence outlives this message
        // by EXCHANGE_LIFETIME.
        ps.idle_since = None;
        self.mark_if_idle(peer, now);
        Ok(mid)
    }

    fn fresh_token<R: RngCore + ?Sized>(&self, peer: SocketAddr, rng: &mut R) -> Token {
        loop {
            let mut b = [0u8; 8];
            rng.fill_bytes(&mut b);
            let t = Token { len: 8, bytes: b };
            if !self.by_token.contains_key(&(peer, t))
                && !self.obs_by_token.contains_key(&(peer, t))
            {
                return t;
            }
        }
    }

    /// Moves a queued exchange to AwaitingAck and returns its first
    /// transmission.
    fn start<R: RngCore + ?Sized>(
        &mut self,
        handle: Handle,
        now: Instant,
        rng: &mut R,
    ) -> Transmit {
        let ex = self.exchanges.get_mut(&handle).expect("exchange");
        let ps = self.peers.get_mut(&ex.peer).expect("peer");
        let mid = ps.next_mid;
        ps.next_mid = ps.next_mid.wrapping_add(1);
        ps.active = Some(handle);
        ex.bytes[2..4].copy_from_slice(&mid.to_be_bytes());
        ex.request.header.message_id = mid;
        let lo = self.cfg.ack_timeout.as_millis() as u64;
        let hi = (self.cfg.ack_timeout_max.as_millis() as u64).max(lo);
        let timeout = Duration::from_millis(rng.gen_range(lo..=hi));
        ex.state = ExState::AwaitingAck {
            mid,
            retransmits: 0,
            timeout,
        };
        let deadline = now + timeout;
        ex.deadline = Some(deadline);
        self.timers.insert((deadline, handle));
        self.by_mid.insert((ex.peer, mid), handle);
        Transmit {
            peer: ex.peer,
            bytes: ex.bytes.clone(),
        }
    }

    /// Releases the NSTART slot held by `handle` (if it holds it) and starts
    /// the next queued request of that peer.
    fn release<R: RngCore + ?Sized>(
        &mut self,
        peer: SocketAddr,
        handle: Handle,
        now: Instant,
        rng: &mut R,
    ) -> Vec<Transmit> {
        let Some(ps) = self.peers.get_mut(&peer) else {
            return Vec::new();
        };
        if ps.active != Some(handle) {
            return Vec::new();
        }
        ps.active = None;
        match ps.queue.pop_front() {
            Some(next) => vec![self.start(next, now, rng)],
            None => Vec::new(),
        }
    }

    /// Removes an exchange and all its index entries.
    fn remove_exchange(&mut self, handle: Handle, now: Instant) -> Option<Exchange> {
        let ex = self.exchanges.remove(&handle)?;
        self.by_token.remove(&(ex.peer, ex.token));
        if let ExState::AwaitingAck { mid, .. } = ex.state {
            self.by_mid.remove(&(ex.peer, mid));
        }
        if let Some(d) = ex.deadline {
            self.timers.remove(&(d, handle));
        }
        if let Some(ps) = self.peers.get_mut(&ex.peer) {
            ps.live -= 1;
            ps.queue.retain(|h| *h != handle);
            self.mark_if_idle(ex.peer, now);
        }
        Some(ex)
    }

    fn mark_if_idle(&mut self, peer: SocketAddr, now: Instant) {
        if let Some(ps) = self.peers.get_mut(&peer) {
            if ps.live == 0 && ps.observations == 0 && ps.idle_since.is_none() {
                ps.idle_since = Some(now);
                self.idle.push_back((now, peer));
            }
        }
    }

    /// Handles an inbound ACK, RST or response from `peer`.
    pub fn on_message<R: RngCore + ?Sized>(
        &mut self,
        peer: SocketAddr,
        packet: &Packet,
        now: Instant,
        rng: &mut R,
    ) -> Received {
        let mid = packet.header.message_id;
        let mut out = Received {
            event: Event::Unmatched,
            reply: None,
            transmits: Vec::new(),
        };
        match packet.header.get_type() {
            MessageType::Acknowledgement => {
                let Some(&handle) = self.by_mid.get(&(peer, mid)) else {
                    return out;
                };
                if packet.header.code == MessageClass::Empty {
                    let ex = self.exchanges.get_mut(&handle).expect("indexed");
                    self.by_mid.remove(&(peer, mid));
                    if let Some(d) = ex.deadline {
                        self.timers.remove(&(d, handle));
                    }
                    let d = now + self.cfg.separate_response_timeout;
                    ex.deadline = Some(d);
                    ex.state = ExState::AwaitingResponse;
                    self.timers.insert((d, handle));
                    out.event = Event::Acked { handle };
                    // RFC 7252 §4.7: once acknowledged, the interaction is
                    // no longer outstanding for NSTART.
                    out.transmits = self.release(peer, handle, now, rng);
                    return out;
                }
                let ex = &self.exchanges[&handle];
                if ex.token.as_slice() != packet.get_token() {
                    // A piggybacked response must carry the request's
                    // token (§5.3.2); ignore it and keep retransmitting.
                    return out;
                }
                out.event = self.complete(handle, packet, now);
                out.transmits = self.release(peer, handle, now, rng);
            }
            MessageType::Reset => {
                let Some(&handle) = self.by_mid.get(&(peer, mid)) else {
                    return out;
                };
                self.remove_exchange(handle, now);
                out.event = Event::Reset { handle };
                out.transmits = self.release(peer, handle, now, rng);
            }
            ty @ (MessageType::Confirmable | MessageType::NonConfirmable) => {
                let con = ty == MessageType::Confirmable;
                if !matches!(packet.header.code, MessageClass::Response(_)) {
                    return out;
                }
                let Some(token) = Token::from_slice(packet.get_token()) else {
                    return out;
                };
                if let Some(&handle) = self.by_token.get(&(peer, token)) {
                    if !matches!(self.exchanges[&handle].state, ExState::Queued) {
                        // A CON response may overtake a lost empty ACK
                        // (§5.2.2); completing here covers both.
                        out.event = self.complete(handle, packet, now);
                        out.transmits = self.release(peer, handle, now, rng);
                        out.reply = con.then(|| self.tx(peer, empty_ack(mid)));
                        return out;
                    }
                }
                if let Some(&handle) = self.obs_by_token.get(&(peer, token)) {
                    out.event = self.notification(handle, packet, now);
                    out.reply = con.then(|| self.tx(peer, empty_ack(mid)));
                    return out;
                }
                // Unknown token: RST tells the device we are not interested
                // (RFC 7641 §3.6; for NON, RFC 7252 §4.3 allows it too).
                out.reply = Some(self.tx(peer, rst(mid)));
            }
        }
        out
    }

    fn tx(&self, peer: SocketAddr, p: Packet) -> Transmit {
        Transmit {
            peer,
            bytes: p.to_bytes().expect("empty message encodes"),
        }
    }

    /// Final response for an exchange: remove it and, for a successful
    /// Observe registration, keep the token as an observation.
    fn complete(&mut self, handle: Handle, packet: &Packet, now: Instant) -> Event {
        let ex = self.remove_exchange(handle, now).expect("exchange");
        let seq = uint_option(packet, CoapOption::Observe);
        let observing = ex.observe_register && is_success(packet) && seq.is_some();
        if observing {
            self.observations.insert(
                handle,
                Observation {
                    peer: ex.peer,
                    token: ex.token,
                    request: ex.request,
                    last_seq: seq.unwrap_or(0) & 0xff_ffff,
                    last_time: now,
                },
            );
            self.obs_by_token.insert((ex.peer, ex.token), handle);
            if let Some(ps) = self.peers.get_mut(&ex.peer) {
                ps.observations += 1;
                ps.idle_since = None;
            }
        }
        Event::Response {
            handle,
            packet: packet.clone(),
            observing,
        }
    }

    fn notification(&mut self, handle: Handle, packet: &Packet, now: Instant) -> Event {
        let seq = uint_option(packet, CoapOption::Observe);
        let Some(seq) = seq.filter(|_| is_success(packet)) else {
            // RFC 7641 §3.2: an error, or a response without Observe, ends
            // the observation.
            self.drop_observation(handle, now);
            return Event::ObservationEnded {
                handle,
                packet: packet.clone(),
            };
        };
        let seq = seq & 0xff_ffff;
        let obs = self.observations.get_mut(&handle).expect("indexed");
        let fresh = is_fresh(obs.last_seq, obs.last_time, seq, now);
        if fresh {
            obs.last_seq = seq;
            obs.last_time = now;
        }
        Event::Notification {
            handle,
            packet: packet.clone(),
            fresh,
        }
    }

    fn drop_observation(&mut self, handle: Handle, now: Instant) -> Option<Observation> {
        let obs = self.observations.remove(&handle)?;
        self.obs_by_token.remove(&(obs.peer, obs.token));
        if let Some(ps) = self.peers.get_mut(&obs.peer) {
            ps.observations -= 1;
        }
        self.mark_if_idle(obs.peer, now);
        Some(obs)
    }

    /// Cancels a request (queued or in flight) or forgets an observation
    /// (passive cancel: the device's next notification is answered with
    /// RST). Returns queued requests that may start now.
    pub fn cancel<R: RngCore + ?Sized>(
        &mut self,
        handle: Handle,
        now: Instant,
        rng: &mut R,
    ) -> Vec<Transmit> {
        if self.drop_observation(handle, now).is_some() {
            return Vec::new();
        }
        match self.remove_exchange(handle, now) {
            Some(ex) => self.release(ex.peer, handle, now, rng),
            None => Vec::new(),
        }
    }

    /// Active cancel (RFC 7641 §3.6): forgets the observation and sends
    /// the original request again with Observe = 1 and the same token.
    pub fn cancel_observation_active<R: RngCore + ?Sized>(
        &mut self,
        handle: Handle,
        now: Instant,
        rng: &mut R,
    ) -> Result<(Handle, Option<Transmit>), SendError> {
        let obs = self
            .drop_observation(handle, now)
            .ok_or(SendError::UnknownHandle)?;
        let mut req = obs.request;
        req.clear_option(CoapOption::Observe);
        req.add_option(CoapOption::Observe, encode_uint(1));
        self.send(obs.peer, req, now, rng)
    }

    /// Retransmits and fails exchanges whose deadline has passed, and forgets
    /// peers idle for longer than EXCHANGE_LIFETIME (their MIDs can no
    /// longer be confused with new ones).
    pub fn poll_timeout<R: RngCore + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
    ) -> Vec<TimerOutput> {
        let mut out = Vec::new();
        while let Some(&(deadline, handle)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            let ex = self
                .exchanges
                .get_mut(&handle)
                .expect("timer without exchange");
            ex.deadline = None;
            match &mut ex.state {
                ExState::AwaitingAck {
                    retransmits,
                    timeout,
                    ..
                } if *retransmits < self.cfg.max_retransmit => {
                    *retransmits += 1;
                    *timeout *= 2;
                    let d = now + *timeout;
                    ex.deadline = Some(d);
                    self.timers.insert((d, handle));
                    out.push(TimerOutput::Transmit(Transmit {
                        peer: ex.peer,
                        bytes: ex.bytes.clone(),
                    }));
                }
                state => {
                    let reason = match state {
                        ExState::AwaitingResponse => FailReason::NoSeparateResponse,
                        _ => FailReason::Timeout,
                    };
                    let ex = self.remove_exchange(handle, now).expect("exchange");
                    let peer = ex.peer;
                    out.push(TimerOutput::Failed {
                        handle,
                        peer,
                        reason,
                        request: ex.request,
                    });
                    out.extend(
                        self.release(peer, handle, now, rng)
                            .into_iter()
                            .map(TimerOutput::Transmit),
                    );
                }
            }
        }
        while let Some(&(since, peer)) = self.idle.front() {
            if since + EXCHANGE_LIFETIME > now {
                break;
            }
            self.idle.pop_front();
            if self
                .peers
                .get(&peer)
                .is_some_and(|p| p.idle_since == Some(since))
            {
                self.peers.remove(&peer);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_lite::{RequestType, ResponseType};
    use rand::rngs::mock::StepRng;
    use rand::SeedableRng;

    fn peer() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 5683))
    }

    fn get(path: &str) -> Packet {
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Get);
        for s in path.split('/') {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        p
    }

    fn parse(t: &Transmit) -> Packet {
        Packet::from_bytes(&t.bytes).unwrap()
    }

    fn ack_response(req: &Packet, code: ResponseType, observe: Option<u32>) -> Packet {
        let mut p = super::super::message::response_for(req, code);
        if let Some(o) = observe {
            p.add_option(CoapOption::Observe, encode_uint(o));
        }
        p
    }

    fn notif(
        token: &[u8],
        mid: u16,
        ty: MessageType,
        seq: Option<u32>,
        code: ResponseType,
    ) -> Packet {
        let mut p = Packet::new();
        p.header.set_type(ty);
        p.header.code = MessageClass::Response(code);
        p.header.message_id = mid;
        p.set_token(token.to_vec());
        if let Some(s) = seq {
            p.add_option(CoapOption::Observe, encode_uint(s));
        }
        p
    }

    /// Rng whose `gen_range(2000..=3000)` yields the low end.
    fn zero_rng() -> StepRng {
        StepRng::new(0, 0)
    }

    #[test]
    fn retransmission_schedule_and_failure() {
        let t0 = Instant::now();
        let mut rng = zero_rng();
        let mut ob = Outbound::new(OutboundConfig::default());
        let (h, tx) = ob.send(peer(), get("3/0/0"), t0, &mut rng).unwrap();
        let tx = tx.unwrap();
        let first = parse(&tx);
        assert_eq!(first.header.get_type(), MessageType::Confirmable);
        assert_eq!(first.get_token().len(), 8);
        // With a zero RNG the initial timeout is exactly ACK_TIMEOUT.
        let mut sends = vec![0u64];
        let failed_at;
        loop {
            let t = ob.next_deadline().unwrap();
            let out = ob.poll_timeout(t, &mut rng);
            assert_eq!(out.len(), 1);
            match &out[0] {
                TimerOutput::Transmit(r) => {
                    assert_eq!(r.bytes, tx.bytes, "retransmission is byte-identical");
                    sends.push((t - t0).as_millis() as u64);
                }
                TimerOutput::Failed {
                    handle,
                    reason,
                    request,
                    ..
                } => {
                    assert_eq!(*handle, h);
                    assert_eq!(*reason, FailReason::Timeout);
                    assert_eq!(super::super::message::uri_path(request), "3/0/0");
                    failed_at = (t - t0).as_millis() as u64;
                    break;
                }
            }
        }
        // 0, T, 3T, 7T, 15T with T = 2 s; give up at 31T = 62 s.
        assert_eq!(sends, vec![0, 2_000, 6_000, 14_000, 30_000]);
        assert_eq!(failed_at, 62_000);
        assert_eq!(ob.next_deadline(), None);
    }

    #[test]
    fn initial_timeout_within_2_to_3_seconds_and_max_span() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let t0 = Instant::now();
            let mut ob = Outbound::new(OutboundConfig::default());
            ob.send(peer(), get("1"), t0, &mut rng).unwrap();
            let d = ob.next_deadline().unwrap() - t0;
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(3),
                "{d:?}"
            );
            let mut last_send = t0;
            let fail;
            loop {
                let t = ob.next_deadline().unwrap();
                match ob.poll_timeout(t, &mut rng).pop().unwrap() {
                    TimerOutput::Transmit(_) => last_send = t,
                    TimerOutput::Failed { .. } => {
                        fail = t;
                        break;
                    }
                }
            }
            assert!(last_send - t0 <= super::super::MAX_TRANSMIT_SPAN);
            assert!(fail - t0 <= super::super::MAX_TRANSMIT_WAIT);
        }
    }

    #[test]
    fn piggybacked_response_nstart_and_queue() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut ob = Outbound::new(OutboundConfig {
            max_queue_per_peer: 1,
            ..OutboundConfig::default()
        });
        let (h1, tx1) = ob.send(peer(), get("3/0"), t0, &mut rng).unwrap();
        let (h2, tx2) = ob.send(peer(), get("5/0/3"), t0, &mut rng).unwrap();
        assert!(
            tx1.is_some() && tx2.is_none(),
            "NSTART 1: second request queued"
        );
        assert_eq!(
            ob.send(peer(), get("4"), t0, &mut rng).unwrap_err(),
            SendError::Refused(Refusal::QueueFull)
        );
        // Another peer is independent.
        let other = SocketAddr::from(([192, 0, 2, 2], 5683));
        assert!(ob.send(other, get("3"), t0, &mut rng).unwrap().1.is_some());

        let req1 = parse(&tx1.unwrap());
        let resp = ack_response(&req1, ResponseType::Content, None);
        let r = ob.on_message(peer(), &resp, t0 + Duration::from_millis(50), &mut rng);
        assert!(
            matches!(r.event, Event::Response { handle, observing: false, .. } if handle == h1)
        );
        assert_eq!(r.reply, None);
        assert_eq!(r.transmits.len(), 1, "queued request starts");
        let req2 = parse(&r.transmits[0]);
        assert_eq!(
            req2.header.message_id,
            req1.header.message_id.wrapping_add(1)
        );
        assert_ne!(req2.get_token(), req1.get_token());
        // Duplicate ACK: nothing.
        let r = ob.on_message(peer(), &resp, t0, &mut rng);
        assert_eq!(r.event, Event::Unmatched);
        // ACK with matching MID but wrong token is ignored.
        let mut bad = ack_response(&req2, ResponseType::Content, None);
        bad.set_token(vec![9; 8]);
        assert_eq!(
            ob.on_message(peer(), &bad, t0, &mut rng).event,
            Event::Unmatched
        );
        let r = ob.on_message(
            peer(),
            &ack_response(&req2, ResponseType::Content, None),
            t0,
            &mut rng,
        );
        assert!(matches!(r.event, Event::Response { handle, .. } if handle == h2));
        assert!(!ob.in_flight(peer()));
    }

    #[test]
    fn separate_response() {
        // RFC 7252 Figure 7: empty ACK, later CON 2.05 with the token,
        // which we acknowledge with an empty ACK carrying its MID.
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut ob = Outbound::new(OutboundConfig::default());
        let (h, tx) = ob.send(peer(), get("3/0/0"), t0, &mut rng).unwrap();
        let (h2, none) = ob.send(peer(), get("3/0/1"), t0, &mut rng).unwrap();
        assert!(none.is_none());
        let req = parse(&tx.unwrap());
        let r = ob.on_message(peer(), &empty_ack(req.header.message_id), t0, &mut rng);
        assert_eq!(r.event, Event::Acked { handle: h });
        assert_eq!(r.transmits.len(), 1, "acknowledged: NSTART slot free");
        let req2 = parse(&r.transmits[0]);
        // No retransmission of the first request any more; only the
        // second's timer and the first's separate-response timer remain.
        let resp = notif(
            req.get_token(),
            0x2001,
            MessageType::Confirmable,
            None,
            ResponseType::Content,
        );
        let r = ob.on_message(peer(), &resp, t0 + Duration::from_secs(5), &mut rng);
        assert!(matches!(r.event, Event::Response { handle, .. } if handle == h));
        assert_eq!(r.reply.unwrap().bytes, vec![0x60, 0x00, 0x20, 0x01]);
        // Second request: separate response overtakes its lost empty ACK.
        let resp2 = notif(
            req2.get_token(),
            0x2002,
            MessageType::Confirmable,
            None,
            ResponseType::Content,
        );
        let r = ob.on_message(peer(), &resp2, t0 + Duration::from_secs(5), &mut rng);
        assert!(matches!(r.event, Event::Response { handle, .. } if handle == h2));
        assert_eq!(ob.next_deadline(), None, "no timers left");
        // The late empty ACK matches nothing.
        let r = ob.on_message(peer(), &empty_ack(req2.header.message_id), t0, &mut rng);
        assert_eq!(r.event, Event::Unmatched);
    }

    #[test]
    fn separate_response_timeout() {
        let t0 = Instant::now();
        let mut rng = zero_rng();
        let mut ob = Outbound::new(OutboundConfig::default());
        let (h, tx) = ob.send(peer(), get("3"), t0, &mut rng).unwrap();
        let req = parse(&tx.unwrap());
        ob.on_message(peer(), &empty_ack(req.header.message_id), t0, &mut rng);
        let out = ob.poll_timeout(t0 + Duration::from_secs(92), &mut rng);
        assert!(out.is_empty());
        let out = ob.poll_timeout(t0 + Duration::from_secs(93), &mut rng);
        assert!(
            matches!(&out[..], [TimerOutput::Failed { handle, reason: FailReason::NoSeparateResponse, .. }] if *handle == h)
        );
    }

    #[test]
    fn reset_fails_request_and_starts_next() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut ob = Outbound::new(OutboundConfig::default());
        let (h, tx) = ob.send(peer(), get("3"), t0, &mut rng).unwrap();
        ob.send(peer(), get("4"), t0, &mut rng).unwrap();
        let req = parse(&tx.unwrap());
        let r = ob.on_message(peer(), &rst(req.header.message_id), t0, &mut rng);
        assert_eq!(r.event, Event::Reset { handle: h });
        assert_eq!(r.transmits.len(), 1);
        // RST from another address with the same MID does not match.
        let other = SocketAddr::from(([192, 0, 2, 9], 5683));
        let req2 = parse(&r.transmits[0]);
        assert_eq!(
            ob.on_message(other, &rst(req2.header.message_id), t0, &mut rng)
                .event,
            Event::Unmatched
        );
    }

    #[test]
    fn observe_notifications_freshness_and_end() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut ob = Outbound::new(OutboundConfig::default());
        let mut req = get("3303/0/5700");
        req.add_option(CoapOption::Observe, encode_uint(0));
        let (h, tx) = ob.send(peer(), req, t0, &mut rng).unwrap();
        let req = parse(&tx.unwrap());
        let token = req.get_token().to_vec();
        // RFC 7641 Figure 3 style: 2.05 with Observe 12 establishes it.
        let r = ob.on_message(
            peer(),
            &ack_response(&req, ResponseType::Content, Some(12)),
            t0,
            &mut rng,
        );
        assert!(matches!(r.event, Event::Response { handle, observing: true, .. } if handle == h));
        assert!(ob.is_observing(h));

        // CON notification 44: fresh, empty ACK with its MID.
        let n = notif(
            &token,
            0x3001,
            MessageType::Confirmable,
            Some(44),
            ResponseType::Content,
        );
        let r = ob.on_message(peer(), &n, t0 + Duration::from_secs(1), &mut rng);
        assert!(matches!(r.event, Event::Notification { handle, fresh: true, .. } if handle == h));
        assert_eq!(r.reply.unwrap().bytes, vec![0x60, 0, 0x30, 0x01]);
        // NON notification 30 arrives late (reordered): stale, no reply.
        let n = notif(
            &token,
            0x3002,
            MessageType::NonConfirmable,
            Some(30),
            ResponseType::Content,
        );
        let r = ob.on_message(peer(), &n, t0 + Duration::from_secs(2), &mut rng);
        assert!(matches!(r.event, Event::Notification { fresh: false, .. }));
        assert_eq!(r.reply, None);
        // Same old number more than 128 s later counts as fresh.
        let r = ob.on_message(peer(), &n, t0 + Duration::from_secs(130), &mut rng);
        assert!(matches!(r.event, Event::Notification { fresh: true, .. }));
        // Error code ends it; a later notification gets RST.
        let n = notif(
            &token,
            0x3003,
            MessageType::Confirmable,
            None,
            ResponseType::NotFound,
        );
        let r = ob.on_message(peer(), &n, t0 + Duration::from_secs(131), &mut rng);
        assert!(matches!(r.event, Event::ObservationEnded { handle, .. } if handle == h));
        assert!(!ob.is_observing(h));
        let n = notif(
            &token,
            0x3004,
            MessageType::Confirmable,
            Some(50),
            ResponseType::Content,
        );
        let r = ob.on_message(peer(), &n, t0 + Duration::from_secs(132), &mut rng);
        assert_eq!(r.event, Event::Unmatched);
        assert_eq!(r.reply.unwrap().bytes, vec![0x70, 0, 0x30, 0x04]);
    }

    #[test]
    fn freshness_rule_wraps_24_bits() {
        let t = Instant::now();
        assert!(is_fresh(1, t, 2, t));
        assert!(!is_fresh(2, t, 1, t));
        assert!(!is_fresh(5, t, 5, t));
        // Wrap-around: 0xFFFFFF then 3.
        assert!(is_fresh(0xff_ffff, t, 3, t));
        assert!(!is_fresh(3, t, 0xff_ffff, t));
        // Exactly 2^23 apart is not fresh by number.
        assert!(!is_fresh(0, t, 1 << 23, t));
        assert!(is_fresh(0, t, (1 << 23) - 1, t));
        assert!(is_fresh(9, t, 1, t + Duration::from_secs(129)));
        assert!(!is_fresh(9, t, 1, t + Duration::from_secs(128)));
    }

    #[test]
    fn unknown_token_notification_gets_rst_and_cancel() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut ob = Outbound::new(OutboundConfig::default());
        let n = notif(
            &[1, 2, 3],
            0x10,
            MessageType::NonConfirmable,
            Some(1),
            ResponseType::Content,
        );
        let r = ob.on_message(peer(), &n, t0, &mut rng);
        assert_eq!(r.event, Event::Unmatched);
        assert_eq!(r.reply.unwrap().bytes, vec![0x70, 0, 0, 0x10]);

        let mut req = get("5/0/3");
        req.add_option(CoapOption::Observe, encode_uint(0));
        let (h, tx) = ob.send(peer(), req, t0, &mut rng).unwrap();
        let req = parse(&tx.unwrap());
        ob.on_message(
            peer(),
            &ack_response(&req, ResponseType::Content, Some(1)),
            t0,
            &mut rng,
        );
        // Active cancel reuses the token with Observe = 1.
        let (h2, tx) = ob.cancel_observation_active(h, t0, &mut rng).unwrap();
        let c = parse(&tx.unwrap());
        assert_eq!(c.get_token(), req.get_token());
        assert_eq!(uint_option(&c, CoapOption::Observe), Some(1));
        assert_ne!(c.header.message_id, req.header.message_id);
        assert!(!ob.is_observing(h));
        let r = ob.on_message(
            peer(),
            &ack_response(&c, ResponseType::Content, None),
            t0,
            &mut rng,
        );
        assert!(
            matches!(r.event, Event::Response { handle, observing: false, .. } if handle == h2)
        );
    }

    #[test]
    fn observe_without_observe_option_in_response_is_plain() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let mut ob = Outbound::new(OutboundConfig::default());
        let mut req = get("3/0/13");
        req.add_option(CoapOption::Observe, encode_uint(0));
        let (_, tx) = ob.send(peer(), req, t0, &mut rng).unwrap();
        let req = parse(&tx.unwrap());
        let r = ob.on_message(
            peer(),
            &ack_response(&req, ResponseType::Content, None),
            t0,
            &mut rng,
        );
        assert!(matches!(
            r.event,
            Event::Response {
                observing: false,
                ..
            }
        ));
        assert_eq!(ob.observation_count(), 0);
    }

    #[test]
    fn cancel_queued_and_in_flight() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let mut ob = Outbound::new(OutboundConfig::default());
        let (h1, _) = ob.send(peer(), get("1"), t0, &mut rng).unwrap();
        let (h2, _) = ob.send(peer(), get("2"), t0, &mut rng).unwrap();
        let (_h3, _) = ob.send(peer(), get("3"), t0, &mut rng).unwrap();
        assert!(ob.cancel(h2, t0, &mut rng).is_empty());
        assert_eq!(ob.queued(peer()), 1);
        let next = ob.cancel(h1, t0, &mut rng);
        assert_eq!(next.len(), 1);
        assert_eq!(super::super::message::uri_path(&parse(&next[0])), "3");
    }

    #[test]
    fn limits_and_idle_peer_pruning() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut ob = Outbound::new(OutboundConfig {
            max_peers: 1,
            max_observations_per_peer: 0,
            ..OutboundConfig::default()
        });
        let other = SocketAddr::from(([192, 0, 2, 2], 5683));
        let (_, tx) = ob.send(peer(), get("1"), t0, &mut rng).unwrap();
        assert_eq!(
            ob.send(other, get("1"), t0, &mut rng).unwrap_err(),
            SendError::Refused(Refusal::TooManyPeers)
        );
        let mut obs = get("1");
        obs.add_option(CoapOption::Observe, encode_uint(0));
        assert_eq!(
            ob.send(peer(), obs, t0, &mut rng).unwrap_err(),
            SendError::Refused(Refusal::TooManyObservations)
        );
        let req = parse(&tx.unwrap());
        ob.on_message(
            peer(),
            &ack_response(&req, ResponseType::Content, None),
            t0,
            &mut rng,
        );
        assert_eq!(ob.peer_count(), 1);
        ob.poll_timeout(t0 + EXCHANGE_LIFETIME, &mut rng);
        assert_eq!(ob.peer_count(), 0);
        assert!(ob.send(other, get("1"), t0, &mut rng).is_ok());
        // A response code is not a request.
        let mut notreq = get("1");
        notreq.header.code = MessageClass::Response(ResponseType::Content);
        assert_eq!(
            ob.send(other, notreq, t0, &mut rng).unwrap_err(),
            SendError::NotARequest
        );
    }

    #[test]
    fn allocate_mid_shares_the_request_sequence() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let mut ob = Outbound::new(OutboundConfig::default());
        let m1 = ob.allocate_mid(peer(), t0, &mut rng).unwrap();
        let (_, tx) = ob.send(peer(), get("1"), t0, &mut rng).unwrap();
        assert_eq!(parse(&tx.unwrap()).header.message_id, m1.wrapping_add(1));
        let m3 = ob.allocate_mid(peer(), t0, &mut rng).unwrap();
        assert_eq!(m3, m1.wrapping_add(2));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_inbound_never_panics(
                msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 4..40), 0..30),
                seed in any::<u64>(),
            ) {
                let t0 = Instant::now();
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut ob = Outbound::new(OutboundConfig::default());
                let mut o = get("3/0");
                o.add_option(CoapOption::Observe, encode_uint(0));
                ob.send(peer(), o, t0, &mut rng).unwrap();
                ob.send(peer(), get("5/0/3"), t0, &mut rng).unwrap();
                for (i, m) in msgs.iter().enumerate() {
                    if let Ok(p) = Packet::from_bytes(m) {
                        let _ = ob.on_message(peer(), &p, t0 + Duration::from_secs(i as u64), &mut rng);
                    }
                    let _ = ob.poll_timeout(t0 + Duration::from_secs(i as u64 * 7), &mut rng);
                }
                // Everything left either completes or fails in bounded time.
                let mut polls = 0;
                while let Some(d) = ob.next_deadline() {
                    let _ = ob.poll_timeout(d, &mut rng);
                    polls += 1;
                    prop_assert!(polls < 50);
                }
            }
        }
    }
}
