//! The manifest's value syntaxes: durations (`"250ms"`), rates (`"100/s"`), shares
//! (`"10%"`) and byte sizes (`"1MiB"`). Each parses with [`std::str::FromStr`], prints back
//! in the same syntax, travels as a string in TOML and JSON, and is described by a
//! pattern in the JSON Schema.

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

/// Why a unit value did not parse; the message names the expected syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

fn unit_error(kind: &str, input: &str, expected: &str) -> UnitError {
    let shown: String = input.chars().take(40).collect();
    UnitError(format!("invalid {kind} {shown:?}: expected {expected}"))
}

/// Splits `"12.5ms"` into `("12.5", "ms")`.
fn split_number(input: &str) -> (&str, &str) {
    let end = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    input.split_at(end)
}

/// Splits a non-negative decimal into its whole and fraction digits (the fraction empty
/// without a dot): at most one dot, and 1 to 20 digits on each side of it.
fn decimal_parts(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    Some((whole, fraction.unwrap_or("")))
}

/// Parses a non-negative decimal with at most one dot, digits on both sides of it, and
/// at most 15 digits on each side.
fn parse_decimal(number: &str) -> Option<f64> {
    let (whole, fraction) = decimal_parts(number)?;
    if whole.len() > 15 || fraction.len() > 15 {
        return None;
    }
    number.parse().ok()
}

/// Implements string (de)serialization and a JSON Schema string with a pattern for a
/// type that has `FromStr` and `Display`.
macro_rules! string_unit {
    ($ty:ident, $name:literal, $pattern:literal, $example:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "examples": [$example],
                })
            }
        }
    };
}

pub(crate) use string_unit;

/// A length of time: a decimal and a unit, `us`, `ms`, `s`, `m` or `h` (`"250ms"`, `"1.5s"`),
/// kept to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(StdDuration);

impl Duration {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(StdDuration::from_millis(ms))
    }

    /// A duration of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(StdDuration::from_secs(s))
    }

    /// The standard library's duration.
    pub const fn get(self) -> StdDuration {
        self.0
    }

    /// Whether the duration is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<StdDuration> for Duration {
    fn from(value: StdDuration) -> Self {
        Self(value)
    }
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a number and a unit (us, ms, s, m, h), like \"250ms\" or \"1.5s\"";
        let (number, unit) = split_number(input.trim());
        let micros_per_unit: u128 = match unit {
            "us" => 1,
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            _ => return Err(unit_error("duration", input, EXPECTED)),
        };
        let (whole, fraction) =
            decimal_parts(number).ok_or_else(|| unit_error("duration", input, EXPECTED))?;
        // In whole microseconds, the finest that `Display` writes, counted exactly (no
        // floating point), so a duration prints as what it is and parses back to itself.
        // 20 digits each side keep every product below u128::MAX.
        let whole: u128 = whole.parse().unwrap_or_default();
        let scale = 10u128.pow(fraction.len() as u32);
        let fraction: u128 = fraction.parse().unwrap_or_default();
        let micros = whole * micros_per_unit + (fraction * micros_per_unit + scale / 2) / scale;
        u64::try_from(micros)
            .map(|micros| Self(StdDuration::from_micros(micros)))
            .map_err(|_| unit_error("duration", input, "a duration under 500,000 years"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.as_micros();
        let (value, unit) = match micros {
            0 => (0, "s"),
            m if m % 3_600_000_000 == 0 => (m / 3_600_000_000, "h"),
            m if m % 60_000_000 == 0 => (m / 60_000_000, "m"),
            m if m % 1_000_000 == 0 => (m / 1_000_000, "s"),
            m if m % 1_000 == 0 => (m / 1_000, "ms"),
            m => (m, "us"),
        };
        write!(f, "{value}{unit}")
    }
}

string_unit!(
    Duration,
    "Duration",
    "^[0-9]+(\\.[0-9]+)?(us|ms|s|m|h)$",
    "250ms"
);

/// Events per unit of time: `"100/s"`, `"600/m"`, `"1000/h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many events each period allows; at least 1.
    pub count: u64,
    /// The period.
    pub per: StdDuration,
}

impl Rate {
    /// The rate as events per second.
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.per.as_secs_f64()
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a whole number of events per s, m or h, like \"100/s\"";
        let bad = || unit_error("rate", input, EXPECTED);
        let (count, per) = input.trim().split_once('/').ok_or_else(bad)?;
        let per = match per {
            "s" => StdDuration::from_secs(1),
            "m" => StdDuration::from_secs(60),
            "h" => StdDuration::from_secs(3600),
            _ => return Err(bad()),
        };
        let all_digits = !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit());
        let count: u64 = count.parse().ok().filter(|_| all_digits).ok_or_else(bad)?;
        if count == 0 {
            return Err(unit_error("rate", input, "at least 1 event per period"));
        }
        Ok(Self { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

string_unit!(Rate, "Rate", "^[0-9]+/(s|m|h)$", "100/s");

/// A share of a whole, from `"0%"` to `"100%"`, with up to two decimals (`"12.5%"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Share {
    basis_points: u32,
}

impl Share {
    /// The whole: 100%.
    pub const FULL: Share = Share {
        basis_points: 10_000,
    };

    /// A share of `percent` percent (clamped to 100).
    pub const fn from_percent(percent: u32) -> Self {
        let percent = if percent > 100 { 100 } else { percent };
        Self {
            basis_points: percent * 100,
        }
    }

    /// The share in hundredths of a percent (10% is 1,000).
    pub const fn basis_points(self) -> u32 {
        self.basis_points
    }

    /// The share as a fraction from 0.0 to 1.0.
    pub fn fraction(self) -> f64 {
        f64::from(self.basis_points) / 10_000.0
    }
}

impl FromStr for Share {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a percentage from 0% to 100%, like \"10%\" or \"12.5%\"";
        let bad = || unit_error("share", input, EXPECTED);
        let number = input.trim().strip_suffix('%').ok_or_else(bad)?;
        if number.split_once('.').is_some_and(|(_, f)| f.len() > 2) {
            return Err(unit_error("share", input, "at most two decimals"));
        }
        let value = parse_decimal(number).ok_or_else(bad)?;
        if value > 100.0 {
            return Err(bad());
        }
        Ok(Self {
            basis_points: (value * 100.0).round() as u32,
        })
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, hundredths) = (self.basis_points / 100, self.basis_points % 100);
        match hundredths {
            0 => write!(f, "{whole}%"),
            h if h % 10 == 0 => write!(f, "{whole}.{}%", h / 10),
            h => write!(f, "{whole}.{h:02}%"),
        }
    }
}

string_unit!(Share, "Share", "^[0-9]+(\\.[0-9]{1,2})?%$", "10%");

/// A number of bytes: a whole number with an optional unit, `B`, `KiB`, `MiB`, `GiB`
/// (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000): `"64KiB"`, `"10MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(u64);

impl ByteSize {
    /// `n` bytes.
    pub const fn bytes(n: u64) -> Self {
        Self(n)
    }

    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }

    /// The size in bytes.
    pub const fn get(self) -> u64 {
        self.0
    }
}

const BYTE_UNITS: [(&str, u64); 7] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str =
            "a whole number and a unit (B, KiB, MiB, GiB, KB, MB, GB), like \"1MiB\"";
        let bad = || unit_error("size", input, EXPECTED);
        let (number, unit) = split_number(input.trim());
        let multiplier = match unit {
            "" => 1,
            unit => {
                BYTE_UNITS
                    .iter()
                    .find(|(u, _)| *u == unit)
                    .ok_or_else(bad)?
                    .1
            }
        };
        let all_digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        let count: u64 = number.parse().ok().filter(|_| all_digits).ok_or_else(bad)?;
        count
            .checked_mul(multiplier)
            .map(Self)
            .ok_or_else(|| unit_error("size", input, "a size below 16 EiB"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, size) = BYTE_UNITS
            .iter()
            .filter(|(unit, _)| unit.contains('i') || *unit == "B")
            .find(|(_, size)| self.0 != 0 && self.0.is_multiple_of(*size))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / size)
    }
}

string_unit!(
    ByteSize,
    "ByteSize",
    "^[0-9]+(B|KiB|MiB|GiB|KB|MB|GB)?$",
    "1MiB"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        for (text, ms) in [
            ("250ms", 250),
            ("1.5s", 1500),
            ("2m", 120_000),
            ("1h", 3_600_000),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.get(), StdDuration::from_millis(ms), "{text}");
        }
        assert_eq!("1.5s".parse::<Duration>().unwrap().to_string(), "1500ms");
        assert_eq!("90s".parse::<Duration>().unwrap().to_string(), "90s");
        assert_eq!("120s".parse::<Duration>().unwrap().to_string(), "2m");
        assert_eq!("5us".parse::<Duration>().unwrap().to_string(), "5us");
        // Kept to the microsecond, so what prints is what is.
        assert_eq!("1.5us".parse::<Duration>().unwrap().get().as_nanos(), 2000);
        assert_eq!(
            "0.0000001s".parse::<Duration>().unwrap(),
            Duration::default()
        );
    }

    #[test]
    fn durations_reject_what_is_not_one() {
        for bad in [
            "",
            "5",
            "ms",
            "-1s",
            "1.s",
            ".5s",
            "1 hour",
            "5d",
            "1e3s",
            "99999999999999999h",
        ] {
            let err = bad.parse::<Duration>().unwrap_err().to_string();
            assert!(err.starts_with("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn rates_parse_and_reject() {
        let rate: Rate = "50/s".parse().unwrap();
        assert_eq!((rate.count, rate.per.as_secs()), (50, 1));
        assert_eq!("600/m".parse::<Rate>().unwrap().per_second(), 10.0);
        assert_eq!("600/m".parse::<Rate>().unwrap().to_string(), "600/m");
        for bad in ["50", "50/d", "/s", "0/s", "-5/s", "5.5/s", "+5/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shares_parse_print_and_reject() {
        assert_eq!("10%".parse::<Share>().unwrap().basis_points(), 1000);
        assert_eq!("12.5%".parse::<Share>().unwrap().to_string(), "12.5%");
        assert_eq!("0.25%".parse::<Share>().unwrap().to_string(), "0.25%");
        assert_eq!("100%".parse::<Share>().unwrap(), Share::FULL);
        for bad in ["10", "101%", "-1%", "1.234%", "%", "ten%"] {
            assert!(bad.parse::<Share>().is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_sizes_parse_print_and_reject() {
        assert_eq!("1MiB".parse::<ByteSize>().unwrap(), ByteSize::mib(1));
        assert_eq!("10MB".parse::<ByteSize>().unwrap().get(), 10_000_000);
        assert_eq!("512".parse::<ByteSize>().unwrap().get(), 512);
        assert_eq!(ByteSize::mib(2).to_string(), "2MiB");
        assert_eq!(ByteSize::bytes(1000).to_string(), "1000B");
        for bad in ["1.5MiB", "MiB", "1TB", "99999999999GiB", "-1B"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
