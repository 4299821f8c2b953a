//! Firmware-update tracking: how the values a device reports move its
//! active update along. Pure logic over `ActiveUpdate`; the writer loads
//! the update, applies every reading in order, and saves what changed.
use crate::model::{FirmwareUpdateState as State, Value};
use crate::server::db::firmware_update::ActiveUpdate;

/// 5/0/3: the device's firmware-update state.
pub const FW_STATE: (i64, i64) = (5, 3);
/// 5/0/5: the result of the last update attempt.
pub const FW_RESULT: (i64, i64) = (5, 5);
/// 3/0/3: the firmware version the device runs.
pub const FW_VERSION: (i64, i64) = (3, 3);
/// 5/0/2: the resource the server executes to install a downloaded package.
pub const FW_UPDATE_PATH: &str = "/5/0/2";

/// Whether a reported resource can move an active update.
pub fn is_tracked(key: (i64, i64)) -> bool {
    key == FW_STATE || key == FW_RESULT || key == FW_VERSION
}

/// What one reported value did to an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The event type recorded for this step, e.g. "firmware_downloaded".
    pub event_type: &'static str,
    pub state: State,
    /// The Execute of 5/0/2 must be queued now.
    pub queue_execute: bool,
}

fn event_type(state: State) -> &'static str {
    match state {
        State::Pending => "firmware_pending",
        State::Downloading => "firmware_downloading",
        State::Downloaded => "firmware_downloaded",
        State::Updating => "firmware_updating",
        State::Succeeded => "firmware_succeeded",
        State::Failed => "firmware_failed",
        State::TimedOut => "firmware_timed_out",
        State::Cancelled => "firmware_cancelled",
    }
}

/// Applies one reported value to the active update. Returns the step when
/// the update's state changed; a repeated report of the same state is not a
/// new step. Values that say nothing about this update change nothing: they
/// are stored as telemetry all the same.
pub fn apply(update: &mut ActiveUpdate, key: (i64, i64), value: &Value) -> Option<Step> {
    if !update.state.is_active() {
        // The new version and the result 1 come in one read of the device:
        // when the version concluded it first, keep the result too.
        if update.state == State::Succeeded
            && key == FW_RESULT
            && matches!(value, Value::Integer(1) | Value::UnsignedInteger(1))
        {
            update.result = Some(1);
        }
        return None;
    }
    let next = match (key, value) {
        (FW_STATE, Value::Integer(s) | Value::UnsignedInteger(s)) => match s {
            1 => State::Downloading,
            2 => State::Downloaded,
            // Updating: the device is installing, so the Execute reached it.
            3 => {
                update.executed = true;
                State::Updating
            }
            // 0 (idle) carries no progress of its own; the result says how it ended.
            _ => return None,
        },
        (FW_RESULT, Value::Integer(r) | Value::UnsignedInteger(r)) => {
            // A result still left from an earlier attempt can arrive before
            // this update's package URI reached the device: ignore it then.
            if update.state == State::Pending && !update.uri_written {
                return None;
            }
            update.result = Some(*r);
            match r {
                1 => State::Succeeded,
                2..=9 => State::Failed,
                _ => return None,
            }
        }
        // The version alone never fails an update (it is reported before
        // the download starts too); it proves success once executed.
        (FW_VERSION, Value::String(version))
            if update.executed && *version == update.target_version =>
        {
            State::Succeeded
        }
        _ => return None,
    };
    if next == update.state {
        return None;
    }
    update.state = next;
    let queue_execute = next == State::Downloaded && update.execute_operation_id.is_none();
    Some(Step {
        event_type: event_type(next),
        state: next,
        queue_execute,
    })
}

/// An update to version 2.0.0 whose URI was written, for the tests of the
/// progress rules and of the writer's plan.
#[cfg(test)]
pub(super) fn active_update(id: i64, endpoint_id: i64, state: State) -> ActiveUpdate {
    ActiveUpdate {
        id,
        endpoint_id,
        state,
        result: None,
        target_version: "2.0.0".into(),
        uri_written: true,
        execute_operation_id: None,
        executed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(state: State) -> ActiveUpdate {
        active_update(1, 1, state)
    }

    fn int(v: i64) -> Value {
        Value::Integer(v)
    }

    #[test]
    fn a_result_after_the_version_concluded_success_is_kept() {
        let mut u = update(State::Updating);
        u.executed = true;
        let step = apply(&mut u, FW_VERSION, &Value::String("2.0.0".into())).unwrap();
        assert_eq!(step.state, State::Succeeded);
        assert_eq!(apply(&mut u, FW_RESULT, &int(1)), None);
        assert_eq!((u.state, u.result), (State::Succeeded, Some(1)));
    }

    #[test]
    fn every_state_is_recorded_in_order_and_downloaded_queues_the_execute() {
        let mut u = update(State::Pending);
        let s1 = apply(&mut u, FW_STATE, &int(1)).unwrap();
        assert_eq!(
            (s1.state, s1.event_type),
            (State::Downloading, "firmware_downloading")
        );
        assert_eq!(
            apply(&mut u, FW_STATE, &int(1)),
            None,
            "a repeat is no new step"
        );
        let s2 = apply(&mut u, FW_STATE, &int(2)).unwrap();
        assert_eq!(s2.state, State::Downloaded);
        assert!(s2.queue_execute);
        u.execute_operation_id = Some(9);
        let s3 = apply(&mut u, FW_STATE, &int(3)).unwrap();
        assert_eq!(s3.state, State::Updating);
        assert!(!s3.queue_execute);
        let s4 = apply(&mut u, FW_RESULT, &int(1)).unwrap();
        assert_eq!(s4.state, State::Succeeded);
        assert_eq!(u.result, Some(1));
        // Finished: nothing moves it any more.
        assert_eq!(apply(&mut u, FW_RESULT, &int(8)), None);
    }

    #[test]
    fn result_codes_two_to_nine_fail_with_that_code() {
        for code in 2..=9 {
            let mut u = update(State::Downloading);
            let step = apply(&mut u, FW_RESULT, &int(code)).unwrap();
            assert_eq!(step.state, State::Failed);
            assert_eq!(u.result, Some(code));
        }
        let mut u = update(State::Downloading);
        assert_eq!(apply(&mut u, FW_RESULT, &int(0)), None);
        assert_eq!(u.result, Some(0));
        assert_eq!(u.state, State::Downloading);
    }

    #[test]
    fn a_stale_result_before_the_uri_write_is_ignored() {
        let mut u = update(State::Pending);
        u.uri_written = false;
        assert_eq!(apply(&mut u, FW_RESULT, &int(1)), None);
        assert_eq!(apply(&mut u, FW_RESULT, &int(8)), None);
        assert_eq!(u.state, State::Pending);
    }

    #[test]
    fn version_match_succeeds_only_after_the_execute() {
        let target = Value::String("2.0.0".into());
        let mut u = update(State::Pending);
        assert_eq!(
            apply(&mut u, FW_VERSION, &Value::String("1.0.0".into())),
            None
        );
        assert_eq!(apply(&mut u, FW_VERSION, &target), None, "not executed yet");
        assert_eq!(u.state, State::Pending);

        let mut u = update(State::Downloaded);
        u.executed = true;
        assert_eq!(
            apply(&mut u, FW_VERSION, &Value::String("1.0.0".into())),
            None,
            "an old version never fails the update"
        );
        assert_eq!(
            apply(&mut u, FW_VERSION, &target).unwrap().state,
            State::Succeeded
        );

        let mut u = update(State::Downloaded);
        apply(&mut u, FW_STATE, &int(3));
        assert_eq!(
            apply(&mut u, FW_VERSION, &target).unwrap().state,
            State::Succeeded
        );
    }

    #[test]
    fn other_values_change_nothing() {
        let mut u = update(State::Downloading);
        assert_eq!(apply(&mut u, (3, 9), &int(50)), None);
        assert_eq!(apply(&mut u, FW_STATE, &Value::String("2".into())), None);
        assert_eq!(u, update(State::Downloading));
    }
}
