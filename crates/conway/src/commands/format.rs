//! Times and durations for people: UTC timestamps from microseconds since the epoch,
//! and durations in the largest unit that keeps them short.

/// `2024-05-01 12:00:00.123` (UTC) from microseconds since the Unix epoch.
pub(crate) fn timestamp(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let millis = micros.rem_euclid(1_000_000) / 1_000;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = conway_core::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// `850µs`, `12.3ms`, `1.25s`.
pub(crate) fn duration(micros: i64) -> String {
    let micros = micros.max(0);
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2}s", micros as f64 / 1_000_000.0)
    }
}

/// A latency in milliseconds, or `-`.
pub(crate) fn millis(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| duration((ms * 1_000.0) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(timestamp(1_714_564_801_123_456), "2024-05-01 12:00:01.123");
        assert_eq!(timestamp(951_782_400_000_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(850), "850µs");
        assert_eq!(duration(12_345), "12.3ms");
        assert_eq!(duration(1_250_000), "1.25s");
        assert_eq!(millis(None), "-");
        assert_eq!(millis(Some(80.2)), "80.2ms");
    }
}
