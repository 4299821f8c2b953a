//! Running N devices: one tokio task and one UDP socket (ephemeral port)
//! per device, started at a bounded rate, stopped together with a
//! De-register each.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::server::lwm2m::format::ContentFormat;

use super::device::{Config, Device, Output};
use super::firmware::FwResult;
use super::report::{Counters, SimReport};
use super::transport::Timing;

/// What `flownexus simulate` runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub devices: usize,
    pub server: SocketAddr,
    /// Endpoint names are `<prefix><index>`.
    pub endpoint_prefix: String,
    /// Index of the first device, so that several simulators can share a
    /// server without endpoint clashes.
    pub first_index: usize,
    pub lifetime_s: u32,
    pub queue_mode: bool,
    /// Queue mode: reachable this long after the last exchange.
    pub awake: Duration,
    /// Queue mode: sleep this long between wakes.
    pub sleep: Duration,
    pub notify_every: Duration,
    /// Periodic LwM2M Send of 3303/3304 values.
    pub send_every: Option<Duration>,
    pub content_format: ContentFormat,
    /// NON notifications instead of CON.
    pub non_notifications: bool,
    /// Registrations started per second (0: all at once).
    pub rate: u32,
    /// Stop after this long (otherwise at `shutdown`).
    pub duration: Option<Duration>,
    /// Seed of the devices' values; device i uses `seed + i`.
    pub seed: u64,
    /// Local address to bind the devices' sockets to (port 0). `None`:
    /// the unspecified address of the server's family.
    pub bind: Option<IpAddr>,
    /// How long the devices may take to De-register at the end.
    pub deregister_timeout: Duration,
    pub firmware_version: String,
    /// Retransmission timing; RFC 7252 defaults.
    pub timing: Timing,
    pub reboot_delay: Duration,
    pub install_time: Duration,
    pub register_retry: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            devices: 1,
            server: SocketAddr::from(([127, 0, 0, 1], 5683)),
            endpoint_prefix: "sim-".into(),
            first_index: 0,
            lifetime_s: 300,
            queue_mode: false,
            awake: Duration::from_secs(10),
            sleep: Duration::from_secs(60),
            notify_every: Duration::from_secs(5),
            send_every: None,
            content_format: ContentFormat::SenmlCbor,
            non_notifications: false,
            rate: 500,
            duration: None,
            seed: 1,
            bind: None,
            deregister_timeout: Duration::from_secs(10),
            firmware_version: "1.0.0".into(),
            timing: Timing::default(),
            reboot_delay: Duration::from_secs(1),
            install_time: Duration::from_secs(2),
            register_retry: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("no device could bind a UDP socket: {0}")]
    Bind(std::io::Error),
}

const READ_FORMATS: [ContentFormat; 4] = [
    ContentFormat::SenmlCbor,
    ContentFormat::SenmlJson,
    ContentFormat::Tlv,
    ContentFormat::Cbor,
];

impl SimOptions {
    fn validate(&self) -> Result<(), SimError> {
        let bad = |s: &str| Err(SimError::Invalid(s.into()));
        if self.devices == 0 {
            return bad("devices must be at least 1");
        }
        if self.notify_every.is_zero() {
            return bad("notify interval must be above zero");
        }
        if self.lifetime_s == 0 {
            return bad("lifetime must be at least 1 s");
        }
        if self.send_every.is_some_and(|d| d.is_zero()) {
            return bad("send interval must be above zero");
        }
        if self.queue_mode && (self.awake.is_zero() || self.sleep.is_zero()) {
            return bad("queue mode needs awake and sleep times above zero");
        }
        if !READ_FORMATS.contains(&self.content_format) {
            return bad("content format must be SenML CBOR, SenML JSON, TLV or CBOR");
        }
        if self.endpoint_prefix.is_empty() && self.devices > 1 {
            return bad("endpoint prefix must not be empty");
        }
        Ok(())
    }

    fn config(&self) -> Config {
        Config {
            server: self.server,
            lifetime_s: self.lifetime_s,
            queue_mode: self.queue_mode,
            awake: self.awake,
            sleep: self.sleep,
            notify_every: self.notify_every,
            send_every: self.send_every,
            content_format: self.content_format,
            con_notifications: !self.non_notifications,
            http_download: super::http::SUPPORTED,
            reboot_delay: self.reboot_delay,
            install_time: self.install_time,
            firmware_version: self.firmware_version.clone(),
            timing: self.timing,
            register_retry: self.register_retry,
        }
    }

    fn bind_addr(&self) -> SocketAddr {
        let ip = self.bind.unwrap_or(match self.server {
            SocketAddr::V4(a) if a.ip().is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(a) if a.ip().is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        SocketAddr::new(ip, 0)
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the fleet until `shutdown` completes (or `opts.duration` passes),
/// then De-registers every device and returns the counters.
pub async fn run(
    opts: SimOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<SimReport, SimError> {
    run_counted(opts, Arc::new(Counters::default()), shutdown).await
}

/// [`run`] with counters of the caller's, which it can read while the
/// fleet runs (a benchmark's latency histograms).
pub async fn run_counted(
    opts: SimOptions,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<SimReport, SimError> {
    opts.validate()?;
    let cfg = Arc::new(opts.config());
    let (stop_tx, stop_rx) = watch::channel(false);
    let bind = opts.bind_addr();
    let t0 = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    // Spawning is cheap; the rate applies to when each device starts.
    for i in 0..opts.devices {
        let index = opts.first_index + i;
        let start = if opts.rate == 0 {
            t0
        } else {
            t0 + Duration::from_secs_f64(i as f64 / f64::from(opts.rate))
        };
        let cfg = cfg.clone();
        let counters = counters.clone();
        let stop = stop_rx.clone();
        let endpoint = format!("{}{index}", opts.endpoint_prefix);
        let seed = opts.seed.wrapping_add(index as u64);
        let timeout = opts.deregister_timeout;
        tasks.spawn(async move {
            tokio::time::sleep_until(start).await;
            if *stop.borrow() {
                return Ok(());
            }
            let socket = UdpSocket::bind(bind).await?;
            Counters::inc(&counters.devices_started);
            let dev = Device::new(cfg, endpoint, seed, counters, Instant::now(), wall_ms());
            run_device(dev, socket, stop, timeout).await;
            Ok::<(), std::io::Error>(())
        });
    }
    let stop_after = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let mut first_bind_error = None;
    let mut stopped = false;
    tokio::pin!(shutdown);
    tokio::pin!(stop_after);
    loop {
        tokio::select! {
            _ = &mut shutdown, if !stopped => {
                stopped = true;
                let _ = stop_tx.send(true);
            }
            _ = &mut stop_after, if !stopped => {
                stopped = true;
                let _ = stop_tx.send(true);
            }
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(Err(e))) => {
                    Counters::inc(&counters.errors);
                    if first_bind_error.is_none() {
                        tracing::warn!("device socket: {e}");
                        first_bind_error = Some(e);
                    }
                }
                Some(_) => {}
            }
        }
    }
    let report = counters.snapshot();
    if report.devices_started == 0 {
        if let Some(e) = first_bind_error {
            return Err(SimError::Bind(e));
        }
    }
    Ok(report)
}

enum Job {
    Resolved(Option<SocketAddr>),
    Downloaded(Result<Vec<u8>, FwResult>),
}

/// One device's task: the socket, the clock and the jobs the device asks
/// for (host lookup, HTTP download).
pub async fn run_device(
    mut dev: Device,
    socket: UdpSocket,
    mut stop: watch::Receiver<bool>,
    deregister_timeout: Duration,
) {
    let mut buf = vec![0u8; 1536];
    let mut stop_by: Option<Instant> = None;
    let mut job: Option<JoinHandle<Job>> = None;
    // The clock and the stop signal are made once and kept across turns of
    // the loop: a device turns it twice per notification (the tick, then
    // the acknowledgement), and a sleep or a `changed()` made anew each
    // turn put an entry into the runtime's timer wheel and the watch's
    // waiter list and took it out again, each under a lock that all of the
    // fleet's devices share. The clock is reset only when the deadline
    // moves, once per notification.
    let clock = tokio::time::sleep_until(dev.next_deadline().into());
    tokio::pin!(clock);
    // An elapsed sleep stays elapsed until it is reset, even to the same
    // deadline.
    let mut clock_fired = false;
    let stop_signal = async move {
        // An error is the sender gone: the fleet is over.
        while stop.changed().await.is_ok() && !*stop.borrow() {}
    };
    tokio::pin!(stop_signal);
    loop {
        if dev.take_drain() {
            // What arrived while the device slept is lost, as on a radio
            // that was off.
            while socket.try_recv_from(&mut buf).is_ok() {
                dev.note_dropped();
            }
        }
        for out in dev.take_output() {
            match out {
                Output::Transmit(to, bytes) => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::debug!(endpoint = dev.endpoint(), "send: {e}");
                    }
                }
                Output::Resolve(host, port) => {
                    job = Some(tokio::spawn(async move {
                        let addr = tokio::net::lookup_host((host.as_str(), port))
                            .await
                            .ok()
                            .and_then(|mut a| a.next());
                        Job::Resolved(addr)
                    }));
                }
                Output::HttpDownload(uri) => {
                    job = Some(tokio::spawn(async move {
                        Job::Downloaded(super::http::download(&uri).await)
                    }));
                }
            }
        }
        if dev.is_done() || stop_by.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let mut deadline = dev.next_deadline();
        if let Some(t) = stop_by {
            deadline = deadline.min(t);
        }
        let deadline = tokio::time::Instant::from(deadline);
        if clock_fired || clock.deadline() != deadline {
            clock.as_mut().reset(deadline);
            clock_fired = false;
        }
        let stopping = stop_by.is_some();
        tokio::select! {
            // `poll_recv_from` leaves the task's waker in the socket's one
            // reader slot; the `recv_from` future joined a waiter list that
            // it had to leave again each time the clock won the race.
            r = std::future::poll_fn(|cx| {
                let mut rb = tokio::io::ReadBuf::new(&mut buf);
                socket
                    .poll_recv_from(cx, &mut rb)
                    .map_ok(|from| (rb.filled().len(), from))
            }), if !dev.is_asleep() => {
                if let Ok((n, from)) = r {
                    dev.on_datagram(from, &buf[..n], Instant::now());
                }
            }
            _ = &mut clock => {
                clock_fired = true;
                dev.on_timer(Instant::now());
            }
            _ = &mut stop_signal, if !stopping => {
                let now = Instant::now();
                stop_by = Some(now + deregister_timeout);
                dev.shutdown(now);
            }
            r = async { job.as_mut().expect("guarded").await }, if job.is_some() => {
                job = None;
                let now = Instant::now();
                match r {
                    Ok(Job::Resolved(addr)) => dev.firmware_host_resolved(addr, now),
                    Ok(Job::Downloaded(result)) => dev.download_done(result, now),
                    Err(_) => dev.download_done(Err(FwResult::ConnectionLost), now),
                }
            }
        }
    }
    if let Some(j) = job {
        j.abort();
    }
}
