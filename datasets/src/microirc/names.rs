//! Names in MicroIRC's data: case folders, workloads, pods and the headers that join them.

/// The Istio ingress gateway: a caller in `call.csv` and `graph.csv`, never a candidate.
pub(super) const GATEWAY: &str = "istio-ingressgateway";
/// Istio's name for a caller it could not identify.
pub(super) const UNKNOWN: &str = "unknown";

/// A case folder's name, `<root>_<fault>_<n>`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CaseName {
    /// The label token as written: `details`, `reviews-v2`.
    pub root: String,
    /// The fault part: `cpu_load`, `net_latency`.
    pub fault: String,
}

impl CaseName {
    /// Parses `<root>_<fault>_<n>`: `root` is a lowercase name (letters, digits, `-`, starting
    /// with a letter) that cannot hold `_`, so it ends at the first `_`; `n` is the digits after
    /// the last `_`; the fault is everything between (it may hold `_`). `None` for anything else.
    pub fn parse(name: &str) -> Option<CaseName> {
        let (rest, n) = name.rsplit_once('_')?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (root, fault) = rest.split_once('_')?;
        let root_ok = root.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && root
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let fault_ok = fault.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && fault
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        (root_ok && fault_ok).then(|| CaseName {
            root: root.to_string(),
            fault: fault.to_string(),
        })
    }

    /// The workload the label names: the token itself when it ends in `-v<digits>`, else the
    /// token with `-v1` added (`details` → `details-v1`), as the deployments are named.
    pub fn workload(&self) -> String {
        if has_version(&self.root) {
            self.root.clone()
        } else {
            format!("{}-v1", self.root)
        }
    }
}

/// Whether `name` ends in `-v<digits>`.
pub(super) fn has_version(name: &str) -> bool {
    name.rsplit_once("-v").is_some_and(|(base, v)| {
        !base.is_empty() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether a workload named in a column can be a candidate: not the gateway, not Istio's
/// `unknown`, not one of the idle `*-edge*` deployments.
pub(super) fn is_candidate_name(workload: &str) -> bool {
    !workload.is_empty()
        && workload != GATEWAY
        && workload != UNKNOWN
        && !workload.contains("-edge")
}

/// The workload (Deployment) of a pod: the name without its last two `-` fields, the
/// ReplicaSet hash and the random suffix (`details-v1-b788479c5-grnsf` → `details-v1`).
/// `None` when the name has fewer than three fields.
pub(super) fn workload_of_pod(pod: &str) -> Option<&str> {
    let (rest, suffix) = pod.rsplit_once('-')?;
    let (workload, hash) = rest.rsplit_once('-')?;
    (!workload.is_empty() && !hash.is_empty() && !suffix.is_empty()).then_some(workload)
}

/// Splits a `call.csv` pair `<src>_<dst>` at the `_` that separates two names `known` accepts.
/// Workload names hold `-` and never `_`, but the split does not rely on it: every `_` is tried.
/// `Err` says why no single split exists.
pub(super) fn split_pair(
    pair: &str,
    known: impl Fn(&str) -> bool,
) -> Result<(&str, &str), &'static str> {
    let mut found = None;
    for (i, _) in pair.match_indices('_') {
        let (caller, callee) = (&pair[..i], &pair[i + 1..]);
        if known(caller) && known(callee) {
            if found.is_some() {
                return Err("splits into known names in more than one way");
            }
            found = Some((caller, callee));
        }
    }
    found.ok_or("does not split into two known names")
}
