//! Datagrams in batches: on Linux, one `recvmmsg` reads every datagram
//! waiting on the socket (up to a batch) and one `sendmmsg` sends many,
//! where `recv_from` and `send_to` cost a system call each. At full load a
//! notification's receive and its acknowledgement were two of the server's
//! largest costs per report, and the acknowledgements of one commit go out
//! together. Elsewhere the same API falls back to one call per datagram.
//!
//! Each datagram comes with the time the kernel received it
//! (`SO_TIMESTAMPNS`), so that the time from a notification's arrival to
//! its commit counts the wait in the socket's buffer too.
//!
//! Only the socket I/O lives here; what the datagrams mean is `server`'s.
use std::io;
use std::net::SocketAddr;
use std::time::SystemTime;
use tokio::net::UdpSocket;

/// Datagrams read by one `recvmmsg` at most.
pub const RECV_BATCH: usize = 32;
/// Datagrams sent by one `sendmmsg` at most (the kernel's `UIO_MAXIOV`
/// caps a call at 1024).
const SEND_BATCH: usize = 64;

/// Buffers for up to `RECV_BATCH` datagrams of `max_datagram` bytes, and
/// (on Linux) the `recvmmsg` headers that point into them, built once.
pub struct RecvBatch {
    bufs: Vec<u8>,
    max_datagram: usize,
    lens: [usize; RECV_BATCH],
    peers: [Option<SocketAddr>; RECV_BATCH],
    /// When the kernel received each datagram; when it gave no time, when
    /// the call returned.
    arrived: [SystemTime; RECV_BATCH],
    count: usize,
    #[cfg(target_os = "linux")]
    headers: MmsgHeaders,
}

impl RecvBatch {
    pub fn new(max_datagram: usize) -> RecvBatch {
        let mut bufs = vec![0; max_datagram * RECV_BATCH];
        #[cfg(target_os = "linux")]
        let headers = MmsgHeaders::new(&mut bufs, max_datagram);
        RecvBatch {
            bufs,
            max_datagram,
            lens: [0; RECV_BATCH],
            peers: [None; RECV_BATCH],
            arrived: [SystemTime::UNIX_EPOCH; RECV_BATCH],
            count: 0,
            #[cfg(target_os = "linux")]
            headers,
        }
    }

    /// Waits for at least one datagram and reads every one waiting, up to
    /// `RECV_BATCH`; returns how many.
    pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        #[cfg(target_os = "linux")]
        {
            let n = socket
                .async_io(tokio::io::Interest::READABLE, || self.recvmmsg(socket))
                .await?;
            self.count = n;
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (n, peer) = socket
                .recv_from(&mut self.bufs[..self.max_datagram])
                .await?;
            self.lens[0] = n;
            self.peers[0] = Some(peer);
            self.arrived[0] = SystemTime::now();
            self.count = 1;
        }
        Ok(self.count)
    }

    /// The datagrams of the last `recv`, with their senders and arrival
    /// times. A datagram from an address that is neither IPv4 nor IPv6 is
    /// skipped.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr, SystemTime)> + '_ {
        (0..self.count).filter_map(move |i| {
            let start = i * self.max_datagram;
            let peer = self.peers[i]?;
            Some((
                &self.bufs[start..start + self.lens[i]],
                peer,
                self.arrived[i],
            ))
        })
    }

    #[cfg(target_os = "linux")]
    fn recvmmsg(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let h = &mut self.headers;
        for msg in h.msgs.iter_mut() {
            // The kernel wrote the last call's address and ancillary data
            // lengths here.
            msg.msg_hdr.msg_namelen = SOCKADDR_STORAGE_LEN;
            msg.msg_hdr.msg_controllen = CONTROL_LEN as _;
        }
        // SAFETY: every pointer in `msgs` points into `names`, `iovs`,
        // `controls` or `bufs`, heap blocks this struct owns and never
        // reallocates; the lengths are theirs.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                h.msgs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let returned = SystemTime::now();
        for i in 0..n {
            self.lens[i] = h.msgs[i].msg_len as usize;
            self.peers[i] = from_sockaddr(&h.names[i]);
            // SAFETY: the header's control pointer and length are those the
            // kernel just filled in, within `controls[i]`.
            self.arrived[i] = unsafe { kernel_timestamp(&h.msgs[i].msg_hdr) }.unwrap_or(returned);
        }
        Ok(n)
    }
}

/// Asks the kernel to stamp each datagram with the time it received it
/// (`SO_TIMESTAMPNS`, read back by `RecvBatch`). Where that is not
/// available the datagrams carry the time they were read.
pub fn enable_timestamps(socket: &UdpSocket) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// Bytes of ancillary data each datagram has room for: one `timespec`
/// (`SCM_TIMESTAMPNS`), with room to spare for what else the kernel adds.
#[cfg(target_os = "linux")]
const CONTROL_LEN: usize = 64;

/// Ancillary data of one datagram, aligned as `cmsghdr` must be.
#[cfg(target_os = "linux")]
#[repr(C, align(8))]
struct Control([u8; CONTROL_LEN]);

/// The `SCM_TIMESTAMPNS` time among a received message's ancillary data.
///
/// # Safety
/// `hdr.msg_control` and `hdr.msg_controllen` describe ancillary data the
/// kernel wrote (or a length of 0).
#[cfg(target_os = "linux")]
unsafe fn kernel_timestamp(hdr: &libc::msghdr) -> Option<SystemTime> {
    let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
    while !cmsg.is_null() {
        let c = &*cmsg;
        if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_TIMESTAMPNS {
            let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
            let since = std::time::Duration::new(
                u64::try_from(ts.tv_sec).ok()?,
                u32::try_from(ts.tv_nsec).ok()?,
            );
            return SystemTime::UNIX_EPOCH.checked_add(since);
        }
        cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
    }
    None
}

#[cfg(target_os = "linux")]
const SOCKADDR_STORAGE_LEN: libc::socklen_t =
    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// `recvmmsg`'s headers, each pointing at its address slot, its ancillary
/// data slot and, through its iovec, at its slice of `RecvBatch::bufs`.
/// Boxed, so that moving the `RecvBatch` moves none of what the pointers
/// point at.
#[cfg(target_os = "linux")]
struct MmsgHeaders {
    names: Box<[libc::sockaddr_storage; RECV_BATCH]>,
    // `iovs` and `controls` are only reached through the pointers in
    // `msgs`.
    #[allow(dead_code)]
    iovs: Box<[libc::iovec; RECV_BATCH]>,
    #[allow(dead_code)]
    controls: Box<[Control; RECV_BATCH]>,
    msgs: Box<[libc::mmsghdr; RECV_BATCH]>,
}

// SAFETY: the raw pointers in the headers point only into heap blocks the
// owning `RecvBatch` holds, which move with it to whatever thread it goes.
#[cfg(target_os = "linux")]
unsafe impl Send for MmsgHeaders {}

#[cfg(target_os = "linux")]
impl MmsgHeaders {
    fn new(bufs: &mut [u8], max_datagram: usize) -> MmsgHeaders {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: Box<[libc::sockaddr_storage; RECV_BATCH]> =
            Box::new(unsafe { std::mem::zeroed() });
        let mut iovs: Box<[libc::iovec; RECV_BATCH]> = Box::new(unsafe { std::mem::zeroed() });
        let mut msgs: Box<[libc::mmsghdr; RECV_BATCH]> = Box::new(unsafe { std::mem::zeroed() });
        let mut controls: Box<[Control; RECV_BATCH]> =
            Box::new(std::array::from_fn(|_| Control([0; CONTROL_LEN])));
        for (i, slot) in bufs.chunks_exact_mut(max_datagram).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: max_datagram,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = SOCKADDR_STORAGE_LEN;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = controls[i].0.as_mut_ptr().cast();
            hdr.msg_controllen = CONTROL_LEN as _;
        }
        MmsgHeaders {
            names,
            iovs,
            controls,
            msgs,
        }
    }
}

/// The receive buffer the LwM2M socket asks for. The kernel's default
/// (`net.core.rmem_default`, 208 KiB on Debian) holds a few hundred small
/// datagrams, a few milliseconds of traffic at tens of thousands of
/// notifications per second: whenever the socket task waited that long for
/// a core, the kernel dropped what came in (20,660 drops in 12 s of the
/// CoAP benchmark's full load), and each dropped confirmable message cost
/// its device a 2-3 s retransmission timeout. 4 MiB holds a few thousand.
pub const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// Asks for a receive buffer of `bytes` and returns the size the kernel
/// granted. An unprivileged process gets at most `net.core.rmem_max`; a
/// privileged one (CAP_NET_ADMIN) gets `bytes` through `SO_RCVBUFFORCE`.
#[cfg(unix)]
pub fn set_receive_buffer(socket: &UdpSocket, bytes: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |option: libc::c_int| {
        // SAFETY: a valid socket and a c_int of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    #[cfg(target_os = "linux")]
    let forced = set(libc::SO_RCVBUFFORCE) == 0;
    #[cfg(not(target_os = "linux"))]
    let forced = false;
    if !forced && set(libc::SO_RCVBUF) != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut granted: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above, with room for a c_int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut granted as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Linux reports twice what was set (its bookkeeping overhead).
    let granted = granted.max(0) as usize;
    Ok(if cfg!(target_os = "linux") {
        granted / 2
    } else {
        granted
    })
}

#[cfg(not(unix))]
pub fn set_receive_buffer(_socket: &UdpSocket, _bytes: usize) -> io::Result<usize> {
    Err(io::Error::other("not supported on this system"))
}

/// Sends every datagram without waiting: what the socket's buffer cannot
/// take is dropped, as the network may drop it, and the peer retransmits.
/// Returns how many were sent.
pub fn send_batch(socket: &UdpSocket, datagrams: &[(&[u8], SocketAddr)]) -> usize {
    let mut sent = 0;
    let mut rest = datagrams;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(SEND_BATCH)];
        match send_chunk(socket, chunk) {
            Ok(n) => {
                sent += n;
                // A datagram the kernel refused (an unreachable address)
                // is skipped rather than retried.
                rest = &rest[n.max(1)..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                tracing::debug!(error = %e, peer = %rest[0].1, "cannot send a CoAP datagram");
                rest = &rest[1..];
            }
        }
    }
    sent
}

#[cfg(target_os = "linux")]
fn send_chunk(socket: &UdpSocket, chunk: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    if chunk.len() == 1 {
        return socket.try_send_to(chunk[0].0, chunk[0].1).map(|_| 1);
    }
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        chunk.iter().map(|(_, peer)| to_sockaddr(*peer)).collect();
    let mut iovs: Vec<libc::iovec> = chunk
        .iter()
        .map(|(bytes, _)| libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        })
        .collect();
    // SAFETY: all-zero is a valid mmsghdr.
    let mut msgs: Vec<libc::mmsghdr> = (0..chunk.len())
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (i, msg) in msgs.iter_mut().enumerate() {
        msg.msg_hdr.msg_name = (&mut names[i].0 as *mut libc::sockaddr_storage).cast();
        msg.msg_hdr.msg_namelen = names[i].1;
        msg.msg_hdr.msg_iov = &mut iovs[i];
        msg.msg_hdr.msg_iovlen = 1;
    }
    socket.try_io(tokio::io::Interest::WRITABLE, || {
        // SAFETY: the pointers in `msgs` point into `names`, `iovs` and the
        // caller's byte slices, all alive for the call; sendmmsg only reads.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn send_chunk(socket: &UdpSocket, chunk: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
    socket.try_send_to(chunk[0].0, chunk[0].1).map(|_| 1)
}

#[cfg(target_os = "linux")]
fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET, and
            // sockaddr_storage is large and aligned enough for it.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6 for AF_INET6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(target_os = "linux")]
fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough.
            let s = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let s = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_receive_buffer_is_at_least_the_default_and_never_above_the_request() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let granted = set_receive_buffer(&socket, RECEIVE_BUFFER).unwrap();
        // Never less than the kernel's default, never more than asked.
        assert!(granted >= 64 * 1024, "granted {granted}");
        assert!(granted <= RECEIVE_BUFFER, "granted {granted}");
        let small = set_receive_buffer(&socket, 128 * 1024).unwrap();
        assert_eq!(small, 128 * 1024);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn socket_addresses_survive_the_c_form() {
        for addr in [
            "127.0.0.1:5683",
            "10.1.2.3:1",
            "[::1]:5684",
            "[fe80::1%2]:65535",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (storage, _) = to_sockaddr(addr);
            assert_eq!(from_sockaddr(&storage), Some(addr));
        }
    }

    /// Real sockets: a burst sent in one batch arrives whole, in order,
    /// with its sender and the time the kernel received it, and one
    /// receive takes all of it.
    #[tokio::test]
    async fn a_burst_goes_out_and_comes_in_as_batches() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable_timestamps(&server).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 1 + i as usize]).collect();
        let batch: Vec<(&[u8], SocketAddr)> = payloads.iter().map(|p| (p.as_slice(), to)).collect();
        // Sends never wait: a socket the reactor has not seen writable yet
        // takes nothing.
        client.writable().await.unwrap();
        let before = SystemTime::now();
        assert_eq!(send_batch(&client, &batch), 100);
        let sent = SystemTime::now();
        // Loopback delivers within the send; the pause only makes sure
        // that every datagram is queued before the first receive.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;

        let mut recv = RecvBatch::new(2048);
        let mut got = Vec::new();
        let mut calls = 0;
        while got.len() < 100 {
            recv.recv(&server).await.unwrap();
            calls += 1;
            for (bytes, peer, arrived) in recv.datagrams() {
                assert_eq!(peer, client.local_addr().unwrap());
                got.push(bytes.to_vec());
                if cfg!(target_os = "linux") {
                    // Stamped on arrival, within the send, not 100 ms
                    // later when read.
                    assert!(
                        arrived >= before && arrived <= sent,
                        "arrived {arrived:?}, sent between {before:?} and {sent:?}"
                    );
                }
            }
        }
        assert_eq!(got, payloads);
        if cfg!(target_os = "linux") {
            // 100 datagrams already queued: whole batches, not one each.
            assert_eq!(calls, 100usize.div_ceil(RECV_BATCH));
        }
    }
}
