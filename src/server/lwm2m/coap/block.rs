//! Block-wise transfers (RFC 7959).
//!
//! - [`serve_block2`] / [`block2_response`]: stateless Block2 serving of a
//!   payload we hold in full (firmware image, large read answer). The
//!   smaller of the client's and our SZX wins.
//! - [`Block1Assembler`]: reassembly of inbound Block1 requests (large
//!   Register payloads, Send, firmware push), in order only, bounded per
//!   transfer, per peer and in total.
//! - [`Block2Download`]: fetching the rest of a device's block-wise
//!   response to one of our requests (or of a block-wise notification).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, Packet, ResponseType};

use super::limits::Refusal;
use super::message::{decode_uint, encode_uint, response_for, set_content_format, uint_option};
use super::EXCHANGE_LIFETIME;

/// Largest SZX on UDP (1024-byte blocks); 7 is BERT, TCP only.
pub const MAX_SZX: u8 = 6;
/// Request-Tag (RFC 9175): distinguishes concurrent Block1 bodies.
const REQUEST_TAG: u16 = 292;

/// A Block1 or Block2 option value: NUM, M and SZX (RFC 7959 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockOpt {
    pub num: u32,
    pub more: bool,
    pub szx: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("malformed block option")]
    Malformed,
    #[error("block beyond the end of the resource")]
    OutOfRange,
    #[error("block out of order (expected offset {expected}, got {got})")]
    OutOfOrder { expected: usize, got: usize },
    #[error("block payload size does not match SZX")]
    WrongSize,
    #[error("ETag changed during the transfer")]
    EtagChanged,
    #[error("body exceeds {max} bytes")]
    TooLarge { max: usize },
}

impl BlockOpt {
    pub fn new(num: u32, more: bool, szx: u8) -> Self {
        BlockOpt { num, more, szx }
    }

    /// Block size in bytes: 2^(SZX + 4).
    pub fn size(self) -> usize {
        1usize << (self.szx + 4)
    }

    /// Byte offset of this block.
    pub fn offset(self) -> usize {
        self.num as usize * self.size()
    }

    /// Decodes an option value of 0–3 bytes; NUM < 2^20, SZX 0–6.
    pub fn decode(v: &[u8]) -> Result<Self, BlockError> {
        if v.len() > 3 {
            return Err(BlockError::Malformed);
        }
        let raw = decode_uint(v).ok_or(BlockError::Malformed)?;
        let szx = (raw & 0x7) as u8;
        if szx > MAX_SZX {
            return Err(BlockError::Malformed);
        }
        Ok(BlockOpt {
            num: raw >> 4,
            more: raw & 0x8 != 0,
            szx,
        })
    }

    pub fn encode(self) -> Vec<u8> {
        encode_uint((self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx))
    }

    /// Reads the option from a packet: `Ok(None)` if absent.
    pub fn from_packet(p: &Packet, opt: CoapOption) -> Result<Option<Self>, BlockError> {
        p.get_first_option(opt)
            .map(|v| BlockOpt::decode(v))
            .transpose()
    }

    pub fn set_on(self, p: &mut Packet, opt: CoapOption) {
        p.clear_option(opt);
        p.add_option(opt, self.encode());
    }
}

/// SZX for a block size in bytes (16..=1024, power of two).
pub fn szx_for_size(size: usize) -> Option<u8> {
    (0..=MAX_SZX).find(|&s| 1usize << (s + 4) == size)
}

/// One block of a payload, as chosen by [`serve_block2`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block2Slice<'a> {
    /// `None` when the whole payload fits and the client did not ask for
    /// blocks: answer without a Block2 option.
    pub block: Option<BlockOpt>,
    pub data: &'a [u8],
}

/// Chooses the block of `payload` a request asks for (RFC 7959 §2.4).
///
/// The block size is min(client SZX, `max_szx`); when we pick a smaller
/// size than requested, the block number is scaled so the byte offset is
/// the one the client asked for (§2.4, late negotiation).
pub fn serve_block2<'a>(
    payload: &'a [u8],
    request_block2: Option<BlockOpt>,
    max_szx: u8,
) -> Result<Block2Slice<'a>, BlockError> {
    let (block, range) = plan_block2(payload.len(), request_block2, max_szx)?;
    Ok(Block2Slice {
        block,
        data: &payload[range],
    })
}

/// [`serve_block2`] for a representation of `len` bytes that is not held
/// in memory (a firmware image read block by block from its file): the
/// Block2 option to answer with and the byte range to send.
pub fn plan_block2(
    len: usize,
    request_block2: Option<BlockOpt>,
    max_szx: u8,
) -> Result<(Option<BlockOpt>, std::ops::Range<usize>), BlockError> {
    let max_szx = max_szx.min(MAX_SZX);
    let (offset, szx) = match request_block2 {
        None => {
            if len <= 1usize << (max_szx + 4) {
                return Ok((None, 0..len));
            }
            (0, max_szx)
        }
        Some(b) => (b.offset(), b.szx.min(max_szx)),
    };
    let size = 1usize << (szx + 4);
    // Block 0 of an empty payload is valid (an empty representation).
    if offset > 0 && offset >= len {
        return Err(BlockError::OutOfRange);
    }
    let end = (offset + size).min(len);
    Ok((
        Some(BlockOpt {
            num: (offset / size) as u32,
            more: end < len,
            szx,
        }),
        offset..end,
    ))
}

/// Builds the (piggybacked) response carrying the requested block of
/// `payload`, with ETag (on every block, so the client can detect a
/// changed resource), Content-Format and Size2 (when the client sent
/// Size2, as Zephyr's pull client does, or on block 0). A bad or
/// out-of-range Block2 option gets 4.02 Bad Option.
pub fn block2_response(
    request: &Packet,
    code: ResponseType,
    content_format: Option<u16>,
    payload: &[u8],
    etag: Option<&[u8]>,
    max_szx: u8,
) -> Packet {
    let req_block = match BlockOpt::from_packet(request, CoapOption::Block2) {
        Ok(b) => b,
        Err(_) => return response_for(request, ResponseType::BadOption),
    };
    let slice = match serve_block2(payload, req_block, max_szx) {
        Ok(s) => s,
        Err(_) => return response_for(request, ResponseType::BadOption),
    };
    block2_answer(
        request,
        code,
        content_format,
        etag,
        payload.len(),
        slice.block,
        slice.data,
    )
}

/// The response carrying one block (`data`, chosen by [`plan_block2`]) of
/// a representation of `total` bytes: ETag on every block, Size2 when the
/// client asked for it or on block 0.
pub fn block2_answer(
    request: &Packet,
    code: ResponseType,
    content_format: Option<u16>,
    etag: Option<&[u8]>,
    total: usize,
    block: Option<BlockOpt>,
    data: &[u8],
) -> Packet {
    let mut p = response_for(request, code);
    if let Some(e) = etag {
        p.add_option(CoapOption::ETag, e.to_vec());
    }
    if let Some(cf) = content_format {
        set_content_format(&mut p, cf);
    }
    if let Some(b) = block {
        b.set_on(&mut p, CoapOption::Block2);
        if request.get_option(CoapOption::Size2).is_some() || b.num == 0 {
            p.add_option(CoapOption::Size2, encode_uint(total as u32));
        }
    }
    p.payload = data.to_vec();
    p
}

/// A stable 8-byte ETag for a payload (FNV-1a 64). Cheap, and enough to
/// tell two firmware images apart; compute once per image.
pub fn etag_for(payload: &[u8]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in payload {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.to_be_bytes()
}

#[derive(Debug, Clone, Copy)]
pub struct Block1Config {
    /// Largest body of one transfer.
    pub max_body: usize,
    /// Bytes buffered for one peer over all its transfers.
    pub max_per_peer: usize,
    /// Bytes buffered in total.
    pub max_total: usize,
    pub max_transfers: usize,
    /// Our preferred block size; larger client blocks are negotiated down
    /// on block 0.
    pub max_szx: u8,
    /// A transfer idle this long is dropped.
    pub idle_timeout: Duration,
}

impl Default for Block1Config {
    fn default() -> Self {
        Block1Config {
            max_body: 64 * 1024,
            max_per_peer: 128 * 1024,
            max_total: 32 * 1024 * 1024,
            max_transfers: 4_096,
            max_szx: MAX_SZX,
            idle_timeout: EXCHANGE_LIFETIME,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TransferKey {
    peer: SocketAddr,
    code: u8,
    path: Vec<Vec<u8>>,
    query: Vec<Vec<u8>>,
    tag: Option<Vec<u8>>,
}

impl TransferKey {
    fn of(peer: SocketAddr, p: &Packet) -> Self {
        let list = |o| {
            p.get_option(o)
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default()
        };
        TransferKey {
            peer,
            code: p.header.code.into(),
            path: list(CoapOption::UriPath),
            query: list(CoapOption::UriQuery),
            tag: p
                .get_first_option(CoapOption::Unknown(REQUEST_TAG))
                .cloned(),
        }
    }
}

#[derive(Debug)]
struct Transfer {
    body: Vec<u8>,
    last: Instant,
}

/// What to do with an inbound request after Block1 handling.
#[derive(Debug, Clone, PartialEq)]
pub enum Block1Outcome {
    /// No Block1 option: process the request as it is.
    NotBlockwise,
    /// Intermediate block stored: send this 2.31 Continue.
    Continue(Packet),
    /// Last block received: process the request with `body` as payload,
    /// and put `block1` on the final response ([`finish_block1`]).
    Complete { body: Vec<u8>, block1: BlockOpt },
    /// Send this error response (4.00, 4.02, 4.08, 4.13 or 5.03).
    Reject {
        response: Packet,
        refusal: Option<Refusal>,
    },
}

/// Echoes Block1 on the final response of a block-wise request (§2.3).
pub fn finish_block1(response: &mut Packet, block1: BlockOpt) {
    block1.set_on(response, CoapOption::Block1);
}

#[derive(Debug, Default)]
pub struct Block1Assembler {
    cfg: Block1Config,
    transfers: HashMap<TransferKey, Transfer>,
    per_peer: HashMap<SocketAddr, usize>,
    total: usize,
    last_sweep: Option<Instant>,
}

impl Block1Assembler {
    pub fn new(cfg: Block1Config) -> Self {
        Block1Assembler {
            cfg,
            ..Block1Assembler::default()
        }
    }

    pub fn transfers(&self) -> usize {
        self.transfers.len()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.total
    }

    fn remove(&mut self, key: &TransferKey) {
        if let Some(t) = self.transfers.remove(key) {
            self.total -= t.body.len();
            if let Some(n) = self.per_peer.get_mut(&key.peer) {
                *n -= t.body.len();
                if *n == 0 {
                    self.per_peer.remove(&key.peer);
                }
            }
        }
    }

    fn too_large(&self, req: &Packet, refusal: Refusal) -> Block1Outcome {
        let mut r = response_for(req, ResponseType::RequestEntityTooLarge);
        r.add_option(CoapOption::Size1, encode_uint(self.cfg.max_body as u32));
        Block1Outcome::Reject {
            response: r,
            refusal: Some(refusal),
        }
    }

    fn reject(req: &Packet, code: ResponseType, refusal: Option<Refusal>) -> Block1Outcome {
        Block1Outcome::Reject {
            response: response_for(req, code),
            refusal,
        }
    }

    /// Handles one (already deduplicated) inbound request.
    pub fn on_request(&mut self, peer: SocketAddr, req: &Packet, now: Instant) -> Block1Outcome {
        // The sweep is a scan over all transfers; once a second keeps it
        // off the per-datagram path.
        if self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_sweep = Some(now);
            self.expire(now);
        }
        let block = match BlockOpt::from_packet(req, CoapOption::Block1) {
            Ok(None) => return Block1Outcome::NotBlockwise,
            Ok(Some(b)) => b,
            Err(_) => return Self::reject(req, ResponseType::BadOption, None),
        };
        if block.more && req.payload.len() != block.size() {
            return Self::reject(req, ResponseType::BadRequest, None);
        }
        if req.payload.len() > block.size() {
            return Self::reject(req, ResponseType::BadRequest, None);
        }
        let key = TransferKey::of(peer, req);
        if block.num == 0 {
            // A new block 0 restarts the transfer (§2.5).
            self.remove(&key);
            if let Some(size1) = uint_option(req, CoapOption::Size1) {
                if size1 as usize > self.cfg.max_body {
                    return self.too_large(req, Refusal::BodyTooLarge);
                }
            }
            if !block.more {
                return Block1Outcome::Complete {
                    body: req.payload.clone(),
                    block1: block,
                };
            }
            if self.transfers.len() >= self.cfg.max_transfers {
                return Self::reject(
                    req,
                    ResponseType::ServiceUnavailable,
                    Some(Refusal::TooManyTransfers),
                );
            }
            self.transfers.insert(
                key.clone(),
                Transfer {
                    body: Vec::new(),
                    last: now,
                },
            );
        }
        let Some(t) = self.transfers.get(&key) else {
            return Self::reject(req, ResponseType::RequestEntityIncomplete, None);
        };
        if block.offset() != t.body.len() {
            self.remove(&key);
            return Self::reject(req, ResponseType::RequestEntityIncomplete, None);
        }
        let add = req.payload.len();
        let new_len = t.body.len() + add;
        if new_len > self.cfg.max_body {
            self.remove(&key);
            return self.too_large(req, Refusal::BodyTooLarge);
        }
        if self.per_peer.get(&peer).copied().unwrap_or(0) + add > self.cfg.max_per_peer {
            self.remove(&key);
            return self.too_large(req, Refusal::BodyTooLarge);
        }
        if self.total + add > self.cfg.max_total {
            self.remove(&key);
            return Self::reject(
                req,
                ResponseType::ServiceUnavailable,
                Some(Refusal::BodyTooLarge),
            );
        }
        if !block.more {
            let t = self.transfers.remove(&key).expect("present");
            let buffered = t.body.len();
            self.total -= buffered;
            if let Some(n) = self.per_peer.get_mut(&peer) {
                *n -= buffered;
                if *n == 0 {
                    self.per_peer.remove(&peer);
                }
            }
            let mut body = t.body;
            body.extend_from_slice(&req.payload);
            return Block1Outcome::Complete {
                body,
                block1: block,
            };
        }
        let t = self.transfers.get_mut(&key).expect("present");
        t.body.extend_from_slice(&req.payload);
        t.last = now;
        self.total += add;
        *self.per_peer.entry(peer).or_default() += add;
        let mut r = response_for(req, ResponseType::Continue);
        // Negotiate down only on block 0: the client then continues at the
        // offset it reached, in our block size (§2.5, Figure 7).
        let szx = if block.num == 0 {
            block.szx.min(self.cfg.max_szx)
        } else {
            block.szx
        };
        BlockOpt::new(block.num, true, szx).set_on(&mut r, CoapOption::Block1);
        Block1Outcome::Continue(r)
    }

    /// Drops transfers idle for longer than the configured timeout.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.cfg.idle_timeout;
        let stale: Vec<TransferKey> = self
            .transfers
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(t.last) >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.remove(&k);
        }
    }
}

/// What to do after a block of a device's response arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadStep {
    /// Send this request (via `Outbound::send`) for the next block.
    Next(Packet),
    /// All blocks received.
    Complete(Vec<u8>),
}

/// Client side of Block2: reassembles a device's block-wise response.
///
/// Feed it the response to the original request (or a block-wise
/// notification), then the response to each `Next` request. Follow-up
/// requests are the original with a fresh token, Block2 set, and no
/// Observe option (RFC 7959 §2.6: only the first block is observed).
#[derive(Debug, Clone)]
pub struct Block2Download {
    request: Packet,
    body: Vec<u8>,
    etag: Option<Vec<u8>>,
    max_body: usize,
}

impl Block2Download {
    pub fn new(mut request: Packet, max_body: usize) -> Self {
        request.clear_option(CoapOption::Observe);
        request.clear_option(CoapOption::Block2);
        request.set_token(Vec::new());
        request.header.message_id = 0;
        Block2Download {
            request,
            body: Vec::new(),
            etag: None,
            max_body,
        }
    }

    pub fn received(&self) -> usize {
        self.body.len()
    }

    pub fn on_response(&mut self, resp: &Packet) -> Result<DownloadStep, BlockError> {
        let Some(b) = BlockOpt::from_packet(resp, CoapOption::Block2)? else {
            if self.body.is_empty() {
                return Ok(DownloadStep::Complete(resp.payload.clone()));
            }
            return Err(BlockError::Malformed);
        };
        if b.offset() != self.body.len() {
            return Err(BlockError::OutOfOrder {
                expected: self.body.len(),
                got: b.offset(),
            });
        }
        if (b.more && resp.payload.len() != b.size()) || resp.payload.len() > b.size() {
            return Err(BlockError::WrongSize);
        }
        let etag = resp.get_first_option(CoapOption::ETag).cloned();
        if self.body.is_empty() {
            self.etag = etag;
        } else if etag != self.etag {
            return Err(BlockError::EtagChanged);
        }
        if self.body.len() + resp.payload.len() > self.max_body {
            return Err(BlockError::TooLarge { max: self.max_body });
        }
        self.body.extend_from_slice(&resp.payload);
        if !b.more {
            return Ok(DownloadStep::Complete(std::mem::take(&mut self.body)));
        }
        let mut next = self.request.clone();
        BlockOpt::new(b.num + 1, false, b.szx).set_on(&mut next, CoapOption::Block2);
        Ok(DownloadStep::Next(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_lite::{MessageClass, MessageType, RequestType};

    fn peer() -> SocketAddr {
        SocketAddr::from(([203, 0, 113, 5], 40000))
    }

    fn req(code: RequestType, path: &str, mid: u16) -> Packet {
        let mut p = Packet::new();
        p.header.set_type(MessageType::Confirmable);
        p.header.code = MessageClass::Request(code);
        p.header.message_id = mid;
        p.set_token(vec![0xab]);
        for s in path.split('/') {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        p
    }

    fn with_block(mut p: Packet, opt: CoapOption, num: u32, more: bool, size: usize) -> Packet {
        BlockOpt::new(num, more, szx_for_size(size).unwrap()).set_on(&mut p, opt);
        p
    }

    fn block_of(p: &Packet, opt: CoapOption) -> Option<(u32, bool, usize)> {
        BlockOpt::from_packet(p, opt)
            .unwrap()
            .map(|b| (b.num, b.more, b.size()))
    }

    #[test]
    fn option_codec() {
        // 2:1/0/128 → NUM 1, SZX 3 → 0x13; 2:0/1/128 → 0x0b.
        assert_eq!(BlockOpt::new(1, false, 3).encode(), vec![0x13]);
        assert_eq!(BlockOpt::new(0, true, 3).encode(), vec![0x0b]);
        assert_eq!(BlockOpt::new(0, false, 0).encode(), Vec::<u8>::new());
        assert_eq!(
            BlockOpt::new(0xf_ffff, true, 6).encode(),
            vec![0xff, 0xff, 0xfe]
        );
        assert_eq!(BlockOpt::decode(&[0xff, 0xff, 0xfe]).unwrap().num, 0xf_ffff);
        assert_eq!(
            BlockOpt::decode(&[0x0f]),
            Err(BlockError::Malformed),
            "SZX 7"
        );
        assert_eq!(BlockOpt::decode(&[1, 2, 3, 4]), Err(BlockError::Malformed));
        assert_eq!(BlockOpt::decode(&[]).unwrap(), BlockOpt::new(0, false, 0));
    }

    #[test]
    fn rfc7959_figure2_simple_block2_get() {
        // 300-byte /status in 128-byte blocks: 0/1, 1/1, 2/0.
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let etag = etag_for(&payload);
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Get);
        p.header.message_id = 1234;
        let r = block2_response(&p, ResponseType::Content, Some(0), &payload, Some(&etag), 3);
        assert_eq!(block_of(&r, CoapOption::Block2), Some((0, true, 128)));
        assert_eq!(r.payload, &payload[..128]);
        assert_eq!(uint_option(&r, CoapOption::Size2), Some(300));
        assert_eq!(
            r.get_first_option(CoapOption::ETag).unwrap(),
            &etag.to_vec()
        );
        let p1 = with_block(p.clone(), CoapOption::Block2, 1, false, 128);
        let r = block2_response(
            &p1,
            ResponseType::Content,
            Some(0),
            &payload,
            Some(&etag),
            3,
        );
        assert_eq!(block_of(&r, CoapOption::Block2), Some((1, true, 128)));
        assert_eq!(r.get_option(CoapOption::Size2), None);
        let p2 = with_block(p.clone(), CoapOption::Block2, 2, false, 128);
        let r = block2_response(
            &p2,
            ResponseType::Content,
            Some(0),
            &payload,
            Some(&etag),
            3,
        );
        assert_eq!(block_of(&r, CoapOption::Block2), Some((2, false, 128)));
        assert_eq!(r.payload, &payload[256..]);
        // Past the end → 4.02.
        let p3 = with_block(p, CoapOption::Block2, 3, false, 128);
        let r = block2_response(
            &p3,
            ResponseType::Content,
            Some(0),
            &payload,
            Some(&etag),
            3,
        );
        assert_eq!(
            r.header.code,
            MessageClass::Response(ResponseType::BadOption)
        );
    }

    #[test]
    fn rfc7959_figure3_early_negotiation_client_smaller() {
        // Client asks 2:0/0/64 while we would serve 1024: 64 wins.
        let payload = vec![7u8; 380];
        for n in 0..6u32 {
            let s = serve_block2(&payload, Some(BlockOpt::new(n, false, 2)), MAX_SZX).unwrap();
            let b = s.block.unwrap();
            assert_eq!((b.num, b.more, b.size()), (n, n < 5, 64));
        }
    }

    #[test]
    fn rfc7959_figure4_late_negotiation_and_server_smaller() {
        let payload: Vec<u8> = (0..380u32).map(|i| i as u8).collect();
        // First block at 128, then the client switches to 2:2/0/64.
        let s = serve_block2(&payload, None, 3).unwrap();
        assert_eq!(s.block, Some(BlockOpt::new(0, true, 3)));
        let s = serve_block2(&payload, Some(BlockOpt::new(2, false, 2)), 3).unwrap();
        assert_eq!(s.block, Some(BlockOpt::new(2, true, 2)));
        assert_eq!(s.data, &payload[128..192]);
        // Client asks 1/…/1024 but we serve at most 256: NUM scales to 4.
        let big = vec![1u8; 5000];
        let s = serve_block2(&big, Some(BlockOpt::new(1, false, 6)), 4).unwrap();
        assert_eq!(s.block, Some(BlockOpt::new(4, true, 4)));
        assert_eq!(s.data.len(), 256);
    }

    #[test]
    fn small_payload_without_block_request_is_plain() {
        let s = serve_block2(b"hello", None, MAX_SZX).unwrap();
        assert_eq!(s.block, None);
        assert_eq!(s.data, b"hello");
        // Asked with Block2 (Zephyr pull) → Block2 with M=0 even if small.
        let s = serve_block2(b"hello", Some(BlockOpt::new(0, false, 5)), MAX_SZX).unwrap();
        assert_eq!(s.block, Some(BlockOpt::new(0, false, 5)));
        let s = serve_block2(b"", Some(BlockOpt::new(0, false, 5)), MAX_SZX).unwrap();
        assert_eq!(s.data, b"");
    }

    #[test]
    fn size2_echo_when_requested() {
        // Zephyr's pull client sends Size2 = 0 on every block request.
        let payload = vec![0u8; 2000];
        let mut p = with_block(
            req(RequestType::Get, "fw", 1),
            CoapOption::Block2,
            1,
            false,
            512,
        );
        p.add_option(CoapOption::Size2, Vec::new());
        let r = block2_response(&p, ResponseType::Content, None, &payload, None, MAX_SZX);
        assert_eq!(uint_option(&r, CoapOption::Size2), Some(2000));
        assert_eq!(block_of(&r, CoapOption::Block2), Some((1, true, 512)));
        assert_eq!(r.header.get_type(), MessageType::Acknowledgement);
        assert_eq!(r.header.message_id, 1);
    }

    #[test]
    fn rfc7959_figure6_simple_block1_put() {
        let mut a = Block1Assembler::new(Block1Config::default());
        let t = Instant::now();
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut r0 = with_block(
            req(RequestType::Put, "options", 1234),
            CoapOption::Block1,
            0,
            true,
            128,
        );
        r0.payload = data[..128].to_vec();
        match a.on_request(peer(), &r0, t) {
            Block1Outcome::Continue(resp) => {
                assert_eq!(
                    resp.header.code,
                    MessageClass::Response(ResponseType::Continue)
                );
                assert_eq!(block_of(&resp, CoapOption::Block1), Some((0, true, 128)));
                // ACK, 2.31, MID 1234, token 0xab, Block1 (option 27,
                // delta 14 → ext 1) value 0x0b.
                assert_eq!(
                    resp.to_bytes().unwrap(),
                    [0x61, 0x5f, 0x04, 0xd2, 0xab, 0xd1, 0x0e, 0x0b]
                );
            }
            o => panic!("{o:?}"),
        }
        let mut r1 = with_block(
            req(RequestType::Put, "options", 1235),
            CoapOption::Block1,
            1,
            true,
            128,
        );
        r1.payload = data[128..256].to_vec();
        assert!(matches!(
            a.on_request(peer(), &r1, t),
            Block1Outcome::Continue(_)
        ));
        assert_eq!(a.buffered_bytes(), 256);
        let mut r2 = with_block(
            req(RequestType::Put, "options", 1236),
            CoapOption::Block1,
            2,
            false,
            128,
        );
        r2.payload = data[256..].to_vec();
        match a.on_request(peer(), &r2, t) {
            Block1Outcome::Complete { body, block1 } => {
                assert_eq!(body, data);
                let mut fin = response_for(&r2, ResponseType::Changed);
                finish_block1(&mut fin, block1);
                assert_eq!(block_of(&fin, CoapOption::Block1), Some((2, false, 128)));
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(a.transfers(), 0);
        assert_eq!(a.buffered_bytes(), 0);
    }

    #[test]
    fn rfc7959_figure7_block1_negotiation() {
        // Client starts at 128, we prefer 32: the 2.31 says 0/1/32 and the
        // client goes on at NUM 4 (offset 128) with 32-byte blocks.
        let mut a = Block1Assembler::new(Block1Config {
            max_szx: 1,
            ..Block1Config::default()
        });
        let t = Instant::now();
        let mut r0 = with_block(
            req(RequestType::Put, "options", 1),
            CoapOption::Block1,
            0,
            true,
            128,
        );
        r0.payload = vec![1; 128];
        let Block1Outcome::Continue(resp) = a.on_request(peer(), &r0, t) else {
            panic!()
        };
        assert_eq!(block_of(&resp, CoapOption::Block1), Some((0, true, 32)));
        for (num, more) in [(4, true), (5, true), (6, false)] {
            let mut r = with_block(
                req(RequestType::Put, "options", 2),
                CoapOption::Block1,
                num,
                more,
                32,
            );
            r.payload = vec![num as u8; if more { 32 } else { 10 }];
            let out = a.on_request(peer(), &r, t);
            if more {
                let Block1Outcome::Continue(resp) = out else {
                    panic!()
                };
                assert_eq!(block_of(&resp, CoapOption::Block1), Some((num, true, 32)));
            } else {
                let Block1Outcome::Complete { body, .. } = out else {
                    panic!()
                };
                assert_eq!(body.len(), 128 + 64 + 10);
            }
        }
    }

    #[test]
    fn block1_out_of_order_is_4_08() {
        let mut a = Block1Assembler::new(Block1Config::default());
        let t = Instant::now();
        let mut r0 = with_block(
            req(RequestType::Post, "dp", 1),
            CoapOption::Block1,
            0,
            true,
            64,
        );
        r0.payload = vec![0; 64];
        assert!(matches!(
            a.on_request(peer(), &r0, t),
            Block1Outcome::Continue(_)
        ));
        let mut r2 = with_block(
            req(RequestType::Post, "dp", 2),
            CoapOption::Block1,
            2,
            true,
            64,
        );
        r2.payload = vec![0; 64];
        match a.on_request(peer(), &r2, t) {
            Block1Outcome::Reject { response, .. } => assert_eq!(
                response.header.code,
                MessageClass::Response(ResponseType::RequestEntityIncomplete)
            ),
            o => panic!("{o:?}"),
        }
        assert_eq!(a.transfers(), 0, "transfer dropped");
        // A non-zero block with no transfer at all is also 4.08.
        let mut r1 = with_block(
            req(RequestType::Post, "dp", 3),
            CoapOption::Block1,
            1,
            false,
            64,
        );
        r1.payload = vec![0; 3];
        assert!(matches!(
            a.on_request(peer(), &r1, t),
            Block1Outcome::Reject { response, .. }
                if response.header.code == MessageClass::Response(ResponseType::RequestEntityIncomplete)
        ));
        // Different path, different transfer.
        assert!(matches!(
            a.on_request(peer(), &r0, t),
            Block1Outcome::Continue(_)
        ));
        let mut other = with_block(
            req(RequestType::Post, "rd", 4),
            CoapOption::Block1,
            1,
            false,
            64,
        );
        other.payload = vec![0; 3];
        assert!(matches!(
            a.on_request(peer(), &other, t),
            Block1Outcome::Reject { .. }
        ));
        assert_eq!(a.transfers(), 1);
    }

    #[test]
    fn block1_too_large_is_4_13_with_size1() {
        let mut a = Block1Assembler::new(Block1Config {
            max_body: 256,
            ..Block1Config::default()
        });
        let t = Instant::now();
        // Announced too large via Size1 on block 0.
        let mut r0 = with_block(
            req(RequestType::Put, "5/0/0", 1),
            CoapOption::Block1,
            0,
            true,
            128,
        );
        r0.add_option(CoapOption::Size1, encode_uint(100_000));
        r0.payload = vec![0; 128];
        match a.on_request(peer(), &r0, t) {
            Block1Outcome::Reject { response, refusal } => {
                assert_eq!(
                    response.header.code,
                    MessageClass::Response(ResponseType::RequestEntityTooLarge)
                );
                assert_eq!(uint_option(&response, CoapOption::Size1), Some(256));
                assert_eq!(refusal, Some(Refusal::BodyTooLarge));
            }
            o => panic!("{o:?}"),
        }
        // Growing past the bound without Size1.
        r0.clear_option(CoapOption::Size1);
        for num in 0..2 {
            let mut r = with_block(
                req(RequestType::Put, "5/0/0", 1),
                CoapOption::Block1,
                num,
                true,
                128,
            );
            r.payload = vec![0; 128];
            assert!(matches!(
                a.on_request(peer(), &r, t),
                Block1Outcome::Continue(_)
            ));
        }
        let mut r = with_block(
            req(RequestType::Put, "5/0/0", 1),
            CoapOption::Block1,
            2,
            true,
            128,
        );
        r.payload = vec![0; 128];
        assert!(matches!(
            a.on_request(peer(), &r, t),
            Block1Outcome::Reject { response, .. } if uint_option(&response, CoapOption::Size1) == Some(256)
        ));
        assert_eq!(a.buffered_bytes(), 0);
    }

    #[test]
    fn block1_per_peer_and_total_bounds_and_expiry() {
        let mut a = Block1Assembler::new(Block1Config {
            max_per_peer: 100,
            max_total: 150,
            ..Block1Config::default()
        });
        let t = Instant::now();
        let start = |a: &mut Block1Assembler, p: SocketAddr, path: &str| {
            let mut r = with_block(
                req(RequestType::Post, path, 1),
                CoapOption::Block1,
                0,
                true,
                64,
            );
            r.payload = vec![0; 64];
            a.on_request(p, &r, t)
        };
        assert!(matches!(
            start(&mut a, peer(), "a"),
            Block1Outcome::Continue(_)
        ));
        assert!(matches!(
            start(&mut a, peer(), "b"),
            Block1Outcome::Reject {
                refusal: Some(Refusal::BodyTooLarge),
                ..
            }
        ));
        let p2 = SocketAddr::from(([203, 0, 113, 6], 1));
        let p3 = SocketAddr::from(([203, 0, 113, 7], 1));
        assert!(matches!(start(&mut a, p2, "a"), Block1Outcome::Continue(_)));
        assert!(matches!(
            start(&mut a, p3, "a"),
            Block1Outcome::Reject { response, .. }
                if response.header.code == MessageClass::Response(ResponseType::ServiceUnavailable)
        ));
        assert_eq!(a.transfers(), 2);
        a.expire(t + EXCHANGE_LIFETIME);
        assert_eq!(a.transfers(), 0);
        assert_eq!(a.buffered_bytes(), 0);
    }

    #[test]
    fn block1_wrong_block_size_is_4_00() {
        let mut a = Block1Assembler::new(Block1Config::default());
        let mut r = with_block(
            req(RequestType::Put, "x", 1),
            CoapOption::Block1,
            0,
            true,
            64,
        );
        r.payload = vec![0; 10];
        assert!(matches!(
            a.on_request(peer(), &r, Instant::now()),
            Block1Outcome::Reject { response, .. }
                if response.header.code == MessageClass::Response(ResponseType::BadRequest)
        ));
        let plain = req(RequestType::Put, "x", 2);
        assert_eq!(
            a.on_request(peer(), &plain, Instant::now()),
            Block1Outcome::NotBlockwise
        );
    }

    #[test]
    fn block2_download_follows_blocks_and_checks_etag() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let etag = etag_for(&payload);
        let mut read = req(RequestType::Get, "3/0", 0);
        read.add_option(CoapOption::Observe, encode_uint(0));
        let mut dl = Block2Download::new(read.clone(), 4096);
        // The device answers block 0 at 256 bytes.
        let mut ask = with_block(read.clone(), CoapOption::Block2, 0, false, 256);
        let body = loop {
            let resp = block2_response(
                &ask,
                ResponseType::Content,
                Some(112),
                &payload,
                Some(&etag),
                4,
            );
            match dl.on_response(&resp).unwrap() {
                DownloadStep::Next(next) => {
                    assert!(next
                        .get_option(CoapOption::Observe)
                        .is_none_or(|l| l.is_empty()));
                    assert!(next.get_token().is_empty());
                    assert_eq!(super::super::message::uri_path(&next), "3/0");
                    ask = next;
                }
                DownloadStep::Complete(b) => break b,
            }
        };
        assert_eq!(body, payload);

        // ETag change in the middle aborts.
        let mut dl = Block2Download::new(read.clone(), 4096);
        let r0 = block2_response(
            &with_block(read.clone(), CoapOption::Block2, 0, false, 256),
            ResponseType::Content,
            None,
            &payload,
            Some(b"a"),
            4,
        );
        let DownloadStep::Next(n1) = dl.on_response(&r0).unwrap() else {
            panic!()
        };
        let r1 = block2_response(&n1, ResponseType::Content, None, &payload, Some(b"b"), 4);
        assert_eq!(dl.on_response(&r1), Err(BlockError::EtagChanged));

        // Out of order and too large.
        let mut dl = Block2Download::new(read.clone(), 4096);
        let r2 = block2_response(
            &with_block(read.clone(), CoapOption::Block2, 2, false, 256),
            ResponseType::Content,
            None,
            &payload,
            None,
            4,
        );
        assert!(matches!(
            dl.on_response(&r2),
            Err(BlockError::OutOfOrder {
                expected: 0,
                got: 512
            })
        ));
        let mut dl = Block2Download::new(read.clone(), 300);
        let DownloadStep::Next(n1) = dl.on_response(&r0).unwrap() else {
            panic!()
        };
        let r1 = block2_response(&n1, ResponseType::Content, None, &payload, Some(b"a"), 4);
        assert_eq!(dl.on_response(&r1), Err(BlockError::TooLarge { max: 300 }));

        // A plain response completes at once.
        let mut dl = Block2Download::new(read, 4096);
        let mut plain = Packet::new();
        plain.payload = b"x".to_vec();
        assert_eq!(
            dl.on_response(&plain).unwrap(),
            DownloadStep::Complete(b"x".to_vec())
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn serve_block2_covers_payload(len in 0usize..5000, cli in 0u8..=6, ours in 0u8..=6) {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut got = Vec::new();
                let mut next = Some(BlockOpt::new(0, false, cli));
                while let Some(b) = next {
                    let s = serve_block2(&payload, Some(b), ours).unwrap();
                    let blk = s.block.unwrap();
                    prop_assert!(blk.szx <= cli.min(ours));
                    prop_assert_eq!(blk.offset(), got.len());
                    got.extend_from_slice(s.data);
                    next = blk.more.then(|| BlockOpt::new(blk.num + 1, false, blk.szx));
                }
                prop_assert_eq!(got, payload);
            }

            #[test]
            fn block1_never_panics(
                blocks in proptest::collection::vec((0u32..8, any::<bool>(), 0u8..=7, 0usize..300), 0..20)
            ) {
                let mut a = Block1Assembler::new(Block1Config { max_body: 512, ..Block1Config::default() });
                let t = Instant::now();
                for (num, more, szx, len) in blocks {
                    let mut r = req(RequestType::Put, "x", 1);
                    r.add_option(CoapOption::Block1, encode_uint((num << 4) | (u32::from(more) << 3) | u32::from(szx)));
                    r.payload = vec![0; len];
                    let _ = a.on_request(peer(), &r, t);
                    prop_assert!(a.buffered_bytes() <= 512);
                }
            }
        }
    }
}
