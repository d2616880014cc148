//! Go-formatted text that clients match on (decisions.md 17): `time.Time.String()` and
//! `time.Duration.String()`, reproduced exactly in one place.

use chrono::{DateTime, Timelike, Utc};

/// Go's `time.Time.String()` for a UTC time: `2025-01-01 00:00:00 +0000 UTC`, with the
/// fraction printed only when non-zero and without trailing zeros.
pub fn go_time_string(t: DateTime<Utc>) -> String {
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Go's `time.Duration.String()`, e.g. `168h0m0s`, `1.5s`, `100ms`, `0s`.
pub fn go_duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if n < 1_000_000_000 {
        let (unit, div) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fraction(n, div));
        out.push_str(unit);
        return out;
    }
    let hours = n / 3_600_000_000_000;
    let rem = n % 3_600_000_000_000;
    let minutes = rem / 60_000_000_000;
    let secs_nanos = rem % 60_000_000_000;
    if hours > 0 {
        out.push_str(&format!("{hours}h{minutes}m"));
    } else if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fraction(secs_nanos, 1_000_000_000));
    out.push('s');
    out
}

fn fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let frac = value % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn durations_match_go() {
        const H: i64 = 3_600_000_000_000;
        assert_eq!(go_duration_string(168 * H), "168h0m0s");
        assert_eq!(go_duration_string(H + 90_000_000_000), "1h1m30s");
        assert_eq!(go_duration_string(1_500_000_000), "1.5s");
        assert_eq!(go_duration_string(100_000_000), "100ms");
        assert_eq!(go_duration_string(1_500), "1.5µs");
        assert_eq!(go_duration_string(0), "0s");
        assert_eq!(go_duration_string(61_000_000_000), "1m1s");
    }

    #[test]
    fn times_match_go() {
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(go_time_string(t), "2025-01-01 00:00:00 +0000 UTC");
        let t = t + chrono::Duration::microseconds(123_450);
        assert_eq!(go_time_string(t), "2025-01-01 00:00:00.12345 +0000 UTC");
    }
}
