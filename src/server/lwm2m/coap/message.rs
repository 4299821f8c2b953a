//! Classifying inbound datagrams and building responses.
//!
//! `coap-lite` parses leniently (it ignores the version field, accepts a
//! payload marker with no payload and keeps unknown options), so the
//! checks RFC 7252 §3, §4.2, §4.3 and §5.4 require are done here before
//! a packet reaches the registration or outbound layers.

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};

/// Option numbers this server understands (RFC 7252 §5.10, RFC 7641,
/// RFC 7959, RFC 7967). Unknown *critical* (odd) options in a request are
/// answered 4.02 Bad Option (§5.4.1). OSCORE (9) is deliberately absent:
/// RFC 8613 §2 has a server without OSCORE support answer 4.02.
const KNOWN_OPTIONS: &[u16] = &[
    1, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 17, 20, 23, 27, 28, 35, 39, 60, 258,
];

/// Options that may appear only once; a repeat of a critical one is
/// treated as unrecognised (§5.4.5).
const SINGLE_OPTIONS: &[u16] = &[3, 5, 6, 7, 12, 14, 17, 23, 27, 28, 35, 39, 60, 258];

/// Maximum value lengths of the uint options whose value we interpret;
/// a longer value is treated like an unrecognised option (§5.4.3).
fn max_len(number: u16) -> Option<usize> {
    match number {
        6 | 23 | 27 => Some(3),
        7 | 12 | 17 => Some(2),
        14 | 28 | 60 => Some(4),
        5 => Some(0),
        4 => Some(8),
        _ => None,
    }
}

/// Why an inbound datagram was dropped or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Fewer than 4 bytes: no header, nothing to answer.
    TooShort,
    /// Version field not 1: must be silently ignored (§3).
    UnknownVersion,
    /// Token length 9–15, truncated options, 0xFF with no payload, …
    FormatError,
    /// Empty message (0.00) with a token, options or payload (§4.1).
    MalformedEmpty,
    /// Code class 1, 6 or 7 (§4.2).
    ReservedClass,
    /// CON empty message: a CoAP ping, answered with RST (§4.3).
    Ping,
    /// Request with an unrecognised critical option (§5.4.1).
    BadOption(u16),
    /// Response with an unrecognised critical option (§5.4.1).
    BadOptionInResponse(u16),
    /// A request in an ACK or RST, or a response to nothing we can tell.
    WrongType,
}

/// The result of classifying one datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A CON or NON request to process (after dedup).
    Request(Packet),
    /// A response: piggybacked in an ACK, or a CON/NON separate response or
    /// notification. Hand it to `Outbound::on_message` (after dedup if CON
    /// or NON).
    Response(Packet),
    /// An empty ACK or an RST: hand it to `Outbound::on_message`.
    Empty(Packet),
    /// Not processed. `reply` is what to send back (an RST or a 4.02), if
    /// anything; `reason` is for counters and logs.
    Rejected {
        reason: DropReason,
        reply: Option<Packet>,
    },
}

/// Walks the option/payload structure exactly as RFC 7252 §3.1 defines it,
/// reporting format errors coap-lite lets through.
fn check_structure(buf: &[u8]) -> bool {
    let tkl = (buf[0] & 0x0f) as usize;
    if tkl > 8 || buf.len() < 4 + tkl {
        return false;
    }
    let mut i = 4 + tkl;
    let mut number: u32 = 0;
    while i < buf.len() {
        let b = buf[i];
        if b == 0xff {
            // A payload marker followed by zero bytes is a format error.
            return i + 1 < buf.len();
        }
        i += 1;
        let ext = |nibble: u8, i: &mut usize| -> Option<u32> {
            match nibble {
                0..=12 => Some(u32::from(nibble)),
                13 => {
                    let v = *buf.get(*i)?;
                    *i += 1;
                    Some(u32::from(v) + 13)
                }
                14 => {
                    let hi = *buf.get(*i)?;
                    let lo = *buf.get(*i + 1)?;
                    *i += 2;
                    Some(u32::from(u16::from_be_bytes([hi, lo])) + 269)
                }
                _ => None,
            }
        };
        let Some(delta) = ext(b >> 4, &mut i) else {
            return false;
        };
        let Some(len) = ext(b & 0x0f, &mut i) else {
            return false;
        };
        number += delta;
        if number > u32::from(u16::MAX) {
            return false;
        }
        i += len as usize;
        if i > buf.len() {
            return false;
        }
    }
    true
}

fn mid_of(buf: &[u8]) -> u16 {
    u16::from_be_bytes([buf[2], buf[3]])
}

fn msg_type(buf: &[u8]) -> MessageType {
    match (buf[0] >> 4) & 0x3 {
        0 => MessageType::Confirmable,
        1 => MessageType::NonConfirmable,
        2 => MessageType::Acknowledgement,
        _ => MessageType::Reset,
    }
}

/// Rejecting a CON means an RST; rejecting a NON, ACK or RST means
/// silence (§4.2, §4.3; we choose silence for NON to avoid amplification).
fn reject(buf: &[u8], reason: DropReason) -> Inbound {
    let reply = (msg_type(buf) == MessageType::Confirmable).then(|| rst(mid_of(buf)));
    Inbound::Rejected { reason, reply }
}

/// The first unrecognised critical option, or a repeated / over-long
/// critical option, in a parsed packet.
fn bad_critical_option(p: &Packet) -> Option<u16> {
    for (&number, values) in p.options() {
        let critical = number & 1 == 1;
        if !critical {
            continue;
        }
        if !KNOWN_OPTIONS.contains(&number) {
            return Some(number);
        }
        if values.len() > 1 && SINGLE_OPTIONS.contains(&number) {
            return Some(number);
        }
        if let Some(max) = max_len(number) {
            if values.iter().any(|v| v.len() > max) {
                return Some(number);
            }
        }
    }
    None
}

/// Classifies one inbound datagram.
pub fn classify(buf: &[u8]) -> Inbound {
    if buf.len() < 4 {
        return Inbound::Rejected {
            reason: DropReason::TooShort,
            reply: None,
        };
    }
    if buf[0] >> 6 != 1 {
        return Inbound::Rejected {
            reason: DropReason::UnknownVersion,
            reply: None,
        };
    }
    let ty = msg_type(buf);
    let code = buf[1];
    if code == 0 {
        if buf.len() != 4 {
            return reject(buf, DropReason::MalformedEmpty);
        }
        return match ty {
            MessageType::Acknowledgement | MessageType::Reset => {
                // Empty ACK/RST: structure is trivially valid.
                match Packet::from_bytes(buf) {
                    Ok(p) => Inbound::Empty(p),
                    Err(_) => reject(buf, DropReason::FormatError),
                }
            }
            MessageType::Confirmable => Inbound::Rejected {
                reason: DropReason::Ping,
                reply: Some(rst(mid_of(buf))),
            },
            MessageType::NonConfirmable => Inbound::Rejected {
                reason: DropReason::MalformedEmpty,
                reply: None,
            },
        };
    }
    if matches!(code >> 5, 1 | 6 | 7) {
        return reject(buf, DropReason::ReservedClass);
    }
    if !check_structure(buf) {
        return reject(buf, DropReason::FormatError);
    }
    let Ok(packet) = Packet::from_bytes(buf) else {
        return reject(buf, DropReason::FormatError);
    };
    let is_request = code >> 5 == 0;
    if is_request {
        if matches!(ty, MessageType::Acknowledgement | MessageType::Reset) {
            return Inbound::Rejected {
                reason: DropReason::WrongType,
                reply: None,
            };
        }
        if let Some(opt) = bad_critical_option(&packet) {
            let reply = (ty == MessageType::Confirmable)
                .then(|| response_for(&packet, ResponseType::BadOption));
            return Inbound::Rejected {
                reason: DropReason::BadOption(opt),
                reply,
            };
        }
        return Inbound::Request(packet);
    }
    if let Some(opt) = bad_critical_option(&packet) {
        return reject(buf, DropReason::BadOptionInResponse(opt));
    }
    if ty == MessageType::Reset {
        // An RST carrying a response code is malformed (§4.2).
        return Inbound::Rejected {
            reason: DropReason::WrongType,
            reply: None,
        };
    }
    Inbound::Response(packet)
}

/// A response to `request`: piggybacked in an ACK when the request was
/// CON, otherwise a NON. The MID is the request's, which is right for the
/// ACK; for a NON the caller must set a fresh one from
/// `Outbound::allocate_mid`. The token is echoed (zero-length included).
pub fn response_for(request: &Packet, code: ResponseType) -> Packet {
    let mut p = Packet::new();
    let ty = match request.header.get_type() {
        MessageType::Confirmable => MessageType::Acknowledgement,
        _ => MessageType::NonConfirmable,
    };
    p.header.set_type(ty);
    p.header.code = MessageClass::Response(code);
    p.header.message_id = request.header.message_id;
    p.set_token(request.get_token().to_vec());
    p
}

/// Piggybacked response with payload and Content-Format (raw number, so
/// formats coap-lite has no name for still work).
pub fn response_with_payload(
    request: &Packet,
    code: ResponseType,
    content_format: u16,
    payload: Vec<u8>,
) -> Packet {
    let mut p = response_for(request, code);
    set_content_format(&mut p, content_format);
    p.payload = payload;
    p
}

/// Sets Content-Format from its registry number.
pub fn set_content_format(p: &mut Packet, cf: u16) {
    p.clear_option(CoapOption::ContentFormat);
    p.add_option(CoapOption::ContentFormat, encode_uint(u32::from(cf)));
}

/// Adds one Location-Path option per segment.
pub fn add_location_path(p: &mut Packet, segments: &[&str]) {
    for s in segments {
        p.add_option(CoapOption::LocationPath, s.as_bytes().to_vec());
    }
}

/// Empty ACK (0.00) for a CON with this MID: the start of a separate
/// response, or the answer to a CON notification.
pub fn empty_ack(mid: u16) -> Packet {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Acknowledgement);
    p.header.code = MessageClass::Empty;
    p.header.message_id = mid;
    p
}

/// RST for the message with this MID.
pub fn rst(mid: u16) -> Packet {
    let mut p = Packet::new();
    p.header.set_type(MessageType::Reset);
    p.header.code = MessageClass::Empty;
    p.header.message_id = mid;
    p
}

/// Minimal big-endian encoding of a uint option value (§3.2).
pub fn encode_uint(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    bytes[skip..].to_vec()
}

/// Decodes a uint option value of at most 4 bytes.
pub fn decode_uint(v: &[u8]) -> Option<u32> {
    if v.len() > 4 {
        return None;
    }
    Some(v.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// Value of a uint option, if present and well-formed.
pub fn uint_option(p: &Packet, opt: CoapOption) -> Option<u32> {
    p.get_first_option(opt).and_then(|v| decode_uint(v))
}

/// Joined Uri-Path, e.g. "5/0/1", for logging and lookups.
pub fn uri_path(p: &Packet) -> String {
    p.get_option(CoapOption::UriPath)
        .map(|l| {
            l.iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_lite::RequestType;

    #[test]
    fn rfc7252_appendix_a_get_with_piggybacked_response() {
        // Figure 16: CON GET /temperature, MID 0x7d34, no token.
        let req = [
            0x40, 0x01, 0x7d, 0x34, 0xbb, b't', b'e', b'm', b'p', b'e', b'r', b'a', b't', b'u',
            b'r', b'e',
        ];
        let Inbound::Request(p) = classify(&req) else {
            panic!("not a request")
        };
        assert_eq!(p.header.code, MessageClass::Request(RequestType::Get));
        assert_eq!(uri_path(&p), "temperature");
        assert_eq!(p.header.message_id, 0x7d34);
        // Piggybacked 2.05 "22.3 C".
        let resp = response_with_payload(&p, ResponseType::Content, 0, b"22.3 C".to_vec());
        let mut r = response_for(&p, ResponseType::Content);
        r.payload = b"22.3 C".to_vec();
        assert_eq!(
            r.to_bytes().unwrap(),
            [0x60, 0x45, 0x7d, 0x34, 0xff, b'2', b'2', b'.', b'3', b' ', b'C']
        );
        // Content-Format 0 is encoded as a zero-length option (delta 12).
        assert_eq!(
            &resp.to_bytes().unwrap()[..5],
            &[0x60, 0x45, 0x7d, 0x34, 0xc0]
        );
    }

    #[test]
    fn rfc7252_appendix_a_token_and_empty_ack() {
        // Figure 18: CON GET with token 0x20, then an empty ACK.
        let mut req = vec![0x41, 0x01, 0x7d, 0x35, 0x20, 0xbb];
        req.extend_from_slice(b"temperature");
        let Inbound::Request(p) = classify(&req) else {
            panic!()
        };
        assert_eq!(p.get_token(), &[0x20]);
        assert_eq!(
            empty_ack(0x7d35).to_bytes().unwrap(),
            [0x60, 0x00, 0x7d, 0x35]
        );
        assert!(matches!(
            classify(&[0x60, 0x00, 0x7d, 0x35]),
            Inbound::Empty(_)
        ));
        assert_eq!(rst(0x7d35).to_bytes().unwrap(), [0x70, 0x00, 0x7d, 0x35]);
    }

    #[test]
    fn separate_response_is_response() {
        // CON 2.05 with token 0x20, a separate response.
        let buf = [0x41, 0x45, 0x00, 0x01, 0x20, 0xff, b'x'];
        assert!(matches!(classify(&buf), Inbound::Response(_)));
    }

    #[test]
    fn drops_and_rejects() {
        let r = |b: &[u8]| match classify(b) {
            Inbound::Rejected { reason, reply } => (reason, reply.map(|p| p.to_bytes().unwrap())),
            other => panic!("{other:?}"),
        };
        assert_eq!(r(&[0x40, 0x01]), (DropReason::TooShort, None));
        assert_eq!(r(&[0x80, 0x01, 0, 1]), (DropReason::UnknownVersion, None));
        // CON ping → RST.
        assert_eq!(
            r(&[0x40, 0x00, 0x12, 0x34]),
            (DropReason::Ping, Some(vec![0x70, 0, 0x12, 0x34]))
        );
        // Empty with a token: format error; CON → RST, NON → silence.
        assert_eq!(
            r(&[0x41, 0x00, 0, 7, 0xaa]),
            (DropReason::MalformedEmpty, Some(vec![0x70, 0, 0, 7]))
        );
        assert_eq!(
            r(&[0x51, 0x00, 0, 7, 0xaa]),
            (DropReason::MalformedEmpty, None)
        );
        // TKL 9 in a CON request → RST.
        assert_eq!(
            r(&[0x49, 0x01, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (DropReason::FormatError, Some(vec![0x70, 0, 0, 9]))
        );
        // Payload marker with no payload.
        assert_eq!(
            r(&[0x40, 0x01, 0, 3, 0xff]),
            (DropReason::FormatError, Some(vec![0x70, 0, 0, 3]))
        );
        // Option length running past the end.
        assert_eq!(
            r(&[0x40, 0x01, 0, 4, 0xb5, b'a']),
            (DropReason::FormatError, Some(vec![0x70, 0, 0, 4]))
        );
        // Delta nibble 15 without being a payload marker.
        assert_eq!(
            r(&[0x50, 0x01, 0, 5, 0xf1, 0]),
            (DropReason::FormatError, None)
        );
        // Reserved class 7.
        assert_eq!(
            r(&[0x40, 0xe0, 0, 6]),
            (DropReason::ReservedClass, Some(vec![0x70, 0, 0, 6]))
        );
        // Malformed ACK: silently ignored.
        assert_eq!(
            r(&[0x60, 0x45, 0, 8, 0xff]),
            (DropReason::FormatError, None)
        );
        // Request in an ACK.
        assert_eq!(r(&[0x60, 0x01, 0, 8]), (DropReason::WrongType, None));
    }

    #[test]
    fn unknown_critical_option_in_request_is_4_02() {
        // CON GET, token 0x01, option 2049 (critical, unknown).
        // delta 2049 = 14 → ext 2049-269 = 1780 = 0x06f4; length 0.
        let buf = [0x41, 0x01, 0x00, 0x10, 0x01, 0xe0, 0x06, 0xf4];
        match classify(&buf) {
            Inbound::Rejected {
                reason: DropReason::BadOption(2049),
                reply: Some(p),
            } => {
                assert_eq!(p.to_bytes().unwrap(), [0x61, 0x82, 0x00, 0x10, 0x01]);
            }
            other => panic!("{other:?}"),
        }
        // Same option in a NON: rejected silently.
        let buf = [0x51, 0x01, 0x00, 0x10, 0x01, 0xe0, 0x06, 0xf4];
        assert!(matches!(
            classify(&buf),
            Inbound::Rejected {
                reason: DropReason::BadOption(2049),
                reply: None
            }
        ));
        // Unknown *elective* option (2048) is ignored.
        let buf = [0x41, 0x01, 0x00, 0x11, 0x01, 0xe0, 0x06, 0xf3];
        assert!(matches!(classify(&buf), Inbound::Request(_)));
        // OSCORE (9) unsupported → 4.02.
        let buf = [0x40, 0x02, 0x00, 0x12, 0x91, 0x00];
        assert!(matches!(
            classify(&buf),
            Inbound::Rejected {
                reason: DropReason::BadOption(9),
                ..
            }
        ));
        // Repeated Block2 (critical, single) → 4.02.
        let buf = [0x40, 0x01, 0x00, 0x13, 0xd1, 0x0a, 0x02, 0x01, 0x02];
        assert!(matches!(
            classify(&buf),
            Inbound::Rejected {
                reason: DropReason::BadOption(23),
                ..
            }
        ));
        // Unknown critical option in a CON response → RST.
        let buf = [0x41, 0x45, 0x00, 0x14, 0x01, 0xe0, 0x06, 0xf4];
        assert!(matches!(
            classify(&buf),
            Inbound::Rejected {
                reason: DropReason::BadOptionInResponse(2049),
                reply: Some(_)
            }
        ));
    }

    #[test]
    fn uint_codec() {
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(112), vec![112]);
        assert_eq!(encode_uint(11543), vec![0x2d, 0x17]);
        assert_eq!(decode_uint(&[0x2d, 0x17]), Some(11543));
        assert_eq!(decode_uint(&[1, 2, 3, 4, 5]), None);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn classify_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = classify(&data);
            }

            #[test]
            fn con_with_header_never_silently_accepts_garbage(
                tail in proptest::collection::vec(any::<u8>(), 0..64), mid in any::<u16>()
            ) {
                let mut buf = vec![0x40, 0x01];
                buf.extend_from_slice(&mid.to_be_bytes());
                buf.extend_from_slice(&tail);
                match classify(&buf) {
                    Inbound::Request(p) => prop_assert_eq!(p.header.message_id, mid),
                    Inbound::Rejected { reply: Some(r), .. } => prop_assert_eq!(r.header.message_id, mid),
                    other => prop_assert!(false, "{:?}", other),
                }
            }
        }
    }
}
