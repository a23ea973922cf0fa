//! Scalar parsing shared by the compose model: docker/cli's lenient numbers and booleans, Go
//! `time.ParseDuration`, go-units `RAMInBytes`, and Go's `fmt.Sprint` of YAML scalars.
//!
//! Every function here is pure and mirrors the Go function named in its doc comment, so the same
//! compose text gives the same values as `docker stack deploy`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A Go `time.Duration` in nanoseconds, read from a Go duration string (`1m30s`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Duration(pub i64);

impl Duration {
    pub fn nanos(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                parse_go_duration(s).map(Duration).map_err(E::custom)
            }
            // Go's ParseDuration accepts a bare "0"; YAML gives it as an integer.
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
                parse_go_duration(&n.to_string())
                    .map(Duration)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
                parse_go_duration(&n.to_string())
                    .map(Duration)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count (`UnitBytes`): an integer, or a string parsed like go-units `RAMInBytes` (`512M`, `1g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct UnitBytes(pub i64);

impl<'de> Deserialize<'de> for UnitBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnitBytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, as an integer or a string such as \"512M\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<UnitBytes, E> {
                ram_in_bytes(s).map(UnitBytes).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<UnitBytes, E> {
                i64::try_from(n)
                    .map(UnitBytes)
                    .map_err(|_| E::custom("size out of range"))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<UnitBytes, E> {
                Ok(UnitBytes(n))
            }
        }
        d.deserialize_any(V)
    }
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns us µs μs ms s m h.
fn parse_go_duration(input: &str) -> Result<i64, String> {
    let err = || format!("invalid duration {input:?}");
    let mut s = input;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        // The next character must be [0-9.].
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(err());
        }
        // Integer part.
        let int_len = s.bytes().take_while(|b| b.is_ascii_digit()).count();
        let pre = int_len > 0;
        let mut v: u64 = 0;
        for b in s[..int_len].bytes() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .filter(|v| *v <= 1 << 63)
                .ok_or_else(err)?;
        }
        s = &s[int_len..];
        // Fraction part.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            let frac_len = s.bytes().take_while(|b| b.is_ascii_digit()).count();
            post = frac_len > 0;
            let mut overflow = false;
            for b in s[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(b - b'0')))
                {
                    Some(f) if f <= 1 << 63 => {
                        frac = f;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            s = &s[frac_len..];
        }
        if !pre && !post {
            return Err(err());
        }
        // Unit.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("missing unit in duration {input:?}"));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let mul: u64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("unknown unit {unit:?} in duration {input:?}")),
        };
        if v > (1 << 63) / mul {
            return Err(err());
        }
        v *= mul;
        if frac > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale))
            v = v
                .checked_add((frac as f64 * (mul as f64 / scale)) as u64)
                .ok_or_else(err)?;
            if v > 1 << 63 {
                return Err(err());
            }
        }
        total = total
            .checked_add(v)
            .filter(|t| *t <= 1 << 63)
            .ok_or_else(err)?;
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > i64::MAX as u64 {
        return Err(err());
    }
    Ok(total as i64)
}

/// go-units `RAMInBytes`: a number with an optional binary suffix (`k`, `m`, `g`, `t`, `p`, each
/// optionally followed by `b` or `ib`, case-insensitive); a bare `b` means bytes.
fn ram_in_bytes(size: &str) -> Result<i64, String> {
    let Some(sep) = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{size}'"));
    };
    let (num, sfx) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    let value: f64 = parse_go_float(num).ok_or_else(|| format!("invalid size: '{size}'"))?;
    if value < 0.0 {
        return Err(format!("invalid size: '{size}'"));
    }
    if sfx.is_empty() {
        return Ok(value as i64);
    }
    let bad = || format!("invalid suffix: '{}'", sfx.to_lowercase());
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad())
        } else {
            Ok(value as i64)
        };
    }
    let mul: i64 = match b[0] {
        b'k' => 1 << 10,
        b'm' => 1 << 20,
        b'g' => 1 << 30,
        b't' => 1 << 40,
        b'p' => 1 << 50,
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return Err(bad());
    }
    Ok((value * mul as f64) as i64)
}

/// A decimal float as Go's `strconv.ParseFloat` reads the usual forms (no hex, no `inf`).
fn parse_go_float(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if ok { s.parse().ok() } else { None }
}

/// Go's `strconv.Atoi` (decimal, optional sign).
pub fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// docker/cli's `toBoolean` for interpolated values (YAML 1.1 booleans, case-insensitive).
pub fn yaml_bool(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "y" | "yes" | "true" | "on" => Some(true),
        "n" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// Go's `fmt.Sprint` of a float64 (`%v` = `%g` with the shortest representation: exponent form
/// when the decimal exponent is < -4 or >= 6, e.g. `1e+06`).
pub fn go_float_string(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}` formatting.
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        // Plain decimal; Rust's Display gives the shortest round-trip digits without exponent.
        format!("{f}")
    }
}

// ---- serde helpers -------------------------------------------------------------------------

struct ScalarString;

impl Visitor<'_> for ScalarString {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or number")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        Ok(s)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
        Ok(n.to_string())
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
        Ok(n.to_string())
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<String, E> {
        Ok(go_float_string(n))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<String, E> {
        Ok(b.to_string())
    }
}

/// A scalar (string, number or bool) as the string Go's `fmt.Sprint` would make of it.
pub fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(ScalarString)
}

/// Like [`scalar_string`], `null` giving `None`.
pub fn opt_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "scalar_string")] String);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

struct Int;

impl Visitor<'_> for Int {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (or a string holding one)")
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i64, E> {
        Ok(n)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i64, E> {
        i64::try_from(n).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<i64, E> {
        if n.fract() == 0.0 && n.abs() < 9.2e18 {
            Ok(n as i64)
        } else {
            Err(E::custom(format!("expected an integer, got {n}")))
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
        go_atoi(s).ok_or_else(|| E::custom(format!("expected an integer, got {s:?}")))
    }
}

/// An integer given as a number or a numeric string (docker/cli's post-interpolation `toInt`).
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Int)
}

/// Like [`int`], `null` giving `None`.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "int")] i64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// A non-negative integer fitting `u64`.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match opt_int(d)? {
        None => Ok(None),
        Some(n) => u64::try_from(n)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected a non-negative integer, got {n}"))),
    }
}

/// A non-negative integer fitting `u32`.
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match opt_int(d)? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected an integer 0..=4294967295, got {n}"))),
    }
}

struct Float;

impl Visitor<'_> for Float {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number (or a string holding one)")
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<f64, E> {
        Ok(n as f64)
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<f64, E> {
        Ok(n as f64)
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<f64, E> {
        Ok(n)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<f64, E> {
        parse_go_float(s).ok_or_else(|| E::custom(format!("expected a number, got {s:?}")))
    }
}

/// A float given as a number or numeric string (docker/cli's `toFloat`).
pub fn opt_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "float")] f64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(Float)
}

struct Bool;

impl Visitor<'_> for Bool {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean (or a string \"true\"/\"false\")")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
        Ok(b)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        yaml_bool(s).ok_or_else(|| E::custom(format!("invalid boolean: {s}")))
    }
}

/// A boolean given as a bool or a YAML 1.1 boolean string (docker/cli's `toBoolean`).
pub fn bool_<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(Bool)
}

/// Like [`bool_`], `null` giving `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "bool_")] bool);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Ok(90 * S));
        assert_eq!(parse_go_duration("500ms"), Ok(S / 2));
        assert_eq!(parse_go_duration("10s"), Ok(10 * S));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-1.5h"), Ok(-5400 * S));
        assert_eq!(parse_go_duration("+2us"), Ok(2000));
        assert_eq!(parse_go_duration("2µs"), Ok(2000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration(".5s"), Ok(S / 2));
        assert_eq!(
            parse_go_duration("1h2m3s4ms5us6ns"),
            Ok(3723 * S + 4_005_006)
        );
        assert_eq!(parse_go_duration("2562047h47m16.854775807s"), Ok(i64::MAX));
        assert!(parse_go_duration("2562047h47m16.854775808s").is_err());
        assert!(
            parse_go_duration("10")
                .unwrap_err()
                .contains("missing unit")
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration(".s").is_err());
        assert!(
            parse_go_duration("1d")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_go_duration("1 s").is_err());
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("512M"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1gb"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("32 MB"), Ok(32 << 20));
        assert!(ram_in_bytes("1gg").is_err());
        assert!(ram_in_bytes("1kbb").is_err());
        assert!(ram_in_bytes("12x").is_err());
        assert!(ram_in_bytes("M").is_err());
        assert!(ram_in_bytes("-1").is_err());
    }

    #[test]
    fn go_sprint_floats() {
        assert_eq!(go_float_string(1.5), "1.5");
        assert_eq!(go_float_string(1.0), "1");
        assert_eq!(go_float_string(0.0001), "0.0001");
        assert_eq!(go_float_string(0.00001), "1e-05");
        assert_eq!(go_float_string(999999.0), "999999");
        assert_eq!(go_float_string(1e6), "1e+06");
        assert_eq!(go_float_string(1234567.0), "1.234567e+06");
        assert_eq!(go_float_string(123456.789), "123456.789");
    }

    #[test]
    fn atoi_and_bools() {
        assert_eq!(go_atoi("42"), Some(42));
        assert_eq!(go_atoi("-7"), Some(-7));
        assert_eq!(go_atoi("+7"), Some(7));
        assert_eq!(go_atoi("4.2"), None);
        assert_eq!(go_atoi(""), None);
        assert_eq!(yaml_bool("Yes"), Some(true));
        assert_eq!(yaml_bool("off"), Some(false));
        assert_eq!(yaml_bool("1"), None);
    }
}
