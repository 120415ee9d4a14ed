//! Timestamps as GitLab prints them: `2024-01-02T03:04:05.678Z` (UTC, milliseconds) and
//! dates as `2024-01-02`. Records store these strings so that they sort as text.
//! It never reads the clock itself; callers pass the time (seeded or, for writes, now).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

pub fn format_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.format(&format).unwrap_or_else(|_| at.to_string())
}

pub fn format_date(date: Date) -> String {
    let format = format_description!("[year]-[month]-[day]");
    date.format(&format).unwrap_or_else(|_| date.to_string())
}

/// Accepts an RFC 3339 time or a bare date from a client and prints it the GitLab way.
pub fn normalize_time(raw: &str) -> Option<String> {
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(format_time(at));
    }
    let date = Date::parse(raw.get(..10)?, format_description!("[year]-[month]-[day]")).ok()?;
    Some(format_time(date.midnight().assume_utc()))
}

/// A stored time as Ruby prints a UTC `Time` (`Time#to_s`): `2021-06-18 09:47:37 UTC`, fractional
/// seconds dropped. GitLab interpolates times this way into strings it hashes (a snippet's
/// `hexdigest`). `None` when `raw` is not RFC 3339.
pub fn ruby_utc(raw: &str) -> Option<String> {
    let at = OffsetDateTime::parse(raw, &Rfc3339)
        .ok()?
        .to_offset(UtcOffset::UTC);
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.format(&format).ok()
}

/// A stored RFC 3339 time as seconds since the epoch (for commit dates).
pub fn unix_seconds(raw: &str) -> Option<i64> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_gitlab() {
        let at = OffsetDateTime::from_unix_timestamp(1_574_929_415).unwrap();
        assert_eq!(format_time(at), "2019-11-28T08:23:35.000Z");
        assert_eq!(
            normalize_time("2019-11-28T09:23:35+01:00").as_deref(),
            Some("2019-11-28T08:23:35.000Z")
        );
        assert_eq!(
            normalize_time("2019-11-28").as_deref(),
            Some("2019-11-28T00:00:00.000Z")
        );
        assert_eq!(normalize_time("yesterday"), None);
    }

    #[test]
    fn prints_like_ruby() {
        assert_eq!(
            ruby_utc("2021-06-18T09:47:37.999Z").as_deref(),
            Some("2021-06-18 09:47:37 UTC")
        );
        assert_eq!(
            ruby_utc("2021-06-18T11:47:37+02:00").as_deref(),
            Some("2021-06-18 09:47:37 UTC")
        );
        assert_eq!(ruby_utc("2021-06-18"), None);
        assert_eq!(
            unix_seconds("2019-11-28T08:23:35.000Z"),
            Some(1_574_929_415)
        );
    }
}
