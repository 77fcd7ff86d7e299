//! The one timestamp type of voqa: nanoseconds since the Unix epoch (UTC, proleptic Gregorian
//! calendar), written on the wire as RFC 3339 UTC with microseconds
//! (`2026-11-23T09:00:00.123456Z`).
//!
//! Agent and collector both use this type and only this type: packet times, report windows,
//! heartbeat times and query parameters are parsed and printed here and nowhere else, so the
//! two sides cannot disagree about what a valid instant is. It must not read the clock: every
//! instant is passed in (the callers that need "now" ask the OS themselves).
//!
//! Parsing is strict: a real calendar date (no 2026-02-30), hours 00–23, minutes and seconds
//! 00–59 (no leap second: the ns count cannot hold one), 1–9 fraction digits, and the UTC
//! designator `Z` (or `+00:00`, which RFC 3339 defines as the same). Other offsets are refused
//! rather than converted: every voqa time is UTC, and a local time on the wire is a bug to
//! report, not to guess about. [`Timestamp::parse_date_or_time`] also takes a bare date
//! (midnight UTC) for query parameters; the wire form never does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds per second, minute, hour, day and week.
pub const NS_PER_S: i64 = 1_000_000_000;
pub const NS_PER_MIN: i64 = 60 * NS_PER_S;
pub const NS_PER_HOUR: i64 = 60 * NS_PER_MIN;
pub const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;
pub const NS_PER_WEEK: i64 = 7 * NS_PER_DAY;

/// Earliest and latest years accepted when parsing (four-digit years of RFC 3339).
const MIN_YEAR: i64 = 0;
const MAX_YEAR: i64 = 9999;
// (Only 1677..=2262 fit i64 nanoseconds; `from_date` refuses the rest without overflowing.)

/// An instant: nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a text is not a voqa timestamp. Each variant states its reason once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("not an RFC 3339 UTC time (expected e.g. 2026-11-23T09:00:00.000000Z)")]
    Syntax,
    #[error("no such date: {year:04}-{month:02}-{day:02}")]
    NoSuchDate { year: i64, month: u32, day: u32 },
    #[error("time of day out of range: {hour:02}:{minute:02}:{second:02}")]
    TimeOfDay { hour: u32, minute: u32, second: u32 },
    #[error("more than 9 fraction digits")]
    Fraction,
    #[error("offset {0} is not UTC: voqa times are UTC (Z)")]
    NotUtc(String),
}

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_ns(ns: i64) -> Self {
        Timestamp(ns)
    }

    pub const fn as_ns(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, rounded down.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(NS_PER_S)
    }

    /// Midnight UTC of a calendar date, if the date exists and the year has four digits.
    pub fn from_date(year: i64, month: u32, day: u32) -> Result<Self, TimeError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return Err(TimeError::NoSuchDate { year, month, day });
        }
        days_from_civil(year, month, day)
            .checked_mul(NS_PER_DAY)
            .map(Timestamp)
            // Outside i64 nanoseconds (before 1677 or after 2262): not an instant voqa can hold.
            .ok_or(TimeError::NoSuchDate { year, month, day })
    }

    /// The strict wire form (see the module header).
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        parse(text, false)
    }

    /// The wire form, or a bare date `2026-11-01` meaning its midnight UTC (query parameters).
    pub fn parse_date_or_time(text: &str) -> Result<Self, TimeError> {
        parse(text, true)
    }

    /// The civil date and time of day (UTC): (year, month, day, second of the day).
    pub fn civil(self) -> (i64, u32, u32, u32) {
        let secs = self.0.div_euclid(NS_PER_S);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        (y, m, d, secs.rem_euclid(86_400) as u32)
    }

    pub fn saturating_add_ns(self, ns: i64) -> Self {
        Timestamp(self.0.saturating_add(ns))
    }
}

impl Timestamp {
    /// The wire form written digit by digit into a fixed buffer: the formatting machinery of
    /// `write!` cost 8 % of an `analyze` of 100,000 calls (seven times per call). Every i64
    /// instant has a four-digit year (1677–2262); `None` only outside that, for safety.
    /// Public for writers that spell the wire form themselves (the agent's JSON writer; one
    /// that writes many instants keeps an [`Rfc3339Writer`] instead).
    pub fn rfc3339(self) -> Option<[u8; 27]> {
        Rfc3339Writer::new().write(self)
    }

    /// The same text through `write!` (the reference of the fast form, and its fallback).
    fn fmt_general(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.rem_euclid(NS_PER_S) / 1000;
        let (y, m, d, sod) = self.civil();
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        )
    }
}

/// [`Timestamp::rfc3339`] for a writer of many instants: it remembers the date text of the
/// last day it wrote. The instants of one report mostly fall on a day or two, and the date
/// (a civil-calendar computation) was over half of the cost of each; the time of day is
/// written two digits at a time from a table instead of digit by digit.
#[derive(Debug, Clone)]
pub struct Rfc3339Writer {
    /// Days since the epoch of `date` (`i64::MIN`, which no instant reaches: none yet).
    day: i64,
    date: [u8; 10],
}

impl Default for Rfc3339Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Rfc3339Writer {
    pub const fn new() -> Self {
        Rfc3339Writer {
            day: i64::MIN,
            date: *b"0000-00-00",
        }
    }

    /// `t`'s wire form, as [`Timestamp::rfc3339`] gives it.
    pub fn write(&mut self, t: Timestamp) -> Option<[u8; 27]> {
        let secs = t.0.div_euclid(NS_PER_S);
        let day = secs.div_euclid(86_400);
        if day != self.day {
            let (y, m, d) = civil_from_days(day);
            if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
                return None;
            }
            let mut date = *b"0000-00-00";
            // In range, so the casts are exact.
            put2(&mut date, 0, (y / 100) as u32);
            put2(&mut date, 2, (y % 100) as u32);
            put2(&mut date, 5, m);
            put2(&mut date, 8, d);
            self.day = day;
            self.date = date;
        }
        // Both remainders are non-negative and bounded (a day's seconds, a second's µs).
        let sod = secs.rem_euclid(86_400) as u32;
        let micros = (t.0.rem_euclid(NS_PER_S) / 1000) as u32;
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        b[..10].copy_from_slice(&self.date);
        put2(&mut b, 11, sod / 3600);
        put2(&mut b, 14, sod / 60 % 60);
        put2(&mut b, 17, sod % 60);
        put2(&mut b, 20, micros / 10_000);
        put2(&mut b, 22, micros / 100 % 100);
        put2(&mut b, 24, micros % 100);
        Some(b)
    }
}

/// `value` (below 100) as two ASCII digits at `buf[at..at + 2]` (nothing written where that is
/// outside `buf`). Public for the agent's JSON writer, whose decimals are written the same way.
#[inline(always)]
pub fn put2<const N: usize>(buf: &mut [u8; N], at: usize, value: u32) {
    /// "00" to "99", one after another.
    static PAIRS: [u8; 200] = {
        let mut pairs = [0u8; 200];
        let mut i = 0;
        while i < 100 {
            pairs[2 * i] = b'0' + (i / 10) as u8;
            pairs[2 * i + 1] = b'0' + (i % 10) as u8;
            i += 1;
        }
        pairs
    };
    let from = 2 * (value as usize % 100);
    if let (Some(dst), Some(src)) = (buf.get_mut(at..at + 2), PAIRS.get(from..from + 2)) {
        dst.copy_from_slice(src);
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 UTC with microseconds; sub-microsecond digits are truncated, not rounded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => self.fmt_general(f),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl From<i64> for Timestamp {
    fn from(ns: i64) -> Self {
        Timestamp(ns)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339().as_ref().map(|t| std::str::from_utf8(t)) {
            Some(Ok(text)) => s.serialize_str(text),
            _ => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 UTC time such as 2026-11-23T09:00:00.000000Z")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// The OpenAPI schema of a wire time (feature `openapi`, for the collector's API document):
/// a string in the strict grammar above, so generated examples are ones the parser takes.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .pattern(Some(WIRE_PATTERN))
            .description(Some(
                "RFC 3339 UTC time (Z or +00:00; other offsets are refused), e.g. \
                 2026-11-23T09:00:00.123456Z",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

/// The wire grammar as a regular expression (the calendar and range checks are the parser's).
#[cfg(feature = "openapi")]
pub const WIRE_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00)$";

fn parse(text: &str, allow_date: bool) -> Result<Timestamp, TimeError> {
    let b = text.as_bytes();
    // Longest valid form: 19 + '.' + 9 digits + "+00:00".
    if b.len() > 35 {
        return Err(TimeError::Syntax);
    }
    let num = |from: usize, to: usize| -> Result<u32, TimeError> {
        let digits = b.get(from..to).ok_or(TimeError::Syntax)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(TimeError::Syntax);
        }
        Ok(digits
            .iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0')))
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(TimeError::Syntax);
    }
    let (year, month, day) = (i64::from(num(0, 4)?), num(5, 7)?, num(8, 10)?);
    let midnight = Timestamp::from_date(year, month, day)?;
    if b.len() == 10 {
        return if allow_date {
            Ok(midnight)
        } else {
            Err(TimeError::Syntax)
        };
    }
    if !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return Err(TimeError::Syntax);
    }
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return Err(TimeError::TimeOfDay {
            hour,
            minute,
            second,
        });
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return Err(TimeError::Syntax);
        }
        if digits > 9 {
            return Err(TimeError::Fraction);
        }
        frac_ns = i64::from(num(start, i)?) * 10i64.pow(9 - digits as u32);
    }
    match text.get(i..) {
        Some("Z" | "z" | "+00:00") => {}
        Some(offset)
            if offset.len() == 6
                && matches!(offset.as_bytes()[0], b'+' | b'-')
                && offset.as_bytes()[3] == b':' =>
        {
            return Err(TimeError::NotUtc(offset.to_string()));
        }
        _ => return Err(TimeError::Syntax),
    }
    let sod = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    // Years 0000..=9999 keep every value well inside i64 nanoseconds (±292 years around 1970
    // is the i64 limit, so check instead of assuming).
    midnight
        .0
        .checked_add(sod * NS_PER_S)
        .and_then(|ns| ns.checked_add(frac_ns))
        .map(Timestamp)
        .ok_or(TimeError::NoSuchDate { year, month, day })
}

pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given civil date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Bounded by the algorithm (1..=31 and 1..=12), so the casts are exact.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> i64 {
        Timestamp::parse(s).expect(s).as_ns()
    }

    #[test]
    fn known_instants_print() {
        let show = |ns: i64| Timestamp::from_ns(ns).to_string();
        assert_eq!(show(0), "1970-01-01T00:00:00.000000Z");
        // 1704067200 = 2024-01-01T00:00:00Z (the sample captures' epoch)
        assert_eq!(
            show(1_704_067_200_301_000_999),
            "2024-01-01T00:00:00.301000Z"
        );
        assert_eq!(show(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(show(-1_000), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            show(1_795_427_999_123_456_789),
            "2026-11-23T09:59:59.123456Z"
        );
    }

    #[test]
    fn known_instants_parse() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ts("2024-01-01T00:00:00.301Z"), 1_704_067_200_301_000_000);
        assert_eq!(ts("2000-02-29T12:00:00+00:00"), 951_825_600_000_000_000);
        assert_eq!(
            ts("2026-11-23T09:59:59.123456789Z"),
            1_795_427_999_123_456_789
        );
        assert_eq!(
            Timestamp::parse_date_or_time("2026-11-01").map(Timestamp::as_ns),
            Ok(1_793_491_200_000_000_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_utc_instant() {
        for (bad, why) in [
            ("", TimeError::Syntax),
            ("2026-11-01", TimeError::Syntax),
            ("yesterday", TimeError::Syntax),
            ("2026-11-01T00:00:00.Z", TimeError::Syntax),
            ("2026-11-01 00:00:00Z", TimeError::Syntax),
            ("2026-11-01T00:00:00", TimeError::Syntax),
            ("+2026-11-01T00:00:00Z", TimeError::Syntax),
            (
                "2026-02-30T00:00:00Z",
                TimeError::NoSuchDate {
                    year: 2026,
                    month: 2,
                    day: 30,
                },
            ),
            (
                "2100-02-29T00:00:00Z",
                TimeError::NoSuchDate {
                    year: 2100,
                    month: 2,
                    day: 29,
                },
            ),
            (
                "2026-13-01T00:00:00Z",
                TimeError::NoSuchDate {
                    year: 2026,
                    month: 13,
                    day: 1,
                },
            ),
            (
                "2026-11-01T24:00:00Z",
                TimeError::TimeOfDay {
                    hour: 24,
                    minute: 0,
                    second: 0,
                },
            ),
            (
                "2016-12-31T23:59:60Z",
                TimeError::TimeOfDay {
                    hour: 23,
                    minute: 59,
                    second: 60,
                },
            ),
            ("2026-11-01T00:00:00.1234567890Z", TimeError::Fraction),
            (
                "2026-11-01T00:00:00+02:00",
                TimeError::NotUtc("+02:00".into()),
            ),
        ] {
            assert_eq!(Timestamp::parse(bad).err(), Some(why), "{bad}");
        }
        assert!(Timestamp::parse_date_or_time("2024-02-29").is_ok());
    }

    #[test]
    fn serde_is_the_rfc3339_string() {
        let t = Timestamp::from_ns(1_795_427_999_123_456_000);
        let json = serde_json::to_string(&t).expect("serialize");
        assert_eq!(json, "\"2026-11-23T09:59:59.123456Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
        let err = serde_json::from_str::<Timestamp>("\"2026-02-30T00:00:00Z\"")
            .expect_err("no such date");
        assert!(err.to_string().contains("no such date"), "{err}");
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }

    proptest! {
        /// Printing then parsing gives back the instant truncated to the microsecond.
        #[test]
        fn round_trip(ns in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            let t = Timestamp::from_ns(ns);
            let back = Timestamp::parse(&t.to_string()).map(Timestamp::as_ns);
            prop_assert_eq!(back, Ok(ns - ns.rem_euclid(1000)));
        }

        /// Any text at all: an answer, never a panic.
        #[test]
        fn fast_form_is_the_general_form(ns in any::<i64>()) {
            struct General(Timestamp);
            impl fmt::Display for General {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.fmt_general(f)
                }
            }
            let t = Timestamp::from_ns(ns);
            prop_assert_eq!(t.to_string(), General(t).to_string());
            prop_assert_eq!(
                serde_json::to_string(&t).expect("serialize"),
                format!("\"{}\"", General(t))
            );
        }

        /// One writer over a run of instants (close together, so its day is reused, and far
        /// apart, so it changes, backwards too) writes each as the general form does.
        #[test]
        fn remembered_day_is_the_general_form(
            start in any::<i64>(),
            steps in proptest::collection::vec(
                prop_oneof![-NS_PER_DAY..NS_PER_DAY, any::<i64>()],
                1..20,
            ),
        ) {
            struct General(Timestamp);
            impl fmt::Display for General {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.fmt_general(f)
                }
            }
            let mut writer = Rfc3339Writer::new();
            let mut ns = start;
            for step in steps {
                let t = Timestamp::from_ns(ns);
                let text = writer.write(t).map(|b| String::from_utf8_lossy(&b).into_owned());
                prop_assert_eq!(text, Some(General(t).to_string()));
                ns = ns.wrapping_add(step);
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse_date_or_time(&s);
        }

        /// The date arithmetic agrees with counting days one by one from the epoch.
        #[test]
        fn civil_days_agree(days in -800_000i64..800_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
            prop_assert!(d >= 1 && d <= days_in_month(y, m));
        }
    }
}
