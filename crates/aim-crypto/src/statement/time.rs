//! Statement timestamps: RFC 3339 in UTC with a literal `Z` and 0–9 fraction digits, and the
//! ±30 s window check as a pure function of the verifier's clock.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Reason, StatementError, WINDOW_SECS};

/// A statement's signed time: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatementTime {
    secs: i64,
    nanos: u32,
}

impl StatementTime {
    /// A time from Unix seconds and nanoseconds; `None` outside years 0000–9999 or with
    /// `nanos` ≥ 10⁹.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
        const MIN: i64 = -62_167_219_200;
        const MAX: i64 = 253_402_300_799;
        ((MIN..=MAX).contains(&secs) && nanos < 1_000_000_000).then_some(Self { secs, nanos })
    }

    /// The time of a `SystemTime` (`None` outside years 1970–9999).
    pub fn from_system_time(t: SystemTime) -> Option<Self> {
        let d = t.duration_since(UNIX_EPOCH).ok()?;
        Self::from_unix(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
    }

    /// Unix seconds.
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` with every field in range (no leap second, no
    /// offset other than `Z`, no lower-case `t`/`z`, no words such as `now`).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() < 20 || b[b.len() - 1] != b'Z' {
            return None;
        }
        let shape = [4, 2, 2, 2, 2, 2];
        let seps = [b'-', b'-', b'T', b':', b':'];
        let mut fields = [0u32; 6];
        let mut pos = 0;
        for (i, width) in shape.into_iter().enumerate() {
            fields[i] = decimal(b.get(pos..pos + width)?)?;
            pos += width;
            if let Some(&sep) = seps.get(i) {
                (b.get(pos) == Some(&sep)).then_some(())?;
                pos += 1;
            }
        }
        let nanos = fraction(&b[pos..b.len() - 1])?;
        let [year, month, day, hour, minute, second] = fields;
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(i64::from(year), month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Self::from_unix(secs, nanos)
    }

    /// Checks the window: `now − 30 s ≤ self ≤ now + 30 s`, inclusive, to the nanosecond.
    /// Refuses with [`Reason::TimestampOutsideWindow`] (also when `now` is not representable).
    pub fn check_window(&self, now: SystemTime) -> Result<(), StatementError> {
        let outside = |why| StatementError::new(Reason::TimestampOutsideWindow, why);
        let now = Self::from_system_time(now).ok_or_else(|| outside("the clock is unusable"))?;
        let window = i128::from(WINDOW_SECS) * 1_000_000_000;
        let (signed, clock) = (self.as_nanos(), now.as_nanos());
        if signed < clock - window {
            Err(outside(
                "the statement timestamp is more than 30 seconds behind the clock",
            ))
        } else if signed > clock + window {
            Err(outside(
                "the statement timestamp is more than 30 seconds ahead of the clock",
            ))
        } else {
            Ok(())
        }
    }

    fn as_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

impl fmt::Display for StatementTime {
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the fraction without trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// Checks a statement time against `now` (±30 s inclusive); see [`StatementTime::check_window`].
pub fn check_timestamp_window(t: &StatementTime, now: SystemTime) -> Result<(), StatementError> {
    t.check_window(now)
}

fn decimal(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// `""` or `.` followed by 1–9 digits, as nanoseconds.
fn fraction(b: &[u8]) -> Option<u32> {
    match b {
        [] => Some(0),
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let n = decimal(digits)?;
            Some(n * 10u32.pow(9 - digits.len() as u32))
        }
        _ => None,
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn parses_and_prints_rfc3339_utc() {
        let t = StatementTime::parse("2025-10-24T14:44:21.123456Z").unwrap();
        assert_eq!(t.unix_secs(), 1_761_317_061);
        assert_eq!(t.subsec_nanos(), 123_456_000);
        assert_eq!(t.to_string(), "2025-10-24T14:44:21.123456Z");
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.999999999Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.5Z",
        ] {
            assert_eq!(StatementTime::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            StatementTime::parse("1969-12-31T23:59:59Z")
                .unwrap()
                .unix_secs(),
            -1
        );
    }

    #[test]
    fn refuses_every_other_form() {
        for text in [
            "now",
            "infinity",
            "epoch",
            "",
            "1761317061",
            "2026-10-05T12:00:00",
            "2026-10-05T12:00:00+00:00",
            "2026-10-05t12:00:00Z",
            "2026-10-05T12:00:00z",
            "2026-13-05T12:00:00Z",
            "2026-00-05T12:00:00Z",
            "2026-02-29T12:00:00Z",
            "2026-04-31T12:00:00Z",
            "2026-10-00T12:00:00Z",
            "2026-10-05T24:00:00Z",
            "2026-10-05T12:60:00Z",
            "2026-10-05T12:00:60Z",
            "2026-10-05T12:00:00.Z",
            "2026-10-05T12:00:00.1234567890Z",
            "+2026-10-05T12:00:00Z",
            "2026-1-05T12:00:00Z",
            "2026-10-05 12:00:00Z",
            "2026-10-05T12:00:00ZZ",
            "２026-10-05T12:00:00Z",
            "2026-10-05T12:00:0-Z",
        ] {
            assert!(StatementTime::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn window_is_thirty_seconds_each_way_inclusive() {
        let t = StatementTime::from_unix(1_000_000, 0).unwrap();
        t.check_window(at(1_000_000, 0)).unwrap();
        t.check_window(at(1_000_030, 0)).unwrap();
        t.check_window(at(999_970, 0)).unwrap();
        for now in [
            at(1_000_030, 1),
            at(999_969, 999_999_999),
            at(2_000_000, 0),
            at(0, 0),
        ] {
            assert_eq!(
                t.check_window(now).unwrap_err().reason(),
                Reason::TimestampOutsideWindow
            );
        }
        assert_eq!(
            check_timestamp_window(&t, at(1_000_031, 0))
                .unwrap_err()
                .reason()
                .code(),
            "timestampOutsideWindow"
        );
    }
}
