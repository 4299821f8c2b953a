//! The native LwM2M server's registrations in memory: what answers a
//! device's Update, De-register and Send, and the bounds that keep one
//! source address (or a flood of spoofed ones) from filling the table.
//! Pure: times are passed in.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Seconds a registration outlives its lifetime: an Update sent at the
/// last moment over a slow link still finds it.
pub const EXPIRY_GRACE_S: i64 = 30;

/// One registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The registration id, the last segment of its location `/rd/<id>`.
    pub id: String,
    pub endpoint: String,
    /// Where the device's requests come from, and where ours go.
    pub address: SocketAddr,
    pub lwm2m_version: String,
    /// The binding as registered (`b`), e.g. "U".
    pub binding: String,
    /// Queue mode: `b=UQ` (LwM2M 1.0) or the `Q` parameter (1.1).
    pub queue_mode: bool,
    pub lifetime_s: i64,
    /// The object list in CoRE link format, as registered or last updated.
    pub object_links: String,
    /// Prefix of every request to the client (its alternate path, e.g.
    /// "/lwm2m"); empty for the default root.
    pub root_path: String,
    /// Content formats the client announced on its root link (`ct`).
    pub content_formats: Vec<u16>,
    pub registered_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Registration {
    /// When the registration ends unless updated (ms since the epoch).
    pub fn expires_at_ms(&self) -> i64 {
        self.updated_at_ms
            .saturating_add(self.lifetime_s.saturating_mul(1000))
    }

    fn expired(&self, now_ms: i64) -> bool {
        now_ms > self.expires_at_ms().saturating_add(EXPIRY_GRACE_S * 1000)
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryFull {
    /// The source address holds `lwm2m_max_registrations_per_ip` already.
    PerAddress,
    /// The server holds `lwm2m_max_registrations` already.
    Total,
}

impl RegistryFull {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryFull::PerAddress => "lwm2m_max_registrations_per_ip",
            RegistryFull::Total => "lwm2m_max_registrations",
        }
    }
}

/// What an Update changes; absent fields keep their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateChanges {
    pub lifetime_s: Option<i64>,
    pub binding: Option<String>,
    pub queue_mode: Option<bool>,
    pub object_links: Option<String>,
    pub root_path: Option<String>,
    pub content_formats: Option<Vec<u16>>,
}

/// The registrations, by id, by endpoint name and by address.
#[derive(Debug)]
pub struct Registry {
    by_id: HashMap<String, Registration>,
    by_endpoint: HashMap<String, String>,
    by_address: HashMap<SocketAddr, String>,
    per_ip: HashMap<IpAddr, usize>,
    max_per_ip: usize,
    max_total: usize,
}

impl Registry {
    pub fn new(max_per_ip: usize, max_total: usize) -> Registry {
        Registry {
            by_id: HashMap::new(),
            by_endpoint: HashMap::new(),
            by_address: HashMap::new(),
            per_ip: HashMap::new(),
            max_per_ip: max_per_ip.max(1),
            max_total: max_total.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `registration` would be refused for a bound. A Register of
    /// an endpoint that is registered replaces its registration, so it
    /// takes no new place (unless it comes from another address).
    pub fn check(&self, endpoint: &str, address: SocketAddr) -> Result<(), RegistryFull> {
        let replaced = self
            .by_endpoint
            .get(endpoint)
            .and_then(|id| self.by_id.get(id));
        let same_ip = replaced.is_some_and(|r| r.address.ip() == address.ip());
        if replaced.is_none() && self.by_id.len() >= self.max_total {
            return Err(RegistryFull::Total);
        }
        let at_ip = self.per_ip.get(&address.ip()).copied().unwrap_or(0);
        if !same_ip && at_ip >= self.max_per_ip {
            return Err(RegistryFull::PerAddress);
        }
        Ok(())
    }

    /// Adds a registration, replacing the endpoint's earlier one (returned)
    /// and whatever registration held the same address before.
    pub fn register(
        &mut self,
        registration: Registration,
    ) -> Result<Option<Registration>, RegistryFull> {
        self.check(&registration.endpoint, registration.address)?;
        let replaced = self
            .by_endpoint
            .get(&registration.endpoint)
            .cloned()
            .and_then(|id| self.remove(&id));
        // One address is one client: a device that registers under a new
        // name from the address of an old registration (a reflashed device
        // behind the same NAT mapping) replaces it as far as the address
        // goes; the old one keeps its name until it expires.
        self.by_address.remove(&registration.address);
        *self.per_ip.entry(registration.address.ip()).or_insert(0) += 1;
        self.by_endpoint
            .insert(registration.endpoint.clone(), registration.id.clone());
        self.by_address
            .insert(registration.address, registration.id.clone());
        self.by_id.insert(registration.id.clone(), registration);
        Ok(replaced)
    }

    pub fn get(&self, id: &str) -> Option<&Registration> {
        self.by_id.get(id)
    }

    pub fn by_endpoint(&self, endpoint: &str) -> Option<&Registration> {
        self.by_endpoint
            .get(endpoint)
            .and_then(|id| self.by_id.get(id))
    }

    /// Whether any registration comes from this IP address (whatever the
    /// port).
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        self.per_ip.get(&ip).is_some_and(|n| *n > 0)
    }

    /// The registration whose device sends from `address`.
    pub fn by_address(&self, address: SocketAddr) -> Option<&Registration> {
        self.by_address
            .get(&address)
            .and_then(|id| self.by_id.get(id))
    }

    /// Applies an Update from `address` at `now_ms`; the registration after
    /// it, or None for an unknown id. A device whose address changed (NAT
    /// rebinding) is reached at its new one from now on.
    pub fn update(
        &mut self,
        id: &str,
        address: SocketAddr,
        changes: UpdateChanges,
        now_ms: i64,
    ) -> Option<Registration> {
        let old_address = self.by_id.get(id)?.address;
        if old_address != address {
            if self.by_address.get(&old_address).map(String::as_str) == Some(id) {
                self.by_address.remove(&old_address);
            }
            self.release_ip(old_address.ip());
            *self.per_ip.entry(address.ip()).or_insert(0) += 1;
            self.by_address.insert(address, id.to_string());
        }
        let r = self.by_id.get_mut(id)?;
        r.address = address;
        r.updated_at_ms = now_ms;
        if let Some(l) = changes.lifetime_s {
            r.lifetime_s = l;
        }
        if let Some(b) = changes.binding {
            r.binding = b;
        }
        if let Some(q) = changes.queue_mode {
            r.queue_mode = q;
        }
        if let Some(o) = changes.object_links {
            r.object_links = o;
        }
        if let Some(p) = changes.root_path {
            r.root_path = p;
        }
        if let Some(c) = changes.content_formats {
            r.content_formats = c;
        }
        Some(r.clone())
    }

    /// Removes a registration (De-register, expiry).
    pub fn remove(&mut self, id: &str) -> Option<Registration> {
        let r = self.by_id.remove(id)?;
        if self.by_endpoint.get(&r.endpoint).map(String::as_str) == Some(id) {
            self.by_endpoint.remove(&r.endpoint);
        }
        if self.by_address.get(&r.address).map(String::as_str) == Some(id) {
            self.by_address.remove(&r.address);
        }
        self.release_ip(r.address.ip());
        Some(r)
    }

    /// Removes and returns the registrations whose lifetime (and grace)
    /// ran out by `now_ms`.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Registration> {
        let ids: Vec<String> = self
            .by_id
            .values()
            .filter(|r| r.expired(now_ms))
            .map(|r| r.id.clone())
            .collect();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(id: &str, endpoint: &str, address: &str, now: i64) -> Registration {
        Registration {
            id: id.into(),
            endpoint: endpoint.into(),
            address: address.parse().unwrap(),
            lwm2m_version: "1.1".into(),
            binding: "U".into(),
            queue_mode: false,
            lifetime_s: 60,
            object_links: "</3/0>".into(),
            root_path: String::new(),
            content_formats: vec![],
            registered_at_ms: now,
            updated_at_ms: now,
        }
    }

    #[test]
    fn a_new_register_of_an_endpoint_replaces_its_registration() {
        let mut r = Registry::new(10, 10);
        assert_eq!(r.register(reg("a", "dev", "10.0.0.1:5683", 0)), Ok(None));
        let replaced = r.register(reg("b", "dev", "10.0.0.1:5684", 1)).unwrap();
        assert_eq!(replaced.unwrap().id, "a");
        assert_eq!(r.len(), 1);
        assert!(r.get("a").is_none());
        assert_eq!(r.by_endpoint("dev").unwrap().id, "b");
        assert!(r.by_address("10.0.0.1:5683".parse().unwrap()).is_none());
        assert_eq!(
            r.by_address("10.0.0.1:5684".parse().unwrap()).unwrap().id,
            "b"
        );
    }

    #[test]
    fn per_address_and_total_bounds_refuse_new_registrations_only() {
        let mut r = Registry::new(2, 3);
        r.register(reg("a", "d1", "10.0.0.1:1", 0)).unwrap();
        r.register(reg("b", "d2", "10.0.0.1:2", 0)).unwrap();
        assert_eq!(
            r.register(reg("c", "d3", "10.0.0.1:3", 0)),
            Err(RegistryFull::PerAddress)
        );
        // Re-registering a registered endpoint from its address is allowed.
        assert!(r.register(reg("c", "d2", "10.0.0.1:4", 0)).is_ok());
        r.register(reg("d", "d4", "10.0.0.2:1", 0)).unwrap();
        assert_eq!(
            r.register(reg("e", "d5", "10.0.0.3:1", 0)),
            Err(RegistryFull::Total)
        );
        // A removal frees the places.
        r.remove("a").unwrap();
        assert!(r.register(reg("e", "d5", "10.0.0.1:9", 0)).is_ok());
    }

    #[test]
    fn an_update_moves_the_address_and_keeps_what_it_does_not_change() {
        let mut r = Registry::new(1, 10);
        r.register(reg("a", "dev", "10.0.0.1:1", 0)).unwrap();
        let after = r
            .update(
                "a",
                "10.0.0.2:7".parse().unwrap(),
                UpdateChanges {
                    lifetime_s: Some(300),
                    ..Default::default()
                },
                5_000,
            )
            .unwrap();
        assert_eq!(after.lifetime_s, 300);
        assert_eq!(after.binding, "U");
        assert_eq!(after.object_links, "</3/0>");
        assert_eq!(after.expires_at_ms(), 305_000);
        assert!(r.by_address("10.0.0.1:1".parse().unwrap()).is_none());
        // The old address's place is free again.
        assert!(r.register(reg("b", "other", "10.0.0.1:2", 0)).is_ok());
        assert!(r
            .update("nope", "10.0.0.2:7".parse().unwrap(), Default::default(), 0)
            .is_none());
    }

    #[test]
    fn registrations_expire_after_their_lifetime_and_the_grace() {
        let mut r = Registry::new(10, 10);
        r.register(reg("a", "d1", "10.0.0.1:1", 0)).unwrap();
        r.register(reg("b", "d2", "10.0.0.1:2", 50_000)).unwrap();
        assert!(r.expire(60_000 + EXPIRY_GRACE_S * 1000).is_empty());
        let gone = r.expire(60_001 + EXPIRY_GRACE_S * 1000);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, "a");
        assert_eq!(r.len(), 1);
        assert!(r.by_endpoint("d1").is_none());
    }
}
