//! Live updates that refetch: many notices in a burst cause one refetch,
//! at most one per interval.
use leptos::prelude::*;

/// Calls `action` at most once per `interval_ms`, at the end of the interval
/// in which it was asked for (so the last notice of a burst is covered).
#[derive(Clone, Copy)]
pub struct Throttle {
    scheduled: StoredValue<bool>,
    action: StoredValue<Box<dyn Fn() + Send + Sync>>,
    interval_ms: u32,
}

impl Throttle {
    pub fn new(interval_ms: u32, action: impl Fn() + Send + Sync + 'static) -> Throttle {
        Throttle {
            scheduled: StoredValue::new(false),
            action: StoredValue::new(Box::new(action)),
            interval_ms,
        }
    }

    pub fn request(&self) {
        if self.scheduled.get_value() {
            return;
        }
        self.scheduled.set_value(true);
        let this = *self;
        set_timeout(
            move || {
                // The component may be gone by now.
                if this.scheduled.try_set_value(false).is_none() {
                    this.action.with_value(|f| f());
                }
            },
            std::time::Duration::from_millis(u64::from(self.interval_ms)),
        );
    }
}
