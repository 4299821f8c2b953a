//! The HTTP/1.1 server loop: accepts connections, serves the router on
//! each, and bounds what a client that sends slowly or not at all can hold.
//!
//! - A request's head must arrive within `http_header_timeout_secs`,
//!   counted from the accept on a new connection and from the head's first
//!   byte on a kept-alive one.
//! - A kept-alive connection may wait `http_idle_timeout_secs` between the
//!   end of an answer and the first byte of the next request.
//! - One source address may hold `http_max_connections_per_ip` open
//!   connections (websockets included); further ones are closed at once.
//!
//! Why not hyper's own `header_read_timeout`: its clock starts when the
//! connection starts waiting for a head, so on a kept-alive connection it
//! is the idle time and the head's time in one; a short bound on heads
//! would then also close kept-alive connections after a few seconds. The
//! connection's `PhaseClock` tells the two waits apart (as Go's net/http
//! does with `ReadHeaderTimeout` and `IdleTimeout`).
//!
//! Handlers find the peer's address as axum's `ConnectInfo<SocketAddr>`.
use super::config::Settings;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tower::Service;

/// The bounds the server loop puts on connections.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// 0: no cap.
    pub max_connections_per_ip: usize,
}

impl HttpLimits {
    pub fn from_settings(settings: &Settings) -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(settings.http_header_timeout_secs),
            idle_timeout: Duration::from_secs(settings.http_idle_timeout_secs),
            max_connections_per_ip: settings.http_max_connections_per_ip as usize,
        }
    }
}

/// Connections refused or closed by the server loop, for `/api/v1/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Closed at accept: their address held its share already.
    pub refused_per_ip: AtomicU64,
    /// Closed because a request's head did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Kept-alive connections closed after waiting too long for a request.
    pub idle_timeouts: AtomicU64,
}

/// How often at most the loop logs refused connections: a flood of them
/// must not become a flood of log lines.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets every connection finish the request it is serving
/// (idle ones close at once), and returns once they are all closed.
/// Upgraded connections (websockets) are then their handlers' own.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(PerIpSlots::new(limits.max_connections_per_ip));
    // Dropping `shutdown_rx` tells the accept loop and the connections
    // (which wait on clones of `shutdown_tx`) to shut down; each connection
    // task holds a clone of `open_rx`, so `open_tx.closed()` completes when
    // the last one has ended.
    let (shutdown_tx, shutdown_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(shutdown_rx);
    });
    let mut refusals = RefusalLog::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = shutdown_tx.closed() => break,
        };
        let Some(slot) = slots.take(peer.ip()) else {
            stats.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            refusals.refused(peer.ip(), limits.max_connections_per_ip);
            drop(stream);
            continue;
        };
        let connection = Connection {
            app: app.clone(),
            peer,
            limits,
            stats: stats.clone(),
            slot,
        };
        let shutdown = shutdown_tx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            connection.run(stream, shutdown).await;
            drop(open);
        });
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
}

/// An accept error that is not the peer's doing (too many open files, out
/// of memory) stops accepting for a second rather than spinning on it.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Logs refused connections at most once per `REFUSAL_LOG_INTERVAL`, with
/// how many were refused since the last line.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unreported: u64,
}

impl RefusalLog {
    fn refused(&mut self, ip: IpAddr, cap: usize) {
        self.unreported += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            %ip,
            cap,
            refused = self.unreported,
            "refused connections: the address holds its share of connections already (http_max_connections_per_ip)"
        );
        self.last = Some(now);
        self.unreported = 0;
    }
}

/// Counts open connections per source address. Only addresses with open
/// connections have an entry, so the map is as large as the set of
/// current peers, whatever addresses come and go.
struct PerIpSlots {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIpSlots {
    fn new(cap: usize) -> PerIpSlots {
        PerIpSlots {
            cap,
            open: Mutex::default(),
        }
    }

    /// A slot for a connection from `ip`, or None if it holds `cap` already.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.cap == 0 {
            return Some(Slot(None));
        }
        // An IPv4 client on an IPv6 socket is the same client as on IPv4.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Slot(Some((self.clone(), ip))))
    }
}

/// One open connection's place in its address's count; given back when the
/// connection's socket is dropped (after an upgrade, by the websocket).
struct Slot(Option<(Arc<PerIpSlots>, IpAddr)>);

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((slots, ip)) = self.0.take() else {
            return;
        };
        let mut open = slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

struct Connection {
    app: Router,
    peer: SocketAddr,
    limits: HttpLimits,
    stats: Arc<ConnectionStats>,
    slot: Slot,
}

impl Connection {
    async fn run(self, stream: TcpStream, shutdown: watch::Sender<()>) {
        let Connection {
            app,
            peer,
            limits,
            stats,
            slot,
        } = self;
        let clock = Arc::new(PhaseClock::new());
        let io = TimedStream {
            stream,
            clock: clock.clone(),
            limits,
            stats,
            sleep: None,
            _slot: slot,
        };
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            clock.set(Phase::Busy);
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            let answer = app.clone().call(req);
            let clock = clock.clone();
            async move {
                let response = match answer.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    clock.set(Phase::Upgraded);
                }
                Ok::<_, Infallible>(response.map(|body| AnswerBody { body, clock }))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The connection's `PhaseClock` bounds heads and idle waits.
        builder.keep_alive(true).header_read_timeout(None);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut shutting_down = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.closed(), if !shutting_down => {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// What a connection is doing, and so which of its waits is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's head (bounded by the header timeout).
    Head,
    /// Answered; waiting for the next request (bounded by the idle timeout).
    Idle,
    /// A request is being served: its body and the handler take their time.
    Busy,
    /// Handed over to a websocket, which keeps its own time.
    Upgraded,
}

/// The connection's phase and since when it has been in it. The service
/// sets `Busy` when a head has arrived, the answer's body sets `Idle` when
/// it is done, and the socket sets `Head` when a byte arrives while idle.
/// All of these run on the connection's own task, so the lock is never
/// contended.
///
/// A read polled while the phase has no deadline (Busy) arms no timer, so
/// it leaves its waker here: when the phase changes (the answer's body is
/// done), the read is polled again and arms the new phase's deadline,
/// even if hyper would not poll it again on its own.
struct PhaseClock(Mutex<ClockState>);

struct ClockState {
    phase: Phase,
    since: Instant,
    parked: Option<Waker>,
}

impl PhaseClock {
    fn new() -> PhaseClock {
        PhaseClock(Mutex::new(ClockState {
            phase: Phase::Head,
            since: Instant::now(),
            parked: None,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self) -> (Phase, Instant) {
        let state = self.lock();
        (state.phase, state.since)
    }

    fn set(&self, phase: Phase) {
        let parked = {
            let mut state = self.lock();
            if state.phase == Phase::Upgraded {
                return;
            }
            state.phase = phase;
            state.since = Instant::now();
            state.parked.take()
        };
        if let Some(waker) = parked {
            waker.wake();
        }
    }

    /// A read that found no deadline to wait for.
    fn park(&self, waker: &Waker) {
        let mut state = self.lock();
        if !state.parked.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.parked = Some(waker.clone());
        }
    }

    fn bytes_arrived(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Idle {
            state.phase = Phase::Head;
            state.since = Instant::now();
        }
    }
}

/// The connection's socket: notes arriving bytes on the connection's
/// `PhaseClock`, and fails a read that waits past the current phase's
/// deadline, which makes hyper close the connection.
struct TimedStream {
    stream: TcpStream,
    clock: Arc<PhaseClock>,
    limits: HttpLimits,
    stats: Arc<ConnectionStats>,
    /// Armed at the deadline of the wait in progress.
    sleep: Option<(Instant, Pin<Box<Sleep>>)>,
    _slot: Slot,
}

impl TimedStream {
    /// Ready with an error when the current phase's deadline has passed;
    /// otherwise registers the waker for that deadline.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (phase, since) = self.clock.get();
        let (deadline, counter, what) = match phase {
            Phase::Head => (
                since + self.limits.header_timeout,
                &self.stats.header_timeouts,
                "no complete request head within http_header_timeout_secs",
            ),
            Phase::Idle => (
                since + self.limits.idle_timeout,
                &self.stats.idle_timeouts,
                "no request within http_idle_timeout_secs",
            ),
            Phase::Busy | Phase::Upgraded => {
                self.clock.park(cx.waker());
                return Poll::Pending;
            }
        };
        let (armed, sleep) = self
            .sleep
            .get_or_insert_with(|| (deadline, Box::pin(tokio::time::sleep_until(deadline))));
        if *armed != deadline {
            sleep.as_mut().reset(deadline);
            *armed = deadline;
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?phase, "closing a connection: {what}");
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what))
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx).map(Err),
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// An answer's body; when hyper drops it (sent whole, or the connection
/// failed), the connection is idle again.
struct AnswerBody {
    body: axum::body::Body,
    clock: Arc<PhaseClock>,
}

impl Drop for AnswerBody {
    fn drop(&mut self) {
        self.clock.set(Phase::Idle);
    }
}

impl HttpBody for AnswerBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
