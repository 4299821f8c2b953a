//! The device's own confirmable messages (Register, Update, Send, CON
//! notifications, firmware block requests): retransmission per RFC 7252
//! §4.2 and matching of ACK, RST and separate responses. Sans-IO.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{MessageClass, MessageType, Packet};
use rand::Rng;

use crate::server::lwm2m::coap::{ACK_TIMEOUT, ACK_TIMEOUT_MAX, MAX_RETRANSMIT, MAX_TRANSMIT_WAIT};

/// Why a message was sent, so its outcome reaches the right place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Register,
    Update,
    Deregister,
    /// A Send, sent at this time.
    Send(Instant),
    /// A CON notification of the observation with this token.
    Notify(Vec<u8>),
    /// A Block2 request of the firmware download.
    FirmwareBlock,
}

/// How a message ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The response (piggybacked or separate).
    Response(Packet),
    /// An empty ACK of a message that expects no response (notification).
    Acked,
    Reset,
    /// No ACK after MAX_RETRANSMIT retransmissions, or no separate
    /// response in MAX_TRANSMIT_WAIT after an empty ACK.
    Timeout,
}

#[derive(Debug)]
struct Pending {
    to: SocketAddr,
    mid: u16,
    token: Vec<u8>,
    bytes: Vec<u8>,
    /// Whether a response (not just an ACK) ends the exchange.
    request: bool,
    retransmits: u8,
    timeout: Duration,
    deadline: Instant,
    /// Empty ACK received; waiting for the separate response.
    acked: bool,
    purpose: Purpose,
}

/// Timing of retransmissions; RFC 7252 §4.8 defaults, shorter in tests.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ack_timeout: Duration,
    pub ack_timeout_max: Duration,
    pub max_retransmit: u8,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ack_timeout: ACK_TIMEOUT,
            ack_timeout_max: ACK_TIMEOUT_MAX,
            max_retransmit: MAX_RETRANSMIT,
        }
    }
}

#[derive(Debug)]
pub struct Transport {
    timing: Timing,
    next_mid: u16,
    next_token: u32,
    pending: Vec<Pending>,
}

impl Transport {
    pub fn new<R: Rng + ?Sized>(timing: Timing, rng: &mut R) -> Transport {
        Transport {
            timing,
            next_mid: rng.gen(),
            next_token: rng.gen(),
            pending: Vec::new(),
        }
    }

    pub fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    /// A fresh 4-byte token: unique among this device's open exchanges,
    /// which is all RFC 7252 §5.3.1 asks of a client.
    pub fn token(&mut self) -> Vec<u8> {
        self.next_token = self.next_token.wrapping_add(1);
        self.next_token.to_be_bytes().to_vec()
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn has(&self, purpose: &Purpose) -> bool {
        self.pending.iter().any(|p| &p.purpose == purpose)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Sends `packet` as CON: sets type and MID (and a token if it has
    /// none and is a request). Returns the bytes to put on the wire.
    pub fn send<R: Rng + ?Sized>(
        &mut self,
        to: SocketAddr,
        mut packet: Packet,
        purpose: Purpose,
        now: Instant,
        rng: &mut R,
    ) -> Vec<u8> {
        let request = matches!(packet.header.code, MessageClass::Request(_));
        packet.header.set_type(MessageType::Confirmable);
        packet.header.message_id = self.mid();
        if request && packet.get_token().is_empty() {
            packet.set_token(self.token());
        }
        let bytes = packet.to_bytes().unwrap_or_default();
        let timeout = rng.gen_range(self.timing.ack_timeout..=self.timing.ack_timeout_max);
        self.pending.push(Pending {
            to,
            mid: packet.header.message_id,
            token: packet.get_token().to_vec(),
            bytes: bytes.clone(),
            request,
            retransmits: 0,
            timeout,
            deadline: now + timeout,
            acked: false,
            purpose,
        });
        bytes
    }

    /// Drops every exchange of this purpose (e.g. a cancelled download).
    pub fn abandon(&mut self, purpose: &Purpose) {
        self.pending.retain(|p| &p.purpose != purpose);
    }

    /// Drops everything (reboot).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Matches an inbound ACK, RST or response. `None` when it belongs to
    /// nothing open (a duplicate or late answer).
    pub fn on_message(&mut self, from: SocketAddr, p: &Packet) -> Option<(Purpose, Outcome)> {
        let ty = p.header.get_type();
        let by_mid = |x: &Pending| x.to == from && x.mid == p.header.message_id;
        let i = match (ty, p.header.code) {
            (MessageType::Reset, _) => {
                let i = self.pending.iter().position(|x| by_mid(x) && !x.acked)?;
                let x = self.pending.remove(i);
                return Some((x.purpose, Outcome::Reset));
            }
            (MessageType::Acknowledgement, MessageClass::Empty) => {
                let i = self.pending.iter().position(|x| by_mid(x) && !x.acked)?;
                if !self.pending[i].request {
                    let x = self.pending.remove(i);
                    return Some((x.purpose, Outcome::Acked));
                }
                let x = &mut self.pending[i];
                x.acked = true;
                x.deadline += MAX_TRANSMIT_WAIT;
                return None;
            }
            (MessageType::Acknowledgement, MessageClass::Response(_)) => self
                .pending
                .iter()
                .position(|x| by_mid(x) && x.request && x.token == p.get_token())?,
            (_, MessageClass::Response(_)) => self
                .pending
                .iter()
                .position(|x| x.to == from && x.request && x.token == p.get_token())?,
            _ => return None,
        };
        let x = self.pending.remove(i);
        Some((x.purpose, Outcome::Response(p.clone())))
    }

    /// Retransmissions due at `now` and exchanges that gave up.
    pub fn poll(&mut self, now: Instant) -> (Vec<(SocketAddr, Vec<u8>)>, Vec<Purpose>) {
        let mut resend = Vec::new();
        let mut failed = Vec::new();
        let max = self.timing.max_retransmit;
        self.pending.retain_mut(|x| {
            if x.deadline > now {
                return true;
            }
            if x.acked || x.retransmits >= max {
                failed.push(x.purpose.clone());
                return false;
            }
            x.retransmits += 1;
            x.timeout *= 2;
            x.deadline = now + x.timeout;
            resend.push((x.to, x.bytes.clone()));
            true
        });
        (resend, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::lwm2m::coap::message::{empty_ack, response_for, rst};
    use coap_lite::{RequestType, ResponseType};
    use rand::SeedableRng;

    fn get() -> Packet {
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Post);
        p
    }

    #[test]
    fn retransmits_with_doubling_timeouts_then_fails() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut t = Transport::new(Timing::default(), &mut rng);
        let to = SocketAddr::from(([127, 0, 0, 1], 5683));
        let t0 = Instant::now();
        t.send(to, get(), Purpose::Register, t0, &mut rng);
        let first = t.next_deadline().unwrap() - t0;
        assert!((ACK_TIMEOUT..=ACK_TIMEOUT_MAX).contains(&first));
        let mut now = t0;
        let mut sends = 0;
        let mut gaps = Vec::new();
        loop {
            let at = t.next_deadline().unwrap();
            gaps.push(at - now);
            now = at;
            let (resend, failed) = t.poll(now);
            sends += resend.len();
            if !failed.is_empty() {
                assert_eq!(failed, vec![Purpose::Register]);
                break;
            }
        }
        assert_eq!(sends, usize::from(MAX_RETRANSMIT));
        assert!(gaps.windows(2).all(|w| w[1] == w[0] * 2));
        assert!(now - t0 <= MAX_TRANSMIT_WAIT);
        assert!(t.is_idle());
    }

    #[test]
    fn matches_piggybacked_separate_ack_and_rst() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut t = Transport::new(Timing::default(), &mut rng);
        let to = SocketAddr::from(([127, 0, 0, 1], 5683));
        let now = Instant::now();
        let bytes = t.send(to, get(), Purpose::Update, now, &mut rng);
        let sent = Packet::from_bytes(&bytes).unwrap();
        // Wrong peer: no match.
        let other = SocketAddr::from(([127, 0, 0, 2], 5683));
        let ack = response_for(&sent, ResponseType::Changed);
        assert_eq!(t.on_message(other, &ack), None);
        // Empty ACK, then a separate CON response by token.
        assert_eq!(t.on_message(to, &empty_ack(sent.header.message_id)), None);
        let mut sep = response_for(&sent, ResponseType::Changed);
        sep.header.set_type(MessageType::Confirmable);
        sep.header.message_id = 7;
        assert!(matches!(
            t.on_message(to, &sep),
            Some((Purpose::Update, Outcome::Response(_)))
        ));
        assert!(t.is_idle());

        // A notification is done with its empty ACK; RST resets.
        let mut n = Packet::new();
        n.header.code = MessageClass::Response(ResponseType::Content);
        n.set_token(vec![9]);
        let b = t.send(to, n.clone(), Purpose::Notify(vec![9]), now, &mut rng);
        let mid = Packet::from_bytes(&b).unwrap().header.message_id;
        assert_eq!(
            t.on_message(to, &empty_ack(mid)),
            Some((Purpose::Notify(vec![9]), Outcome::Acked))
        );
        let b = t.send(to, n, Purpose::Notify(vec![9]), now, &mut rng);
        let mid = Packet::from_bytes(&b).unwrap().header.message_id;
        assert_eq!(
            t.on_message(to, &rst(mid)),
            Some((Purpose::Notify(vec![9]), Outcome::Reset))
        );
    }
}
