//! Recipe versions: the `x.y.z+upstream` tags of a Co-op Cloud recipe repo, their order, and the
//! major-bump rule used to hold risky upgrades.
//!
//! A recipe version is `MAJOR.MINOR.PATCH[-PRE][+UPSTREAM]`: the `x.y.z` part is the recipe's own
//! semver, the part after the first `+` is the upstream app's version and may contain anything
//! (`1.24.2`, `v4.5-rootless`). Order: `x.y.z` numerically, a pre-release before its release, then
//! the upstream part in "natural" order (digit runs compared as numbers), a missing upstream first.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A parsed recipe version tag. Displays as the original text.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    raw: String,
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
    upstream: Option<String>,
}

/// Why a text is not a recipe version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a recipe version (want x.y.z or x.y.z+upstream): {reason}")]
pub struct VersionError {
    pub text: String,
    pub reason: String,
}

impl Version {
    /// Parse `x.y.z`, `x.y.z-pre`, `x.y.z+upstream` or `x.y.z-pre+upstream`.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let err = |reason: &str| VersionError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (recipe, upstream) = match text.split_once('+') {
            Some((_, "")) => return Err(err("empty upstream part after '+'")),
            Some((r, u)) => (r, Some(u.to_string())),
            None => (text, None),
        };
        let (core, pre) = match recipe.split_once('-') {
            Some((_, "")) => return Err(err("empty pre-release after '-'")),
            Some((c, p)) => (c, Some(p.to_string())),
            None => (recipe, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(err("the recipe part needs exactly three numbers x.y.z"));
        }
        let mut nums = [0u64; 3];
        for (slot, part) in nums.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("x, y and z must be decimal numbers"));
            }
            *slot = part.parse().map_err(|_| err("number too large"))?;
        }
        Ok(Version {
            raw: text.to_string(),
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre,
            upstream,
        })
    }

    /// The original tag text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn major(&self) -> u64 {
        self.major
    }
    pub fn minor(&self) -> u64 {
        self.minor
    }
    pub fn patch(&self) -> u64 {
        self.patch
    }
    /// The recipe pre-release (`rc1` in `1.0.0-rc1+2.0`), if any.
    pub fn pre(&self) -> Option<&str> {
        self.pre.as_deref()
    }
    /// The upstream part after `+`, if any.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref()
    }
}

/// True when going `from` -> `to` raises the recipe's major version: `x` grows, or for `0.x`
/// versions, `x.y` grows (`0.3.1` -> `0.4.0`). Downgrades and same-major moves are not bumps.
pub fn is_major_bump(from: &Version, to: &Version) -> bool {
    if to.major != from.major {
        to.major > from.major
    } else {
        to.major == 0 && to.minor > from.minor
    }
}

/// Compare two strings in natural order: runs of ASCII digits compare as numbers (any length),
/// other runs compare bytewise; a string that is a prefix of the other sorts first.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let a_digit = a[0].is_ascii_digit();
        let b_digit = b[0].is_ascii_digit();
        let ra = run_len(a, a_digit);
        let rb = run_len(b, b_digit);
        let ord = match (a_digit, b_digit) {
            (true, true) => cmp_numeric(&a[..ra], &b[..rb]),
            // A number sorts before letters at the same position (`1.2` < `1.a`).
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => a[..ra].cmp(&b[..rb]),
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[ra..];
        b = &b[rb..];
    }
}

fn run_len(s: &[u8], digits: bool) -> usize {
    s.iter()
        .position(|c| c.is_ascii_digit() != digits)
        .unwrap_or(s.len())
}

fn cmp_numeric(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().position(|&c| c != b'0').unwrap_or(s.len()) };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_opt_pre(a: Option<&str>, b: Option<&str>) -> Ordering {
    // Semver: a pre-release sorts before the release of the same x.y.z.
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => natural_cmp(a, b),
    }
}

fn cmp_opt_upstream(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => natural_cmp(a, b),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| cmp_opt_pre(self.pre(), other.pre()))
            .then_with(|| cmp_opt_upstream(self.upstream(), other.upstream()))
            // Texts that compare equal above (`01` vs `1`) still differ: keep Ord total and
            // consistent with Eq.
            .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl TryFrom<String> for Version {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Version::parse(&s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_parts() {
        let x = v("3.6.0+1.24.2");
        assert_eq!((x.major(), x.minor(), x.patch()), (3, 6, 0));
        assert_eq!(x.upstream(), Some("1.24.2"));
        assert_eq!(x.pre(), None);
        let y = v("1.2.0+v4.5-rootless");
        assert_eq!(y.upstream(), Some("v4.5-rootless"));
        assert_eq!(y.pre(), None, "a '-' after '+' belongs to upstream");
        let z = v("0.1.0-rc1+2.0+odd");
        assert_eq!(z.pre(), Some("rc1"));
        assert_eq!(z.upstream(), Some("2.0+odd"));
        assert_eq!(v("2.0.1").upstream(), None);
        assert_eq!(x.to_string(), "3.6.0+1.24.2");
    }

    #[test]
    fn rejects_non_versions() {
        for bad in [
            "", "1.2", "1.2.3.4", "v1.2.3", "1.x.3", "1.2.3+", "1.2.3-", "latest", "1..3",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn orders_recipe_part_numerically_then_upstream() {
        let mut tags = vec![
            "10.0.0+1.0",
            "2.10.0+1.0",
            "2.9.0+9.9",
            "2.9.0+10.0",
            "2.9.0",
            "2.9.0-rc1+10.0",
            "1.2.0+v4.5-rootless",
            "1.2.0+v4.10",
            "1.2.0+v4.5",
        ];
        tags.sort_by_key(|t| v(t));
        assert_eq!(
            tags,
            vec![
                "1.2.0+v4.5",
                "1.2.0+v4.5-rootless",
                "1.2.0+v4.10",
                "2.9.0-rc1+10.0",
                "2.9.0",
                "2.9.0+9.9",
                "2.9.0+10.0",
                "2.10.0+1.0",
                "10.0.0+1.0",
            ]
        );
    }

    #[test]
    fn ord_is_consistent_with_eq() {
        let a = v("1.0.0+01");
        let b = v("1.0.0+1");
        assert_ne!(a, b);
        assert_ne!(a.cmp(&b), Ordering::Equal);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
    }

    #[test]
    fn natural_cmp_handles_huge_numbers_and_prefixes() {
        assert_eq!(
            natural_cmp("v99999999999999999999999", "v100000000000000000000000"),
            Ordering::Less
        );
        assert_eq!(natural_cmp("1.2", "1.2-x"), Ordering::Less);
        assert_eq!(natural_cmp("007", "7"), Ordering::Equal);
        assert_eq!(natural_cmp("1.2", "1.a"), Ordering::Less);
    }

    #[test]
    fn major_bump_rules() {
        assert!(is_major_bump(&v("1.9.9+a"), &v("2.0.0+a")));
        assert!(!is_major_bump(&v("1.0.0+a"), &v("1.9.0+b")));
        assert!(!is_major_bump(&v("2.0.0"), &v("1.0.0")), "downgrade");
        assert!(is_major_bump(&v("0.3.1"), &v("0.4.0")), "0.x counts x.y");
        assert!(!is_major_bump(&v("0.3.1"), &v("0.3.9")));
        assert!(is_major_bump(&v("0.9.0"), &v("1.0.0")));
        assert!(
            !is_major_bump(&v("3.6.0+1.24.2"), &v("3.6.0+2.0.0")),
            "upstream ignored"
        );
    }

    #[test]
    fn serde_round_trip_as_string() {
        let x: Version = serde_json::from_str("\"3.6.0+1.24.2\"").unwrap();
        assert_eq!(x, v("3.6.0+1.24.2"));
        assert_eq!(serde_json::to_string(&x).unwrap(), "\"3.6.0+1.24.2\"");
        assert!(serde_json::from_str::<Version>("\"nope\"").is_err());
    }
}
