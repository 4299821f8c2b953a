//! Message deduplication (RFC 7252 §4.5).
//!
//! Every inbound CON or NON (requests, separate responses, notifications)
//! is looked up by (peer, MID) before it is processed. A CON is remembered
//! for EXCHANGE_LIFETIME together with the bytes we answered it with, so a
//! retransmission is answered from the cache and never processed twice (no
//! double registration, no Send stored twice). A NON is remembered for
//! NON_LIFETIME and its duplicates are dropped.
//!
//! A retransmission is the same message again (RFC 7252 §4.2), so an
//! entry also keeps the message's code and token: a message with a known
//! MID but another code or token is not a duplicate but a new message from
//! a peer that reused the MID, a device that restarted on the same address
//! and port within EXCHANGE_LIFETIME and drew a first MID that its former
//! self had used. Taken for a duplicate, it would be answered with the
//! former exchange's answer (which its token does not match) or dropped,
//! every time it is retransmitted, and the device would give up on the
//! request after MAX_TRANSMIT_WAIT (93 s).
//!
//! Memory is bounded overall and per peer. When a bound is hit the oldest
//! entry (globally, or of that peer) is evicted: it is the one least likely
//! to see another retransmission (a peer stops retransmitting after
//! MAX_TRANSMIT_SPAN, 45 s), and refusing new messages instead would turn a
//! full cache into an outage. Evictions are counted in [`DedupStats`].

use coap_lite::Packet;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{EXCHANGE_LIFETIME, NON_LIFETIME};

#[derive(Debug, Clone, Copy)]
pub struct DedupConfig {
    pub max_entries: usize,
    pub max_per_peer: usize,
    /// Bound on the cached response bytes kept in total; beyond it the
    /// oldest entries are evicted like for `max_entries`.
    pub max_bytes: usize,
    pub exchange_lifetime: Duration,
    pub non_lifetime: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            max_entries: 200_000,
            // A Block2 firmware download at a few blocks per second stays
            // well below this within 247 s.
            max_per_peer: 2_048,
            max_bytes: 64 * 1024 * 1024,
            exchange_lifetime: EXCHANGE_LIFETIME,
            non_lifetime: NON_LIFETIME,
        }
    }
}

/// Whether the message was CON or NON (ACK and RST are not deduplicated
/// here: they carry no request to process twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Confirmable,
    NonConfirmable,
}

/// Outcome of [`Dedup::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// First time seen: process it, then call `complete` (or `ack_sent`).
    New,
    /// A duplicate whose answer is known: send these bytes again.
    Resend(Vec<u8>),
    /// A duplicate of a message still being processed, with nothing sent
    /// yet: drop it (the peer will retransmit again if needed).
    InFlight,
    /// A duplicate NON, or a duplicate that needed no answer: drop it.
    Drop,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupStats {
    pub duplicates: u64,
    pub evicted_full: u64,
    pub evicted_per_peer: u64,
    /// Messages with the MID of an earlier one from the same peer but
    /// another code or token: processed as new.
    pub mid_reused: u64,
}

#[derive(Debug)]
enum State {
    Pending,
    /// We sent an empty ACK (separate response or CON notification
    /// acknowledged); duplicates get it again.
    EmptyAcked(Vec<u8>),
    /// Final answer sent.
    Answered(Vec<u8>),
    /// Processed, nothing to answer (e.g. a NON).
    Silent,
}

/// What a retransmission repeats of the message it copies: its code and
/// token (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sameness {
    code: u8,
    token_len: u8,
    token: [u8; 8],
}

impl Sameness {
    pub fn of(message: &Packet) -> Sameness {
        let mut token = [0; 8];
        // A token is 0 to 8 bytes (RFC 7252 §3); the codec refuses longer.
        let bytes = message.get_token();
        let len = bytes.len().min(8);
        token[..len].copy_from_slice(&bytes[..len]);
        Sameness {
            code: u8::from(message.header.code),
            token_len: len as u8,
            token,
        }
    }
}

#[derive(Debug)]
struct Entry {
    same: Sameness,
    state: State,
    seq: u64,
    expires: Instant,
}

type Key = (SocketAddr, u16);

#[derive(Debug, Default)]
pub struct Dedup {
    cfg: DedupConfig,
    map: HashMap<Key, Entry>,
    /// Insertion order (= expiry order, since each kind's lifetime is fixed
    /// and CON/NON differ only by a constant: see `expire`).
    order: VecDeque<(Key, u64)>,
    per_peer: HashMap<SocketAddr, VecDeque<(u16, u64)>>,
    next_seq: u64,
    bytes: usize,
    stats: DedupStats,
}

impl Dedup {
    pub fn new(cfg: DedupConfig) -> Self {
        Dedup {
            cfg,
            ..Dedup::default()
        }
    }

    pub fn stats(&self) -> DedupStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Looks up an inbound CON/NON and, if new, records it as pending.
    pub fn check(
        &mut self,
        peer: SocketAddr,
        mid: u16,
        kind: Kind,
        same: Sameness,
        now: Instant,
    ) -> Check {
        self.expire(now);
        if let Some(e) = self.map.get(&(peer, mid)) {
            if e.same == same {
                self.stats.duplicates += 1;
                return match &e.state {
                    State::Pending => Check::InFlight,
                    State::EmptyAcked(b) | State::Answered(b) => Check::Resend(b.clone()),
                    State::Silent => Check::Drop,
                };
            }
            // A reused MID: the former message's entry goes (its items in
            // the order queues are skipped as stale, by their seq).
            let former = self.map.remove(&(peer, mid)).expect("present");
            self.bytes -= state_bytes(&former.state);
            self.stats.mid_reused += 1;
        }
        let lifetime = match kind {
            Kind::Confirmable => self.cfg.exchange_lifetime,
            Kind::NonConfirmable => self.cfg.non_lifetime,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.map.insert(
            (peer, mid),
            Entry {
                same,
                state: State::Pending,
                seq,
                expires: now + lifetime,
            },
        );
        self.order.push_back(((peer, mid), seq));
        let q = self.per_peer.entry(peer).or_default();
        q.push_back((mid, seq));
        if q.len() > self.cfg.max_per_peer {
            // Skip stale queue items left by entries already gone.
            while let Some((old_mid, old_seq)) = q.pop_front() {
                if let Some(e) = self.map.get(&(peer, old_mid)) {
                    if e.seq == old_seq {
                        let e = self.map.remove(&(peer, old_mid)).expect("present");
                        self.bytes -= state_bytes(&e.state);
                        self.stats.evicted_per_peer += 1;
                        break;
                    }
                }
            }
        }
        self.enforce_global();
        self.compact();
        Check::New
    }

    /// Records the final answer (e.g. a piggybacked response) for a CON.
    pub fn complete(&mut self, peer: SocketAddr, mid: u16, response: Vec<u8>) {
        self.set_state(peer, mid, State::Answered(response));
    }

    /// Records that an empty ACK was sent and the real answer will follow
    /// as a separate response (or that the CON was a notification, whose
    /// only answer is the empty ACK).
    pub fn ack_sent(&mut self, peer: SocketAddr, mid: u16, empty_ack: Vec<u8>) {
        self.set_state(peer, mid, State::EmptyAcked(empty_ack));
    }

    /// Records that the message was processed and needs no answer (NON).
    pub fn complete_silent(&mut self, peer: SocketAddr, mid: u16) {
        self.set_state(peer, mid, State::Silent);
    }

    /// Forgets a pending entry, e.g. when processing was refused for a
    /// transient reason and a retransmission should be processed afresh.
    pub fn forget(&mut self, peer: SocketAddr, mid: u16) {
        if let Some(e) = self.map.remove(&(peer, mid)) {
            self.bytes -= state_bytes(&e.state);
        }
    }

    fn set_state(&mut self, peer: SocketAddr, mid: u16, state: State) {
        if let Some(e) = self.map.get_mut(&(peer, mid)) {
            self.bytes -= state_bytes(&e.state);
            self.bytes += state_bytes(&state);
            e.state = state;
        }
        self.enforce_global();
    }

    /// Drops entries whose lifetime has passed.
    pub fn expire(&mut self, now: Instant) {
        // NON entries expire before CON entries inserted at the same time,
        // so strict order is not guaranteed; an expired NON behind a live
        // CON lingers at most EXCHANGE_LIFETIME - NON_LIFETIME longer,
        // which is harmless (it only suppresses a very late duplicate).
        while let Some(&(key, seq)) = self.order.front() {
            match self.map.get(&key) {
                Some(e) if e.seq == seq => {
                    if e.expires > now {
                        break;
                    }
                    let e = self.map.remove(&key).expect("present");
                    self.bytes -= state_bytes(&e.state);
                    self.pop_peer_front(key.0, seq);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    fn pop_peer_front(&mut self, peer: SocketAddr, seq: u64) {
        if let Some(q) = self.per_peer.get_mut(&peer) {
            while let Some(&(_, s)) = q.front() {
                if s > seq {
                    break;
                }
                q.pop_front();
            }
            if q.is_empty() {
                self.per_peer.remove(&peer);
            }
        }
    }

    fn enforce_global(&mut self) {
        while self.map.len() > self.cfg.max_entries || self.bytes > self.cfg.max_bytes {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                let e = self.map.remove(&key).expect("present");
                self.bytes -= state_bytes(&e.state);
                self.pop_peer_front(key.0, seq);
                self.stats.evicted_full += 1;
            }
        }
    }

    /// Evictions and `forget` leave stale items in the order queues; drop
    /// them once they outnumber live entries so the queues stay O(entries).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
            self.per_peer.retain(|peer, q| {
                q.retain(|(mid, s)| map.get(&(*peer, *mid)).is_some_and(|e| e.seq == *s));
                !q.is_empty()
            });
        }
    }
}

fn state_bytes(s: &State) -> usize {
    match s {
        State::EmptyAcked(b) | State::Answered(b) => b.len(),
        State::Pending | State::Silent => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAME: Sameness = Sameness {
        code: 2,
        token_len: 2,
        token: [0xab, 0xcd, 0, 0, 0, 0, 0, 0],
    };

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn con_duplicate_answered_from_cache_until_exchange_lifetime() {
        let t0 = Instant::now();
        let mut d = Dedup::new(DedupConfig::default());
        assert_eq!(d.check(peer(1), 7, Kind::Confirmable, SAME, t0), Check::New);
        // Retransmission while still processing.
        assert_eq!(
            d.check(
                peer(1),
                7,
                Kind::Confirmable,
                SAME,
                t0 + Duration::from_secs(2)
            ),
            Check::InFlight
        );
        d.complete(peer(1), 7, vec![0x60, 0x41, 0, 7]);
        assert_eq!(
            d.check(
                peer(1),
                7,
                Kind::Confirmable,
                SAME,
                t0 + Duration::from_secs(45)
            ),
            Check::Resend(vec![0x60, 0x41, 0, 7])
        );
        // Same MID from another peer is a different message.
        assert_eq!(d.check(peer(2), 7, Kind::Confirmable, SAME, t0), Check::New);
        // Still cached just before 247 s, gone at 247 s.
        assert!(matches!(
            d.check(
                peer(1),
                7,
                Kind::Confirmable,
                SAME,
                t0 + Duration::from_millis(246_999)
            ),
            Check::Resend(_)
        ));
        assert_eq!(
            d.check(
                peer(1),
                7,
                Kind::Confirmable,
                SAME,
                t0 + Duration::from_secs(247)
            ),
            Check::New
        );
        assert_eq!(d.stats().duplicates, 3);
    }

    #[test]
    fn non_duplicate_dropped_until_non_lifetime() {
        let t0 = Instant::now();
        let mut d = Dedup::new(DedupConfig::default());
        assert_eq!(
            d.check(peer(1), 9, Kind::NonConfirmable, SAME, t0),
            Check::New
        );
        d.complete_silent(peer(1), 9);
        assert_eq!(
            d.check(
                peer(1),
                9,
                Kind::NonConfirmable,
                SAME,
                t0 + Duration::from_secs(100)
            ),
            Check::Drop
        );
        assert_eq!(
            d.check(
                peer(1),
                9,
                Kind::NonConfirmable,
                SAME,
                t0 + Duration::from_secs(145)
            ),
            Check::New
        );
    }

    #[test]
    fn empty_ack_resent_for_separate_response() {
        let t0 = Instant::now();
        let mut d = Dedup::new(DedupConfig::default());
        assert_eq!(d.check(peer(1), 1, Kind::Confirmable, SAME, t0), Check::New);
        d.ack_sent(peer(1), 1, vec![0x60, 0, 0, 1]);
        assert_eq!(
            d.check(peer(1), 1, Kind::Confirmable, SAME, t0),
            Check::Resend(vec![0x60, 0, 0, 1])
        );
    }

    #[test]
    fn per_peer_bound_evicts_that_peers_oldest() {
        let t0 = Instant::now();
        let mut d = Dedup::new(DedupConfig {
            max_per_peer: 3,
            ..DedupConfig::default()
        });
        for mid in 0..3 {
            d.check(peer(1), mid, Kind::Confirmable, SAME, t0);
        }
        d.check(peer(2), 0, Kind::Confirmable, SAME, t0);
        d.check(peer(1), 3, Kind::Confirmable, SAME, t0);
        assert_eq!(d.len(), 4);
        assert_eq!(d.stats().evicted_per_peer, 1);
        // Peer 1's MID 0 is forgotten; peer 2's is not.
        assert_eq!(
            d.check(peer(2), 0, Kind::Confirmable, SAME, t0),
            Check::InFlight
        );
        assert_eq!(
            d.check(peer(1), 1, Kind::Confirmable, SAME, t0),
            Check::InFlight
        );
        assert_eq!(d.check(peer(1), 0, Kind::Confirmable, SAME, t0), Check::New);
    }

    #[test]
    fn global_bounds_evict_oldest() {
        let t0 = Instant::now();
        let mut d = Dedup::new(DedupConfig {
            max_entries: 10,
            max_bytes: 100,
            ..DedupConfig::default()
        });
        for p in 0..20u16 {
            d.check(peer(p), 1, Kind::Confirmable, SAME, t0);
        }
        assert_eq!(d.len(), 10);
        assert_eq!(d.stats().evicted_full, 10);
        assert_eq!(
            d.check(peer(19), 1, Kind::Confirmable, SAME, t0),
            Check::InFlight
        );
        // Byte bound: two 60-byte answers do not fit in 100.
        d.complete(peer(18), 1, vec![0; 60]);
        d.complete(peer(19), 1, vec![0; 60]);
        assert!(d.bytes <= 100);
    }

    #[test]
    fn queues_stay_bounded_under_churn() {
        let t0 = Instant::now();
        let mut d = Dedup::new(DedupConfig {
            max_entries: 50,
            max_per_peer: 5,
            ..DedupConfig::default()
        });
        for i in 0..10_000u32 {
            let p = peer((i % 7) as u16);
            d.check(p, i as u16, Kind::Confirmable, SAME, t0);
            if i % 3 == 0 {
                d.forget(p, i as u16);
            }
        }
        assert!(d.len() <= 50);
        assert!(d.order.len() <= 2 * d.len() + 65);
        let per_peer_items: usize = d.per_peer.values().map(VecDeque::len).sum();
        assert!(per_peer_items <= 2 * d.len() + 65 + 7 * 5);
        d.expire(t0 + EXCHANGE_LIFETIME);
        assert!(d.is_empty());
        assert!(d.order.is_empty());
    }

    /// A message with a known MID but another token or code is a new
    /// message (a device that restarted on the same port and drew a MID its
    /// former self had used), not a retransmission: processed, and its own
    /// retransmissions are answered with its own answer.
    #[test]
    fn a_reused_mid_with_another_token_or_code_is_a_new_message() {
        let mut d = Dedup::new(DedupConfig::default());
        let t0 = Instant::now();
        let mut register = Packet::new();
        register.header.code = coap_lite::MessageClass::Request(coap_lite::RequestType::Post);
        register.set_token(vec![1, 2, 3, 4]);
        let mut again = register.clone();
        again.set_token(vec![9, 9, 9, 9]);
        // The first message, then one with its MID and another token: each
        // is new, and each one's retransmission gets its own answer.
        for (message, answer) in [(&register, "old answer"), (&again, "new answer")] {
            let same = Sameness::of(message);
            let check = |d: &mut Dedup| d.check(peer(1), 7, Kind::Confirmable, same, t0);
            assert_eq!(check(&mut d), Check::New);
            d.complete(peer(1), 7, answer.as_bytes().to_vec());
            assert_eq!(check(&mut d), Check::Resend(answer.as_bytes().to_vec()));
        }

        let mut delete = again.clone();
        delete.header.code = coap_lite::MessageClass::Request(coap_lite::RequestType::Delete);
        assert_eq!(
            d.check(peer(1), 7, Kind::Confirmable, Sameness::of(&delete), t0),
            Check::New
        );
        let stats = d.stats();
        assert_eq!((stats.mid_reused, stats.duplicates), (2, 2));
        assert_eq!(d.len(), 1);
        // The replaced entries' queue items are stale and expire harmlessly.
        d.expire(t0 + EXCHANGE_LIFETIME);
        assert!(d.is_empty());
    }
}
