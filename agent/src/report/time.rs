//! Formatting of capture timestamps as RFC 3339 UTC strings with microseconds
//! (`2026-11-23T10:00:00.000000Z`), without a date-time dependency.

/// Formats nanoseconds since the Unix epoch; microseconds are truncated, not rounded.
pub fn rfc3339_micros(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let micros = ts_ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 1704067200 = 2024-01-01T00:00:00Z (the sample captures' epoch)
        assert_eq!(
            rfc3339_micros(1_704_067_200_301_000_999),
            "2024-01-01T00:00:00.301000Z"
        );
        assert_eq!(
            rfc3339_micros(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339_micros(-1_000), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            rfc3339_micros(1_795_427_999_123_456_789),
            "2026-11-23T09:59:59.123456Z"
        );
    }
}
