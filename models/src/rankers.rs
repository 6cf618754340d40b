//! Every ranker by name: those `eval --ranker` knows, the one a deployment configures (a name
//! or a model file), and the bundled model a service ranks with when none is configured.

use crate::baselines::{Baro, NSigma};
use crate::cold_start::ColdStart;
use crate::learned;
use crate::ranker::Ranker;

/// Names of the rankers [`by_name`] knows, for help texts and errors.
pub const RANKERS: [&str; 3] = ["cold-start", "baro", "nsigma"];

/// The ranker called `name`, if there is one.
pub fn by_name(name: &str) -> Option<Box<dyn Ranker>> {
    match name {
        "cold-start" => Some(Box::new(ColdStart::default())),
        "baro" => Some(Box::new(Baro)),
        "nsigma" => Some(Box::new(NSigma)),
        _ => None,
    }
}

/// The ranker a deployment asks for by `spec`: `default` (the best ranker that needs no
/// training on the system being ranked, see [`default_ranker`]), `cold-start`, or the path of
/// a model file written by `rootcause train`.
pub fn load(spec: &str) -> Result<Box<dyn Ranker>, String> {
    match spec {
        "default" => Ok(default_ranker()),
        "cold-start" => Ok(Box::new(ColdStart::default())),
        path => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read model file {path}: {e}"))?;
            let model = learned::LearnedModel::from_json(&text)
                .map_err(|e| format!("model file {path}: {e}"))?;
            Ok(Box::new(learned::Learned { model }))
        }
    }
}

/// The model file bundled in the binary: trained on the shared Nezha cases and on simulated
/// cases only (see the README for the one command that rebuilds it).
pub const BUNDLED_MODEL: &str = include_str!("../default-model.json");

/// The bundled model.
pub fn bundled_model() -> learned::LearnedModel {
    learned::LearnedModel::from_json(BUNDLED_MODEL)
        .expect("the bundled model matches this build (a test checks it)")
}

/// The ranker a running service uses when none is configured: the bundled model, which never
/// saw the system it ranks. (`rootcause eval` defaults to the cold-start scorer instead, since
/// the bundled model has seen the shared cases.)
pub fn default_ranker() -> Box<dyn Ranker> {
    Box::new(learned::Learned {
        model: bundled_model(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_ranker_is_found_under_its_own_name() {
        for name in RANKERS {
            assert_eq!(
                by_name(name).map(|r| r.name().to_string()).as_deref(),
                Some(name)
            );
        }
        assert!(by_name("oracle").is_none());
    }

    #[test]
    fn the_bundled_model_loads_and_is_what_the_service_uses() {
        let model = bundled_model();
        assert!(model.provenance.cases > 0);
        assert_eq!(default_ranker().name(), "learned");
        assert_eq!(load("default").unwrap().name(), "learned");
        assert_eq!(load("cold-start").unwrap().name(), "cold-start");
        let err = load("/nonexistent/model.json").err().unwrap();
        assert!(err.contains("cannot read model file"), "{err}");
    }
}
