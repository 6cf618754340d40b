//! A token bucket per API token: one sender's flood is refused (429) before it costs parsing,
//! memory or database time that other clients need.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Requests per second and burst allowed to each token.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// Token name → (requests left, when last refilled). Bounded by the number of tokens.
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` sustained, `burst` at once; `per_second == 0` allows everything.
    pub fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `name` may make a request at `now`; counts it if so.
    pub fn allow(&self, name: &str, now: Instant) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (left, last) = buckets.entry(name.to_owned()).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *left = (*left + refill).min(self.burst);
        *last = now;
        if *left >= 1.0 {
            *left -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_other_tokens_are_unaffected() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let start = Instant::now();
        let passed = (0..20).filter(|_| limiter.allow("flood", start)).count();
        assert_eq!(passed, 5);
        assert!(
            limiter.allow("other", start),
            "one token's flood costs another nothing"
        );
        // A tenth of a second later, one more.
        let later = start + Duration::from_millis(100);
        assert!(limiter.allow("flood", later));
        assert!(!limiter.allow("flood", later));
        assert!(
            RateLimiter::new(0.0, 0.0).allow("x", start),
            "0 means no limit"
        );
    }
}
