//! abra's secret hints in a recipe's `.env.sample`: each `SECRET_<NAME>_VERSION=v1` line names a
//! secret (compose key `<name>`, lower case) and its trailing comment may carry modifiers, as
//! `abra app secret generate` reads them:
//!
//! ```text
//! SECRET_DB_PASSWORD_VERSION=v1 # length=32
//! SECRET_SMTP_PASSWORD_VERSION=v1 # generate=false
//! SECRET_API_KEY_VERSION=v1 # length=48 charset=safespecial
//! ```
//!
//! `length=N` fixes the length; `generate=false` means the secret is made by hand and never
//! generated; `charset=` picks the alphabet (`special`/`safespecial` -> hearth's `safespecial`,
//! `hex`, anything else alphanumeric). Commented-out lines (`#SECRET_X_VERSION=v1`) do not count.
//! Pure: text in, hints out.

use crate::manifest::{Charset, Generate};

/// One `SECRET_*_VERSION` line of `.env.sample`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHint {
    /// The env variable, e.g. `SECRET_DB_PASSWORD_VERSION`.
    pub var: String,
    /// The compose key it versions, e.g. `db_password`.
    pub key: String,
    /// The version value, e.g. `v1`.
    pub version: String,
    /// 1-based line in `.env.sample`.
    pub line: usize,
    /// `# length=N`.
    pub length: Option<usize>,
    /// `# generate=false` turns this off: the secret must exist.
    pub generate: bool,
    /// `# charset=...`, as written.
    pub charset: Option<String>,
}

impl SecretHint {
    /// How hearth generates it (None when `generate=false`): the hinted length (hearth's default
    /// 32 when there is none; abra would make a word passphrase) and alphabet.
    pub fn generate(&self) -> Option<Generate> {
        if !self.generate {
            return None;
        }
        let mut g = Generate::default();
        if let Some(l) = self.length {
            g.length = l;
        }
        g.charset = match self.charset.as_deref() {
            Some(c) if c.contains("special") => Charset::Safespecial,
            Some("hex") => Charset::Hex,
            _ => Charset::Alnum,
        };
        Some(g)
    }
}

/// Every uncommented `SECRET_*_VERSION` line of `text` with its modifiers, in file order.
pub fn secret_hints(text: &str) -> Vec<SecretHint> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.trim_start();
        let body = body.strip_prefix("export ").unwrap_or(body).trim_start();
        if body.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = body.split_once('=') else {
            continue;
        };
        let name = name.trim();
        let Some(mid) = name
            .strip_prefix("SECRET_")
            .and_then(|n| n.strip_suffix("_VERSION"))
        else {
            continue;
        };
        if mid.is_empty() {
            continue;
        }
        // The comment starts at a `#` after a blank (as the env file parser cuts it).
        let (value, comment) = match rest.find(" #").or_else(|| rest.find("\t#")) {
            Some(at) => (&rest[..at], &rest[at + 2..]),
            None => (rest, ""),
        };
        let mut hint = SecretHint {
            var: name.to_string(),
            key: mid.to_ascii_lowercase(),
            version: value.trim().trim_matches(['"', '\'']).to_string(),
            line: i + 1,
            length: None,
            generate: true,
            charset: None,
        };
        for token in comment.split_whitespace() {
            match token.split_once('=') {
                Some(("length", n)) => hint.length = n.parse().ok(),
                Some(("generate", g)) => hint.generate = !g.eq_ignore_ascii_case("false"),
                Some(("charset", c)) => hint.charset = Some(c.to_string()),
                _ => {}
            }
        }
        out.push(hint);
    }
    out
}

/// The hint for compose secret `key`: the line `SECRET_<KEY>_VERSION`, else (as abra matches) a
/// line whose name contains `<KEY>_VERSION`.
pub fn hint_for<'a>(hints: &'a [SecretHint], key: &str) -> Option<&'a SecretHint> {
    let upper = format!("{}_VERSION", key.to_ascii_uppercase());
    hints
        .iter()
        .find(|h| h.key == key)
        .or_else(|| hints.iter().find(|h| h.var.contains(&upper)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "TYPE=app\n\
        SECRET_DB_PASSWORD_VERSION=v1 # length=32\n\
        SECRET_SMTP_PASSWORD_VERSION=v2   # generate=false\n\
        #SECRET_OPTIONAL_VERSION=v1 # length=8\n\
        SECRET_API_KEY_VERSION=v1 # charset=special,safespecial length=48\n\
        SECRET_PLAIN_VERSION=v1\n\
        NOT_A_SECRET=1 # length=3\n";

    #[test]
    fn reads_every_uncommented_secret_line_with_its_modifiers() {
        let h = secret_hints(SAMPLE);
        let got: Vec<_> = h
            .iter()
            .map(|h| {
                (
                    h.key.as_str(),
                    h.version.as_str(),
                    h.line,
                    h.length,
                    h.generate,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("db_password", "v1", 2, Some(32), true),
                ("smtp_password", "v2", 3, None, false),
                ("api_key", "v1", 5, Some(48), true),
                ("plain", "v1", 6, None, true),
            ]
        );
        assert_eq!(h[2].generate().unwrap().charset, Charset::Safespecial);
        assert_eq!(h[0].generate().unwrap().length, 32);
        assert_eq!(h[3].generate().unwrap(), Generate::default());
        assert!(h[1].generate().is_none());
    }

    #[test]
    fn hint_lookup_by_key_then_by_contained_name() {
        let h = secret_hints("SECRET_APP_DB_PASSWORD_VERSION=v1 # length=10\n");
        assert_eq!(hint_for(&h, "app_db_password").unwrap().length, Some(10));
        assert_eq!(hint_for(&h, "db_password").unwrap().length, Some(10));
        assert!(hint_for(&h, "other").is_none());
    }
}
