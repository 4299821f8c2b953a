//! Resource limits and the reasons a message or request was refused.
//!
//! Every refusal anywhere in the core is a [`Refusal`], so the socket task
//! can log it and bump one counter per variant ([`RefusalCounters`]).
//! [`Limits`] tracks the counters that span modules: registrations per
//! source address and the number of known peers. Per-peer transaction and
//! queue bounds live in `Outbound` (NSTART = 1 makes "open transactions per
//! peer" equal to one by construction); [`Limits::check_open_transactions`]
//! is for inbound requests still being processed per peer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Too many inbound requests of one peer being processed at once.
    TooManyOpenTransactions,
    /// The per-peer queue of our requests is full.
    QueueFull,
    /// Too many registrations from one source IP address.
    TooManyRegistrationsFromAddress,
    /// Too many distinct peers known.
    TooManyPeers,
    /// Too many observations (per peer or in total).
    TooManyObservations,
    /// A caller-chosen token is already in use with that peer.
    TokenInUse,
    /// A Block1 body exceeds the per-transfer, per-peer or total bound.
    BodyTooLarge,
    /// Too many concurrent Block1 transfers.
    TooManyTransfers,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Refusal::TooManyOpenTransactions,
        Refusal::QueueFull,
        Refusal::TooManyRegistrationsFromAddress,
        Refusal::TooManyPeers,
        Refusal::TooManyObservations,
        Refusal::TokenInUse,
        Refusal::BodyTooLarge,
        Refusal::TooManyTransfers,
    ];

    /// Stable name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::TooManyOpenTransactions => "too_many_open_transactions",
            Refusal::QueueFull => "queue_full",
            Refusal::TooManyRegistrationsFromAddress => "too_many_registrations_from_address",
            Refusal::TooManyPeers => "too_many_peers",
            Refusal::TooManyObservations => "too_many_observations",
            Refusal::TokenInUse => "token_in_use",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::TooManyTransfers => "too_many_transfers",
        }
    }

    fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// One counter per refusal reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusalCounters([u64; 8]);

impl RefusalCounters {
    pub fn record(&mut self, r: Refusal) {
        self.0[r.index()] += 1;
    }

    pub fn get(&self, r: Refusal) -> u64 {
        self.0[r.index()]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    /// Inbound requests of one peer being processed concurrently.
    pub max_open_transactions_per_peer: u32,
    /// Registrations sharing one source IP. NAT gateways put many devices
    /// behind one address, so this is generous; it only stops one host
    /// from registering endless endpoint names.
    pub max_registrations_per_address: u32,
    pub max_peers: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_open_transactions_per_peer: 8,
            max_registrations_per_address: 1_000,
            max_peers: 100_000,
        }
    }
}

#[derive(Debug, Default)]
pub struct Limits {
    cfg: LimitsConfig,
    open: HashMap<SocketAddr, u32>,
    registrations: HashMap<IpAddr, u32>,
    peers: HashMap<SocketAddr, u32>,
    pub refusals: RefusalCounters,
}

impl Limits {
    pub fn new(cfg: LimitsConfig) -> Self {
        Limits {
            cfg,
            ..Limits::default()
        }
    }

    fn refuse(&mut self, r: Refusal) -> Result<(), Refusal> {
        self.refusals.record(r);
        Err(r)
    }

    /// Before processing an inbound request: counts it as open.
    pub fn check_open_transactions(&mut self, peer: SocketAddr) -> Result<(), Refusal> {
        let n = self.open.get(&peer).copied().unwrap_or(0);
        if n >= self.cfg.max_open_transactions_per_peer {
            return self.refuse(Refusal::TooManyOpenTransactions);
        }
        self.open.insert(peer, n + 1);
        Ok(())
    }

    /// After answering an inbound request.
    pub fn close_transaction(&mut self, peer: SocketAddr) {
        if let Some(n) = self.open.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&peer);
            }
        }
    }

    /// Before creating a registration from `addr`.
    pub fn acquire_registration(&mut self, addr: IpAddr) -> Result<(), Refusal> {
        let n = self.registrations.get(&addr).copied().unwrap_or(0);
        if n >= self.cfg.max_registrations_per_address {
            return self.refuse(Refusal::TooManyRegistrationsFromAddress);
        }
        self.registrations.insert(addr, n + 1);
        Ok(())
    }

    /// When a registration from `addr` ends or moves to another address.
    pub fn release_registration(&mut self, addr: IpAddr) {
        if let Some(n) = self.registrations.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.registrations.remove(&addr);
            }
        }
    }

    /// Takes a reference on a peer (a registration, a transfer, …); the
    /// first reference of a new peer is refused when the table is full.
    pub fn acquire_peer(&mut self, peer: SocketAddr) -> Result<(), Refusal> {
        if let Some(n) = self.peers.get_mut(&peer) {
            *n += 1;
            return Ok(());
        }
        if self.peers.len() >= self.cfg.max_peers {
            return self.refuse(Refusal::TooManyPeers);
        }
        self.peers.insert(peer, 1);
        Ok(())
    }

    pub fn release_peer(&mut self, peer: SocketAddr) {
        if let Some(n) = self.peers.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.peers.remove(&peer);
            }
        }
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, last], port))
    }

    #[test]
    fn open_transactions() {
        let mut l = Limits::new(LimitsConfig {
            max_open_transactions_per_peer: 2,
            ..LimitsConfig::default()
        });
        assert!(l.check_open_transactions(addr(1, 1)).is_ok());
        assert!(l.check_open_transactions(addr(1, 1)).is_ok());
        assert_eq!(
            l.check_open_transactions(addr(1, 1)),
            Err(Refusal::TooManyOpenTransactions)
        );
        assert!(l.check_open_transactions(addr(1, 2)).is_ok());
        l.close_transaction(addr(1, 1));
        assert!(l.check_open_transactions(addr(1, 1)).is_ok());
        assert_eq!(l.refusals.get(Refusal::TooManyOpenTransactions), 1);
    }

    #[test]
    fn registrations_per_address_ignore_port() {
        let mut l = Limits::new(LimitsConfig {
            max_registrations_per_address: 2,
            ..LimitsConfig::default()
        });
        let ip = addr(1, 1).ip();
        assert!(l.acquire_registration(ip).is_ok());
        assert!(l.acquire_registration(ip).is_ok());
        assert_eq!(
            l.acquire_registration(ip),
            Err(Refusal::TooManyRegistrationsFromAddress)
        );
        assert!(l.acquire_registration(addr(2, 1).ip()).is_ok());
        l.release_registration(ip);
        assert!(l.acquire_registration(ip).is_ok());
    }

    #[test]
    fn peers_refcounted() {
        let mut l = Limits::new(LimitsConfig {
            max_peers: 1,
            ..LimitsConfig::default()
        });
        assert!(l.acquire_peer(addr(1, 1)).is_ok());
        assert!(l.acquire_peer(addr(1, 1)).is_ok());
        assert_eq!(l.acquire_peer(addr(1, 2)), Err(Refusal::TooManyPeers));
        l.release_peer(addr(1, 1));
        assert_eq!(l.peer_count(), 1);
        l.release_peer(addr(1, 1));
        assert_eq!(l.peer_count(), 0);
        assert!(l.acquire_peer(addr(1, 2)).is_ok());
        let counts: Vec<_> = l.refusals.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(counts, vec![(Refusal::TooManyPeers, 1)]);
        assert_eq!(Refusal::TooManyPeers.as_str(), "too_many_peers");
    }
}
