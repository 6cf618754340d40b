//! An incident's alerts as ranking holds them: one [`CaseAlert`] per kind of alert (service,
//! alert name, signal, severity) with the number of occurrences of that kind and the earliest
//! start.
//!
//! A ranker reads alerts per service and per kind (how many, how severe, on which signal, which
//! service began first), never one occurrence apart from the others, so an alert storm of a
//! million occurrences of forty kinds is forty entries: holding it costs nothing per occurrence,
//! adding an occurrence is a hash lookup, and a ranking copies forty entries, not a million.

use std::collections::HashMap;
use std::hash::BuildHasher;

use rootcause_models::case::CaseAlert;

/// What happened to an occurrence offered to a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Counted in a kind already held.
    Counted,
    /// The first of a new kind.
    NewKind,
    /// Of a new kind beyond the digest's limit of kinds: not held.
    NotHeld,
}

/// One occurrence's kind, borrowed from the occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind<'a> {
    /// The mapped service.
    pub service: Option<&'a str>,
    /// `alertname`.
    pub name: &'a str,
    /// Signal class.
    pub signal: &'a str,
    /// `severity` label, empty if absent.
    pub severity: &'a str,
}

impl<'a> Kind<'a> {
    /// The kind of a held alert.
    fn of(alert: &'a CaseAlert) -> Kind<'a> {
        Kind {
            service: alert.service.as_deref(),
            name: &alert.name,
            signal: &alert.signal,
            severity: &alert.severity,
        }
    }
}

/// The alerts of one incident by kind, in the order their kinds first arrived.
#[derive(Debug, Clone, Default)]
pub struct AlertDigest {
    kinds: Vec<CaseAlert>,
    /// Hash of a kind → the positions in `kinds` with that hash (one, unless two kinds collide).
    index: HashMap<u64, Vec<usize>>,
    hasher: std::hash::RandomState,
}

impl AlertDigest {
    /// Counts one occurrence of `kind` that began at `starts_at` (Unix seconds). `first` makes
    /// the entry of a new kind from the occurrence (called only for a new kind); past
    /// `max_kinds` kinds a new kind is not held.
    pub fn add(
        &mut self,
        kind: Kind<'_>,
        starts_at: i64,
        max_kinds: usize,
        first: impl FnOnce() -> CaseAlert,
    ) -> Added {
        self.add_many(kind, starts_at, 1, max_kinds, first)
    }

    fn add_many(
        &mut self,
        kind: Kind<'_>,
        starts_at: i64,
        count: u64,
        max_kinds: usize,
        first: impl FnOnce() -> CaseAlert,
    ) -> Added {
        let hash = self.hash(kind);
        if let Some(&at) = self
            .index
            .get(&hash)
            .and_then(|slots| slots.iter().find(|&&i| Kind::of(&self.kinds[i]) == kind))
        {
            let held = &mut self.kinds[at];
            held.count += count;
            held.starts_at = held.starts_at.min(starts_at);
            held.ends_at = None;
            return Added::Counted;
        }
        if self.kinds.len() >= max_kinds {
            return Added::NotHeld;
        }
        let mut alert = first();
        alert.count = count;
        alert.starts_at = starts_at;
        if count > 1 {
            alert.ends_at = None;
        }
        self.index.entry(hash).or_default().push(self.kinds.len());
        self.kinds.push(alert);
        Added::NewKind
    }

    /// Adds an entry of `count` occurrences (a kind as the store groups it, or another
    /// digest's); whether it was held.
    pub fn add_entry(&mut self, alert: CaseAlert, max_kinds: usize) -> Added {
        let (count, starts_at) = (alert.count.max(1), alert.starts_at);
        // The entry is copied only when its kind is new here.
        self.add_many(Kind::of(&alert), starts_at, count, max_kinds, || {
            alert.clone()
        })
    }

    /// Adds every entry of `other` (a merged incident's alerts).
    pub fn absorb(&mut self, other: AlertDigest, max_kinds: usize) {
        for alert in other.kinds {
            self.add_entry(alert, max_kinds);
        }
    }

    /// The held entries, one per kind: what a ranking copies.
    pub fn alerts(&self) -> Vec<CaseAlert> {
        self.kinds.clone()
    }

    /// Number of kinds held.
    #[cfg(test)]
    pub fn kinds(&self) -> usize {
        self.kinds.len()
    }

    /// Number of occurrences counted.
    #[cfg(test)]
    pub fn occurrences(&self) -> u64 {
        self.kinds.iter().map(|k| k.count).sum()
    }

    fn hash(&self, kind: Kind<'_>) -> u64 {
        self.hasher.hash_one(kind)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn alert(service: &str, name: &str, severity: &str, at: i64) -> CaseAlert {
        CaseAlert {
            service: Some(service.to_owned()),
            name: name.to_owned(),
            signal: "latency".to_owned(),
            severity: severity.to_owned(),
            starts_at: at,
            ends_at: Some(at + 60),
            labels: BTreeMap::from([("alertname".to_owned(), name.to_owned())]),
            count: 1,
        }
    }

    fn offer(digest: &mut AlertDigest, a: &CaseAlert, max: usize) -> Added {
        digest.add(Kind::of(a), a.starts_at, max, || a.clone())
    }

    #[test]
    fn occurrences_of_one_kind_are_one_entry_with_their_count_and_earliest_start() {
        let mut digest = AlertDigest::default();
        let a = alert("api", "HighLatency", "critical", 100);
        assert_eq!(offer(&mut digest, &a, 10), Added::NewKind);
        for at in [90, 120, 130] {
            assert_eq!(
                offer(
                    &mut digest,
                    &alert("api", "HighLatency", "critical", at),
                    10
                ),
                Added::Counted
            );
        }
        // Another severity, name or service is another kind.
        assert_eq!(
            offer(&mut digest, &alert("api", "HighLatency", "warning", 80), 10),
            Added::NewKind
        );
        assert_eq!(
            offer(&mut digest, &alert("db", "HighLatency", "critical", 80), 10),
            Added::NewKind
        );
        let held = digest.alerts();
        assert_eq!(held.len(), 3);
        assert_eq!(
            (held[0].count, held[0].starts_at, held[0].ends_at),
            (4, 90, None)
        );
        assert_eq!((held[1].count, held[1].ends_at), (1, Some(140)));
        assert_eq!(digest.occurrences(), 6);
    }

    #[test]
    fn kinds_past_the_limit_are_not_held_but_known_kinds_still_count() {
        let mut digest = AlertDigest::default();
        assert_eq!(
            offer(&mut digest, &alert("a", "A", "", 1), 2),
            Added::NewKind
        );
        assert_eq!(
            offer(&mut digest, &alert("b", "B", "", 1), 2),
            Added::NewKind
        );
        assert_eq!(
            offer(&mut digest, &alert("c", "C", "", 1), 2),
            Added::NotHeld
        );
        assert_eq!(
            offer(&mut digest, &alert("a", "A", "", 0), 2),
            Added::Counted
        );
        assert_eq!(digest.kinds(), 2);
        assert_eq!(digest.occurrences(), 3);
    }

    #[test]
    fn absorbing_a_digest_adds_its_counts_kind_by_kind() {
        let mut survivor = AlertDigest::default();
        let mut absorbed = AlertDigest::default();
        offer(&mut survivor, &alert("a", "A", "", 50), 10);
        offer(&mut absorbed, &alert("a", "A", "", 40), 10);
        offer(&mut absorbed, &alert("a", "A", "", 45), 10);
        offer(&mut absorbed, &alert("b", "B", "", 60), 10);
        survivor.absorb(absorbed, 10);
        let held = survivor.alerts();
        assert_eq!(held.len(), 2);
        assert_eq!((held[0].count, held[0].starts_at), (3, 40));
        assert_eq!((held[1].count, held[1].starts_at), (1, 60));
        assert_eq!(survivor.occurrences(), 4);
    }
}
