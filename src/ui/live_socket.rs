//! The browser side of the live websocket: one multiplexed connection per
//! page load, opened by the layout. Components subscribe to the topics they
//! show for as long as they live; the connection reconnects with backoff,
//! subscribes again, and asks each subscriber to refetch what it missed.
use crate::model::{LiveMessage, Topic};
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

/// Which topic a message belongs to.
pub fn topic_of(message: &LiveMessage) -> Topic {
    match message {
        LiveMessage::Value(v) => Topic::Endpoint {
            name: v.endpoint.clone(),
        },
        LiveMessage::Event(_) => Topic::Events,
        LiveMessage::Fleet(_) => Topic::Fleet,
        LiveMessage::Command(_) => Topic::Commands,
    }
}

/// The page's live connection, provided by the layout.
#[derive(Clone, Copy)]
pub struct Live {
    pub status: RwSignal<LiveStatus>,
    #[cfg(feature = "hydrate")]
    conn: StoredValue<std::rc::Rc<client::Conn>, LocalStorage>,
}

/// Opens the page's connection (in the browser; on the server it only
/// provides the status) and provides it to the component tree.
pub fn provide_live() -> Live {
    let status = RwSignal::new(LiveStatus::Connecting);
    let live = Live {
        status,
        #[cfg(feature = "hydrate")]
        conn: StoredValue::new_local(client::Conn::open(status)),
    };
    provide_context(live);
    live
}

/// Receives the messages of `topics` for as long as the calling component
/// lives; `on_resync` runs after a reconnect, to refetch what was missed.
/// Does nothing during server rendering.
pub fn subscribe(
    topics: Vec<Topic>,
    on_message: impl Fn(LiveMessage) + 'static,
    on_resync: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    if let Some(live) = use_context::<Live>() {
        let conn = live.conn.get_value();
        let id = conn.add(topics, Box::new(on_message), Box::new(on_resync));
        on_cleanup(move || {
            let _ = live.conn.try_with_value(|conn| conn.remove(id));
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (topics, on_message, on_resync);
}

#[cfg(feature = "hydrate")]
mod client {
    use super::{topic_of, LiveStatus};
    use crate::model::{ClientMessage, LiveMessage, Topic, LIVE_MUX_PARAM, LIVE_WS_PATH};
    use leptos::prelude::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    struct Subscriber {
        id: u64,
        topics: Vec<Topic>,
        on_message: Box<dyn Fn(LiveMessage)>,
        on_resync: Box<dyn Fn()>,
    }

    pub struct Conn {
        url: String,
        status: RwSignal<LiveStatus>,
        socket: RefCell<Option<WebSocket>>,
        subscribers: RefCell<Vec<Rc<Subscriber>>>,
        next_id: Cell<u64>,
        attempts: Cell<u32>,
        /// Set after the first successful connection: later opens are
        /// reconnects, after which subscribers refetch.
        connected_once: Cell<bool>,
    }

    impl Conn {
        pub fn open(status: RwSignal<LiveStatus>) -> Rc<Conn> {
            let location = web_sys::window().map(|w| w.location());
            let secure = location
                .as_ref()
                .and_then(|l| l.protocol().ok())
                .is_some_and(|p| p == "https:");
            let host = location.and_then(|l| l.host().ok()).unwrap_or_default();
            let scheme = if secure { "wss" } else { "ws" };
            let conn = Rc::new(Conn {
                url: format!("{scheme}://{host}{LIVE_WS_PATH}?{LIVE_MUX_PARAM}=1"),
                status,
                socket: RefCell::new(None),
                subscribers: RefCell::new(Vec::new()),
                next_id: Cell::new(0),
                attempts: Cell::new(0),
                connected_once: Cell::new(false),
            });
            connect(conn.clone());
            conn
        }

        pub fn add(
            &self,
            topics: Vec<Topic>,
            on_message: Box<dyn Fn(LiveMessage)>,
            on_resync: Box<dyn Fn()>,
        ) -> u64 {
            let id = self.next_id.get();
            self.next_id.set(id + 1);
            self.send(&ClientMessage::Subscribe {
                topics: topics.clone(),
            });
            self.subscribers.borrow_mut().push(Rc::new(Subscriber {
                id,
                topics,
                on_message,
                on_resync,
            }));
            id
        }

        pub fn remove(&self, id: u64) {
            let gone: Vec<Topic> = {
                let mut subs = self.subscribers.borrow_mut();
                let Some(at) = subs.iter().position(|s| s.id == id) else {
                    return;
                };
                let sub = subs.remove(at);
                sub.topics
                    .iter()
                    .filter(|t| !subs.iter().any(|s| s.topics.contains(t)))
                    .cloned()
                    .collect()
            };
            if !gone.is_empty() {
                self.send(&ClientMessage::Unsubscribe { topics: gone });
            }
        }

        /// Sends when the socket is open; otherwise the next open
        /// subscribes to everything anyway.
        fn send(&self, message: &ClientMessage) {
            if let Some(ws) = self.socket.borrow().as_ref() {
                if ws.ready_state() == WebSocket::OPEN {
                    if let Ok(text) = serde_json::to_string(message) {
                        let _ = ws.send_with_str(&text);
                    }
                }
            }
        }

        fn all_topics(&self) -> Vec<Topic> {
            let mut topics: Vec<Topic> = Vec::new();
            for sub in self.subscribers.borrow().iter() {
                for t in &sub.topics {
                    if !topics.contains(t) {
                        topics.push(t.clone());
                    }
                }
            }
            topics
        }

        fn dispatch(&self, message: LiveMessage) {
            let topic = topic_of(&message);
            // Handlers may subscribe or unsubscribe: call them on a copy.
            let subs: Vec<Rc<Subscriber>> = self
                .subscribers
                .borrow()
                .iter()
                .filter(|s| s.topics.contains(&topic))
                .cloned()
                .collect();
            for sub in subs {
                (sub.on_message)(message.clone());
            }
        }

        fn resync(&self) {
            let subs: Vec<Rc<Subscriber>> = self.subscribers.borrow().clone();
            for sub in subs {
                (sub.on_resync)();
            }
        }
    }

    fn connect(conn: Rc<Conn>) {
        let Ok(ws) = WebSocket::new(&conn.url) else {
            schedule_reconnect(conn);
            return;
        };
        let c = conn.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || {
            c.attempts.set(0);
            c.status.set(LiveStatus::Live);
            c.send(&ClientMessage::Subscribe {
                topics: c.all_topics(),
            });
            if c.connected_once.replace(true) {
                c.resync();
            }
        });
        let c = conn.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                if let Ok(message) = serde_json::from_str::<LiveMessage>(&text) {
                    c.dispatch(message);
                }
            }
        });
        let c = conn.clone();
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
            c.status.set(LiveStatus::Reconnecting);
            schedule_reconnect(c.clone());
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
        let retry = Closure::once_into_js(move || connect(conn));
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                retry.unchecked_ref(),
                delay as i32,
            );
        }
    }
}
