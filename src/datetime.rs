//! Times as people read them (pages, the audit export, the CLI, error messages) and as forms write them: compiled
//! for both targets, used by the server and the browser alike.

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

/// Reads a UTC time a form sends: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (a `datetime-local` input), seconds allowed.
/// Returns the start (Unix ms) and how long the value spans (a day, a minute or a second), so that an inclusive
/// "to" covers the whole day or minute written. `None` when it is not such a time.
pub fn parse_time(value: &str) -> Option<(i64, i64)> {
    let (date, clock) = match value.trim().split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (value.trim(), None),
    };
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let month_days = [
        31,
        if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) {
            29
        } else {
            28
        },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    // Days-from-civil (H. Hinnant), the inverse of `format_time`.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let Some(clock) = clock else {
        return Some((days * 86_400_000, 86_400_000));
    };
    let parts: Vec<Option<i64>> = clock.split(':').map(|p| p.parse().ok()).collect();
    let (h, min, sec, span) = match parts.as_slice() {
        [Some(h), Some(m)] => (*h, *m, 0, 60_000),
        [Some(h), Some(m), Some(s)] => (*h, *m, *s, 1_000),
        _ => return None,
    };
    if !(0..24).contains(&h) || !(0..60).contains(&min) || !(0..60).contains(&sec) {
        return None;
    }
    Some((days * 86_400_000 + (h * 3600 + min * 60 + sec) * 1000, span))
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_times_parse_as_utc_spans() {
        use super::parse_time;
        assert_eq!(parse_time("1970-01-01"), Some((0, 86_400_000)));
        assert_eq!(parse_time("2026-11-22T14:05"), Some((1_795_356_300_000, 60_000)));
        assert_eq!(parse_time("2026-11-22 14:05:07"), Some((1_795_356_307_000, 1_000)));
        assert_eq!(
            super::format_time(parse_time("2024-02-29").unwrap().0),
            "2024-02-29 00:00 UTC"
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-11-22T24:00",
            "2026-11-22T10",
            "12345",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

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
