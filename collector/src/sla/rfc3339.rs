//! RFC 3339 timestamps <-> nanoseconds since the Unix epoch, UTC, proleptic Gregorian calendar.
//!
//! The SLA code gets its times as `i64` nanoseconds and reads the wire's `window_start`
//! strings; this module converts between the two without a date crate. It must not read the
//! clock: every instant is passed in.

/// Nanoseconds per second, minute, hour, day and week.
pub const NS_PER_S: i64 = 1_000_000_000;
pub const NS_PER_MIN: i64 = 60 * NS_PER_S;
pub const NS_PER_HOUR: i64 = 60 * NS_PER_MIN;
pub const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;
pub const NS_PER_WEEK: i64 = 7 * NS_PER_DAY;

/// Days from 1970-01-01 to the given civil date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count from 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    // Both values are bounded by the algorithm (1..=31 and 1..=12), so the casts are exact.
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

fn digits(bytes: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    let field = bytes.get(range)?;
    field.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to nanoseconds since the epoch.
///
/// Fractions beyond nanoseconds are truncated; `None` for anything malformed or out of the
/// `i64` range (years after 2262).
pub fn parse_ns(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let year = i64::from(digits(b, 0..4)?);
    let month = digits(b, 5..7)?;
    let day = digits(b, 8..10)?;
    let hour = digits(b, 11..13)?;
    let minute = digits(b, 14..16)?;
    let second = digits(b, 17..19)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut fraction_ns: i64 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        let mut scale = 100_000_000;
        while let Some(&d) = b.get(pos).filter(|d| d.is_ascii_digit()) {
            fraction_ns += i64::from(d - b'0') * scale;
            scale /= 10;
            pos += 1;
        }
        if pos == start {
            return None;
        }
    }
    let offset_s: i64 = match b.get(pos..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2], 0..2)?;
            let minutes = digits(&[*m1, *m2], 0..2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_s;
    seconds.checked_mul(NS_PER_S)?.checked_add(fraction_ns)
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC: `2026-11-01T02:00:00Z`, with a
/// fraction (3, 6 or 9 digits) only when the instant is not a whole second.
pub fn format_ns(ns: i64) -> String {
    let seconds = ns.div_euclid(NS_PER_S);
    let nanos = ns.rem_euclid(NS_PER_S);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_ns("1970-01-01T00:00:00Z"), Some(0));
        // 2026-11-01 is day 20,758 since the epoch: 56 years incl. 14 leap days = 20,454, + 304.
        assert_eq!(days_from_civil(2026, 11, 1), 20_758);
        assert_eq!(
            parse_ns("2026-11-01T00:00:00Z"),
            Some(20_758 * 86_400 * NS_PER_S)
        );
        assert_eq!(
            parse_ns("2026-11-23T10:00:00.000000Z"),
            Some((20_780 * 86_400 + 36_000) * NS_PER_S)
        );
        assert_eq!(parse_ns("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_ns("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(parse_ns("1970-01-01T00:00:00.5Z"), Some(500_000_000));
        assert_eq!(
            parse_ns("1970-01-01T00:00:00.1234567899Z"),
            Some(123_456_789)
        );
        assert_eq!(
            parse_ns("2024-02-29T00:00:00Z"),
            Some(19_782 * 86_400 * NS_PER_S)
        );
    }

    #[test]
    fn rejects_malformed_instants() {
        for bad in [
            "",
            "2026-11-01",
            "2026-11-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:00:00.Z",
            "2026-11-01T00:00:00+0100",
            "2026-11-01T00:00:00Zjunk",
            "2026-1a-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_with_the_shortest_exact_fraction() {
        assert_eq!(format_ns(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ns(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format_ns(1_500_000_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_ns(1_000_001_000), "1970-01-01T00:00:01.000001Z");
        assert_eq!(
            format_ns(20_758 * NS_PER_DAY + 2 * NS_PER_HOUR),
            "2026-11-01T02:00:00Z"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = parse_ns(&text);
        }

        #[test]
        fn format_parse_round_trip(ns in -8_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            prop_assert_eq!(parse_ns(&format_ns(ns)), Some(ns));
        }

        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
