//! Sans-IO CoAP core: message classification and building, duplicate
//! detection, our outbound confirmable requests, block-wise transfers and
//! resource limits. Nothing here owns a socket, reads a clock or draws
//! randomness itself: time and RNGs are passed in by the socket task.

pub mod block;
pub mod dedup;
pub mod limits;
pub mod message;
pub mod outbound;

use std::time::Duration;

/// RFC 7252 §4.8 ACK_TIMEOUT.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// RFC 7252 §4.8 ACK_RANDOM_FACTOR (1.5), as the upper bound of the first
/// timeout: ACK_TIMEOUT * ACK_RANDOM_FACTOR.
pub const ACK_TIMEOUT_MAX: Duration = Duration::from_millis(3000);
/// RFC 7252 §4.8 MAX_RETRANSMIT.
pub const MAX_RETRANSMIT: u8 = 4;
/// RFC 7252 §4.8.2 MAX_TRANSMIT_SPAN (45 s).
pub const MAX_TRANSMIT_SPAN: Duration = Duration::from_secs(45);
/// RFC 7252 §4.8.2 MAX_TRANSMIT_WAIT (93 s).
pub const MAX_TRANSMIT_WAIT: Duration = Duration::from_secs(93);
/// RFC 7252 §4.8.2 EXCHANGE_LIFETIME (247 s).
pub const EXCHANGE_LIFETIME: Duration = Duration::from_secs(247);
/// RFC 7252 §4.8.2 NON_LIFETIME (145 s).
pub const NON_LIFETIME: Duration = Duration::from_secs(145);
/// RFC 7641 §3.4: a notification arriving this long after the previous
/// one is fresh whatever its sequence number.
pub const OBSERVE_FRESHNESS: Duration = Duration::from_secs(128);

/// End-to-end use of the pieces the way the socket task drives them.
#[cfg(test)]
mod flow_tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
    use rand::SeedableRng;

    use super::dedup::{Check, Dedup, DedupConfig, Kind, Sameness};
    use super::message::{classify, uri_path, Inbound};
    use super::outbound::{Event, Outbound, OutboundConfig};
    use crate::server::lwm2m::{link_format, registration};

    /// A Zephyr-like Register: CON POST /rd?ep=…&lt=…&lwm2m=1.1&b=U&Q, CF 40.
    fn register_bytes(mid: u16) -> Vec<u8> {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(RequestType::Post);
        p.header.message_id = mid;
        p.set_token(vec![0xde, 0xad, 0xbe, 0xef]);
        p.add_option(CoapOption::UriPath, b"rd".to_vec());
        for q in ["ep=zephyr-1", "lt=86400", "lwm2m=1.1", "b=U", "Q"] {
            p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
        }
        p.add_option(CoapOption::ContentFormat, vec![40]);
        p.payload = b"</>;ct=112,</1/0>,</3/0>,</5/0>,</3303/0>;ver=1.1".to_vec();
        p.to_bytes().unwrap()
    }

    #[test]
    fn register_retransmission_is_answered_from_cache() {
        let dev = SocketAddr::from(([127, 0, 0, 1], 56830));
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut dedup = Dedup::new(DedupConfig::default());
        let mut registrations = 0;
        let mut answers = Vec::new();

        for (i, at) in [0u64, 2, 6].into_iter().enumerate() {
            let now = t0 + Duration::from_secs(at);
            let Inbound::Request(req) = classify(&register_bytes(0x1000)) else {
                panic!("request expected")
            };
            match dedup.check(
                dev,
                req.header.message_id,
                Kind::Confirmable,
                Sameness::of(&req),
                now,
            ) {
                Check::New => {
                    assert_eq!(i, 0);
                    let params =
                        registration::parse_register_query(registration::query_params(&req))
                            .unwrap();
                    assert!(params.queue_mode);
                    let links = link_format::parse_register_payload(&req.payload).unwrap();
                    assert_eq!(links.objects.len(), 4);
                    registrations += 1;
                    let id = registration::new_registration_id(&mut rng);
                    let bytes = registration::register_created(&req, &id)
                        .to_bytes()
                        .unwrap();
                    dedup.complete(dev, req.header.message_id, bytes.clone());
                    answers.push(bytes);
                }
                Check::Resend(bytes) => answers.push(bytes),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(registrations, 1);
        assert!(answers.windows(2).all(|w| w[0] == w[1]));
        let ack = Packet::from_bytes(&answers[0]).unwrap();
        assert_eq!(
            ack.header.code,
            MessageClass::Response(ResponseType::Created)
        );
        assert_eq!(ack.get_option(CoapOption::LocationPath).unwrap().len(), 2);
    }

    #[test]
    fn read_then_con_notification_ack_is_cached() {
        let dev = SocketAddr::from(([127, 0, 0, 1], 56831));
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(43);
        let mut dedup = Dedup::new(DedupConfig::default());
        let mut ob = Outbound::new(OutboundConfig::default());

        let mut obs = Packet::new();
        obs.header.code = MessageClass::Request(RequestType::Get);
        for s in ["3303", "0", "5700"] {
            obs.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        obs.add_option(CoapOption::Observe, vec![]);
        let (h, tx) = ob.send(dev, obs, t0, &mut rng).unwrap();
        let sent = Packet::from_bytes(&tx.unwrap().bytes).unwrap();
        assert_eq!(uri_path(&sent), "3303/0/5700");

        // Device: piggybacked 2.05 with Observe 1.
        let mut resp = super::message::response_for(&sent, ResponseType::Content);
        resp.add_option(CoapOption::Observe, vec![1]);
        let Inbound::Response(p) = classify(&resp.to_bytes().unwrap()) else {
            panic!()
        };
        let r = ob.on_message(dev, &p, t0, &mut rng);
        assert!(matches!(
            r.event,
            Event::Response {
                observing: true,
                ..
            }
        ));

        // CON notification, then its retransmission (same MID).
        let mut n = Packet::new();
        n.header.set_type(MessageType::Confirmable);
        n.header.code = MessageClass::Response(ResponseType::Content);
        n.header.message_id = 0x0777;
        n.set_token(sent.get_token().to_vec());
        n.add_option(CoapOption::Observe, vec![2]);
        n.payload = b"21.5".to_vec();
        let bytes = n.to_bytes().unwrap();
        let mut delivered = 0;
        for _ in 0..2 {
            let Inbound::Response(p) = classify(&bytes) else {
                panic!()
            };
            match dedup.check(
                dev,
                p.header.message_id,
                Kind::Confirmable,
                Sameness::of(&p),
                t0,
            ) {
                Check::New => {
                    let r = ob.on_message(dev, &p, t0, &mut rng);
                    assert!(
                        matches!(r.event, Event::Notification { handle, fresh: true, .. } if handle == h)
                    );
                    delivered += 1;
                    let reply = r.reply.unwrap();
                    assert_eq!(reply.bytes, [0x60, 0x00, 0x07, 0x77]);
                    dedup.ack_sent(dev, p.header.message_id, reply.bytes);
                }
                Check::Resend(b) => assert_eq!(b, [0x60, 0x00, 0x07, 0x77]),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delivered, 1);
    }
}
