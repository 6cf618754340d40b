//! The service's one source of wall-clock time.
//!
//! Every timestamp the service writes (an alert's arrival, an incident's windows, an audit
//! entry, a job's start and end, a ranking's `ranked_at`) is read from a [`Clock`], never from
//! `Utc::now()` directly, so that a test can start the service on a [`Clock::paused`] clock and
//! move time with [`Clock::advance`] instead of sleeping. Durations measured for telemetry and
//! debouncing use monotonic instants and are not the clock's business.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rootcause_correlation::Millis;

/// Wall-clock time: the system's, or a paused clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct Clock {
    /// `None`: the system clock. `Some`: paused at these epoch milliseconds.
    paused: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { paused: None }
    }

    /// A clock paused at `at`: it reads `at` until [`advance`](Clock::advance)d.
    pub fn paused(at: DateTime<Utc>) -> Clock {
        Clock {
            paused: Some(Arc::new(AtomicI64::new(at.timestamp_millis()))),
        }
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.paused {
            None => Utc::now(),
            Some(millis) => Utc
                .timestamp_millis_opt(millis.load(Ordering::SeqCst))
                .single()
                .expect("a paused clock holds a valid timestamp"),
        }
    }

    /// Epoch milliseconds now.
    pub fn now_millis(&self) -> Millis {
        match &self.paused {
            None => Utc::now().timestamp_millis(),
            Some(millis) => millis.load(Ordering::SeqCst),
        }
    }

    /// Moves a paused clock forward by `by` (every clone sees it).
    ///
    /// # Panics
    /// On the system clock, which nobody moves.
    pub fn advance(&self, by: Duration) {
        let millis = self
            .paused
            .as_ref()
            .expect("only a paused clock can be advanced");
        let by = Millis::try_from(by.as_millis()).expect("an advance fits in i64 milliseconds");
        millis.fetch_add(by, Ordering::SeqCst);
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_clock_moves_only_when_advanced_and_every_clone_sees_it() {
        let start = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let clock = Clock::paused(start);
        let clone = clock.clone();
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now_millis(), start.timestamp_millis());
        clock.advance(Duration::from_secs(90));
        assert_eq!(clone.now(), start + chrono::Duration::seconds(90));
        assert_eq!(clone.now_millis(), start.timestamp_millis() + 90_000);
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = Utc::now().timestamp_millis();
        let read = Clock::system().now_millis();
        let after = Utc::now().timestamp_millis();
        assert!((before..=after).contains(&read));
    }

    #[test]
    #[should_panic(expected = "only a paused clock")]
    fn the_system_clock_cannot_be_advanced() {
        Clock::system().advance(Duration::from_secs(1));
    }
}
