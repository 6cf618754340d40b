//! Proactive risk identification (pure: records, topology and the time of asking in; risks
//! out). Structural risks live with the topology (`rootcause_topology::risks`); here:
//!
//! - [`stats`]: the Laplace trend test, the Benjamini-Hochberg correction, shrunk rates;
//! - [`history`]: risks from fault history and changes (rising fault rates, recurring root
//!   causes, failing actions, risky changes);
//! - [`calendar`]: the business calendar's critical windows as instants;
//! - [`score`]: the per-service risk score and what the next window exposes;
//! - [`overview`]: all of it at one moment, as the API and the CLI show it;
//! - [`priority`]: an incident's priority, raised inside a critical window.

pub mod calendar;
pub mod history;
pub mod overview;
pub mod priority;
pub mod score;
pub mod stats;
