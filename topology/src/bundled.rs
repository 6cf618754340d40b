//! Topologies of public benchmark systems, written from their published architecture and bundled
//! in the binary.

use crate::{Format, Topology};

/// A bundled example topology.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// Short name used on the command line and in configuration (`online-boutique`).
    pub name: &'static str,
    /// One line on what the system is.
    pub description: &'static str,
    /// The YAML document.
    pub yaml: &'static str,
}

impl Example {
    /// The example as a checked topology.
    pub fn topology(&self) -> Topology {
        Topology::parse(self.yaml, Format::Yaml)
            .unwrap_or_else(|e| panic!("bundled topology {} is invalid: {e}", self.name))
    }
}

/// The example `serve` uses when no topology is configured.
pub const DEFAULT: &str = "online-boutique";

/// Every bundled example.
pub const ALL: [Example; 3] = [
    Example {
        name: "online-boutique",
        description: "Google's Online Boutique: 11 gRPC microservices, a Redis cart store and a load generator",
        yaml: include_str!("../bundled/online-boutique.yaml"),
    },
    Example {
        name: "sock-shop",
        description: "Weaveworks' Sock Shop: Go and Java services, a database per service, RabbitMQ",
        yaml: include_str!("../bundled/sock-shop.yaml"),
    },
    Example {
        name: "train-ticket",
        description: "FudanSELab's Train Ticket: about 45 services sharing MySQL and RabbitMQ",
        yaml: include_str!("../bundled/train-ticket.yaml"),
    },
];

/// The bundled example with this name.
pub fn find(name: &str) -> Option<&'static Example> {
    ALL.iter().find(|example| example.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceKind;

    #[test]
    fn every_example_is_a_valid_connected_topology() {
        for example in &ALL {
            let topology = example.topology();
            assert!(topology.service_count() >= 10, "{}", example.name);
            // One connected system: every service is within reach of the first, ignoring direction.
            let first = topology.services().next().unwrap().name.clone();
            let reached = topology.neighbourhood(&first, usize::MAX).unwrap().len();
            assert_eq!(
                reached + 1,
                topology.service_count(),
                "{} is split",
                example.name
            );
            assert!(!topology.entry_points().is_empty(), "{}", example.name);
            assert!(
                topology
                    .services()
                    .any(|s| matches!(s.kind, ServiceKind::Database | ServiceKind::Cache)),
                "{} has a datastore",
                example.name
            );
        }
        assert!(find(DEFAULT).is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn train_ticket_shares_one_database() {
        let topology = find("train-ticket").unwrap().topology();
        let shared = topology
            .services()
            .filter(|s| s.kind == ServiceKind::Database)
            .map(|s| topology.callers(&s.name, 1).unwrap().len())
            .max()
            .unwrap();
        assert!(shared >= 20, "the shared MySQL has {shared} direct callers");
    }
}
