//! Field-level parsing helpers for manifests: durations (`10m`, `1h30m`, `200ms`), probe payloads
//! (`hex:0001` or plain text) and `~` expansion of paths.
//!
//! Each is a pure function plus a thin serde adapter, so the rules are tested without YAML.

use serde::{Deserialize, Deserializer, de};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A field value that does not parse. The texts are what a manifest diagnostic or a command-line
/// error shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("empty duration; write e.g. 30s, 10m, 1h30m or 200ms")]
    EmptyDuration,
    #[error("invalid duration {text:?} ({reason}); write e.g. 30s, 10m, 1h30m or 200ms")]
    Duration { text: String, reason: String },
    #[error("invalid hex payload {text:?}: {reason}")]
    HexPayload { text: String, reason: String },
}

/// Parses a human duration such as `10m`, `5s`, `1h30m` or `200ms`.
///
/// A bare number is rejected: the unit is always required so `timeout: 5` cannot silently mean
/// five nanoseconds or five hours.
pub fn parse_duration(text: &str) -> Result<Duration, FieldError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(FieldError::EmptyDuration);
    }
    humantime::parse_duration(t).map_err(|e| FieldError::Duration {
        text: t.to_string(),
        reason: e.to_string(),
    })
}

/// serde adapter: a required duration written as a string.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(de::Error::custom)
}

/// serde adapter: an optional duration (use with `#[serde(default)]`).
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Bytes sent or expected by a TCP probe: `hex:0001` is hex-decoded, anything else is the UTF-8
/// text itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    /// Parses `hex:<hex digits>` (spaces ignored) or plain text.
    fn parse(text: &str) -> Result<Payload, FieldError> {
        match text.strip_prefix("hex:") {
            Some(h) => {
                let digits: String = h.chars().filter(|c| !c.is_whitespace()).collect();
                hex::decode(&digits)
                    .map(Payload)
                    .map_err(|e| FieldError::HexPayload {
                        text: h.to_string(),
                        reason: e.to_string(),
                    })
            }
            None => Ok(Payload(text.as_bytes().to_vec())),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Payload::parse(&s).map_err(de::Error::custom)
    }
}

/// Expands a leading `~` or `~/` to `home`; other paths (and `~user`) are returned unchanged.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (path, home) {
        ("~", Some(h)) => h.to_path_buf(),
        (p, Some(h)) if p.starts_with("~/") => h.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

/// The current user's home directory from `$HOME`, if set and non-empty.
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// serde adapter: a path with `~` expanded against `$HOME`.
pub fn tilde_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let s = String::deserialize(d)?;
    Ok(expand_tilde(&s, home_dir().as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert!(
            parse_duration("5")
                .unwrap_err()
                .to_string()
                .contains("invalid duration \"5\"")
        );
        assert_eq!(
            parse_duration(" ").unwrap_err().to_string(),
            "empty duration; write e.g. 30s, 10m, 1h30m or 200ms"
        );
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn payloads() {
        assert_eq!(Payload::parse("hex:0001"), Ok(Payload(vec![0, 1])));
        assert_eq!(Payload::parse("hex:00 ff"), Ok(Payload(vec![0, 255])));
        assert_eq!(Payload::parse("PING\n"), Ok(Payload(b"PING\n".to_vec())));
        assert!(Payload::parse("hex:0g").is_err());
        assert!(Payload::parse("hex:123").is_err());
        assert_eq!(
            Payload::parse("hex:0g").unwrap_err(),
            FieldError::HexPayload {
                text: "0g".into(),
                reason: "Invalid character 'g' at position 1".into()
            }
        );
        assert_eq!(
            Payload::parse("hex:0g").unwrap_err().to_string(),
            "invalid hex payload \"0g\": Invalid character 'g' at position 1"
        );
    }

    #[test]
    fn tilde() {
        let h = Path::new("/home/u");
        assert_eq!(expand_tilde("~", Some(h)), PathBuf::from("/home/u"));
        assert_eq!(
            expand_tilde("~/.abra/recipes", Some(h)),
            PathBuf::from("/home/u/.abra/recipes")
        );
        assert_eq!(expand_tilde("~bob/x", Some(h)), PathBuf::from("~bob/x"));
        assert_eq!(expand_tilde("/abs", Some(h)), PathBuf::from("/abs"));
        assert_eq!(expand_tilde("~/x", None), PathBuf::from("~/x"));
    }
}
