//! The browser side of the live websocket: connects, hands each value to a
//! callback, and reconnects with backoff when the connection drops.
use crate::model::LiveValue;
use leptos::prelude::*;

/// Connection state shown on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Connecting,
    Live,
    Reconnecting,
}

impl LiveStatus {
    pub fn label(self) -> &'static str {
        match self {
            LiveStatus::Connecting => "connecting",
            LiveStatus::Live => "live",
            LiveStatus::Reconnecting => "reconnecting",
        }
    }
}

/// Subscribes to live values of one endpoint for as long as the calling
/// component lives. Does nothing during server rendering.
pub fn subscribe(
    endpoint: String,
    status: RwSignal<LiveStatus>,
    on_value: impl Fn(LiveValue) + 'static,
) {
    #[cfg(feature = "hydrate")]
    client::start(endpoint, status, on_value);
    #[cfg(not(feature = "hydrate"))]
    let _ = (endpoint, status, on_value);
}

#[cfg(feature = "hydrate")]
mod client {
    use super::LiveStatus;
    use crate::model::{LiveValue, LIVE_WS_PATH};
    use leptos::prelude::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    struct Conn {
        url: String,
        status: RwSignal<LiveStatus>,
        on_value: Box<dyn Fn(LiveValue)>,
        socket: RefCell<Option<WebSocket>>,
        stopped: Cell<bool>,
        attempts: Cell<u32>,
    }

    pub fn start(
        endpoint: String,
        status: RwSignal<LiveStatus>,
        on_value: impl Fn(LiveValue) + 'static,
    ) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let location = window.location();
        let scheme = if location.protocol().ok().as_deref() == Some("https:") {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().unwrap_or_default();
        let endpoint = js_sys::encode_uri_component(&endpoint);
        let conn = Rc::new(Conn {
            url: format!("{scheme}://{host}{LIVE_WS_PATH}?endpoint={endpoint}"),
            status,
            on_value: Box::new(on_value),
            socket: RefCell::new(None),
            stopped: Cell::new(false),
            attempts: Cell::new(0),
        });
        open(conn.clone());
        let handle = StoredValue::new_local(conn);
        on_cleanup(move || {
            handle.try_with_value(|conn| {
                conn.stopped.set(true);
                if let Some(ws) = conn.socket.borrow_mut().take() {
                    let _ = ws.close();
                }
            });
        });
    }

    fn open(conn: Rc<Conn>) {
        if conn.stopped.get() {
            return;
        }
        let Ok(ws) = WebSocket::new(&conn.url) else {
            schedule_reconnect(conn);
            return;
        };
        let c = conn.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || {
            c.attempts.set(0);
            c.status.set(LiveStatus::Live);
        });
        let c = conn.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                if let Ok(value) = serde_json::from_str::<LiveValue>(&text) {
                    (c.on_value)(value);
                }
            }
        });
        let c = conn.clone();
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
            if !c.stopped.get() {
                c.status.set(LiveStatus::Reconnecting);
                schedule_reconnect(c.clone());
            }
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        // The socket owns its handlers for its whole life.
        onopen.forget();
        onmessage.forget();
        onclose.forget();
        *conn.socket.borrow_mut() = Some(ws);
    }

    /// Exponential backoff: 0.5 s, 1 s, 2 s ... capped at 15 s.
    fn schedule_reconnect(conn: Rc<Conn>) {
        let attempt = conn.attempts.get();
        conn.attempts.set(attempt.saturating_add(1));
        let delay = (500u32.saturating_mul(1 << attempt.min(5))).min(15_000);
        let retry = Closure::once_into_js(move || open(conn));
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                retry.unchecked_ref(),
                delay as i32,
            );
        }
    }
}
