//! `[risk]`: how fault history becomes risks; `[calendar]`: the business's critical windows.
//!
//! The calendar is parsed into typed values here (an IANA time zone, `HH:MM` times, weekdays,
//! dates), so a typo is refused at start-up with the key at fault; `crate::risk::calendar` turns
//! it into occurrences.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Historical risks: windows, thresholds and how often they are recomputed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Days of fault history and changes read (change failure rates, failing actions).
    pub lookback_days: u32,
    /// Days of the sliding window (ending now) the fault-rate trend test runs over: faults are
    /// rare, so a short window holds too few to tell a trend from chance.
    pub trend_window_days: u32,
    /// Fewest faults of a service in that window for its trend to be tested.
    pub trend_min_faults: usize,
    /// False discovery rate at which a rising fault rate, or a change failure rate above the
    /// estate's, is flagged (Benjamini-Hochberg over the services tested).
    pub alpha: f64,
    /// A root cause (service and fault type) confirmed twice or more within this many days
    /// recurs.
    pub recurrence_days: u32,
    /// Fewest judged uses of an action before it can be flagged as often failing.
    pub action_min_attempts: usize,
    /// Share of failures (shrunk toward the estate's) from which an action is flagged.
    pub action_failure_threshold: f64,
    /// Fewest changes of a service before its change failure rate can flag it.
    pub change_min_changes: usize,
    /// Change failure rate (shrunk toward the estate's) from which a service's changes are
    /// risky, and a new change to it is flagged on arrival.
    pub change_failure_threshold: f64,
    /// Seconds between recomputations (also done after each resolution and history import).
    pub refresh_secs: u64,
    /// Most history rows and most change events read per recomputation (newest first).
    pub max_records: u32,
    /// Services whose risk score `/metrics` exports (the highest).
    pub metrics_services: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            lookback_days: 90,
            trend_window_days: 90,
            trend_min_faults: 4,
            alpha: 0.05,
            recurrence_days: 30,
            action_min_attempts: 3,
            action_failure_threshold: 0.5,
            change_min_changes: 3,
            change_failure_threshold: 0.3,
            refresh_secs: 300,
            max_records: 50_000,
            metrics_services: 200,
        }
    }
}

impl RiskConfig {
    /// Values that parse but cannot work: every problem, joined by `; `.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.trend_window_days == 0 || self.trend_window_days > self.lookback_days {
            problems.push(format!(
                "risk.trend_window_days must be 1 to risk.lookback_days ({}), got {}",
                self.lookback_days, self.trend_window_days
            ));
        }
        if self.recurrence_days == 0 || self.recurrence_days > self.lookback_days {
            problems.push(format!(
                "risk.recurrence_days must be 1 to risk.lookback_days ({}), got {}",
                self.lookback_days, self.recurrence_days
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            problems.push(format!(
                "risk.alpha must be between 0 and 1, got {}",
                self.alpha
            ));
        }
        for (key, value) in [
            ("action_failure_threshold", self.action_failure_threshold),
            ("change_failure_threshold", self.change_failure_threshold),
        ] {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("risk.{key} must be 0 to 1, got {value}"));
            }
        }
        if self.trend_min_faults < 2 {
            problems.push("risk.trend_min_faults must be at least 2".to_owned());
        }
        if self.refresh_secs == 0 {
            problems.push("risk.refresh_secs must be at least 1".to_owned());
        }
        if self.max_records == 0 {
            problems.push("risk.max_records must be at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The business calendar: critical windows in one time zone. Without windows, no incident's
/// priority is raised and risks name no window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// IANA time zone the windows' times are in (`Asia/Shanghai`, `America/New_York`).
    #[serde(
        serialize_with = "serialize_time_zone",
        deserialize_with = "deserialize_time_zone"
    )]
    pub time_zone: Tz,
    /// Dates (in that zone) on which recurring windows do not open.
    pub holidays: Vec<NaiveDate>,
    /// The windows.
    pub windows: Vec<WindowConfig>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            time_zone: Tz::UTC,
            holidays: Vec::new(),
            windows: Vec::new(),
        }
    }
}

/// What a window is for; shown with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Continuous trading.
    Session,
    /// An opening or closing auction.
    Auction,
    /// Clearing and settlement.
    Settlement,
    /// A batch run.
    Batch,
    /// A one-off event (index rebalance, migration, launch).
    Event,
}

/// One critical window: recurring on `days` (not on holidays), or once on `date`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Its name (`morning session`, `09:30 open`).
    pub name: String,
    /// What it is for.
    pub kind: WindowKind,
    /// Local start time, `HH:MM`.
    pub start: LocalTime,
    /// Local end time, `HH:MM`; at or before `start`, the window ends the next day.
    pub end: LocalTime,
    /// Weekdays it recurs on (`mon` ... `sun`); default Monday to Friday. Ignored with `date`.
    #[serde(default = "weekdays")]
    pub days: Vec<Weekday>,
    /// The one date it happens on (then holidays do not cancel it).
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// Priority levels an incident in it is raised by (P3 to P2 with 1).
    #[serde(default = "one")]
    pub raise_priority: u8,
    /// Services it concerns; empty: all.
    #[serde(default)]
    pub services: Vec<String>,
}

fn weekdays() -> Vec<Weekday> {
    vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
}

fn one() -> u8 {
    1
}

impl WindowConfig {
    /// When it starts and ends on local `date`, if it opens that day.
    pub fn on(
        &self,
        date: NaiveDate,
        holidays: &[NaiveDate],
    ) -> Option<(NaiveDateTime, NaiveDateTime)> {
        use chrono::Datelike;
        let opens = match self.date {
            Some(only) => only == date,
            None => self.days.contains(&date.weekday()) && !holidays.contains(&date),
        };
        if !opens {
            return None;
        }
        let start = date.and_time(self.start.0);
        let end_date = if self.end.0 <= self.start.0 {
            date.succ_opt()?
        } else {
            date
        };
        Some((start, end_date.and_time(self.end.0)))
    }
}

/// A local time of day written `HH:MM` (or `HH:MM:SS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime(pub NaiveTime);

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.format("%H:%M").to_string())
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M:%S"))
            .map(LocalTime)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a time of day HH:MM")))
    }
}

fn serialize_time_zone<S: Serializer>(zone: &Tz, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(zone.name())
}

fn deserialize_time_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an IANA time zone (such as Asia/Shanghai or America/New_York)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calendar_reads_from_toml_with_its_zone_times_days_and_dates() {
        let calendar: CalendarConfig = toml::from_str(
            r#"
            time_zone = "America/New_York"
            holidays = ["2026-11-26"]
            [[windows]]
            name = "09:30 open"
            kind = "auction"
            start = "09:25"
            end = "09:35"
            [[windows]]
            name = "night batch"
            kind = "batch"
            start = "22:00"
            end = "02:00"
            days = ["sun", "mon"]
            services = ["ledger"]
            raise_priority = 2
            "#,
        )
        .unwrap();
        assert_eq!(calendar.time_zone, chrono_tz::America::New_York);
        assert_eq!(calendar.windows[0].days.len(), 5);
        assert_eq!(calendar.windows[1].raise_priority, 2);
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let (start, end) = calendar.windows[1].on(monday, &calendar.holidays).unwrap();
        assert_eq!(start.to_string(), "2026-11-23 22:00:00");
        assert_eq!(end.to_string(), "2026-11-24 02:00:00");
        let thanksgiving = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert!(
            calendar.windows[0]
                .on(thanksgiving, &calendar.holidays)
                .is_none()
        );
    }

    #[test]
    fn a_bad_zone_or_time_is_refused_with_what_was_wrong() {
        let error = toml::from_str::<CalendarConfig>(r#"time_zone = "Mars/Olympus""#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not an IANA time zone"), "{error}");
        let error = toml::from_str::<CalendarConfig>(
            "[[windows]]\nname = \"x\"\nkind = \"session\"\nstart = \"9.30\"\nend = \"11:30\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not a time of day"), "{error}");
    }
}
