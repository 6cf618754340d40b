//! From alerts to incidents, as pure logic: no I/O and no clock (every time is a parameter), so
//! the same alerts in the same order always give the same incidents.
//!
//! - [`alert`]: label sets, Alertmanager-compatible fingerprints, signal kinds.
//! - [`mapping`]: which service of the topology an alert is about.
//! - [`engine`]: the correlation state machine: join by hop distance within a time window,
//!   merge, dedup, resolve, reopen.

pub mod alert;
pub mod engine;
pub mod mapping;

pub use alert::{AlertStatus, Fingerprint, Labels, Signal};
pub use engine::{
    AlertEvent, AlertKey, Change, Engine, IncidentKind, IncidentSnapshot, IncidentStatus, Millis,
    Observation, Outcome, Settings, Subject, TimelineEntry, TimelineEvent,
};
pub use mapping::ServiceMapper;
