//! An incident's priority: P1 to P4 from the most critical service involved, raised while a
//! critical window of the business calendar that concerns one of its services is open (pure).

use rootcause_topology::{Criticality, Topology};
use serde::Serialize;
use utoipa::ToSchema;

use super::calendar::Occurrence;

/// An incident's priority and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Priority {
    /// 1 (most urgent) to 4.
    pub level: u8,
    /// What the criticality of its services alone gives: critical P1, high P2, medium or
    /// undeclared P3, low P4.
    pub base: u8,
    /// The window that raised it, if one did.
    pub window: Option<Occurrence>,
}

/// The priority of an incident on `services`, given the calendar's windows open while it was
/// (`windows`); the window raising it most wins.
pub fn priority(services: &[String], topology: &Topology, windows: &[Occurrence]) -> Priority {
    let base = services
        .iter()
        .filter_map(|s| topology.service(s))
        .map(|s| match s.criticality {
            Some(Criticality::Critical) => 1,
            Some(Criticality::High) => 2,
            Some(Criticality::Medium) | None => 3,
            Some(Criticality::Low) => 4,
        })
        .min()
        .unwrap_or(3);
    let window = windows
        .iter()
        .filter(|w| w.raise_priority > 0 && services.iter().any(|s| w.concerns(s)))
        .max_by_key(|w| w.raise_priority);
    Priority {
        level: window.map_or(base, |w| base.saturating_sub(w.raise_priority).max(1)),
        base,
        window: window.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WindowKind;

    #[test]
    fn a_window_raises_only_the_incidents_it_concerns() {
        let topology = rootcause_topology::bundled::find("online-boutique")
            .unwrap()
            .topology();
        let services = vec!["cartservice".to_owned()];
        let plain = priority(&services, &topology, &[]);
        assert!(plain.window.is_none() && plain.level == plain.base);
        let window = |concerns: Vec<String>, raise| Occurrence {
            name: "close".into(),
            kind: WindowKind::Auction,
            start: 0,
            end: 1,
            local_start: "14:57".into(),
            raise_priority: raise,
            services: concerns,
        };
        let raised = priority(&services, &topology, &[window(vec![], 1)]);
        assert_eq!(raised.level, plain.base.saturating_sub(1).max(1));
        assert_eq!(raised.window.as_ref().unwrap().name, "close");
        let other = priority(&services, &topology, &[window(vec!["ledger".into()], 2)]);
        assert_eq!(other.level, plain.base);
        let floor = priority(&services, &topology, &[window(vec![], 9)]);
        assert_eq!(floor.level, 1);
    }
}
