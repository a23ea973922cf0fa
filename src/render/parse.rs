//! Small value conversions of rendering: CPU counts to nano-CPUs (docker/cli `opts.ParseCPUs`),
//! recipe-relative file paths, and base64 for config data.

use crate::relpath::PathProblem;

/// A value rendering cannot convert; the text follows the field in a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A CPU count that is no decimal or fraction (or out of range).
    #[error("failed to parse {value} as a rational number")]
    NotRational { value: String },
    /// A CPU count finer than one nano-CPU.
    #[error("value is too precise")]
    TooPrecise,
    /// A `file:` naming the recipe directory itself.
    #[error("{path:?} names no file")]
    NoFile { path: String },
    /// A `file:` climbing out of the recipe with `..`.
    #[error("{path:?} leaves the recipe directory")]
    LeavesRecipe { path: String },
    /// A `file:` that is not recipe-relative.
    #[error("{path:?} is outside the recipe (only recipe-relative paths work): {problem}")]
    OutsideRecipe { path: String, problem: PathProblem },
}

/// `ParseCPUs`: a decimal (`0.5`, `1.5e-1`) or a fraction (`1/4`), times 1e9, which must be whole.
pub fn parse_cpus(value: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::NotRational {
        value: value.to_string(),
    };
    let v = value.trim();
    // As an exact fraction num/den.
    let (num, den): (i128, i128) = if let Some((a, b)) = v.split_once('/') {
        let a: i128 = parse_int(a).ok_or_else(bad)?;
        let b: i128 = parse_int(b).ok_or_else(bad)?;
        if b <= 0 {
            return Err(bad());
        }
        (a, b)
    } else {
        let (mant, exp) = match v.find(['e', 'E']) {
            Some(i) => (&v[..i], v[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (v, 0),
        };
        let (sign, mant) = match mant.strip_prefix('-') {
            Some(m) => (-1, m),
            None => (1, mant.strip_prefix('+').unwrap_or(mant)),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let digits = format!("{int}{frac}");
        let mut num: i128 = digits.parse().map_err(|_| bad())?;
        // In i64: `exp` may be any i32 (`1e-2147483648`), which i32 subtraction overflows.
        let scale = i64::from(exp) - i64::try_from(frac.len()).map_err(|_| bad())?;
        let mut den: i128 = 1;
        if !(-30..=30).contains(&scale) {
            return Err(bad());
        }
        if scale >= 0 {
            num = num.checked_mul(10i128.pow(scale as u32)).ok_or_else(bad)?;
        } else {
            den = 10i128.pow((-scale) as u32);
        }
        (sign * num, den)
    };
    let nano = num.checked_mul(1_000_000_000).ok_or_else(bad)?;
    if nano % den != 0 {
        return Err(ParseError::TooPrecise);
    }
    i64::try_from(nano / den).map_err(|_| bad())
}

fn parse_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Normalises a `file:` path against the recipe root: `./a/../b` -> `b`, by the one sanitiser
/// ([`crate::relpath::clean`]); a path naming no file is an error too.
pub fn recipe_path(path: &str) -> Result<String, ParseError> {
    let path_ = || path.to_string();
    match crate::relpath::clean(path) {
        Ok(p) if p.is_empty() => Err(ParseError::NoFile { path: path_() }),
        Ok(p) => Ok(p),
        Err(PathProblem::Escapes) => Err(ParseError::LeavesRecipe { path: path_() }),
        Err(problem) => Err(ParseError::OutsideRecipe {
            path: path_(),
            problem,
        }),
    }
}

/// Standard base64 with padding (what the Docker API expects for config/secret `Data`).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus("1/4"), Ok(250_000_000));
        assert_eq!(parse_cpus("1.5e-1"), Ok(150_000_000));
        assert_eq!(parse_cpus(".25"), Ok(250_000_000));
        assert_eq!(parse_cpus("0.000000001"), Ok(1));
        assert_eq!(
            parse_cpus("0.0000000001").unwrap_err().to_string(),
            "value is too precise"
        );
        assert_eq!(
            parse_cpus(" abc").unwrap_err().to_string(),
            "failed to parse  abc as a rational number"
        );
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("1/0").is_err());
    }

    #[test]
    fn cpus_extreme_exponents_are_errors_not_overflows() {
        // Fuzz regression (compose_load, seed regress-cpus-exponent-overflow.yml): `exp - frac.len()`
        // overflowed i32 (a panic with overflow checks on).
        assert!(parse_cpus("1.5e-2147483648").is_err());
        assert!(parse_cpus("1e2147483647").is_err());
        assert!(parse_cpus(".5e-2147483648").is_err());
        assert_eq!(parse_cpus("15e-1"), Ok(1_500_000_000));
    }

    #[test]
    fn recipe_paths() {
        assert_eq!(recipe_path("nginx.conf").unwrap(), "nginx.conf");
        assert_eq!(recipe_path("./conf/../nginx.conf").unwrap(), "nginx.conf");
        assert_eq!(recipe_path("a//b/./c").unwrap(), "a/b/c");
        assert_eq!(
            recipe_path("../x").unwrap_err().to_string(),
            "\"../x\" leaves the recipe directory"
        );
        assert!(recipe_path("a/../../x").is_err());
        assert_eq!(
            recipe_path("/etc/passwd").unwrap_err().to_string(),
            "\"/etc/passwd\" is outside the recipe (only recipe-relative paths work): \
             absolute paths are not allowed"
        );
        assert!(recipe_path("~/x").is_err());
        assert_eq!(
            recipe_path(".").unwrap_err().to_string(),
            "\".\" names no file"
        );
    }

    #[test]
    fn base64_encodes() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
