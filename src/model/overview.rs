//! What the overview page shows.
use super::{EpochMs, EventView, PresenceCounts};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub presence: PresenceCounts,
    /// Values stored per minute over the last hour, oldest first, one entry
    /// per minute (zero where none arrived).
    pub points_per_minute: Vec<(EpochMs, i64)>,
    /// Operations queued or being sent.
    pub pending_commands: i64,
    /// Firmware updates in an active state.
    pub active_updates: i64,
    pub latest_events: Vec<EventView>,
}

impl Overview {
    pub fn points_last_hour(&self) -> i64 {
        self.points_per_minute.iter().map(|(_, n)| n).sum()
    }
}

/// Fills the minutes of [from, to) that have no count with zeros, so a
/// sparkline shows quiet minutes as quiet. `counts` is sorted by minute.
pub fn per_minute_filled(
    counts: &[(EpochMs, i64)],
    from: EpochMs,
    to: EpochMs,
) -> Vec<(EpochMs, i64)> {
    const MINUTE: EpochMs = 60_000;
    let first = from.div_euclid(MINUTE) * MINUTE;
    let mut out = Vec::new();
    let mut at = first;
    let mut it = counts.iter().peekable();
    while at < to {
        let mut n = 0;
        while let Some((m, c)) = it.peek() {
            if *m < at {
                it.next();
            } else {
                if *m == at {
                    n = *c;
                }
                break;
            }
        }
        out.push((at, n));
        at += MINUTE;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_minutes_are_zero() {
        let filled = per_minute_filled(&[(60_000, 5), (180_000, 2)], 30_000, 240_000);
        assert_eq!(
            filled,
            vec![(0, 0), (60_000, 5), (120_000, 0), (180_000, 2)]
        );
    }
}
