//! Weekly maintenance windows such as `"Sun 02:00-04:00 UTC"`, and their occurrences in a period.
//!
//! Windows are UTC only (no daylight-saving shifts: a window is the same 7-day-periodic span of
//! UTC time every week). An end at or before the start crosses midnight into the next day
//! (`"Sat 23:00-01:00 UTC"` is Saturday 23:00 to Sunday 01:00); `24:00` is allowed as an end.
//! Pure: the period is passed in, the clock is never read.

use std::fmt;
use std::str::FromStr;

use voqa_wire::time::{NS_PER_DAY, NS_PER_MIN, NS_PER_WEEK};

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MINUTES_PER_DAY: u32 = 24 * 60;

/// Why a maintenance window string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaintenanceError {
    #[error("expected \"Day HH:MM-HH:MM UTC\", e.g. \"Sun 02:00-04:00 UTC\"")]
    Format,
    #[error("unknown day {0:?} (use Mon, Tue, Wed, Thu, Fri, Sat or Sun)")]
    Day(String),
    #[error("invalid time {0:?} (use HH:MM from 00:00 to 23:59, or 24:00 as an end)")]
    Time(String),
    #[error("time zone {0:?} is not supported (write UTC)")]
    Zone(String),
    #[error("window starts and ends at the same time")]
    Empty,
}

/// One weekly window: a weekday, a start minute of that day and a length of at most 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// 0 = Monday … 6 = Sunday.
    weekday: u8,
    start_minute: u32,
    duration_minutes: u32,
}

fn parse_clock(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.is_empty()
        || hours.len() > 2
        || minutes.len() != 2
        || !hours
            .bytes()
            .chain(minutes.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    (minutes < 60 && hours * 60 + minutes <= MINUTES_PER_DAY).then_some(hours * 60 + minutes)
}

impl FromStr for MaintenanceWindow {
    type Err = MaintenanceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split_whitespace();
        let (Some(day), Some(span), zone, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MaintenanceError::Format);
        };
        match zone {
            Some(zone) if zone.eq_ignore_ascii_case("UTC") => {}
            Some(zone) => return Err(MaintenanceError::Zone(zone.to_owned())),
            // A window without a zone would be read differently by different people.
            None => return Err(MaintenanceError::Format),
        }
        let weekday = DAY_NAMES
            .iter()
            .position(|name| name.eq_ignore_ascii_case(day))
            .ok_or_else(|| MaintenanceError::Day(day.to_owned()))?;
        let (start, end) = span.split_once('-').ok_or(MaintenanceError::Format)?;
        let start_minute = parse_clock(start)
            .filter(|&m| m < MINUTES_PER_DAY)
            .ok_or_else(|| MaintenanceError::Time(start.to_owned()))?;
        let end_minute = parse_clock(end).ok_or_else(|| MaintenanceError::Time(end.to_owned()))?;
        let duration_minutes = if end_minute > start_minute {
            end_minute - start_minute
        } else if end_minute % MINUTES_PER_DAY == start_minute {
            return Err(MaintenanceError::Empty);
        } else {
            end_minute + MINUTES_PER_DAY - start_minute
        };
        Ok(Self {
            weekday: weekday as u8,
            start_minute,
            duration_minutes,
        })
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = (self.start_minute + self.duration_minutes) % MINUTES_PER_DAY;
        // Only "00:00-24:00" ends at 24:00; a window ending at midnight after a later start
        // reads naturally as "22:30-00:00".
        let end = if end == 0 && self.start_minute == 0 {
            MINUTES_PER_DAY
        } else {
            end
        };
        write!(
            f,
            "{} {:02}:{:02}-{:02}:{:02} UTC",
            DAY_NAMES.get(usize::from(self.weekday)).unwrap_or(&"?"),
            self.start_minute / 60,
            self.start_minute % 60,
            end / 60,
            end % 60
        )
    }
}

/// Monday 00:00 UTC of the week containing `ns` (1970-01-01 was a Thursday).
fn week_start(ns: i64) -> i64 {
    let day = ns.div_euclid(NS_PER_DAY);
    (day - (day + 3).rem_euclid(7)) * NS_PER_DAY
}

impl MaintenanceWindow {
    /// Occurrences `[start, end)` of this window that overlap `[from_ns, to_ns)`, clipped to it,
    /// in time order.
    pub fn occurrences(&self, from_ns: i64, to_ns: i64) -> Vec<(i64, i64)> {
        let mut spans = Vec::new();
        if from_ns >= to_ns {
            return spans;
        }
        let offset =
            i64::from(self.weekday) * NS_PER_DAY + i64::from(self.start_minute) * NS_PER_MIN;
        let length = i64::from(self.duration_minutes) * NS_PER_MIN;
        // Start one week early: last week's window may cross into this one (Sun 23:00-01:00).
        let mut week = week_start(from_ns).saturating_sub(NS_PER_WEEK);
        loop {
            let start = week.saturating_add(offset);
            if start >= to_ns {
                break;
            }
            let end = start.saturating_add(length);
            let (clipped_start, clipped_end) = (start.max(from_ns), end.min(to_ns));
            if clipped_start < clipped_end {
                spans.push((clipped_start, clipped_end));
            }
            match week.checked_add(NS_PER_WEEK) {
                Some(next) => week = next,
                None => break,
            }
        }
        spans
    }
}

/// The union of all windows' occurrences within `[from_ns, to_ns)`: sorted, disjoint spans.
pub fn maintenance_spans(
    windows: &[MaintenanceWindow],
    from_ns: i64,
    to_ns: i64,
) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = windows
        .iter()
        .flat_map(|window| window.occurrences(from_ns, to_ns))
        .collect();
    super::uptime::merge_spans(&mut spans);
    spans
}

/// Parses a customer's window strings, keeping the index of the first bad one for the error.
pub fn parse_windows(
    texts: &[String],
) -> Result<Vec<MaintenanceWindow>, (usize, MaintenanceError)> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| text.parse().map_err(|e| (index, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use voqa_wire::Timestamp;
    use voqa_wire::time::NS_PER_HOUR;

    fn at(text: &str) -> i64 {
        Timestamp::parse(text).map_or(i64::MIN, Timestamp::as_ns)
    }

    #[test]
    fn parses_valid_windows() {
        let w: MaintenanceWindow = "Sun 02:00-04:00 UTC".parse().expect("valid");
        assert_eq!(
            w,
            MaintenanceWindow {
                weekday: 6,
                start_minute: 120,
                duration_minutes: 120
            }
        );
        assert_eq!(w.to_string(), "Sun 02:00-04:00 UTC");
        let w: MaintenanceWindow = "  sat   23:00-01:00  utc ".parse().expect("valid");
        assert_eq!(
            (w.weekday, w.start_minute, w.duration_minutes),
            (5, 1380, 120)
        );
        assert_eq!(w.to_string(), "Sat 23:00-01:00 UTC");
        let w: MaintenanceWindow = "Wed 0:00-24:00 UTC".parse().expect("valid");
        assert_eq!(
            (w.weekday, w.start_minute, w.duration_minutes),
            (2, 0, 1440)
        );
        assert_eq!(w.to_string(), "Wed 00:00-24:00 UTC");
        let w: MaintenanceWindow = "Mon 22:30-00:00 UTC".parse().expect("valid");
        assert_eq!(w.duration_minutes, 90);
        assert_eq!(w.to_string(), "Mon 22:30-00:00 UTC");
    }

    #[test]
    fn refuses_invalid_windows() {
        use MaintenanceError as E;
        let cases = [
            ("", E::Format),
            ("Sun 02:00-04:00", E::Format),
            ("Sun 02:00-04:00 UTC extra", E::Format),
            ("Sun 02:00 04:00 UTC", E::Format),
            ("Sunday 02:00-04:00 UTC", E::Day("Sunday".into())),
            ("Dim 02:00-04:00 UTC", E::Day("Dim".into())),
            ("Sun 2-4 UTC", E::Time("2".into())),
            ("Sun 02:60-04:00 UTC", E::Time("02:60".into())),
            ("Sun 24:00-01:00 UTC", E::Time("24:00".into())),
            ("Sun 02:00-24:01 UTC", E::Time("24:01".into())),
            ("Sun 02:00-4:0 UTC", E::Time("4:0".into())),
            ("Sun +2:00-04:00 UTC", E::Time("+2:00".into())),
            ("Sun 02:00-04:00 CET", E::Zone("CET".into())),
            (
                "Sun 02:00-04:00 Europe/Paris",
                E::Zone("Europe/Paris".into()),
            ),
            ("Sun 02:00-02:00 UTC", E::Empty),
            ("Sun 00:00-24:00x UTC", E::Time("24:00x".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<MaintenanceWindow>(), Err(expected), "{text}");
        }
        assert_eq!(
            parse_windows(&["Sun 02:00-04:00 UTC".into(), "Sun 02:00-04:00 CEST".into()]),
            Err((1, E::Zone("CEST".into())))
        );
    }

    #[test]
    fn occurrences_in_november_2026() {
        // 2026-11-01 is a Sunday: Sundays 1, 8, 15, 22 and 29.
        let w: MaintenanceWindow = "Sun 02:00-04:00 UTC".parse().expect("valid");
        let from = at("2026-11-01T00:00:00Z");
        let to = at("2026-12-01T00:00:00Z");
        let spans = w.occurrences(from, to);
        let starts: Vec<i64> = spans.iter().map(|s| s.0).collect();
        assert_eq!(
            starts,
            [1, 8, 15, 22, 29].map(|d| at(&format!("2026-11-{d:02}T02:00:00Z")))
        );
        assert!(spans.iter().all(|(s, e)| e - s == 2 * NS_PER_HOUR));
    }

    #[test]
    fn windows_crossing_midnight_and_week_boundaries() {
        // Sun 23:00 - Mon 01:00 crosses from one ISO week into the next.
        let w: MaintenanceWindow = "Sun 23:00-01:00 UTC".parse().expect("valid");
        let from = at("2026-11-02T00:00:00Z"); // Monday
        let to = at("2026-11-03T00:00:00Z");
        assert_eq!(
            w.occurrences(from, to),
            vec![(from, at("2026-11-02T01:00:00Z"))]
        );
        let w: MaintenanceWindow = "Sat 23:00-01:00 UTC".parse().expect("valid");
        let from = at("2026-11-07T00:00:00Z"); // Saturday
        let to = at("2026-11-09T00:00:00Z");
        assert_eq!(
            w.occurrences(from, to),
            vec![(at("2026-11-07T23:00:00Z"), at("2026-11-08T01:00:00Z"))]
        );
    }

    #[test]
    fn utc_semantics_ignore_daylight_saving() {
        // 2026-03-29 is the EU switch to summer time; the window stays at 02:00 UTC anyway.
        let w: MaintenanceWindow = "Sun 02:00-04:00 UTC".parse().expect("valid");
        let spans = w.occurrences(at("2026-03-22T00:00:00Z"), at("2026-04-06T00:00:00Z"));
        assert_eq!(
            spans,
            vec![
                (at("2026-03-22T02:00:00Z"), at("2026-03-22T04:00:00Z")),
                (at("2026-03-29T02:00:00Z"), at("2026-03-29T04:00:00Z")),
                (at("2026-04-05T02:00:00Z"), at("2026-04-05T04:00:00Z")),
            ]
        );
    }

    #[test]
    fn overlapping_windows_are_merged_and_clipped() {
        let windows: Vec<MaintenanceWindow> = ["Sun 02:00-04:00 UTC", "Sun 03:00-05:00 UTC"]
            .iter()
            .map(|t| t.parse().expect("valid"))
            .collect();
        let from = at("2026-11-01T03:30:00Z");
        let to = at("2026-11-08T00:00:00Z");
        assert_eq!(
            maintenance_spans(&windows, from, to),
            vec![(from, at("2026-11-01T05:00:00Z"))]
        );
        assert!(maintenance_spans(&windows, to, from).is_empty());
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,30}") {
            let _ = text.parse::<MaintenanceWindow>();
        }

        #[test]
        fn display_round_trips(day in 0usize..7, start in 0u32..1440, length in 1u32..=1440) {
            let end = (start + length) % 1440;
            let text = format!(
                "{} {:02}:{:02}-{:02}:{:02} UTC",
                DAY_NAMES[day], start / 60, start % 60, end / 60, end % 60
            );
            match text.parse::<MaintenanceWindow>() {
                Ok(w) => {
                    prop_assert_eq!(w.parse_back(), Ok(w));
                    prop_assert_eq!(w.duration_minutes, length);
                }
                Err(e) => prop_assert!(length == 1440 && e == MaintenanceError::Empty),
            }
        }

        #[test]
        fn occurrences_stay_inside_the_period(
            day in 0usize..7, start in 0u32..1440, length in 1u32..1440,
            from in -2_000_000_000_000_000_000i64..2_000_000_000_000_000_000,
            span in 0i64..100 * NS_PER_DAY,
        ) {
            let window = MaintenanceWindow { weekday: day as u8, start_minute: start, duration_minutes: length };
            let to = from + span;
            let spans = window.occurrences(from, to);
            let total: i64 = spans.iter().map(|(s, e)| e - s).sum();
            prop_assert!(spans.iter().all(|&(s, e)| from <= s && s < e && e <= to));
            prop_assert!(spans.windows(2).all(|p| p[0].1 <= p[1].0));
            // Each full week holds exactly one occurrence.
            let weeks = span / NS_PER_WEEK;
            prop_assert!(total >= weeks * i64::from(length) * NS_PER_MIN);
            prop_assert!(total <= (weeks + 1) * i64::from(length) * NS_PER_MIN);
        }
    }

    impl MaintenanceWindow {
        fn parse_back(&self) -> Result<Self, MaintenanceError> {
            self.to_string().parse()
        }
    }
}
