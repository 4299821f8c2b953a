//! Firmware images over CoAP: `GET /fw/<stored_file>` answers with the
//! image block by block (RFC 7959 Block2), for devices whose package URI
//! (5/0/1) is `coap://…/fw/<stored_file>`. The files are the ones
//! `/binaries/<stored_file>` serves over HTTP; only names in the
//! `firmware` table are served.
//!
//! Who may download: with `lwm2m_nosec = "open"` anyone (as anyone may
//! register); otherwise a device whose IP address holds a registration
//! here, whatever its port, since a client may pull from a socket of its
//! own (Zephyr's firmware pull does) and a NAT gives that socket another
//! port. Without DTLS the address is the only identity there is.
//!
//! A GET naming the image's current ETag is answered 2.03 Valid, without
//! the image ([`valid_answer`]: which block requests get it, and why).
//!
//! Blocks of recently served images come from a small cache
//! ([`ImageCache`]); an image too large for it is read block by block from
//! its file, so no request loads a large image whole.
use super::coap::block::{block2_answer, plan_block2, BlockOpt, MAX_SZX};
use super::coap::message::response_for;
use super::server::{lock, Server};
use super::stats::Lwm2mStats;
use crate::server::config::NosecPolicy;
use crate::server::db;
use crate::server::firmware_store;
use coap_lite::{CoapOption, Packet, ResponseType};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The first Uri-Path segment of firmware downloads.
pub const FW_SEGMENT: &str = "fw";
/// application/octet-stream.
const OCTET_STREAM: u16 = 42;
/// Images kept in memory at most.
const CACHE_IMAGES: usize = 4;
/// Larger images are never cached; their blocks are read from the file.
const CACHE_MAX_IMAGE: usize = 8 * 1024 * 1024;

/// The stored file a request names: exactly `/fw/<name>`.
pub fn requested_file(request: &Packet) -> Option<String> {
    let segments = request.get_option(CoapOption::UriPath)?;
    let mut it = segments.iter();
    if it.next()?.as_slice() != FW_SEGMENT.as_bytes() {
        return None;
    }
    let name = it.next()?;
    if it.next().is_some() {
        return None;
    }
    String::from_utf8(name.clone()).ok()
}

/// The ETag of an image: the first 8 bytes of its SHA-256 (RFC 7252
/// allows 1 to 8), the same on every block so a client notices a changed
/// image.
pub fn etag_of(sha256_hex: &str) -> Vec<u8> {
    let bytes: Vec<u8> = (0..16)
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(sha256_hex.get(i..i + 2)?, 16).ok())
        .collect();
    if bytes.len() == 8 {
        bytes
    } else {
        sha256_hex.bytes().take(8).collect()
    }
}

/// The 2.03 Valid answer to a GET that names the image's current ETag,
/// if it is one to answer so (RFC 7252 §5.10.6.2): the ETag echoed, no
/// payload (§5.9.1.3). `block` is the request's Block2 option.
///
/// An ETag in a request says "I hold a response with this entity-tag; is
/// it current?". Which requests get 2.03:
///
/// - no Block2: the device holds the whole image (perhaps reassembled from
///   blocks) under this ETag; 2.03 tells it so without sending it again.
/// - Block2 NUM 0: a device starting a block-wise download of an image it
///   holds: likewise, it need not download at all. The 2.03 carries no
///   payload, hence no block and no Block2 option.
/// - Block2 NUM > 0: a device in the middle of a download. An ETag there
///   pins the representation it started with (some clients send the first
///   block's ETag on every later request); a 2.03 would leave it without
///   the block it asks for and stall the download. RFC 7252 §5.10.6.2
///   lets a server answer 2.05 whatever the ETag ("can issue a 2.03"), so
///   it gets its block, with the ETag on it, which RFC 7959 §2.4 has it
///   compare with the first block's.
///
/// An ETag that is not the current one changes nothing: the block is
/// served with the current ETag.
pub fn valid_answer(request: &Packet, etag: &[u8], block: Option<BlockOpt>) -> Option<Packet> {
    if block.is_some_and(|b| b.num > 0) {
        return None;
    }
    let named = request.get_option(CoapOption::ETag)?;
    if !named.iter().any(|e| e.as_slice() == etag) {
        return None;
    }
    let mut answer = response_for(request, ResponseType::Valid);
    answer.add_option(CoapOption::ETag, etag.to_vec());
    Some(answer)
}

/// Recently served images, least recently used first out.
#[derive(Debug)]
pub struct ImageCache {
    entries: VecDeque<(String, Arc<[u8]>)>,
    max_images: usize,
}

impl ImageCache {
    pub fn new(max_images: usize) -> ImageCache {
        ImageCache {
            entries: VecDeque::new(),
            max_images: max_images.max(1),
        }
    }

    /// The image kept under `key`, now the most recently used.
    pub fn get(&mut self, key: &str) -> Option<Arc<[u8]>> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(i)?;
        let image = entry.1.clone();
        self.entries.push_back(entry);
        Some(image)
    }

    pub fn insert(&mut self, key: String, image: Arc<[u8]>) {
        self.entries.retain(|(k, _)| *k != key);
        if self.entries.len() >= self.max_images {
            self.entries.pop_front();
        }
        self.entries.push_back((key, image));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for ImageCache {
    fn default() -> Self {
        ImageCache::new(CACHE_IMAGES)
    }
}

impl Server {
    /// `GET /fw/<stored_file>`: one block of the image.
    pub(super) async fn serve_firmware(&self, request: &Packet, peer: SocketAddr) -> Packet {
        let Some(name) =
            requested_file(request).filter(|n| firmware_store::is_plausible_stored_name(n))
        else {
            return self.refuse(request, ResponseType::NotFound, "no such firmware", peer);
        };
        if self.state.settings.lwm2m_nosec != NosecPolicy::Open
            && !lock(&self.registry).has_ip(peer.ip())
        {
            return self.refuse(
                request,
                ResponseType::Forbidden,
                "firmware is served to registered devices only; register first",
                peer,
            );
        }
        let block = match BlockOpt::from_packet(request, CoapOption::Block2) {
            Ok(b) => b,
            Err(e) => {
                Lwm2mStats::bump(&self.stats.block_errors);
                return self.refuse(
                    request,
                    ResponseType::BadOption,
                    &format!("Block2: {e}"),
                    peer,
                );
            }
        };
        let row = match db::firmware::find_by_stored_file(&self.state.db.pool, &name).await {
            Ok(Some(row)) => row,
            Ok(None) => {
                return self.refuse(request, ResponseType::NotFound, "no such firmware", peer)
            }
            Err(e) => return self.internal(request, &e),
        };
        let etag = etag_of(&row.sha256);
        if let Some(valid) = valid_answer(request, &etag, block) {
            tracing::debug!(%peer, file = %row.stored_file, "firmware ETag still valid (2.03)");
            return valid;
        }
        let path = self.state.settings.firmware_dir.join(&row.stored_file);
        let key = format!("{}:{}", row.stored_file, row.sha256);
        let size = usize::try_from(row.size_bytes).unwrap_or(usize::MAX);
        let cached = if size <= CACHE_MAX_IMAGE {
            match self.cached_image(&key, &path).await {
                Ok(image) => Some(image),
                Err(e) => return self.internal(request, &e),
            }
        } else {
            None
        };
        let len = cached.as_ref().map_or(size, |i| i.len());
        let (block, range) = match plan_block2(len, block, MAX_SZX) {
            Ok(planned) => planned,
            Err(e) => {
                Lwm2mStats::bump(&self.stats.block_errors);
                return self.refuse(
                    request,
                    ResponseType::BadOption,
                    &format!("Block2: {e} ({len} bytes)"),
                    peer,
                );
            }
        };
        let data = match &cached {
            Some(image) => image[range].to_vec(),
            None => match read_range(&path, range).await {
                Ok(data) => data,
                Err(e) => return self.internal(request, &e),
            },
        };
        Lwm2mStats::bump(&self.stats.firmware_blocks);
        if block.is_none_or(|b| b.num == 0) {
            tracing::info!(%peer, file = %row.stored_file, version = %row.version, "firmware download over CoAP started");
        }
        block2_answer(
            request,
            ResponseType::Content,
            Some(OCTET_STREAM),
            Some(&etag),
            len,
            block,
            &data,
        )
    }

    async fn cached_image(&self, key: &str, path: &std::path::Path) -> std::io::Result<Arc<[u8]>> {
        if let Some(image) = lock(&self.firmware_cache).get(key) {
            return Ok(image);
        }
        let image: Arc<[u8]> = tokio::fs::read(path).await?.into();
        lock(&self.firmware_cache).insert(key.to_string(), image.clone());
        Ok(image)
    }
}

/// Bytes `range` of a file.
async fn read_range(
    path: &std::path::Path,
    range: std::ops::Range<usize>,
) -> std::io::Result<Vec<u8>> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(range.start as u64))
        .await?;
    let mut data = vec![0; range.len()];
    file.read_exact(&mut data).await?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coap_lite::{MessageClass, RequestType};

    fn get(path: &str) -> Packet {
        let mut p = Packet::new();
        p.header.code = MessageClass::Request(RequestType::Get);
        for s in path.split('/').filter(|s| !s.is_empty()) {
            p.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        p
    }

    #[test]
    fn only_fw_and_one_name_is_a_firmware_request() {
        assert_eq!(
            requested_file(&get("/fw/2.0.0-0123456789abcdef.bin")).as_deref(),
            Some("2.0.0-0123456789abcdef.bin")
        );
        assert_eq!(requested_file(&get("/fw")), None);
        assert_eq!(requested_file(&get("/fw/a/b")), None);
        assert_eq!(requested_file(&get("/rd/a")), None);
    }

    #[test]
    fn the_etag_is_the_hash_prefix() {
        let sha = "0123456789abcdef".repeat(4);
        assert_eq!(
            etag_of(&sha),
            vec![0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
        assert_eq!(etag_of("xyz"), b"xyz".to_vec());
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used() {
        let mut c = ImageCache::new(2);
        c.insert("a".into(), Arc::from(&b"1"[..]));
        c.insert("b".into(), Arc::from(&b"2"[..]));
        assert!(c.get("a").is_some());
        c.insert("c".into(), Arc::from(&b"3"[..]));
        assert_eq!(c.len(), 2);
        assert!(c.get("b").is_none(), "the least recently used went");
        assert_eq!(&*c.get("a").unwrap(), b"1");
        c.insert("a".into(), Arc::from(&b"4"[..]));
        assert_eq!(c.len(), 2);
        assert_eq!(&*c.get("a").unwrap(), b"4");
    }

    /// RFC 7252 §5.10.6.2 and §5.9.1.3: a GET naming the current ETag is
    /// answered 2.03 Valid with that ETag and no payload.
    #[test]
    fn a_current_etag_is_answered_2_03_valid() {
        let etag = etag_of(&"0102030405060708".repeat(4));
        let mut req = get("/fw/x.bin");
        req.header.set_type(coap_lite::MessageType::Confirmable);
        req.header.message_id = 0x1234;
        req.set_token(vec![0x71]);
        req.add_option(CoapOption::ETag, etag.clone());
        let answer = valid_answer(&req, &etag, None).expect("2.03");
        // ACK 2.03 (0x43), MID 0x1234, token 0x71, ETag (option 4, 8
        // bytes: 0x48), no payload marker.
        assert_eq!(
            answer.to_bytes().unwrap(),
            [0x61, 0x43, 0x12, 0x34, 0x71, 0x48, 1, 2, 3, 4, 5, 6, 7, 8]
        );

        // One of several ETags the client holds.
        let mut several = get("/fw/x.bin");
        several.add_option(CoapOption::ETag, vec![9, 9]);
        several.add_option(CoapOption::ETag, etag.clone());
        assert!(valid_answer(&several, &etag, None).is_some());
        // A stale ETag, or none: the image is served.
        let mut stale = get("/fw/x.bin");
        stale.add_option(CoapOption::ETag, vec![1, 2, 3]);
        assert_eq!(valid_answer(&stale, &etag, None), None);
        assert_eq!(valid_answer(&get("/fw/x.bin"), &etag, None), None);

        // Block2 NUM 0 (a download about to start): 2.03, without Block2.
        BlockOpt::new(0, false, 5).set_on(&mut req, CoapOption::Block2);
        let block = BlockOpt::from_packet(&req, CoapOption::Block2).unwrap();
        let answer = valid_answer(&req, &etag, block).expect("2.03");
        assert_eq!(
            answer.header.code,
            MessageClass::Response(ResponseType::Valid)
        );
        assert_eq!(answer.get_option(CoapOption::Block2), None);
        assert!(answer.payload.is_empty());
        // Block2 NUM > 0 (a download under way): the block, not 2.03.
        BlockOpt::new(3, false, 5).set_on(&mut req, CoapOption::Block2);
        let block = BlockOpt::from_packet(&req, CoapOption::Block2).unwrap();
        assert_eq!(valid_answer(&req, &etag, block), None);
    }

    /// RFC 7959 §2.4: a firmware image served in the client's block size,
    /// with ETag on every block and Size2 on block 0.
    #[test]
    fn blocks_of_an_image_cover_it() {
        let image: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let etag = etag_of(&"ab".repeat(32));
        let mut got = Vec::new();
        let mut num = 0;
        loop {
            let mut req = get("/fw/x.bin");
            BlockOpt::new(num, false, 2).set_on(&mut req, CoapOption::Block2);
            let (block, range) = plan_block2(
                image.len(),
                BlockOpt::from_packet(&req, CoapOption::Block2).unwrap(),
                MAX_SZX,
            )
            .unwrap();
            let p = block2_answer(
                &req,
                ResponseType::Content,
                Some(OCTET_STREAM),
                Some(&etag),
                image.len(),
                block,
                &image[range],
            );
            assert_eq!(p.get_first_option(CoapOption::ETag), Some(&etag));
            let b = BlockOpt::from_packet(&p, CoapOption::Block2)
                .unwrap()
                .unwrap();
            assert_eq!(b.size(), 64);
            assert_eq!(
                p.get_option(CoapOption::Size2).is_some(),
                num == 0,
                "Size2 on block 0 only (the client did not ask)"
            );
            got.extend_from_slice(&p.payload);
            if !b.more {
                break;
            }
            num += 1;
        }
        assert_eq!(got, image);
        assert_eq!(num, 4);
    }
}
