//! Presence: derived from registration state, lifetime and queue mode.
use super::EpochMs;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// Registered, inside its lifetime, and reachable now.
    Online,
    /// Queue mode, inside its lifetime, between wake-ups: commands wait.
    Sleeping,
    /// Deregistered, never registered, or its lifetime expired.
    Offline,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Sleeping => "sleeping",
            Presence::Offline => "offline",
        }
    }

    pub const ALL: [Presence; 3] = [Presence::Online, Presence::Sleeping, Presence::Offline];

    pub fn parse(s: &str) -> Option<Presence> {
        Presence::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The LwM2M default registration lifetime, used until a device reports its own.
pub const DEFAULT_LIFETIME_S: i64 = 86_400;

/// How long a queue-mode device listens after it last spoke (LwM2M's
/// default queue-mode listening window is 93 s; Zephyr devices use 20-30 s).
pub const QUEUE_AWAKE_WINDOW_MS: i64 = 30_000;

/// What presence is derived from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceFacts {
    pub registered: bool,
    pub last_registration_at: Option<EpochMs>,
    pub last_update_at: Option<EpochMs>,
    pub last_seen_at: Option<EpochMs>,
    pub lifetime_s: Option<i64>,
    pub queue_mode: bool,
}

impl PresenceFacts {
    pub fn presence(&self, now: EpochMs) -> Presence {
        if !self.registered {
            return Presence::Offline;
        }
        // A registration or registration update renews the lifetime.
        let Some(renewed) = self.last_registration_at.max(self.last_update_at) else {
            return Presence::Offline;
        };
        let lifetime_ms = self
            .lifetime_s
            .unwrap_or(DEFAULT_LIFETIME_S)
            .saturating_mul(1000);
        if now > renewed.saturating_add(lifetime_ms) {
            return Presence::Offline;
        }
        let last_heard = self.last_seen_at.unwrap_or(renewed).max(renewed);
        if self.queue_mode && now - last_heard > QUEUE_AWAKE_WINDOW_MS {
            Presence::Sleeping
        } else {
            Presence::Online
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: EpochMs = 1_700_000_000_000;

    fn registered(queue_mode: bool) -> PresenceFacts {
        PresenceFacts {
            registered: true,
            last_registration_at: Some(T),
            last_update_at: Some(T),
            last_seen_at: Some(T),
            lifetime_s: Some(300),
            queue_mode,
        }
    }

    #[test]
    fn deregistered_or_never_registered_is_offline() {
        assert_eq!(PresenceFacts::default().presence(T), Presence::Offline);
        let mut f = registered(false);
        f.registered = false;
        assert_eq!(f.presence(T), Presence::Offline);
    }

    #[test]
    fn lifetime_expiry_makes_it_offline() {
        let f = registered(false);
        assert_eq!(f.presence(T + 299_000), Presence::Online);
        assert_eq!(f.presence(T + 301_000), Presence::Offline);
        let mut renewed = f;
        renewed.last_update_at = Some(T + 200_000);
        assert_eq!(renewed.presence(T + 400_000), Presence::Online);
    }

    #[test]
    fn queue_mode_sleeps_between_wake_ups() {
        let f = registered(true);
        assert_eq!(f.presence(T + 10_000), Presence::Online);
        assert_eq!(
            f.presence(T + QUEUE_AWAKE_WINDOW_MS + 1),
            Presence::Sleeping
        );
        let mut spoke = f;
        spoke.last_seen_at = Some(T + 100_000);
        assert_eq!(spoke.presence(T + 110_000), Presence::Online);
        assert_eq!(f.presence(T + 301_000), Presence::Offline);
    }

    #[test]
    fn unknown_lifetime_uses_the_lwm2m_default() {
        let mut f = registered(false);
        f.lifetime_s = None;
        assert_eq!(f.presence(T + 86_000_000), Presence::Online);
        assert_eq!(f.presence(T + 86_401_000), Presence::Offline);
    }
}
