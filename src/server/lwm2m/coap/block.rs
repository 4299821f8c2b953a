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
//! - [`Block1Upload`]: sending one of our requests whose body is larger
//!   than a block as a sequence of Block1 requests, with the device's
//!   size negotiation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, Packet, ResponseType};

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

/// Block size of our block-wise requests unless the device asks for a
/// smaller one: 1024 bytes, the largest on UDP.
pub const UPLOAD_SZX: u8 = MAX_SZX;

/// Why a block-wise request (Block1, RFC 7959 §2.5) was abandoned: the
/// device's answer to a block is not one the RFC allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("malformed Block1 option in the answer to block {num}")]
    Malformed { num: u32 },
    #[error("the answer acknowledges block {got}, but block {sent} was sent")]
    WrongBlock { sent: u32, got: u32 },
    #[error("2.31 Continue to the last block ({num}): there is nothing more to send")]
    ContinueAfterLast { num: u32 },
    #[error(
        "a success without Block1 to block {num}, which was not the last: \
         the device did not take the body block-wise"
    )]
    NotBlockwise { num: u32 },
}

/// What to do after [`Block1Upload::start`] or an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadStep {
    /// Send this request (a new message id; the transfer's token) and
    /// feed its answer to [`Block1Upload::on_response`].
    Send(Packet),
    /// The request's outcome: the answer to its last block (which may
    /// carry Block2, the first block of a block-wise answer), or the
    /// error that ended the transfer (4.08 Request Entity Incomplete,
    /// 4.13 with no smaller size to try, any other 4.xx or 5.xx).
    Done(Packet),
}

/// The block in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The whole body in one request (it fits one block).
    Plain,
    /// Block `block` of the body; its bytes start at `offset`.
    Block { block: BlockOpt, offset: usize },
}

/// Client side of Block1 (RFC 7959 §2.3, §2.5): our request whose body is
/// larger than one block goes as a sequence of requests, each carrying one
/// block with the request's options, in order.
///
/// - Block 0 is 1024 bytes (`UPLOAD_SZX`) unless configured smaller, and
///   carries Size1, the body's size (§4), so a device that cannot take it
///   can say so (4.13) at once.
/// - A 2.31 Continue whose Block1 has a smaller SZX than ours sets the
///   size of the following blocks (§2.5 "the client SHOULD heed the
///   preference"); the next block number is scaled so that it starts at
///   the offset reached (Figure 7: 0/1/128 answered 0/1/32 goes on at
///   NUM 4). A larger SZX is ignored: we never grow the blocks.
/// - A non-final block answered with another success code that carries
///   Block1 is a device acting on each block (non-atomic, §2.5): the
///   transfer goes on the same way. One answered with a success *without*
///   Block1 leaves unknown what the device took: [`UploadError`].
/// - 4.13 Request Entity Too Large whose Block1 names a smaller SZX is a
///   hint to try that size (§2.9.3): the transfer starts again at block 0
///   in it. A 4.13 to a request sent whole is a hint to try Block1 at all
///   (§2.9.3): it is sent again block-wise, in the size the answer names
///   or else the largest that splits the body. Unless the answer's Size1
///   says the body is too large in any case; and since each retry uses a
///   smaller size, the retries end.
/// - Every other error (4.08 Request Entity Incomplete included: a device
///   that lost blocks or timed out its transfer) is the request's outcome.
///
/// The caller sets the request's token before handing it over: every
/// block goes with it, which RFC 7959 allows and which clients that match
/// the blocks of a transfer by token (Zephyr's LwM2M engine before 3.3)
/// need; its message ids come from the outbound engine as for any
/// request. Options other than Block1 and Size1 go on every block as the
/// request has them (Observe included: a device acts on the request once
/// the body is whole), except Block2, which asks for a block of the
/// *answer* and so goes on the last block only (§2.7, Figure 8).
#[derive(Debug, Clone)]
pub struct Block1Upload {
    template: Packet,
    body: Vec<u8>,
    szx: u8,
    block2: Option<Vec<u8>>,
    sent: Sent,
}

impl Block1Upload {
    /// A transfer of `request` (with its payload as the body) in blocks of
    /// at most 2^(`szx` + 4) bytes.
    pub fn new(mut request: Packet, szx: u8) -> Self {
        let body = std::mem::take(&mut request.payload);
        request.clear_option(CoapOption::Block1);
        request.clear_option(CoapOption::Size1);
        let block2 = request.get_first_option(CoapOption::Block2).cloned();
        request.clear_option(CoapOption::Block2);
        Block1Upload {
            template: request,
            body,
            szx: szx.min(MAX_SZX),
            block2,
            sent: Sent::Plain,
        }
    }

    /// Whether a body of `len` bytes goes block-wise at `szx`.
    pub fn needs_blocks(len: usize, szx: u8) -> bool {
        len > 1usize << (szx.min(MAX_SZX) + 4)
    }

    /// The first request: the whole request if its body fits one block,
    /// else block 0.
    pub fn start(&mut self) -> Packet {
        if Self::needs_blocks(self.body.len(), self.szx) {
            self.block_at(0)
        } else {
            self.sent = Sent::Plain;
            self.whole()
        }
    }

    /// Whether the request in flight is the last one of the transfer
    /// (whose answer is the request's answer, unless it is an error that
    /// makes the transfer start again).
    pub fn is_last(&self) -> bool {
        match self.sent {
            Sent::Plain => true,
            Sent::Block { block, .. } => !block.more,
        }
    }

    /// Whether the body went (or is going) in more than one block.
    pub fn is_blockwise(&self) -> bool {
        matches!(self.sent, Sent::Block { .. })
    }

    /// The current block size in bytes.
    pub fn block_size(&self) -> usize {
        1usize << (self.szx + 4)
    }

    fn whole(&self) -> Packet {
        let mut p = self.template.clone();
        if let Some(b2) = &self.block2 {
            p.add_option(CoapOption::Block2, b2.clone());
        }
        p.payload = self.body.clone();
        p
    }

    /// The block of the current size that starts at `offset` (a multiple
    /// of the block size: sizes only shrink, and all are powers of two).
    fn block_at(&mut self, offset: usize) -> Packet {
        let size = self.block_size();
        let end = (offset + size).min(self.body.len());
        let block = BlockOpt::new((offset / size) as u32, end < self.body.len(), self.szx);
        let mut p = self.template.clone();
        block.set_on(&mut p, CoapOption::Block1);
        if offset == 0 {
            p.add_option(CoapOption::Size1, encode_uint(self.body.len() as u32));
        }
        if !block.more {
            if let Some(b2) = &self.block2 {
                p.add_option(CoapOption::Block2, b2.clone());
            }
        }
        p.payload = self.body[offset..end].to_vec();
        self.sent = Sent::Block { block, offset };
        p
    }

    /// The smaller block size a 4.13 answer makes worth a new attempt, if
    /// any (§2.9.3).
    fn retry_size(&self, answer: &Packet, block1: Option<BlockOpt>) -> Option<u8> {
        if uint_option(answer, CoapOption::Size1).is_some_and(|max| self.body.len() > max as usize)
        {
            return None;
        }
        let current = match self.sent {
            Sent::Plain => MAX_SZX + 1,
            Sent::Block { block, .. } => block.szx,
        };
        let splits = |szx: u8| Self::needs_blocks(self.body.len(), szx);
        match block1 {
            Some(b) if b.szx < current && splits(b.szx) => Some(b.szx),
            Some(_) => None,
            // No size named: only a request sent whole is tried again,
            // in the largest size that splits it.
            None if self.sent == Sent::Plain => (0..=MAX_SZX).rev().find(|&s| splits(s)),
            None => None,
        }
    }

    /// The answer to the request in flight.
    pub fn on_response(&mut self, answer: &Packet) -> Result<UploadStep, UploadError> {
        let num = match self.sent {
            Sent::Plain => 0,
            Sent::Block { block, .. } => block.num,
        };
        let block1 = BlockOpt::from_packet(answer, CoapOption::Block1)
            .map_err(|_| UploadError::Malformed { num })?;
        let code = match answer.header.code {
            MessageClass::Response(code) => code,
            _ => return Ok(UploadStep::Done(answer.clone())),
        };
        if code == ResponseType::RequestEntityTooLarge {
            if let Some(szx) = self.retry_size(answer, block1) {
                self.szx = szx;
                return Ok(UploadStep::Send(self.block_at(0)));
            }
            return Ok(UploadStep::Done(answer.clone()));
        }
        let Sent::Block { block, offset } = self.sent else {
            // The whole request's answer, whatever it is.
            return Ok(UploadStep::Done(answer.clone()));
        };
        if code.is_error() {
            return Ok(UploadStep::Done(answer.clone()));
        }
        if !block.more {
            if code == ResponseType::Continue {
                return Err(UploadError::ContinueAfterLast { num });
            }
            // The final answer; it echoes Block1 (§2.3), which is not
            // insisted on: the body is complete either way.
            return Ok(UploadStep::Done(answer.clone()));
        }
        let ack = match block1 {
            Some(b) => b,
            // 2.31 is unambiguous even without the option.
            None if code == ResponseType::Continue => block,
            None => return Err(UploadError::NotBlockwise { num }),
        };
        // The acknowledged block: its number in our size, or the number
        // of its offset in a smaller size the device asks for.
        let acknowledged =
            ack.num == block.num || (ack.szx < block.szx && ack.offset() == block.offset());
        if !acknowledged {
            return Err(UploadError::WrongBlock {
                sent: block.num,
                got: ack.num,
            });
        }
        self.szx = self.szx.min(ack.szx);
        let next = offset + block.size();
        Ok(UploadStep::Send(self.block_at(next)))
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

    /// The device's answer to block request `to`: `code` with Block1
    /// `num`/`more`/`size`.
    fn block1_answer(to: &Packet, code: ResponseType, block: Option<(u32, bool, usize)>) -> Packet {
        let mut r = response_for(to, code);
        if let Some((num, more, size)) = block {
            BlockOpt::new(num, more, szx_for_size(size).unwrap())
                .set_on(&mut r, CoapOption::Block1);
        }
        r
    }

    fn send(step: Result<UploadStep, UploadError>) -> Packet {
        match step {
            Ok(UploadStep::Send(p)) => p,
            other => panic!("a block to send expected, got {other:?}"),
        }
    }

    #[test]
    fn rfc7959_figure6_upload_sends_the_blocks_in_order() {
        // 300 bytes PUT to /options in 128-byte blocks: 1:0/1/128,
        // 1:1/1/128, 1:2/0/128, each answered 2.31 but the last (2.04).
        let body: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut put = req(RequestType::Put, "options", 1234);
        put.payload = body.clone();
        let mut up = Block1Upload::new(put, 3);
        let b0 = up.start();
        assert!(up.is_blockwise() && !up.is_last());
        // CON PUT, MID 1234, token 0xab; Uri-Path "options" (0xb7);
        // Block1 (27, delta 16: 0xd1 0x03) 0x0b = 0/1/128; Size1 (60,
        // delta 33: 0xd2 0x14) 300 = 0x012c; then the first 128 bytes.
        let mut expected = vec![0x41, 0x03, 0x04, 0xd2, 0xab, 0xb7];
        expected.extend_from_slice(b"options");
        expected.extend_from_slice(&[0xd1, 0x03, 0x0b, 0xd2, 0x14, 0x01, 0x2c, 0xff]);
        expected.extend_from_slice(&body[..128]);
        assert_eq!(b0.to_bytes().unwrap(), expected);

        let b1 = send(up.on_response(&block1_answer(
            &b0,
            ResponseType::Continue,
            Some((0, true, 128)),
        )));
        assert_eq!(block_of(&b1, CoapOption::Block1), Some((1, true, 128)));
        assert_eq!(b1.get_option(CoapOption::Size1), None, "Size1 on block 0");
        assert_eq!(b1.payload, &body[128..256]);
        assert_eq!(b1.get_token(), b0.get_token(), "one token per transfer");
        let b2 = send(up.on_response(&block1_answer(
            &b1,
            ResponseType::Continue,
            Some((1, true, 128)),
        )));
        assert_eq!(block_of(&b2, CoapOption::Block1), Some((2, false, 128)));
        assert_eq!(b2.payload, &body[256..]);
        assert!(up.is_last());
        let fin = block1_answer(&b2, ResponseType::Changed, Some((2, false, 128)));
        assert_eq!(up.on_response(&fin), Ok(UploadStep::Done(fin)));

        // A body that fits one block goes whole, without Block1.
        let mut small = req(RequestType::Put, "options", 1);
        small.payload = vec![1; 128];
        let mut up = Block1Upload::new(small.clone(), 3);
        assert_eq!(up.start(), small);
        assert!(!up.is_blockwise() && up.is_last());
        let answer = response_for(&small, ResponseType::Changed);
        assert_eq!(up.on_response(&answer), Ok(UploadStep::Done(answer)));
    }

    #[test]
    fn rfc7959_figure7_upload_takes_the_smaller_size_the_device_asks_for() {
        // 1:0/1/128 answered 2.31 1:0/1/32: on at NUM 4 (offset 128) in
        // 32-byte blocks, 1:4/1/32, 1:5/1/32, 1:6/0/32.
        let body: Vec<u8> = (0..202u32).map(|i| i as u8).collect();
        let mut put = req(RequestType::Put, "options", 1234);
        put.payload = body.clone();
        let mut up = Block1Upload::new(put, 3);
        let b0 = up.start();
        let mut next = send(up.on_response(&block1_answer(
            &b0,
            ResponseType::Continue,
            Some((0, true, 32)),
        )));
        let mut got = b0.payload.clone();
        for (num, more) in [(4, true), (5, true), (6, false)] {
            assert_eq!(block_of(&next, CoapOption::Block1), Some((num, more, 32)));
            got.extend_from_slice(&next.payload);
            if more {
                next = send(up.on_response(&block1_answer(
                    &next,
                    ResponseType::Continue,
                    Some((num, true, 32)),
                )));
            }
        }
        assert_eq!(got, body);
        // A device asking for larger blocks later is not followed.
        let mut put = req(RequestType::Put, "options", 1);
        put.payload = vec![0; 200];
        let mut up = Block1Upload::new(put, 2);
        let b0 = up.start();
        let b1 = send(up.on_response(&block1_answer(
            &b0,
            ResponseType::Continue,
            Some((0, true, 1024)),
        )));
        assert_eq!(block_of(&b1, CoapOption::Block1), Some((1, true, 64)));
        // A non-atomic device answers each block 2.04 with Block1 (§2.5):
        // the transfer goes on.
        let b2 = send(up.on_response(&block1_answer(
            &b1,
            ResponseType::Changed,
            Some((1, false, 64)),
        )));
        assert_eq!(block_of(&b2, CoapOption::Block1), Some((2, true, 64)));
    }

    #[test]
    fn rfc7959_figure8_the_last_blocks_answer_may_be_block_wise() {
        // POST /soap of 300 bytes in 128-byte blocks; the answer to the
        // last block is 2.04 with 2:0/1/128 and 1:2/0/128, and its further
        // blocks are asked for with 2:1/0/128 and no payload.
        let body = vec![7u8; 300];
        let mut post = req(RequestType::Post, "soap", 1234);
        post.payload = body;
        // Early negotiation of the answer's block size (§2.7): Block2
        // goes on the last block only.
        BlockOpt::new(0, false, 3).set_on(&mut post, CoapOption::Block2);
        let mut up = Block1Upload::new(post.clone(), 3);
        let mut p = up.start();
        let mut num = 0;
        while !up.is_last() {
            assert_eq!(p.get_first_option(CoapOption::Block2), None);
            p = send(up.on_response(&block1_answer(
                &p,
                ResponseType::Continue,
                Some((num, true, 128)),
            )));
            num += 1;
        }
        assert_eq!(block_of(&p, CoapOption::Block2), Some((0, false, 128)));
        let answer: Vec<u8> = (0..300u32).map(|i| (i * 3) as u8).collect();
        let mut fin = block2_response(&p, ResponseType::Changed, None, &answer, None, 3);
        finish_block1(&mut fin, BlockOpt::new(2, false, 3));
        let Ok(UploadStep::Done(first)) = up.on_response(&fin) else {
            panic!()
        };
        assert_eq!(block_of(&first, CoapOption::Block2), Some((0, true, 128)));
        // The rest, as the downlink asks for it: the request without its
        // body (and without Block1).
        let mut template = post.clone();
        template.payload.clear();
        let mut dl = Block2Download::new(template, 4096);
        let DownloadStep::Next(n1) = dl.on_response(&first).unwrap() else {
            panic!()
        };
        assert_eq!(n1.header.code, MessageClass::Request(RequestType::Post));
        assert_eq!(block_of(&n1, CoapOption::Block2), Some((1, false, 128)));
        assert_eq!(n1.get_first_option(CoapOption::Block1), None);
        assert!(n1.payload.is_empty());
    }

    #[test]
    fn upload_4_13_tries_a_smaller_size_or_ends() {
        let mut post = req(RequestType::Post, "5/0/0", 1);
        post.payload = vec![1; 600];
        // A request sent whole, answered 4.13 with Block1 0/0/64: again
        // block-wise in 64 (§2.9.3).
        let mut up = Block1Upload::new(post.clone(), MAX_SZX);
        let whole = up.start();
        assert_eq!(whole.get_option(CoapOption::Block1), None);
        let b0 = send(up.on_response(&block1_answer(
            &whole,
            ResponseType::RequestEntityTooLarge,
            Some((0, false, 64)),
        )));
        assert_eq!(block_of(&b0, CoapOption::Block1), Some((0, true, 64)));
        assert_eq!(uint_option(&b0, CoapOption::Size1), Some(600));
        // 4.13 to block 0 naming 32: start again at block 0 in 32.
        let again = send(up.on_response(&block1_answer(
            &b0,
            ResponseType::RequestEntityTooLarge,
            Some((0, false, 32)),
        )));
        assert_eq!(block_of(&again, CoapOption::Block1), Some((0, true, 32)));
        // 4.13 naming no smaller size: the outcome.
        let no = block1_answer(
            &again,
            ResponseType::RequestEntityTooLarge,
            Some((0, false, 64)),
        );
        assert_eq!(up.on_response(&no), Ok(UploadStep::Done(no)));

        // 4.13 without Block1 to the whole request: the largest size that
        // splits the body (512).
        let mut up = Block1Upload::new(post.clone(), MAX_SZX);
        let whole = up.start();
        let b0 = send(up.on_response(&block1_answer(
            &whole,
            ResponseType::RequestEntityTooLarge,
            None,
        )));
        assert_eq!(block_of(&b0, CoapOption::Block1), Some((0, true, 512)));
        // … but not to a block.
        let no = block1_answer(&b0, ResponseType::RequestEntityTooLarge, None);
        assert_eq!(up.on_response(&no), Ok(UploadStep::Done(no)));

        // Size1 below the body: no size helps.
        let mut up = Block1Upload::new(post, MAX_SZX);
        let whole = up.start();
        let mut no = block1_answer(
            &whole,
            ResponseType::RequestEntityTooLarge,
            Some((0, false, 64)),
        );
        no.add_option(CoapOption::Size1, encode_uint(500));
        assert_eq!(up.on_response(&no), Ok(UploadStep::Done(no)));
    }

    #[test]
    fn upload_errors_end_the_transfer_and_violations_are_named() {
        let mut put = req(RequestType::Put, "5/0/0", 1);
        put.payload = vec![1; 300];
        let start = || {
            let mut up = Block1Upload::new(put.clone(), 3);
            let b0 = up.start();
            (up, b0)
        };
        // 4.08 Request Entity Incomplete, or any error: the outcome.
        for code in [
            ResponseType::RequestEntityIncomplete,
            ResponseType::NotFound,
            ResponseType::InternalServerError,
        ] {
            let (mut up, b0) = start();
            let b1 = send(up.on_response(&block1_answer(
                &b0,
                ResponseType::Continue,
                Some((0, true, 128)),
            )));
            let e = response_for(&b1, code);
            assert_eq!(up.on_response(&e), Ok(UploadStep::Done(e)));
        }
        let (mut up, b0) = start();
        assert_eq!(
            up.on_response(&block1_answer(&b0, ResponseType::Changed, None)),
            Err(UploadError::NotBlockwise { num: 0 })
        );
        let (mut up, b0) = start();
        assert_eq!(
            up.on_response(&block1_answer(
                &b0,
                ResponseType::Continue,
                Some((3, true, 128))
            )),
            Err(UploadError::WrongBlock { sent: 0, got: 3 })
        );
        let (mut up, b0) = start();
        let mut bad = response_for(&b0, ResponseType::Continue);
        bad.add_option(CoapOption::Block1, vec![0x0f]);
        assert_eq!(up.on_response(&bad), Err(UploadError::Malformed { num: 0 }));
        // 2.31 without Block1 acknowledges the block in flight.
        let (mut up, b0) = start();
        let b1 = send(up.on_response(&response_for(&b0, ResponseType::Continue)));
        let b2 = send(up.on_response(&response_for(&b1, ResponseType::Continue)));
        assert!(up.is_last());
        assert_eq!(
            up.on_response(&response_for(&b2, ResponseType::Continue)),
            Err(UploadError::ContinueAfterLast { num: 2 })
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
            fn upload_through_the_assembler_delivers_the_body(
                len in 0usize..6000,
                ours in 0u8..=6,
                theirs in 0u8..=6,
            ) {
                let body: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
                let mut device = Block1Assembler::new(Block1Config {
                    max_szx: theirs,
                    ..Block1Config::default()
                });
                let mut put = req(RequestType::Put, "5/0/0", 1);
                put.payload = body.clone();
                let mut up = Block1Upload::new(put, ours);
                let mut message = up.start();
                let t = Instant::now();
                for _ in 0..10_000 {
                    let answer = match device.on_request(peer(), &message, t) {
                        Block1Outcome::NotBlockwise => {
                            prop_assert_eq!(&message.payload, &body);
                            response_for(&message, ResponseType::Changed)
                        }
                        Block1Outcome::Continue(r) => r,
                        Block1Outcome::Complete { body: got, block1 } => {
                            prop_assert_eq!(&got, &body);
                            let mut r = response_for(&message, ResponseType::Changed);
                            finish_block1(&mut r, block1);
                            r
                        }
                        Block1Outcome::Reject { response, .. } => {
                            return Err(TestCaseError::fail(format!("{:?}", response.header.code)));
                        }
                    };
                    match up.on_response(&answer).unwrap() {
                        UploadStep::Send(next) => {
                            // After block 0 the device's size (or ours, if
                            // smaller) is used.
                            prop_assert!(next.payload.len() <= 1usize << (ours.min(theirs) + 4));
                            message = next;
                        }
                        UploadStep::Done(fin) => {
                            prop_assert_eq!(fin.header.code, MessageClass::Response(ResponseType::Changed));
                            prop_assert_eq!(device.buffered_bytes(), 0);
                            return Ok(());
                        }
                    }
                }
                prop_assert!(false, "the upload did not end");
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
