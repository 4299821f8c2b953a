//! Slows down password guessing: after a few failed sign-ins for one
//! username, or from one source address, the next attempt waits, the wait
//! doubling with each further failure up to a cap. Nobody is locked out for
//! good: the wait never exceeds the cap, a success clears the username's
//! count, and a quiet period clears any count.
//!
//! Both tables live in memory and are bounded: an attacker who invents
//! usernames or addresses evicts the least recently failed entries first,
//! and cannot grow the tables past `MAX_ENTRIES`. Unknown usernames are
//! counted exactly like known ones, so that a 429 does not tell which
//! usernames exist.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries per table; enough for every user and every address of a real
/// deployment, small enough (about a megabyte) to never matter.
pub const MAX_ENTRIES: usize = 10_000;

/// When one table makes attempts wait.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures accepted without a wait.
    pub free_failures: u32,
    /// The wait after the first failure past the free ones; it doubles
    /// with each further failure.
    pub first_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
    /// A key without failures for this long starts over.
    pub quiet_period: Duration,
}

/// Per username: five tries for a typo-prone user, then 1 s, 2 s, 4 s …
/// up to a minute between guesses.
pub const PER_USER: Policy = Policy {
    free_failures: 5,
    first_wait: Duration::from_secs(1),
    max_wait: Duration::from_secs(60),
    quiet_period: Duration::from_secs(15 * 60),
};

/// Per source address: more room, because several people may sign in from
/// behind one NAT or proxy; it catches guessing spread over many usernames.
pub const PER_ADDRESS: Policy = Policy {
    free_failures: 20,
    first_wait: Duration::from_secs(1),
    max_wait: Duration::from_secs(60),
    quiet_period: Duration::from_secs(15 * 60),
};

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    wait_until: Instant,
}

struct Table<K> {
    policy: Policy,
    entries: HashMap<K, Entry>,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(policy: Policy) -> Self {
        Table {
            policy,
            entries: HashMap::new(),
        }
    }

    /// How long `key` must still wait, if at all.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        (entry.wait_until > now).then(|| entry.wait_until - now)
    }

    fn fail(&mut self, key: &K, now: Instant) {
        let policy = self.policy;
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_ENTRIES {
            self.make_room(now);
        }
        let entry = self.entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            wait_until: now,
        });
        if now.duration_since(entry.last_failure) >= policy.quiet_period {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= policy.free_failures {
            let doublings = (entry.failures - policy.free_failures).min(20);
            let wait = policy
                .first_wait
                .saturating_mul(1 << doublings)
                .min(policy.max_wait);
            entry.wait_until = now + wait;
        }
    }

    /// Drops the quiet entries, and if that is not enough the one that
    /// failed longest ago.
    fn make_room(&mut self, now: Instant) {
        let quiet = self.policy.quiet_period;
        self.entries
            .retain(|_, e| now.duration_since(e.last_failure) < quiet);
        if self.entries.len() >= MAX_ENTRIES {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
    }
}

/// The failed sign-ins of this server, by username and by source address.
pub struct LoginThrottle {
    users: Mutex<Table<String>>,
    addresses: Mutex<Table<IpAddr>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(PER_USER, PER_ADDRESS)
    }
}

impl LoginThrottle {
    pub fn new(per_user: Policy, per_address: Policy) -> Self {
        LoginThrottle {
            users: Mutex::new(Table::new(per_user)),
            addresses: Mutex::new(Table::new(per_address)),
        }
    }

    /// How long a sign-in as `username` from `addr` must still wait; None
    /// when it may be tried now.
    pub fn wait(&self, username: &str, addr: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let by_user = self
            .users
            .lock()
            .expect("throttle lock")
            .wait(&user_key(username), now);
        let by_addr = addr.and_then(|a| {
            self.addresses
                .lock()
                .expect("throttle lock")
                .wait(&address_key(a), now)
        });
        by_user.max(by_addr)
    }

    pub fn failed(&self, username: &str, addr: Option<IpAddr>, now: Instant) {
        self.users
            .lock()
            .expect("throttle lock")
            .fail(&user_key(username), now);
        if let Some(a) = addr {
            self.addresses
                .lock()
                .expect("throttle lock")
                .fail(&address_key(a), now);
        }
    }

    /// A successful sign-in clears the username's count. The address's
    /// count stays: one good account must not reset the guessing of others
    /// from the same address.
    pub fn succeeded(&self, username: &str) {
        self.users
            .lock()
            .expect("throttle lock")
            .entries
            .remove(&user_key(username));
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (
            self.users.lock().unwrap().entries.len(),
            self.addresses.lock().unwrap().entries.len(),
        )
    }
}

/// Usernames are at most 64 characters (`auth::validate_username`): a
/// longer one is kept by its first 64, so a key's size is bounded.
fn user_key(username: &str) -> String {
    username.trim().chars().take(64).collect()
}

/// An IPv6 host usually holds a whole /64, so its addresses count as one.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Whole seconds to tell a client in Retry-After, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn waits_start_after_the_free_failures_double_and_cap() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..PER_USER.free_failures - 1 {
            t.failed("alice", None, now);
            assert_eq!(t.wait("alice", None, now), None);
        }
        t.failed("alice", None, now);
        assert_eq!(t.wait("alice", None, now), Some(S));
        t.failed("alice", None, now);
        assert_eq!(t.wait("alice", None, now), Some(2 * S));
        for _ in 0..30 {
            t.failed("alice", None, now);
        }
        assert_eq!(t.wait("alice", None, now), Some(PER_USER.max_wait));
        // Other users are not affected, and the wait runs out.
        assert_eq!(t.wait("bob", None, now), None);
        assert_eq!(t.wait("alice", None, now + PER_USER.max_wait), None);
    }

    #[test]
    fn a_success_or_a_quiet_period_starts_over() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..PER_USER.free_failures {
            t.failed("alice", None, now);
        }
        t.succeeded("alice");
        assert_eq!(t.wait("alice", None, now), None);
        for _ in 0..PER_USER.free_failures + 3 {
            t.failed("alice", None, now);
        }
        let later = now + PER_USER.quiet_period;
        t.failed("alice", None, later);
        assert_eq!(t.wait("alice", None, later), None, "counting starts over");
    }

    #[test]
    fn an_address_that_guesses_many_usernames_waits() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..PER_ADDRESS.free_failures {
            t.failed(&format!("user{i}"), ip(7), now);
        }
        assert_eq!(t.wait("someone-else", ip(7), now), Some(S));
        assert_eq!(t.wait("someone-else", ip(8), now), None);
        // A success for one user does not clear the address.
        t.succeeded("user0");
        assert_eq!(t.wait("user0", ip(7), now), Some(S));
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_count_together() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), ip(1).unwrap());
    }

    #[test]
    fn the_tables_stay_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_ENTRIES + 500 {
            let addr = IpAddr::from((i as u32).to_be_bytes());
            t.failed(
                &format!("invented-{i}"),
                Some(addr),
                now + Duration::from_millis(i as u64),
            );
        }
        let (users, addresses) = t.sizes();
        assert_eq!(users, MAX_ENTRIES);
        assert_eq!(addresses, MAX_ENTRIES);
        // The oldest went first; the newest are kept.
        assert!(t
            .users
            .lock()
            .unwrap()
            .entries
            .contains_key(&format!("invented-{}", MAX_ENTRIES + 499)));
        assert!(!t.users.lock().unwrap().entries.contains_key("invented-0"));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(S), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
    }
}
