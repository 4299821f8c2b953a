//! The one after-commit path: what a transaction changed reaches the rest
//! of the server only through here, and only once it has committed. The
//! ingest writer and the command service both publish this way: domain
//! events go to their consumers (`domain::DomainEvents`), and the live hub
//! gets the messages the pages show (values, events, fleet and command
//! notices).
use super::db::event::NewEvent;
use super::domain::{DomainEvent, DomainEvents};
use super::ingest::DecodedValue;
use super::live::LiveHub;
use crate::model::{CommandNotice, EventNotice, FleetNotice, LiveValue};
use std::collections::HashMap;

#[derive(Clone)]
pub struct AfterCommit {
    hub: LiveHub,
    domain: DomainEvents,
}

/// The live message a domain event shows as, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Fleet(FleetNotice),
    Command(CommandNotice),
}

impl AfterCommit {
    pub fn new(hub: LiveHub, domain: DomainEvents) -> AfterCommit {
        AfterCommit { hub, domain }
    }

    /// Counts stored values for the overview's fleet tick.
    pub fn count_ingested(&self, values: usize) {
        self.hub.count_ingested(values);
    }

    /// One request's stored values, for the endpoint's live subscribers.
    /// Free without subscribers: the hub checks before they are built.
    pub fn values(&self, endpoint: &str, values: &[DecodedValue], received_at: i64) {
        self.hub.publish(endpoint, || {
            values.iter().map(|v| LiveValue {
                endpoint: endpoint.to_string(),
                path: v.path,
                value: v.value.to_string(),
                numeric: v.value.as_f64(),
                received_at,
                measured_at: crate::server::ingest::plan::device_time(v.measured_at, received_at)
                    .unwrap_or(received_at),
            })
        });
    }

    /// The events a commit recorded, as the events page lists them. Built
    /// only when somebody listens for events.
    pub fn recorded_events(&self, events: &[NewEvent], endpoint_ids: &HashMap<String, i64>) {
        if events.is_empty() || !self.hub.wants_events() {
            return;
        }
        let names: HashMap<i64, &str> = endpoint_ids
            .iter()
            .map(|(name, id)| (*id, name.as_str()))
            .collect();
        self.hub.publish_events(events.iter().map(|e| {
            EventNotice {
                id: e.id,
                endpoint: names
                    .get(&e.endpoint_id)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                event_type: e.event_type.clone(),
                created_at: e.created_at,
            }
        }));
    }

    /// Domain events, in order: each to the live hub as the notice the
    /// pages show for it, then to the domain-event consumers.
    pub fn domain_events(&self, events: impl IntoIterator<Item = DomainEvent>) {
        for event in events {
            match notice(&event) {
                Some(Notice::Fleet(n)) => self.hub.publish_fleet(n),
                Some(Notice::Command(n)) => self.hub.publish_command(n),
                None => {}
            }
            self.domain.publish(event);
        }
    }
}

/// How a domain event shows on the pages: registrations on the overview,
/// command and firmware-update changes where commands and updates are
/// listed (those pages refetch on it).
pub fn notice(event: &DomainEvent) -> Option<Notice> {
    match event {
        DomainEvent::DeviceAwake {
            endpoint,
            registered: true,
            ..
        } => Some(Notice::Fleet(FleetNotice::Registered {
            endpoint: endpoint.clone(),
        })),
        DomainEvent::DeviceDeregistered { endpoint, .. } => {
            Some(Notice::Fleet(FleetNotice::Deregistered {
                endpoint: endpoint.clone(),
            }))
        }
        DomainEvent::FirmwareUpdateChanged {
            update_id,
            endpoint,
            state,
            ..
        } => Some(Notice::Command(CommandNotice {
            endpoint: endpoint.clone(),
            command_id: None,
            update_id: Some(*update_id),
            status: state.as_str().to_string(),
        })),
        DomainEvent::CommandChanged {
            endpoint,
            command_id,
            update_id,
            status,
        } => Some(Notice::Command(CommandNotice {
            endpoint: endpoint.clone(),
            command_id: *command_id,
            update_id: *update_id,
            status: status.clone(),
        })),
        DomainEvent::DeviceAwake { .. }
        | DomainEvent::EndpointsHeard { .. }
        | DomainEvent::OperationQueued { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FirmwareUpdateState;

    #[test]
    fn registrations_and_changes_show_as_notices_the_rest_does_not() {
        let awake = |registered| DomainEvent::DeviceAwake {
            endpoint_id: 1,
            endpoint: "dev".into(),
            registered,
            at: 5,
        };
        assert_eq!(
            notice(&awake(true)),
            Some(Notice::Fleet(FleetNotice::Registered {
                endpoint: "dev".into()
            }))
        );
        // A registration update is no change of the fleet.
        assert_eq!(notice(&awake(false)), None);
        assert_eq!(
            notice(&DomainEvent::DeviceDeregistered {
                endpoint_id: 1,
                endpoint: "dev".into(),
                at: 5,
            }),
            Some(Notice::Fleet(FleetNotice::Deregistered {
                endpoint: "dev".into()
            }))
        );
        assert_eq!(
            notice(&DomainEvent::FirmwareUpdateChanged {
                update_id: 7,
                endpoint_id: 1,
                endpoint: "dev".into(),
                state: FirmwareUpdateState::Downloaded,
                result: None,
            }),
            Some(Notice::Command(CommandNotice {
                endpoint: "dev".into(),
                command_id: None,
                update_id: Some(7),
                status: "downloaded".into(),
            }))
        );
        assert_eq!(
            notice(&DomainEvent::CommandChanged {
                endpoint: "dev".into(),
                command_id: Some(3),
                update_id: None,
                status: "queued".into(),
            }),
            Some(Notice::Command(CommandNotice {
                endpoint: "dev".into(),
                command_id: Some(3),
                update_id: None,
                status: "queued".into(),
            }))
        );
        assert_eq!(
            notice(&DomainEvent::OperationQueued {
                operation_id: 3,
                endpoint_id: 1
            }),
            None
        );
        assert_eq!(
            notice(&DomainEvent::EndpointsHeard {
                endpoint_ids: vec![1]
            }),
            None
        );
    }
}
