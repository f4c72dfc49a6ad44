//! Times as pages show them.

/// Unix ms as `2026-11-22 14:05 UTC`.
pub fn format_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) / 1000;
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Unix ms as an HTML `datetime` value (RFC 3339, UTC, milliseconds): machine-readable, for tests and tools.
pub fn iso_time(ms: i64) -> String {
    let minute = format_time(ms);
    let (date, rest) = minute.split_once(' ').unwrap_or((&minute, ""));
    let hm = rest.trim_end_matches(" UTC");
    let second = ms.rem_euclid(60_000);
    format!("{date}T{hm}:{:02}.{:03}Z", second / 1000, second % 1000)
}

/// A span of `ms` from now, in words: "in 47 min 12 s", "in 2 h 05 min", "expired".
pub fn until(ms: i64) -> String {
    if ms <= 0 {
        return "expired".to_owned();
    }
    let secs = (ms + 999) / 1000;
    match secs {
        s if s < 60 => format!("in {s} s"),
        s if s < 3600 => format!("in {} min {:02} s", s / 60, s % 60),
        s if s < 86_400 => format!("in {} h {:02} min", s / 3600, s % 3600 / 60),
        s if s < 2 * 86_400 => format!("in 1 day {} h", (s - 86_400) / 3600),
        s => format!("in {} days", s / 86_400),
    }
}

/// How long ago `then` was at `now`, in words: "just now", "5 min ago", "3 h ago", else the date.
pub fn ago(then: i64, now: i64) -> String {
    let secs = (now - then).max(0) / 1000;
    match secs {
        s if s < 60 => "just now".to_owned(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        _ => format_time(then),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_read_as_words() {
        assert_eq!(super::iso_time(1_795_356_307_089), "2026-11-22T14:05:07.089Z");
        assert_eq!(super::until(0), "expired");
        assert_eq!(super::until(-5), "expired");
        assert_eq!(super::until(1), "in 1 s");
        assert_eq!(super::until(59_000), "in 59 s");
        assert_eq!(super::until(2_832_000), "in 47 min 12 s");
        assert_eq!(super::until(7_500_000), "in 2 h 05 min");
        assert_eq!(super::until(3 * 86_400_000), "in 3 days");
        assert_eq!(super::until(86_400_000 + 5 * 3_600_000), "in 1 day 5 h");
        assert_eq!(super::ago(0, 30_000), "just now");
        assert_eq!(super::ago(0, 300_000), "5 min ago");
        assert_eq!(super::ago(0, 3 * 3_600_000), "3 h ago");
    }

    #[test]
    fn times_render_in_utc() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::format_time(1_795_356_300_000), "2026-11-22 14:05 UTC");
    }
}
