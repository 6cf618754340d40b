//! The business calendar: when the configured critical windows ([`CalendarConfig`]) open and
//! close, as instants (pure; the time of asking is an argument).
//!
//! Windows are written in local time in one IANA zone and recur on weekdays except holidays,
//! or happen once on a date. Local times are turned into instants day by day, so a window keeps
//! its local time across a daylight-saving change. A local time the clocks skip (spring
//! forward) is taken an hour later (02:30 on that night is 03:30); one they pass twice (fall
//! back) as the first of the two.

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{CalendarConfig, WindowKind};

/// How far ahead the next window is looked for.
const LOOK_AHEAD_DAYS: i64 = 400;

/// One occurrence of a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Occurrence {
    /// The window's name.
    pub name: String,
    /// What it is for.
    pub kind: WindowKind,
    /// When it opens (ms).
    pub start: i64,
    /// When it closes (ms).
    pub end: i64,
    /// Local opening time, `HH:MM`, in the calendar's zone.
    pub local_start: String,
    /// Priority levels it raises an incident by.
    pub raise_priority: u8,
    /// Services it concerns; empty: all.
    pub services: Vec<String>,
}

impl Occurrence {
    /// Whether it concerns `service`.
    pub fn concerns(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }
}

/// The configured windows, ready to be asked.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    config: CalendarConfig,
}

impl Calendar {
    /// The calendar of `config` (already checked when it was parsed).
    pub fn new(config: CalendarConfig) -> Calendar {
        Calendar { config }
    }

    /// Whether it has no windows at all.
    pub fn is_empty(&self) -> bool {
        self.config.windows.is_empty()
    }

    /// Its time zone.
    pub fn time_zone(&self) -> Tz {
        self.config.time_zone
    }

    /// Occurrences overlapping `[from, to)` (ms), earliest first.
    pub fn between(&self, from: i64, to: i64) -> Vec<Occurrence> {
        if self.is_empty() || to <= from {
            return Vec::new();
        }
        // A window may start the local day before `from` and run past midnight.
        let first = self.local_date(from) - Duration::days(1);
        let last = self.local_date(to);
        let mut found = Vec::new();
        let mut date = first;
        while date <= last {
            found.extend(self.on(date).filter(|o| o.start < to && o.end > from));
            date = date.succ_opt().unwrap_or(last + Duration::days(1));
        }
        found.sort_by(|a, b| a.start.cmp(&b.start).then(a.name.cmp(&b.name)));
        found
    }

    /// Occurrences open at `at` (ms).
    pub fn active_at(&self, at: i64) -> Vec<Occurrence> {
        self.between(at, at + 1)
    }

    /// The first occurrence opening after `at` (ms), within about a year.
    pub fn next_after(&self, at: i64) -> Option<Occurrence> {
        if self.is_empty() {
            return None;
        }
        let mut date = self.local_date(at) - Duration::days(1);
        let end = date + Duration::days(LOOK_AHEAD_DAYS);
        while date <= end {
            let mut today: Vec<Occurrence> = self.on(date).filter(|o| o.start > at).collect();
            today.sort_by_key(|o| o.start);
            if let Some(first) = today.into_iter().next() {
                return Some(first);
            }
            date = date.succ_opt()?;
        }
        None
    }

    fn on(&self, date: NaiveDate) -> impl Iterator<Item = Occurrence> + '_ {
        self.config.windows.iter().filter_map(move |window| {
            let (start, end) = window.on(date, &self.config.holidays)?;
            Some(Occurrence {
                name: window.name.clone(),
                kind: window.kind,
                start: self.instant(start),
                end: self.instant(end),
                local_start: start.format("%H:%M").to_string(),
                raise_priority: window.raise_priority,
                services: window.services.clone(),
            })
        })
    }

    fn local_date(&self, at: i64) -> NaiveDate {
        self.config
            .time_zone
            .timestamp_millis_opt(at)
            .single()
            .map_or_else(
                || chrono::DateTime::UNIX_EPOCH.date_naive(),
                |t| t.date_naive(),
            )
    }

    fn instant(&self, local: NaiveDateTime) -> i64 {
        let zone = self.config.time_zone;
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.timestamp_millis(),
            LocalResult::Ambiguous(first, _) => first.timestamp_millis(),
            // Skipped by a spring-forward change: an hour later exists.
            LocalResult::None => zone
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
                .map_or_else(
                    || local.and_utc().timestamp_millis(),
                    |t| t.timestamp_millis(),
                ),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
            .timestamp_millis()
    }

    fn calendar(toml: &str) -> Calendar {
        Calendar::new(toml::from_str(toml).unwrap())
    }

    const NEW_YORK: &str = r#"
        time_zone = "America/New_York"
        holidays = ["2026-03-09"]
        [[windows]]
        name = "regular session"
        kind = "session"
        start = "09:30"
        end = "16:00"
        [[windows]]
        name = "night batch"
        kind = "batch"
        start = "01:00"
        end = "03:00"
        days = ["sun"]
        services = ["ledger"]
        [[windows]]
        name = "index rebalance"
        kind = "event"
        start = "15:00"
        end = "17:00"
        date = "2026-03-09"
    "#;

    #[test]
    fn a_session_keeps_its_local_time_across_a_daylight_saving_change() {
        let cal = calendar(NEW_YORK);
        // Friday 6 March 2026: EST, UTC-5.
        let friday = cal.between(ms("2026-03-06T00:00:00Z"), ms("2026-03-07T00:00:00Z"));
        assert_eq!(friday.len(), 1);
        assert_eq!(friday[0].start, ms("2026-03-06T14:30:00Z"));
        assert_eq!(friday[0].end, ms("2026-03-06T21:00:00Z"));
        // Tuesday 10 March: EDT, UTC-4 (the clocks went forward on Sunday 8 March).
        let tuesday = cal.active_at(ms("2026-03-10T14:00:00Z"));
        assert_eq!(tuesday.len(), 1);
        assert_eq!(tuesday[0].start, ms("2026-03-10T13:30:00Z"));
        assert_eq!(tuesday[0].local_start, "09:30");
        // 14:00Z on Friday was 09:00 in New York, before the open.
        assert!(cal.active_at(ms("2026-03-06T14:00:00Z")).is_empty());
    }

    #[test]
    fn a_holiday_skips_the_session_but_not_a_one_off_event_that_day() {
        let cal = calendar(NEW_YORK);
        // After Friday's close the next window is Sunday's batch, for the ledger only.
        let next = cal.next_after(ms("2026-03-06T21:00:00Z")).unwrap();
        assert_eq!(next.name, "night batch");
        assert!(next.concerns("ledger") && !next.concerns("web"));
        // Sunday 8 March: 01:00 EST is 06:00Z; that night the clocks jump from 02:00 to 03:00
        // EDT (07:00Z), so the two-hour batch lasts one hour.
        assert_eq!(
            (next.start, next.end),
            (ms("2026-03-08T06:00:00Z"), ms("2026-03-08T07:00:00Z"))
        );
        // Monday 9 March is a holiday: no session, but the one-off rebalance happens.
        let after_batch = cal.next_after(next.start).unwrap();
        assert_eq!(after_batch.name, "index rebalance");
        assert_eq!(after_batch.start, ms("2026-03-09T19:00:00Z"));
        let monday = cal.between(ms("2026-03-09T04:00:00Z"), ms("2026-03-10T04:00:00Z"));
        assert_eq!(monday.len(), 1, "{monday:?}");
        let tuesday = cal.next_after(after_batch.start).unwrap();
        assert_eq!(tuesday.start, ms("2026-03-10T13:30:00Z"));
    }

    #[test]
    fn a_start_the_clocks_skip_is_taken_an_hour_later() {
        let cal = calendar(
            r#"
            time_zone = "America/New_York"
            [[windows]]
            name = "maintenance"
            kind = "batch"
            start = "02:30"
            end = "04:00"
            days = ["sun"]
            "#,
        );
        let next = cal.next_after(ms("2026-03-07T12:00:00Z")).unwrap();
        // 02:30 does not exist on 8 March; 03:30 EDT is 07:30Z.
        assert_eq!(
            (next.start, next.end),
            (ms("2026-03-08T07:30:00Z"), ms("2026-03-08T08:00:00Z"))
        );
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_opened() {
        let cal = calendar(
            r#"
            time_zone = "Asia/Shanghai"
            [[windows]]
            name = "settlement"
            kind = "settlement"
            start = "22:00"
            end = "02:00"
            days = ["fri"]
            "#,
        );
        // Saturday 01:00 in Shanghai (Friday 17:00Z) is still Friday's settlement.
        let open = cal.active_at(ms("2026-12-04T17:00:00Z"));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].start, ms("2026-12-04T14:00:00Z"));
        assert_eq!(open[0].end, ms("2026-12-04T18:00:00Z"));
        assert!(cal.active_at(ms("2026-12-04T18:00:00Z")).is_empty());
    }

    #[test]
    fn an_empty_calendar_has_no_windows() {
        let cal = Calendar::default();
        assert!(cal.next_after(0).is_none() && cal.active_at(0).is_empty());
    }
}
