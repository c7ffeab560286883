//! Timestamps on the wire are RFC 3339 in UTC with milliseconds: `2026-11-21T06:25:00.123Z`.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Milliseconds since the epoch as RFC 3339, always with three fractional digits.
pub fn format_millis(millis: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&format)
        .unwrap_or_default()
}

/// The years a timestamp on the wire may name.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// RFC 3339 (any offset) to milliseconds since the epoch, for instants in the years 1970 to 9999
/// (UTC). Longer than any timestamp is refused before it is parsed.
pub fn parse_millis(text: &str) -> Result<i64, String> {
    const OUT_OF_RANGE: &str = "must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z";
    if text.len() > 64 {
        return Err("is not an RFC 3339 timestamp (too long)".to_owned());
    }
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("is not an RFC 3339 timestamp ({e})"))?;
    let utc = at.checked_to_offset(UtcOffset::UTC).filter(|utc| YEARS.contains(&utc.year())).ok_or(OUT_OF_RANGE)?;
    i64::try_from(utc.unix_timestamp_nanos() / 1_000_000).map_err(|_| OUT_OF_RANGE.to_owned())
}

/// The current time in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).expect("the present fits in i64 ms")
}

/// A calendar date `YYYY-MM-DD` to days since the epoch.
pub fn parse_date(text: &str) -> Result<i32, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| "is not a date of the form YYYY-MM-DD".to_owned())?;
    Ok(date.to_julian_day()
        - time::Date::from_calendar_date(1970, time::Month::January, 1).expect("valid").to_julian_day())
}

/// Days since the epoch as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).expect("valid").to_julian_day();
    time::Date::from_julian_day(epoch + days).map(|d| d.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_utc_with_milliseconds() {
        assert_eq!(format_millis(1_763_706_300_123), "2025-11-21T06:25:00.123Z");
        assert_eq!(format_millis(1_763_706_300_000), "2025-11-21T06:25:00.000Z");
        assert_eq!(parse_millis("2025-11-21T07:25:00.123+01:00"), Ok(1_763_706_300_123));
        assert!(parse_millis("yesterday").is_err());
    }

    #[test]
    fn instants_outside_the_years_1970_to_9999_are_refused_not_a_panic() {
        assert!(parse_millis("9999-12-31T23:59:59-01:00").is_err());
        assert!(parse_millis("9999-12-31T23:59:59+01:00").is_ok());
        assert!(parse_millis("0000-01-01T00:00:00+23:59").is_err());
        assert!(parse_millis("1969-12-31T23:59:59Z").is_err());
        assert!(parse_millis(&format!("2026-01-01T00:00:00.{}Z", "1".repeat(100))).is_err());
    }

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(parse_date("1970-01-02"), Ok(1));
        assert_eq!(format_date(1), "1970-01-02");
        assert_eq!(format_date(parse_date("2026-11-21").expect("valid")), "2026-11-21");
        assert!(parse_date("2026-13-01").is_err());
    }
}
