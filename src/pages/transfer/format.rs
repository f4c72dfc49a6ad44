//! Sizes, rates and file times as the file manager and task pages show them.

/// Bytes in decimal units, as Globus shows them: `950 B`, `4.2 kB`, `4.2 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A transfer rate: `12 MB/s`.
pub fn rate(bytes_per_second: u64) -> String {
    format!("{}/s", bytes(bytes_per_second))
}

/// Transfer's `2023-05-20 04:37:33+00:00` as `2023-05-20 04:37 UTC`; anything else as it came.
pub fn file_time(value: &str) -> String {
    match (value.get(..16), value.get(19..)) {
        (Some(minute), Some("+00:00")) if value.as_bytes().get(10) == Some(&b' ') => format!("{minute} UTC"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB");
        assert_eq!(bytes(4_200_000_000), "4.2 GB");
        assert_eq!(bytes(56_700_000), "57 MB");
        assert_eq!(bytes(999_990), "1.0 MB");
        assert_eq!(bytes(u64::MAX), "18 EB");
        assert_eq!(rate(12_000_000), "12 MB/s");
    }

    #[test]
    fn file_times_drop_seconds_and_name_the_zone() {
        assert_eq!(file_time("2023-05-20 04:37:33+00:00"), "2023-05-20 04:37 UTC");
        assert_eq!(file_time("2023-05-20 04:37:33+02:00"), "2023-05-20 04:37:33+02:00");
        assert_eq!(file_time(""), "");
    }
}
