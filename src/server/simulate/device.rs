//! One simulated LwM2M 1.1 client, sans-IO: datagrams and timer events go
//! in, datagrams to send (and download jobs) come out. The fleet task owns
//! the socket and the clock.
//!
//! Registration interface (Core TS 1.1.1 §6.2): Register, Update before
//! the lifetime ends (and on every queue-mode wake), De-register at the
//! end. Device management (§6.3) and Information Reporting (§6.4) are
//! served from [`Objects`]; notifications follow the Write-Attributes
//! schedule in [`observe`](super::observe).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::lwm2m::{ResourcePath, Value};
use crate::server::lwm2m::coap::block::{
    block2_response, etag_for, finish_block1, Block1Assembler, Block1Config, Block1Outcome,
    Block2Download, BlockOpt, DownloadStep, MAX_SZX,
};
use crate::server::lwm2m::coap::dedup::{Check, Dedup, DedupConfig, Kind, Sameness};
use crate::server::lwm2m::coap::message::{
    classify, empty_ack, encode_uint, response_for, response_with_payload, set_content_format,
    uint_option, uri_path, Inbound,
};
use crate::server::lwm2m::format::{
    decode, encode, encode_records, ContentFormat, DecodeContext, FormatError, LwPath, Record,
};
use crate::server::lwm2m::link_format::{to_link_format, RootLink};

use super::composite;
use super::firmware::{self, Effect, Firmware, FwResult, Source, MAX_IMAGE};
use super::objects::{self, declared_type, Objects, OpError, Profile, WriteMode};
use super::observe::{decide, fingerprint, AttributeStore, Attributes, Due, Reported};
use super::report::Counters;
use super::transport::{Outcome, Purpose, Timing, Transport};

/// Settings shared by every device of a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: SocketAddr,
    pub lifetime_s: u32,
    pub queue_mode: bool,
    /// Queue mode: how long the device stays reachable after it last
    /// talked to the server.
    pub awake: Duration,
    /// Queue mode: how long it sleeps before it wakes with an Update.
    pub sleep: Duration,
    /// Sensor values move, and observations are looked at, this often.
    pub notify_every: Duration,
    pub send_every: Option<Duration>,
    /// Default format of Read answers, notifications and Send.
    pub content_format: ContentFormat,
    /// CON notifications (Zephyr's default) or NON.
    pub con_notifications: bool,
    pub http_download: bool,
    /// Delay between Execute Reboot (or a finished update) and the new
    /// Register: the time to answer the Execute.
    pub reboot_delay: Duration,
    /// How long installing a firmware image takes.
    pub install_time: Duration,
    pub firmware_version: String,
    pub timing: Timing,
    /// First retry delay of a failed Register; doubles up to 5 minutes.
    pub register_retry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: SocketAddr::from(([127, 0, 0, 1], 5683)),
            lifetime_s: 300,
            queue_mode: false,
            awake: Duration::from_secs(10),
            sleep: Duration::from_secs(60),
            notify_every: Duration::from_secs(5),
            send_every: None,
            content_format: ContentFormat::SenmlCbor,
            con_notifications: true,
            http_download: false,
            reboot_delay: Duration::from_secs(1),
            install_time: Duration::from_secs(2),
            firmware_version: "1.0.0".into(),
            timing: Timing::default(),
            register_retry: Duration::from_secs(10),
        }
    }
}

/// What the device asks its task to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Transmit(SocketAddr, Vec<u8>),
    /// Download this http:// URI and call `download_done`.
    HttpDownload(String),
    /// Resolve this CoAP firmware host and call `firmware_host_resolved`.
    Resolve(String, u16),
}

/// Formats a Read may be answered in.
const READ_FORMATS: [ContentFormat; 6] = [
    ContentFormat::SenmlCbor,
    ContentFormat::SenmlJson,
    ContentFormat::Tlv,
    ContentFormat::Text,
    ContentFormat::Cbor,
    ContentFormat::Opaque,
];

/// Notifications kept per observation while the device cannot send.
const MAX_BUFFERED: usize = 8;
const MAX_OBSERVATIONS: usize = 32;
/// Answers above this go block-wise (RFC 7959), like Zephyr's 512–1024.
const MAX_PLAIN_PAYLOAD: usize = 1024;
/// Firmware Block2 size: 512 bytes.
const FIRMWARE_SZX: u8 = 5;
/// The block size the device asks for when the server sends a request
/// block-wise (RFC 7959 Block1): 512 bytes, Zephyr's default
/// (CONFIG_LWM2M_COAP_BLOCK_SIZE). A server starting with larger blocks
/// is told so in the first 2.31 Continue (§2.5) and goes on in 512.
const BLOCK1_SZX: u8 = 5;
const MAX_REGISTER_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Path(LwPath),
    Composite(Vec<LwPath>),
}

#[derive(Debug)]
struct Observation {
    token: Vec<u8>,
    target: Target,
    format: ContentFormat,
    last: Reported,
    queue: VecDeque<Vec<u8>>,
    in_flight: bool,
    /// When the confirmable notification in flight was first sent.
    sent_at: Option<Instant>,
    /// MID of the last NON notification, to match an RST to it.
    last_mid: Option<u16>,
}

#[derive(Debug)]
enum Reg {
    Unregistered {
        retry_at: Instant,
        backoff: Duration,
    },
    Registering {
        backoff: Duration,
    },
    Registered {
        location: Vec<String>,
        update_at: Instant,
    },
    Deregistering,
    Done,
}

#[derive(Debug)]
struct Download {
    from: SocketAddr,
    blocks: Block2Download,
}

pub struct Device {
    cfg: Arc<Config>,
    endpoint: String,
    counters: Arc<Counters>,
    rng: StdRng,
    objects: Objects,
    fw: Firmware,
    attrs: AttributeStore,
    observations: Vec<Observation>,
    observe_seq: u32,
    transport: Transport,
    dedup: Dedup,
    block1: Block1Assembler,
    reg: Reg,
    out: Vec<Output>,
    /// Host wall-clock ms at `epoch`, for 3/0/13 and Send timestamps.
    epoch: (Instant, i64),
    tick_at: Instant,
    observe_at: Option<Instant>,
    send_at: Option<Instant>,
    send_due: bool,
    reboot_at: Option<Instant>,
    install_done_at: Option<Instant>,
    /// An Update must go out (objects or lifetime changed, 1/0/8).
    update_due: bool,
    update_links: bool,
    update_lifetime: bool,
    asleep: bool,
    awake_until: Option<Instant>,
    wake_at: Option<Instant>,
    /// Waiting for the answer to the Update sent on waking.
    waking: bool,
    drain: bool,
    download: Option<Download>,
    /// Path and query of a CoAP download whose host is being resolved.
    pending_coap: Option<(Vec<String>, Vec<String>)>,
}

fn response(req: &Packet, code: ResponseType) -> Packet {
    response_for(req, code)
}

fn error_response(req: &Packet, e: OpError) -> Packet {
    response_for(req, e.code())
}

fn format_error(e: &FormatError) -> OpError {
    match e.coap_code() {
        (4, 15) => OpError::UnsupportedFormat,
        (5, _) => OpError::Internal,
        _ => OpError::BadRequest,
    }
}

impl Device {
    pub fn new(
        cfg: Arc<Config>,
        endpoint: String,
        seed: u64,
        counters: Arc<Counters>,
        now: Instant,
        wall_ms: i64,
    ) -> Device {
        let mut rng = StdRng::seed_from_u64(seed);
        let profile = Profile {
            serial: format!("SN-{seed:08X}"),
            firmware_version: cfg.firmware_version.clone(),
            lifetime_s: cfg.lifetime_s,
            binding: "U".into(),
            http_download: cfg.http_download,
        };
        let objects = Objects::new(&profile, &mut rng);
        let transport = Transport::new(cfg.timing, &mut rng);
        // Spread the devices' ticks so that N devices do not all wake at once.
        let phase = cfg.notify_every.mul_f64(rng.gen_range(0.0..1.0));
        Device {
            endpoint,
            counters,
            objects,
            fw: Firmware::new(cfg.http_download),
            attrs: AttributeStore::default(),
            observations: Vec::new(),
            observe_seq: rng.gen_range(0..1000),
            transport,
            dedup: Dedup::new(DedupConfig {
                max_entries: 64,
                max_per_peer: 64,
                max_bytes: 64 * 1024,
                ..DedupConfig::default()
            }),
            block1: Block1Assembler::new(Block1Config {
                max_body: MAX_IMAGE,
                max_per_peer: MAX_IMAGE,
                max_total: MAX_IMAGE,
                max_transfers: 2,
                max_szx: BLOCK1_SZX,
                idle_timeout: Duration::from_secs(60),
            }),
            reg: Reg::Unregistered {
                retry_at: now,
                backoff: cfg.register_retry,
            },
            out: Vec::new(),
            epoch: (now, wall_ms),
            tick_at: now + phase,
            observe_at: None,
            send_at: cfg.send_every.map(|d| now + d),
            send_due: false,
            reboot_at: None,
            install_done_at: None,
            update_due: false,
            update_links: false,
            update_lifetime: false,
            asleep: false,
            awake_until: None,
            wake_at: None,
            waking: false,
            drain: false,
            download: None,
            pending_coap: None,
            rng,
            cfg,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.reg, Reg::Registered { .. })
    }

    /// The device sleeps (queue mode): its task does not read the socket.
    pub fn is_asleep(&self) -> bool {
        self.asleep
    }

    /// Set once on waking: the task must discard what queued up in the
    /// socket while the device slept, before sending anything.
    pub fn take_drain(&mut self) -> bool {
        std::mem::take(&mut self.drain)
    }

    pub fn note_dropped(&self) {
        Counters::inc(&self.counters.dropped_while_asleep);
    }

    pub fn is_done(&self) -> bool {
        matches!(self.reg, Reg::Done)
    }

    pub fn take_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn now_ms(&self, now: Instant) -> i64 {
        let (t0, ms) = self.epoch;
        ms + now.saturating_duration_since(t0).as_millis() as i64
    }

    fn transmit(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.out.push(Output::Transmit(to, bytes));
    }

    fn send_con(&mut self, to: SocketAddr, p: Packet, purpose: Purpose, now: Instant) {
        let bytes = self.transport.send(to, p, purpose, now, &mut self.rng);
        self.transmit(to, bytes);
    }

    fn stay_awake(&mut self, now: Instant) {
        if self.cfg.queue_mode {
            self.awake_until = Some(now + self.cfg.awake);
        }
    }

    /// Registered, awake, and not waiting for the wake-up Update: the
    /// server can be talked to.
    fn online(&self) -> bool {
        self.is_registered() && !self.asleep && !self.waking
    }

    /// The earliest time `on_timer` has something to do.
    pub fn next_deadline(&self) -> Instant {
        let mut t = self.tick_at;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        take(self.transport.next_deadline());
        take(self.observe_at);
        take(self.send_at);
        take(self.reboot_at);
        take(self.install_done_at);
        match &self.reg {
            Reg::Unregistered { retry_at, .. } => take(Some(*retry_at)),
            Reg::Registered { update_at, .. } => take(Some(*update_at)),
            _ => {}
        }
        if self.cfg.queue_mode {
            take(if self.asleep {
                self.wake_at
            } else {
                self.awake_until
            });
        }
        t
    }

    // ---- registration -------------------------------------------------

    fn links_payload(&self) -> Vec<u8> {
        let root = RootLink {
            segments: Vec::new(),
            rt_lwm2m: false,
            content_formats: vec![self.cfg.content_format.number()],
        };
        to_link_format(Some(&root), &self.objects.links()).into_bytes()
    }

    fn register(&mut self, now: Instant, backoff: Duration) {
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Post);
        p.add_option(CoapOption::UriPath, b"rd".to_vec());
        let lifetime = self.lifetime();
        let mut query = vec![
            format!("ep={}", self.endpoint),
            format!("lt={lifetime}"),
            "lwm2m=1.1".to_owned(),
            "b=U".to_owned(),
        ];
        if self.cfg.queue_mode {
            query.push("Q".to_owned());
        }
        for q in query {
            p.add_option(CoapOption::UriQuery, q.into_bytes());
        }
        set_content_format(&mut p, ContentFormat::LinkFormat.number());
        p.payload = self.links_payload();
        self.reg = Reg::Registering { backoff };
        self.update_due = false;
        self.update_links = false;
        self.update_lifetime = false;
        let server = self.cfg.server;
        self.send_con(server, p, Purpose::Register, now);
    }

    fn lifetime(&self) -> u32 {
        match self.objects.get(objects::SERVER, 0, 1) {
            Some(Value::Integer(l)) if *l > 0 => u32::try_from(*l).unwrap_or(u32::MAX),
            _ => self.cfg.lifetime_s,
        }
    }

    /// Update at 80% of the lifetime, with room for retransmissions on
    /// long lifetimes and at least one second on short ones.
    fn next_update(&self, now: Instant) -> Instant {
        let lt = Duration::from_secs(u64::from(self.lifetime()));
        now + lt.mul_f64(0.8).max(Duration::from_secs(1))
    }

    fn send_update(&mut self, now: Instant) {
        let Reg::Registered { location, .. } = &self.reg else {
            return;
        };
        if self.transport.has(&Purpose::Update) {
            return;
        }
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Post);
        for seg in location {
            p.add_option(CoapOption::UriPath, seg.clone().into_bytes());
        }
        if self.update_lifetime {
            let lt = self.lifetime();
            p.add_option(CoapOption::UriQuery, format!("lt={lt}").into_bytes());
        }
        if self.update_links {
            set_content_format(&mut p, ContentFormat::LinkFormat.number());
            p.payload = self.links_payload();
        }
        self.update_due = false;
        self.update_links = false;
        self.update_lifetime = false;
        let server = self.cfg.server;
        self.send_con(server, p, Purpose::Update, now);
    }

    /// Starts the De-register (DELETE /rd/<id>); a device that is not
    /// registered is done at once.
    pub fn shutdown(&mut self, now: Instant) {
        self.asleep = false;
        let Reg::Registered { location, .. } = &self.reg else {
            self.reg = Reg::Done;
            return;
        };
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Delete);
        for seg in location {
            p.add_option(CoapOption::UriPath, seg.clone().into_bytes());
        }
        self.reg = Reg::Deregistering;
        let server = self.cfg.server;
        self.send_con(server, p, Purpose::Deregister, now);
    }

    fn registration_failed(&mut self, now: Instant) {
        let backoff = match self.reg {
            Reg::Registering { backoff } => backoff,
            _ => self.cfg.register_retry,
        };
        Counters::inc(&self.counters.register_failures);
        // Jitter keeps a fleet that lost its server from retrying in step.
        let wait = backoff.mul_f64(self.rng.gen_range(1.0..1.5));
        self.reg = Reg::Unregistered {
            retry_at: now + wait,
            backoff: (backoff * 2).min(MAX_REGISTER_BACKOFF),
        };
    }

    /// Registers again `after` (with jitter), keeping the failure backoff
    /// where it was.
    fn register_later(&mut self, now: Instant, after: Duration) {
        let backoff = match self.reg {
            Reg::Registering { backoff } => backoff,
            _ => self.cfg.register_retry,
        };
        Counters::inc(&self.counters.register_busy);
        self.reg = Reg::Unregistered {
            retry_at: now + after.mul_f64(self.rng.gen_range(1.0..1.5)),
            backoff,
        };
    }

    fn registered(&mut self, resp: &Packet, now: Instant) {
        let location: Vec<String> = resp
            .get_option(CoapOption::LocationPath)
            .map(|l| {
                l.iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if location.is_empty() {
            Counters::inc(&self.counters.errors);
            self.registration_failed(now);
            return;
        }
        Counters::inc(&self.counters.registered);
        tracing::debug!(endpoint = %self.endpoint, location = ?location, "registered");
        self.reg = Reg::Registered {
            location,
            update_at: self.next_update(now),
        };
        self.stay_awake(now);
        self.after_online(now);
    }

    /// Things held back while the server could not be reached.
    fn after_online(&mut self, now: Instant) {
        if self.send_due {
            self.send_due = false;
            self.send_values(now);
        }
        if self.update_due {
            self.send_update(now);
        }
        self.check_observations(now);
    }

    fn reregister(&mut self, now: Instant) {
        self.waking = false;
        let backoff = self.cfg.register_retry;
        self.register(now, backoff);
    }

    // ---- timers ---------------------------------------------------------

    pub fn on_timer(&mut self, now: Instant) {
        let (resend, failed) = self.transport.poll(now);
        for (to, bytes) in resend {
            self.transmit(to, bytes);
        }
        for purpose in failed {
            Counters::inc(&self.counters.timeouts);
            self.on_outcome(purpose, Outcome::Timeout, now);
        }
        if let Reg::Unregistered { retry_at, backoff } = self.reg {
            if retry_at <= now {
                self.register(now, backoff);
            }
        }
        if self.reboot_at.is_some_and(|t| t <= now) {
            self.reboot(now);
        }
        if self.install_done_at.is_some_and(|t| t <= now) {
            self.install_done_at = None;
            if let Some(version) = self.fw.update_finished() {
                Counters::inc(&self.counters.firmware_updates);
                self.objects
                    .set(objects::DEVICE, 0, 3, Value::String(version.clone()));
                self.objects
                    .set(objects::DEVICE, 0, 19, Value::String(version));
                self.sync_firmware();
                // The new image reports success, then boots.
                self.reboot_at = Some(now + self.cfg.reboot_delay);
            }
        }
        if self.tick_at <= now {
            self.counters
                .send_lag
                .record(now.saturating_duration_since(self.tick_at));
            while self.tick_at <= now {
                self.tick_at += self.cfg.notify_every;
            }
            // The device's clock (3/0/13) moves too, so an observation of
            // the Device object notifies the whole object at each tick.
            self.objects.set_now(self.now_ms(now));
            self.objects.tick(&mut self.rng);
        }
        if let Some(t) = self.send_at.filter(|t| *t <= now) {
            let every = self.cfg.send_every.unwrap_or(Duration::from_secs(60));
            // Late by more than a period (a long sleep): skip, do not burst.
            let base = now.checked_sub(every).map_or(t, |floor| t.max(floor));
            self.send_at = Some(base + every);
            if self.online() {
                self.send_values(now);
            } else if self.is_registered() {
                self.send_due = true;
            }
        }
        let update_at = match &self.reg {
            Reg::Registered { update_at, .. } => Some(*update_at),
            _ => None,
        };
        if self.cfg.queue_mode && self.is_registered() {
            if self.asleep {
                let wake = self.wake_at.is_some_and(|t| t <= now)
                    || update_at.is_some_and(|t| t <= now)
                    || self.send_due
                    || self.update_due;
                if wake {
                    self.wake(now);
                }
            } else if self.awake_until.is_some_and(|t| t <= now)
                && self.transport.is_idle()
                && self.download.is_none()
                && !self.waking
            {
                self.asleep = true;
                self.wake_at = Some(now + self.cfg.sleep);
                Counters::inc(&self.counters.sleeps);
                tracing::trace!(endpoint = %self.endpoint, "sleeping");
            }
        }
        if !self.asleep {
            if let Reg::Registered { update_at, .. } = &mut self.reg {
                if *update_at <= now {
                    // Until the answer comes the next attempt is the
                    // transport's retransmission, not another Update.
                    *update_at = now + Duration::from_secs(3600);
                    self.update_due = true;
                }
            }
            if self.update_due && !self.waking {
                self.send_update(now);
            }
        }
        self.check_observations(now);
    }

    fn wake(&mut self, now: Instant) {
        self.asleep = false;
        self.wake_at = None;
        self.drain = true;
        self.waking = true;
        if let Reg::Registered { update_at, .. } = &mut self.reg {
            *update_at = now + Duration::from_secs(3600);
        }
        tracing::trace!(endpoint = %self.endpoint, "waking");
        self.send_update(now);
        self.stay_awake(now);
    }

    fn reboot(&mut self, now: Instant) {
        self.reboot_at = None;
        Counters::inc(&self.counters.reboots);
        self.transport.clear();
        self.observations.clear();
        self.attrs.clear();
        self.observe_at = None;
        self.asleep = false;
        self.waking = false;
        self.send_due = false;
        if self.download.take().is_some() || self.fw.state == firmware::FwState::Downloading {
            self.fw.download_finished(Err(FwResult::ConnectionLost));
            self.sync_firmware();
        }
        tracing::debug!(endpoint = %self.endpoint, "rebooting");
        self.reg = Reg::Unregistered {
            retry_at: now,
            backoff: self.cfg.register_retry,
        };
        let backoff = self.cfg.register_retry;
        self.register(now, backoff);
    }

    // ---- Send ---------------------------------------------------------

    /// LwM2M Send (Core TS 1.1.1 §6.4.4): the sensor values, timestamped.
    fn send_values(&mut self, now: Instant) {
        let at = self.now_ms(now);
        let mut records = Vec::new();
        for oid in [objects::TEMPERATURE, objects::HUMIDITY] {
            let iids: Vec<u16> = self.objects.instance_ids(oid).collect();
            for iid in iids {
                if let Some(v) = self.objects.get(oid, iid, objects::SENSOR_VALUE) {
                    records.push(Record {
                        path: ResourcePath {
                            object_id: oid.into(),
                            instance_id: iid.into(),
                            resource_id: objects::SENSOR_VALUE.into(),
                            resource_instance_id: None,
                        },
                        value: v.clone(),
                        time_ms: Some(at),
                    });
                }
            }
        }
        if records.is_empty() {
            return;
        }
        let format = match self.cfg.content_format {
            f @ (ContentFormat::SenmlJson | ContentFormat::SenmlCbor) => f,
            _ => ContentFormat::SenmlCbor,
        };
        let Ok(payload) = encode_records(format, &records, &LwPath::ROOT) else {
            Counters::inc(&self.counters.errors);
            return;
        };
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Post);
        p.add_option(CoapOption::UriPath, b"dp".to_vec());
        set_content_format(&mut p, format.number());
        p.payload = payload;
        Counters::inc(&self.counters.sends);
        let server = self.cfg.server;
        self.send_con(server, p, Purpose::Send(now), now);
        self.stay_awake(now);
    }

    // ---- inbound --------------------------------------------------------

    pub fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        if self.asleep {
            Counters::inc(&self.counters.dropped_while_asleep);
            return;
        }
        match classify(bytes) {
            Inbound::Request(req) => self.on_request(from, req, now),
            Inbound::Response(p) => {
                let ty = p.header.get_type();
                if matches!(ty, MessageType::Confirmable | MessageType::NonConfirmable) {
                    let kind = if ty == MessageType::Confirmable {
                        Kind::Confirmable
                    } else {
                        Kind::NonConfirmable
                    };
                    match self
                        .dedup
                        .check(from, p.header.message_id, kind, Sameness::of(&p), now)
                    {
                        Check::New => {}
                        Check::Resend(b) => return self.transmit(from, b),
                        _ => return,
                    }
                    if ty == MessageType::Confirmable {
                        // A separate response: acknowledge it.
                        let ack = empty_ack(p.header.message_id)
                            .to_bytes()
                            .unwrap_or_default();
                        self.dedup.ack_sent(from, p.header.message_id, ack.clone());
                        self.transmit(from, ack);
                    } else {
                        self.dedup.complete_silent(from, p.header.message_id);
                    }
                }
                self.on_reply(from, &p, now);
            }
            Inbound::Empty(p) => {
                if p.header.get_type() == MessageType::Reset {
                    // An RST to a NON notification cancels its observation.
                    let mid = p.header.message_id;
                    if let Some(i) = self
                        .observations
                        .iter()
                        .position(|o| o.last_mid == Some(mid))
                    {
                        self.observations.remove(i);
                        Counters::inc(&self.counters.notifications_reset);
                        return;
                    }
                }
                self.on_reply(from, &p, now);
            }
            Inbound::Rejected { reply, .. } => {
                if let Some(r) = reply.and_then(|r| r.to_bytes().ok()) {
                    self.transmit(from, r);
                }
            }
        }
        self.check_observations(now);
    }

    fn on_reply(&mut self, from: SocketAddr, p: &Packet, now: Instant) {
        if let Some((purpose, outcome)) = self.transport.on_message(from, p) {
            self.on_outcome(purpose, outcome, now);
        }
    }

    fn on_outcome(&mut self, purpose: Purpose, outcome: Outcome, now: Instant) {
        let code = match &outcome {
            Outcome::Response(p) => match p.header.code {
                MessageClass::Response(c) => Some(c),
                _ => None,
            },
            _ => None,
        };
        match purpose {
            Purpose::Register => match (code, &outcome) {
                (Some(ResponseType::Created), Outcome::Response(p)) => self.registered(p, now),
                (Some(ResponseType::ServiceUnavailable), Outcome::Response(p))
                    if p.get_first_option(CoapOption::MaxAge).is_some() =>
                {
                    // A busy server's 5.03 says when to come back (RFC
                    // 7252 §5.9.3.4): its Max-Age, not the failure backoff.
                    let max_age = uint_option(p, CoapOption::MaxAge).unwrap_or(60);
                    tracing::debug!(endpoint = %self.endpoint, max_age, "register: server busy");
                    self.register_later(now, Duration::from_secs(max_age.into()));
                }
                _ => {
                    tracing::debug!(endpoint = %self.endpoint, ?code, "register failed");
                    self.registration_failed(now);
                }
            },
            Purpose::Update => match code {
                Some(ResponseType::Changed) => {
                    Counters::inc(&self.counters.updates);
                    let next = self.next_update(now);
                    if let Reg::Registered { update_at, .. } = &mut self.reg {
                        *update_at = next;
                    }
                    self.waking = false;
                    self.stay_awake(now);
                    self.after_online(now);
                }
                Some(ResponseType::NotFound) => {
                    Counters::inc(&self.counters.update_not_found);
                    self.reregister(now);
                }
                _ => {
                    // Zephyr registers again when an Update fails.
                    Counters::inc(&self.counters.errors);
                    self.reregister(now);
                }
            },
            Purpose::Deregister => {
                if code == Some(ResponseType::Deleted) {
                    Counters::inc(&self.counters.deregistered);
                }
                self.reg = Reg::Done;
            }
            Purpose::Send(sent) => match code {
                Some(c) if !c.is_error() => {
                    Counters::inc(&self.counters.sends_acked);
                    self.counters
                        .send_latency
                        .record(now.saturating_duration_since(sent));
                }
                _ => Counters::inc(&self.counters.errors),
            },
            Purpose::Notify(token) => {
                let Some(i) = self.observations.iter().position(|o| o.token == token) else {
                    return;
                };
                match outcome {
                    Outcome::Acked | Outcome::Response(_) => {
                        Counters::inc(&self.counters.notifications_acked);
                        if let Some(sent) = self.observations[i].sent_at.take() {
                            self.counters
                                .ack_latency
                                .record(now.saturating_duration_since(sent));
                        }
                        self.observations[i].in_flight = false;
                        self.flush_notifications(now);
                    }
                    Outcome::Reset => {
                        Counters::inc(&self.counters.notifications_reset);
                        self.observations.remove(i);
                    }
                    Outcome::Timeout => {
                        Counters::inc(&self.counters.notifications_timed_out);
                        self.observations.remove(i);
                    }
                }
            }
            Purpose::FirmwareBlock => self.on_firmware_block(outcome, now),
        }
    }

    fn on_request(&mut self, from: SocketAddr, req: Packet, now: Instant) {
        let kind = if req.header.get_type() == MessageType::Confirmable {
            Kind::Confirmable
        } else {
            Kind::NonConfirmable
        };
        match self
            .dedup
            .check(from, req.header.message_id, kind, Sameness::of(&req), now)
        {
            Check::New => {}
            Check::Resend(bytes) => {
                Counters::inc(&self.counters.duplicates);
                return self.transmit(from, bytes);
            }
            Check::InFlight | Check::Drop => {
                Counters::inc(&self.counters.duplicates);
                return;
            }
        }
        self.stay_awake(now);
        self.objects.set_now(self.now_ms(now));
        // Only the LwM2M server may manage the device.
        let mut resp = if from != self.cfg.server {
            response(&req, ResponseType::Unauthorized)
        } else {
            match self.block1.on_request(from, &req, now) {
                Block1Outcome::NotBlockwise => self.handle(&req, now),
                Block1Outcome::Continue(p) => p,
                Block1Outcome::Reject { response, .. } => response,
                Block1Outcome::Complete { body, block1 } => {
                    if block1.num > 0 {
                        Counters::inc(&self.counters.blockwise_requests);
                    }
                    let mut whole = req.clone();
                    whole.payload = body;
                    whole.clear_option(CoapOption::Block1);
                    whole.clear_option(CoapOption::Size1);
                    let mut r = self.handle(&whole, now);
                    finish_block1(&mut r, block1);
                    r
                }
            }
        };
        if matches!(resp.header.code, MessageClass::Response(c) if c.is_error()) {
            Counters::inc(&self.counters.request_errors);
        }
        if req.header.get_type() != MessageType::Confirmable {
            resp.header.message_id = self.transport.mid();
        }
        let bytes = resp.to_bytes().unwrap_or_default();
        if kind == Kind::Confirmable {
            self.dedup
                .complete(from, req.header.message_id, bytes.clone());
        } else {
            self.dedup.complete_silent(from, req.header.message_id);
        }
        self.transmit(from, bytes);
    }

    /// One request from the server, answered (Core TS 1.1.1 §6.3, §6.4).
    fn handle(&mut self, req: &Packet, now: Instant) -> Packet {
        let Some(path) = LwPath::parse(&uri_path(req)) else {
            return response(req, ResponseType::NotFound);
        };
        let method = match req.header.code {
            MessageClass::Request(m) => m,
            _ => return response(req, ResponseType::BadRequest),
        };
        let result = match method {
            RequestType::Get => {
                let accept = uint_option(req, CoapOption::Accept);
                if accept == Some(u32::from(ContentFormat::LinkFormat.number())) {
                    Counters::inc(&self.counters.discovers);
                    self.discover(req, &path)
                } else {
                    match uint_option(req, CoapOption::Observe) {
                        Some(0) => {
                            Counters::inc(&self.counters.observes);
                            self.observe(req, Target::Path(path), accept, now)
                        }
                        Some(1) => {
                            Counters::inc(&self.counters.observe_cancels);
                            self.cancel(req.get_token());
                            self.read(req, &Target::Path(path), accept)
                        }
                        _ => {
                            Counters::inc(&self.counters.reads);
                            self.read(req, &Target::Path(path), accept)
                        }
                    }
                }
            }
            RequestType::Fetch => self.fetch(req, now),
            RequestType::Put => {
                if req.get_option(CoapOption::ContentFormat).is_some() {
                    Counters::inc(&self.counters.writes);
                    self.write(req, &path, WriteMode::Replace, now)
                } else {
                    Counters::inc(&self.counters.write_attributes);
                    self.write_attributes(req, &path)
                }
            }
            RequestType::Post => match path.len() {
                1 => {
                    Counters::inc(&self.counters.creates);
                    self.create(req, &path, now)
                }
                2 => {
                    Counters::inc(&self.counters.writes);
                    self.write(req, &path, WriteMode::Partial, now)
                }
                3 => {
                    Counters::inc(&self.counters.executes);
                    self.execute(req, &path, now)
                }
                _ => Err(OpError::MethodNotAllowed),
            },
            RequestType::IPatch => {
                Counters::inc(&self.counters.writes);
                self.write_composite(req, now)
            }
            RequestType::Delete => {
                Counters::inc(&self.counters.deletes);
                self.delete(req, &path)
            }
            _ => Err(OpError::MethodNotAllowed),
        };
        result.unwrap_or_else(|e| error_response(req, e))
    }

    fn read_target(&self, target: &Target) -> Result<Vec<(ResourcePath, Value)>, OpError> {
        match target {
            Target::Path(p) => self.objects.read(p),
            Target::Composite(paths) => {
                let mut all = Vec::new();
                for p in paths {
                    match self.objects.read(p) {
                        Ok(v) => all.extend(v),
                        // A composite read leaves out paths that are gone.
                        Err(OpError::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(all)
            }
        }
    }

    /// The answer format: the Accept option if we can write it for this
    /// target, 4.06 if not; without Accept the configured default.
    fn answer_format(
        &self,
        accept: Option<u32>,
        target: &Target,
        values: &[(ResourcePath, Value)],
    ) -> Result<ContentFormat, OpError> {
        let Some(n) = accept else {
            return Ok(match target {
                Target::Composite(_) => match self.cfg.content_format {
                    f @ ContentFormat::SenmlJson => f,
                    _ => ContentFormat::SenmlCbor,
                },
                Target::Path(p) => match self.cfg.content_format {
                    // Single-value formats are a default for single values only.
                    ContentFormat::Text | ContentFormat::Cbor | ContentFormat::Opaque
                        if p.len() < 3 || values.len() != 1 =>
                    {
                        ContentFormat::SenmlCbor
                    }
                    f => f,
                },
            });
        };
        let f = u16::try_from(n)
            .ok()
            .and_then(ContentFormat::from_u16)
            .filter(|f| READ_FORMATS.contains(f))
            .ok_or(OpError::NotAcceptable)?;
        let single = matches!(target, Target::Path(p) if p.len() >= 3) && values.len() == 1;
        let ok = match f {
            ContentFormat::Text | ContentFormat::Cbor => {
                single && !matches!(target, Target::Path(p) if p.len() == 3 && is_multiple(p))
            }
            ContentFormat::Opaque => single && matches!(values[0].1, Value::Opaque(_)),
            ContentFormat::Tlv => matches!(target, Target::Path(_)),
            _ => true,
        };
        if ok {
            Ok(f)
        } else {
            Err(OpError::NotAcceptable)
        }
    }

    fn encode_target(
        &self,
        target: &Target,
        values: &[(ResourcePath, Value)],
        format: ContentFormat,
    ) -> Result<Vec<u8>, OpError> {
        let base = match target {
            Target::Path(p) => *p,
            Target::Composite(_) => LwPath::ROOT,
        };
        encode(format, values, &base).map_err(|e| match e {
            FormatError::Unencodable { .. } => OpError::NotAcceptable,
            other => format_error(&other),
        })
    }

    fn content(&self, req: &Packet, format: ContentFormat, payload: Vec<u8>) -> Packet {
        let block2 = req.get_option(CoapOption::Block2).is_some();
        if payload.len() > MAX_PLAIN_PAYLOAD || block2 {
            let etag = etag_for(&payload);
            return block2_response(
                req,
                ResponseType::Content,
                Some(format.number()),
                &payload,
                Some(&etag),
                MAX_SZX,
            );
        }
        response_with_payload(req, ResponseType::Content, format.number(), payload)
    }

    fn read(&self, req: &Packet, target: &Target, accept: Option<u32>) -> Result<Packet, OpError> {
        let values = self.read_target(target)?;
        let format = self.answer_format(accept, target, &values)?;
        let payload = self.encode_target(target, &values, format)?;
        Ok(self.content(req, format, payload))
    }

    fn observe(
        &mut self,
        req: &Packet,
        target: Target,
        accept: Option<u32>,
        now: Instant,
    ) -> Result<Packet, OpError> {
        let values = self.read_target(&target)?;
        let format = self.answer_format(accept, &target, &values)?;
        let payload = self.encode_target(&target, &values, format)?;
        let token = req.get_token().to_vec();
        // The same token again re-registers (RFC 7641 §4.1).
        self.observations.retain(|o| o.token != token);
        if self.observations.len() >= MAX_OBSERVATIONS {
            // RFC 7641 §4.1: a plain answer without Observe.
            return Ok(self.content(req, format, payload));
        }
        let number = single_number(&target, &values);
        self.observations.push(Observation {
            token,
            target,
            format,
            last: Reported {
                at: now,
                hash: fingerprint(&values),
                number,
            },
            queue: VecDeque::new(),
            in_flight: false,
            sent_at: None,
            last_mid: None,
        });
        let mut resp = self.content(req, format, payload);
        let seq = self.next_seq();
        resp.set_option(CoapOption::Observe, [encode_uint(seq)].into());
        self.observe_at = Some(now);
        Ok(resp)
    }

    fn next_seq(&mut self) -> u32 {
        self.observe_seq = (self.observe_seq + 1) & 0x00ff_ffff;
        self.observe_seq
    }

    fn cancel(&mut self, token: &[u8]) {
        self.observations.retain(|o| o.token != token);
    }

    fn fetch(&mut self, req: &Packet, now: Instant) -> Result<Packet, OpError> {
        let cf = uint_option(req, CoapOption::ContentFormat)
            .and_then(|n| u16::try_from(n).ok())
            .and_then(ContentFormat::from_u16)
            .ok_or(OpError::UnsupportedFormat)?;
        let paths = composite::paths(cf, &req.payload)?;
        for p in &paths {
            if p.is_empty() {
                return Err(OpError::BadRequest);
            }
        }
        let target = Target::Composite(paths);
        let accept = uint_option(req, CoapOption::Accept).or(Some(u32::from(cf.number())));
        if !matches!(accept.and_then(|n| u16::try_from(n).ok()), Some(110 | 112)) {
            return Err(OpError::NotAcceptable);
        }
        match uint_option(req, CoapOption::Observe) {
            Some(0) => {
                Counters::inc(&self.counters.observes);
                self.observe(req, target, accept, now)
            }
            Some(1) => {
                Counters::inc(&self.counters.observe_cancels);
                self.cancel(req.get_token());
                self.read(req, &target, accept)
            }
            _ => {
                Counters::inc(&self.counters.composite_reads);
                self.read(req, &target, accept)
            }
        }
    }

    fn discover(&self, req: &Packet, path: &LwPath) -> Result<Packet, OpError> {
        let attrs = &self.attrs;
        let text = self
            .objects
            .discover(path, &|p: &LwPath| attrs.get(p).link_params())?;
        Ok(response_with_payload(
            req,
            ResponseType::Content,
            ContentFormat::LinkFormat.number(),
            text.into_bytes(),
        ))
    }

    fn decode_body(
        &self,
        req: &Packet,
        base: &LwPath,
        now: Instant,
    ) -> Result<Vec<Record>, OpError> {
        let cf = uint_option(req, CoapOption::ContentFormat)
            .and_then(|n| u16::try_from(n).ok())
            .and_then(ContentFormat::from_u16)
            .filter(|f| f.can_decode())
            .ok_or(OpError::UnsupportedFormat)?;
        let ctx = DecodeContext {
            request_path: *base,
            now_ms: self.now_ms(now),
            resolve: &declared_type,
        };
        decode(cf, &req.payload, &ctx).map_err(|e| format_error(&e))
    }

    fn write(
        &mut self,
        req: &Packet,
        path: &LwPath,
        mode: WriteMode,
        now: Instant,
    ) -> Result<Packet, OpError> {
        // Existence and permission come before the payload (4.04/4.05
        // rather than 4.00 for a write to the wrong place).
        self.objects.check_write(path)?;
        let records = self.decode_body(req, path, now)?;
        // All or nothing: try the whole write on a copy first.
        self.objects.clone().write(path, records.clone(), mode)?;
        let fw_uri = records.iter().find_map(|r| match (&r.path, &r.value) {
            (p, Value::String(s)) if is_res(p, 5, 1) => Some(s.clone()),
            _ => None,
        });
        let fw_package = records.iter().find_map(|r| match (&r.path, &r.value) {
            (p, Value::Opaque(b)) if is_res(p, 5, 0) => Some(b.clone()),
            _ => None,
        });
        // The firmware object decides first: a URI it refuses is not stored.
        let effect = match (&fw_uri, &fw_package) {
            (Some(uri), _) => Some(self.fw.write_uri(uri)?),
            (None, Some(image)) => Some(self.fw.write_package(image)?),
            _ => None,
        };
        let records: Vec<Record> = records
            .into_iter()
            .filter(|r| !is_res(&r.path, 5, 0) && !is_res(&r.path, 5, 1))
            .collect();
        let written = if records.is_empty() {
            Vec::new()
        } else {
            self.objects.write(path, records, mode)?
        };
        for p in &written {
            match p.ids() {
                [1, _, 1] => {
                    self.update_lifetime = true;
                    self.update_due = true;
                }
                [1, _, 7] => self.update_due = true,
                _ => {}
            }
        }
        if let Some(effect) = effect {
            if fw_package.is_some() && self.fw.state == firmware::FwState::Downloaded {
                Counters::inc(&self.counters.firmware_downloads);
            }
            self.sync_firmware();
            self.firmware_effect(effect, now);
        }
        Ok(response(req, ResponseType::Changed))
    }

    fn write_composite(&mut self, req: &Packet, now: Instant) -> Result<Packet, OpError> {
        let records = self.decode_body(req, &LwPath::ROOT, now)?;
        // Check every target first so that the write is all or nothing.
        let mut by_instance: Vec<(LwPath, Vec<Record>)> = Vec::new();
        for r in records {
            let lw = LwPath::from_resource_path(&r.path).ok_or(OpError::BadRequest)?;
            if lw.ids()[0] == objects::FIRMWARE {
                return Err(OpError::MethodNotAllowed);
            }
            let inst = LwPath::new(&lw.ids()[..2]).ok_or(OpError::BadRequest)?;
            match by_instance.iter_mut().find(|(p, _)| *p == inst) {
                Some((_, v)) => v.push(r),
                None => by_instance.push((inst, vec![r])),
            }
        }
        let mut trial = self.objects.clone();
        for (inst, recs) in &by_instance {
            trial.write(inst, recs.clone(), WriteMode::Partial)?;
        }
        self.objects = trial;
        Ok(response(req, ResponseType::Changed))
    }

    fn write_attributes(&mut self, req: &Packet, path: &LwPath) -> Result<Packet, OpError> {
        if path.is_empty() {
            return Err(OpError::MethodNotAllowed);
        }
        self.objects.read(path).or_else(|e| match e {
            // Attributes may go on resources that cannot be read (e.g. W).
            OpError::MethodNotAllowed => Ok(Vec::new()),
            e => Err(e),
        })?;
        let numeric = path.len() >= 3
            && objects::resource_def(path.ids()[0], path.ids()[2])
                .is_some_and(|r| !r.multiple || path.len() == 4)
            && objects::resource_def(path.ids()[0], path.ids()[2])
                .is_some_and(|r| r.ty.is_numeric());
        let params = req
            .get_option(CoapOption::UriQuery)
            .map(|l| l.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .unwrap_or_default();
        let attrs = self.attrs.get(path).apply_query(params, numeric)?;
        self.attrs.set(*path, attrs);
        Ok(response(req, ResponseType::Changed))
    }

    fn execute(&mut self, req: &Packet, path: &LwPath, now: Instant) -> Result<Packet, OpError> {
        self.objects.check_execute(path)?;
        let ids = path.ids();
        match (ids[0], ids[2]) {
            (objects::DEVICE, 4) => {
                self.reboot_at = Some(now + self.cfg.reboot_delay);
            }
            (objects::FIRMWARE, 2) => {
                self.fw.execute_update()?;
                self.sync_firmware();
                self.install_done_at = Some(now + self.cfg.install_time);
            }
            (objects::SERVER, 8) => {
                self.update_due = true;
            }
            (oid, objects::RESET_MIN_MAX) => {
                self.objects.reset_min_max(oid, ids[1]);
            }
            _ => return Err(OpError::MethodNotAllowed),
        }
        Ok(response(req, ResponseType::Changed))
    }

    fn create(&mut self, req: &Packet, path: &LwPath, now: Instant) -> Result<Packet, OpError> {
        let oid = path.ids()[0];
        let def = objects::object_def(oid).ok_or(OpError::NotFound)?;
        if !def.creatable {
            return Err(OpError::MethodNotAllowed);
        }
        let records = self.decode_body(req, path, now)?;
        let iid = self.objects.create(oid, records)?;
        self.update_links = true;
        self.update_due = true;
        let mut resp = response(req, ResponseType::Created);
        resp.add_option(CoapOption::LocationPath, oid.to_string().into_bytes());
        resp.add_option(CoapOption::LocationPath, iid.to_string().into_bytes());
        Ok(resp)
    }

    fn delete(&mut self, req: &Packet, path: &LwPath) -> Result<Packet, OpError> {
        self.objects.delete(path)?;
        self.attrs.remove_below(path);
        self.update_links = true;
        self.update_due = true;
        Ok(response(req, ResponseType::Deleted))
    }

    // ---- notifications ------------------------------------------------

    fn default_attributes(&self) -> Attributes {
        let period = |rid| match self.objects.get(objects::SERVER, 0, rid) {
            Some(Value::Integer(p)) if *p > 0 => u32::try_from(*p).ok(),
            _ => None,
        };
        Attributes {
            pmin: period(2),
            pmax: period(3),
            ..Attributes::default()
        }
    }

    /// Produces the notifications that are due and schedules the next look.
    fn check_observations(&mut self, now: Instant) {
        if self.observations.is_empty() {
            self.observe_at = None;
            return;
        }
        let defaults = self.default_attributes();
        let mut next: Option<Instant> = None;
        let mut gone = Vec::new();
        for i in 0..self.observations.len() {
            let o = &self.observations[i];
            let values = match self.read_target(&o.target) {
                Ok(v) => v,
                Err(_) => {
                    gone.push(i);
                    continue;
                }
            };
            let attrs = match &o.target {
                Target::Path(p) => self.attrs.effective(p, &defaults),
                Target::Composite(_) => defaults,
            };
            let hash = fingerprint(&values);
            let number = single_number(&o.target, &values);
            let mut due = decide(&attrs, &o.last, hash, number, now);
            if due == Due::Now {
                let Ok(payload) = self.encode_target(&o.target, &values, o.format) else {
                    gone.push(i);
                    continue;
                };
                let o = &mut self.observations[i];
                if o.queue.len() >= MAX_BUFFERED {
                    o.queue.pop_front();
                }
                o.queue.push_back(payload);
                o.last = Reported {
                    at: now,
                    hash,
                    number,
                };
                due = decide(&attrs, &o.last, hash, number, now);
            }
            if let Due::At(t) = due {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        // The observed instance is gone: tell the server (4.04 ends the
        // observation, RFC 7641 §4.2) and forget it.
        for i in gone.into_iter().rev() {
            let o = self.observations.remove(i);
            if self.online() {
                let mut p = Packet::new();
                p.header.code = MessageClass::Response(ResponseType::NotFound);
                p.set_token(o.token.clone());
                self.send_notification(p, o.token, now);
            }
        }
        self.observe_at = next;
        self.flush_notifications(now);
    }

    fn send_notification(&mut self, p: Packet, token: Vec<u8>, now: Instant) {
        Counters::inc(&self.counters.notifications_sent);
        let server = self.cfg.server;
        if self.cfg.con_notifications {
            self.send_con(server, p, Purpose::Notify(token), now);
        } else {
            let mut p = p;
            p.header.set_type(MessageType::NonConfirmable);
            p.header.message_id = self.transport.mid();
            let mid = p.header.message_id;
            if let Some(o) = self.observations.iter_mut().find(|o| o.token == token) {
                o.last_mid = Some(mid);
            }
            if let Ok(b) = p.to_bytes() {
                self.transmit(server, b);
            }
        }
    }

    /// Sends the oldest buffered notification of every observation that
    /// has none in flight, when the server can be reached.
    fn flush_notifications(&mut self, now: Instant) {
        if !self.online() {
            return;
        }
        for i in 0..self.observations.len() {
            let o = &mut self.observations[i];
            if o.in_flight {
                continue;
            }
            let Some(payload) = o.queue.pop_front() else {
                continue;
            };
            o.in_flight = self.cfg.con_notifications;
            o.sent_at = o.in_flight.then_some(now);
            let token = o.token.clone();
            let format = o.format;
            let seq = self.next_seq();
            let mut p = Packet::new();
            p.header.code = MessageClass::Response(ResponseType::Content);
            p.set_token(token.clone());
            p.add_option(CoapOption::Observe, encode_uint(seq));
            set_content_format(&mut p, format.number());
            p.payload = payload;
            self.send_notification(p, token, now);
        }
    }

    // ---- firmware -------------------------------------------------------

    fn sync_firmware(&mut self) {
        let fw = &self.fw;
        let (state, result) = (fw.state as i64, fw.result as i64);
        let (uri, name, version) = (fw.uri.clone(), fw.pkg_name.clone(), fw.pkg_version.clone());
        self.objects
            .set(objects::FIRMWARE, 0, 3, Value::Integer(state));
        self.objects
            .set(objects::FIRMWARE, 0, 5, Value::Integer(result));
        self.objects
            .set(objects::FIRMWARE, 0, 1, Value::String(uri));
        self.objects
            .set(objects::FIRMWARE, 0, 6, Value::String(name));
        self.objects
            .set(objects::FIRMWARE, 0, 7, Value::String(version));
    }

    fn firmware_effect(&mut self, effect: Effect, now: Instant) {
        match effect {
            Effect::None => {}
            Effect::Cancel => {
                self.download = None;
                self.transport.abandon(&Purpose::FirmwareBlock);
            }
            Effect::Download(Source::Http(uri)) => self.out.push(Output::HttpDownload(uri)),
            Effect::Download(Source::Coap {
                host,
                port,
                path,
                query,
            }) => {
                let addr = firmware::literal_addr(&host, port).or_else(|| {
                    (host == "localhost").then(|| SocketAddr::from(([127, 0, 0, 1], port)))
                });
                self.pending_coap = Some((path, query));
                match addr {
                    Some(a) => self.firmware_host_resolved(Some(a), now),
                    None => self.out.push(Output::Resolve(host, port)),
                }
            }
        }
    }

    /// The CoAP firmware host was resolved (or not): start the Block2
    /// download.
    pub fn firmware_host_resolved(&mut self, addr: Option<SocketAddr>, now: Instant) {
        let Some((path, query)) = self.pending_coap.take() else {
            return;
        };
        let Some(addr) = addr else {
            return self.download_done(Err(FwResult::InvalidUri), now);
        };
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Get);
        for s in path {
            p.add_option(CoapOption::UriPath, s.into_bytes());
        }
        for q in query {
            p.add_option(CoapOption::UriQuery, q.into_bytes());
        }
        BlockOpt::new(0, false, FIRMWARE_SZX).set_on(&mut p, CoapOption::Block2);
        self.download = Some(Download {
            from: addr,
            blocks: Block2Download::new(p.clone(), MAX_IMAGE),
        });
        self.send_con(addr, p, Purpose::FirmwareBlock, now);
        self.stay_awake(now);
    }

    fn on_firmware_block(&mut self, outcome: Outcome, now: Instant) {
        let Some(dl) = self.download.as_mut() else {
            return;
        };
        let resp = match outcome {
            Outcome::Response(p) => p,
            _ => return self.download_done(Err(FwResult::ConnectionLost), now),
        };
        match resp.header.code {
            MessageClass::Response(ResponseType::Content) => {}
            MessageClass::Response(ResponseType::NotFound) => {
                return self.download_done(Err(FwResult::InvalidUri), now)
            }
            _ => return self.download_done(Err(FwResult::ConnectionLost), now),
        }
        match dl.blocks.on_response(&resp) {
            Ok(DownloadStep::Next(next)) => {
                let from = dl.from;
                self.send_con(from, next, Purpose::FirmwareBlock, now);
                self.stay_awake(now);
            }
            Ok(DownloadStep::Complete(image)) => self.download_done(Ok(image), now),
            Err(e) => {
                tracing::debug!(endpoint = %self.endpoint, "firmware download: {e}");
                let r = match e {
                    crate::server::lwm2m::coap::block::BlockError::TooLarge { .. } => {
                        FwResult::NotEnoughFlash
                    }
                    _ => FwResult::IntegrityFailure,
                };
                self.download_done(Err(r), now)
            }
        }
    }

    /// A pull download ended (CoAP here, HTTP through the task).
    pub fn download_done(&mut self, outcome: Result<Vec<u8>, FwResult>, now: Instant) {
        self.download = None;
        self.transport.abandon(&Purpose::FirmwareBlock);
        if self.fw.state != firmware::FwState::Downloading {
            return;
        }
        self.fw.download_finished(outcome);
        if self.fw.state == firmware::FwState::Downloaded {
            Counters::inc(&self.counters.firmware_downloads);
        } else {
            Counters::inc(&self.counters.firmware_failures);
        }
        self.sync_firmware();
        self.check_observations(now);
    }
}

fn is_res(p: &ResourcePath, oid: i64, rid: i64) -> bool {
    p.object_id == oid && p.resource_id == rid
}

fn is_multiple(p: &LwPath) -> bool {
    objects::resource_def(p.ids()[0], p.ids()[2]).is_some_and(|r| r.multiple)
}

/// The value gt/lt/st compare: that of a single numeric resource.
fn single_number(target: &Target, values: &[(ResourcePath, Value)]) -> Option<f64> {
    match (target, values) {
        (Target::Path(p), [(_, v)]) if p.len() >= 3 => v.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::lwm2m::coap::block::{Block1Upload, UploadStep, UPLOAD_SZX};

    /// The server's block-wise Write (its own `Block1Upload`) of a 5000-byte
    /// package to 5/0/0: the device asks for 512-byte blocks in its first
    /// 2.31 Continue, reassembles the body, and acts on it once, whole.
    #[test]
    fn a_block_wise_write_of_the_package_arrives_whole() {
        let cfg = Arc::new(Config::default());
        let server = cfg.server;
        let counters = Arc::new(Counters::default());
        let now = Instant::now();
        let mut dev = Device::new(
            cfg,
            "sim-0".into(),
            1,
            counters.clone(),
            now,
            1_700_000_000_000,
        );
        let image: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut put = Packet::new();
        put.header.set_type(MessageType::Confirmable);
        put.header.code = MessageClass::Request(RequestType::Put);
        put.set_token(vec![1, 2, 3, 4]);
        for s in ["5", "0", "0"] {
            put.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        put.add_option(
            CoapOption::ContentFormat,
            encode_uint(u32::from(ContentFormat::Opaque.number())),
        );
        put.payload = image.clone();
        let mut upload = Block1Upload::new(put, UPLOAD_SZX);
        let mut message = upload.start();
        let mut sizes = Vec::new();
        for mid in 100u16.. {
            message.header.message_id = mid;
            sizes.push(message.payload.len());
            dev.on_datagram(server, &message.to_bytes().unwrap(), now);
            let answers: Vec<Packet> = dev
                .take_output()
                .into_iter()
                .filter_map(|o| match o {
                    Output::Transmit(to, bytes) if to == server => Packet::from_bytes(&bytes).ok(),
                    _ => None,
                })
                .filter(|p| p.header.message_id == mid)
                .collect();
            let [answer] = &answers[..] else {
                panic!("one answer to block {mid}: {answers:?}")
            };
            match upload.on_response(answer).unwrap() {
                UploadStep::Send(next) => message = next,
                UploadStep::Done(fin) => {
                    assert_eq!(
                        fin.header.code,
                        MessageClass::Response(ResponseType::Changed)
                    );
                    let echo = BlockOpt::from_packet(&fin, CoapOption::Block1)
                        .unwrap()
                        .unwrap();
                    assert!(!echo.more);
                    break;
                }
            }
        }
        // 1024 (ours), then 512 (the device's) from offset 1024 on.
        assert_eq!(sizes[0], 1024);
        assert_eq!(sizes[1..].iter().sum::<usize>(), 5000 - 1024);
        assert!(sizes[1..].iter().all(|&n| n <= 512));
        assert_eq!(sizes.len(), 1 + 8);
        assert_eq!(
            counters
                .blockwise_requests
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(
            counters.writes.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // The package version names the hash of what arrived: all of it.
        let version = dev
            .objects()
            .read(&LwPath::parse("/5/0/7").unwrap())
            .unwrap();
        assert_eq!(
            version[0].1,
            Value::String(format!("fw-{:08x}", firmware::fnv32(&image)))
        );
        assert_eq!(
            dev.objects()
                .read(&LwPath::parse("/5/0/3").unwrap())
                .unwrap()[0]
                .1,
            Value::Integer(2),
            "Downloaded"
        );
    }
}
