//! Redaction of credentials in everything hearth prints: plans (text and JSON), drift items, the
//! API and status page, `hearth render`, and log lines (see `docs/redaction.md`).
//!
//! Two rules, applied by one [`Redactor`]:
//! - the value of an env-like `KEY=VALUE` whose key contains one of the sensitive words
//!   ([`DEFAULT_KEYS`], case-insensitive, configurable with `--redact-keys`) is replaced by
//!   `<redacted:sha256:1a2b3c4d>`, the first 8 hex digits of the value's SHA-256, so a change of
//!   the value (drift) stays visible without the value;
//! - any value equal to a secret hearth generated or read (generated secrets, secret files, recipe
//!   `file:` secrets), wherever it appears, is replaced the same way.
//!
//! URL userinfo is hidden too ([`crate::source::redact`], which git messages already go through). The process-wide redactor is configured
//! once by the CLI ([`configure`]) and learns secret values as hearth makes or reads them
//! ([`remember`]); the methods of [`Redactor`] are pure and unit-tested.

use std::sync::RwLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::plan::{DriftItem, FieldDiff, Plan};

/// The sensitive words, comma-separated (the default of `--redact-keys`).
pub const DEFAULT_KEYS: &str = "PASSWORD,PASSWD,SECRET,TOKEN,KEY,CREDENTIAL,PRIVATE";

/// Secret values shorter than this are not searched for in free text (too many false hits);
/// env values under a sensitive key are redacted whatever their length.
pub const MIN_VALUE_LEN: usize = 6;

/// What to hide, and how.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Upper-case sensitive words.
    keys: Vec<String>,
    /// Known secret values, longest first (a longer value containing a shorter one goes first).
    values: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Redactor {
        Redactor::new(DEFAULT_KEYS)
    }
}

/// `<redacted:sha256:1a2b3c4d>` for `value`.
pub fn marker(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!("<redacted:sha256:{}>", &hex::encode(digest)[..8])
}

/// Values that are not credentials even under a sensitive key: the marker itself, and paths of
/// Swarm secrets (`POSTGRES_PASSWORD_FILE=/run/secrets/db_password`, the Co-op Cloud idiom).
fn keep(value: &str) -> bool {
    is_marker(value) || value.starts_with("/run/secrets/")
}

fn is_marker(s: &str) -> bool {
    s.len() == 26 && s.starts_with("<redacted:sha256:") && s.ends_with('>')
}

/// Characters of an env-like key (`DB_PASSWORD`, `--api-key`, `app.secret`).
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Characters that end a value inside free text.
fn ends_value(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | ',' | ';' | '&' | ')' | ']' | '}' | '\\'
        )
}

impl Redactor {
    /// A redactor for the comma-separated sensitive words `keys` (empty words are ignored).
    pub fn new(keys: &str) -> Redactor {
        Redactor {
            keys: keys
                .split(',')
                .map(|k| k.trim().to_ascii_uppercase())
                .filter(|k| !k.is_empty())
                .collect(),
            values: Vec::new(),
        }
    }

    /// Learns a secret value (and its form without surrounding whitespace, as files often end
    /// with a newline). Values that are not UTF-8 or shorter than [`MIN_VALUE_LEN`] are skipped.
    pub fn remember(&mut self, value: &[u8]) {
        let Ok(v) = std::str::from_utf8(value) else {
            return;
        };
        for v in [v, v.trim()] {
            if v.chars().count() >= MIN_VALUE_LEN && !self.values.iter().any(|x| x == v) {
                self.values.push(v.to_string());
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Whether `key` names a credential.
    pub fn sensitive(&self, key: &str) -> bool {
        let k = key.to_ascii_uppercase();
        self.keys.iter().any(|w| k.contains(w.as_str()))
    }

    /// `text` with known secret values, values of sensitive `KEY=VALUE` pairs and URL userinfo
    /// replaced. Idempotent: markers are left as they are.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), &marker(v));
            }
        }
        let out = self.pairs(&out);
        crate::source::redact(&out)
    }

    /// Replaces the values of sensitive `KEY=VALUE` pairs in free text.
    fn pairs(&self, text: &str) -> String {
        if self.keys.is_empty() || !text.contains('=') {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(eq) = rest.find('=') {
            let (head, tail) = rest.split_at(eq);
            let key_start = head
                .char_indices()
                .rev()
                .take_while(|(_, c)| key_char(*c))
                .last()
                .map(|(i, _)| i)
                .unwrap_or(head.len());
            let key = &head[key_start..];
            out.push_str(head);
            out.push('=');
            let tail = &tail[1..];
            let end = tail.find(ends_value).unwrap_or(tail.len());
            let value = &tail[..end];
            if !key.is_empty() && !value.is_empty() && !keep(value) && self.sensitive(key) {
                out.push_str(&marker(value));
            } else {
                out.push_str(value);
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    /// One string value of a spec: a whole `KEY=VALUE` env entry has its value replaced when the
    /// key is sensitive (whatever the value holds); any other string goes through [`Self::text`].
    pub fn string(&self, s: &str) -> String {
        if let Some((key, value)) = s.split_once('=')
            && !key.is_empty()
            && key.chars().all(key_char)
            && self.sensitive(key)
        {
            if keep(value) {
                return s.to_string();
            }
            return format!("{key}={}", marker(value));
        }
        self.text(s)
    }

    /// Every string inside a JSON value, in place (see [`Self::string`]).
    pub fn json(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let r = self.string(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.json(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.json(x)),
            _ => {}
        }
    }

    /// A value kept as JSON text (a field diff's side): parsed, redacted and printed again; text
    /// that does not parse is redacted as free text.
    pub fn json_text(&self, text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) => {
                self.json(&mut v);
                serde_json::to_string(&v).unwrap_or_else(|_| self.text(text))
            }
            Err(_) => self.text(text),
        }
    }

    pub fn field_diff(&self, d: &mut FieldDiff) {
        d.desired = self.json_text(&d.desired);
        d.live = self.json_text(&d.live);
    }

    pub fn drift(&self, d: &mut DriftItem) {
        d.desired = self.json_text(&d.desired);
        d.live = self.json_text(&d.live);
    }

    /// A plan as it may be shown: drift items, field diffs, problems and reasons redacted. The
    /// specs in its actions are redacted when it is serialized ([`Self::json`] on the output).
    pub fn plan(&self, p: &mut Plan) {
        p.drift.iter_mut().for_each(|d| self.drift(d));
        p.problems.iter_mut().for_each(|x| *x = self.text(x));
        for s in &mut p.steps {
            s.diffs.iter_mut().for_each(|d| self.field_diff(d));
            s.reason = self.text(&s.reason);
        }
    }
}

static GLOBAL: RwLock<Option<Redactor>> = RwLock::new(None);

/// Sets the process-wide sensitive words (comma-separated), keeping the values already learnt.
pub fn configure(keys: &str) {
    let mut g = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    let mut r = Redactor::new(keys);
    if let Some(old) = g.take() {
        r.values = old.values;
    }
    *g = Some(r);
}

/// Teaches the process-wide redactor a secret value hearth generated or read.
pub fn remember(value: &[u8]) {
    let mut g = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    g.get_or_insert_with(Redactor::default).remember(value);
}

/// Runs `f` with the process-wide redactor.
pub fn with<R>(f: impl FnOnce(&Redactor) -> R) -> R {
    let g = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    match g.as_ref() {
        Some(r) => f(r),
        None => f(&Redactor::default()),
    }
}

/// [`Redactor::text`] with the process-wide redactor.
pub fn text(s: &str) -> String {
    with(|r| r.text(s))
}

/// Learns the secret values a loaded, rendered pool would create: the manifests' secret files and
/// the recipes' `file:` secrets (generated values are learnt when they are generated).
pub fn remember_pool(loaded: &crate::manifest::Loaded, pool: &crate::desired::DesiredPool) {
    for d in &loaded.deployments {
        for s in d.spec.secrets.values() {
            if let crate::manifest::SecretSource::File(p) = s
                && let Ok(v) = std::fs::read(p)
            {
                remember(&v);
            }
        }
    }
    for d in &pool.deployments {
        for v in d.secret_files.values() {
            remember(v);
        }
    }
}

/// A log writer that redacts every line it writes (tracing's fmt layer writes one event per
/// `write_all`).
pub struct Writer<W>(pub W);

impl<W: std::io::Write> std::io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = String::from_utf8_lossy(buf);
        self.0.write_all(text(&s).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Wraps a `MakeWriter` so that every log line is redacted.
pub struct MakeWriter<M>(pub M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for MakeWriter<M>
{
    type Writer = Writer<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        Writer(self.0.make_writer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_the_first_8_hex_of_sha256() {
        // sha256("hunter2") = f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7
        assert_eq!(marker("hunter2"), "<redacted:sha256:f52fbd32>");
        assert!(is_marker(&marker("x")));
    }

    #[test]
    fn sensitive_env_entries_are_redacted_case_insensitively() {
        let r = Redactor::default();
        for k in [
            "DB_PASSWORD",
            "db_passwd",
            "APP_SECRET",
            "Api_Token",
            "SSH_KEY",
            "AWS_CREDENTIALS",
            "PRIVATE_X",
        ] {
            let e = format!("{k}=s3cr3t-value");
            assert_eq!(r.string(&e), format!("{k}={}", marker("s3cr3t-value")));
        }
        assert_eq!(r.string("DOMAIN=example.org"), "DOMAIN=example.org");
        let path = "POSTGRES_PASSWORD_FILE=/run/secrets/db_password";
        assert_eq!(r.string(path), path);
        assert_eq!(r.text(path), path);
        // Idempotent.
        let once = r.string("DB_PASSWORD=abc def");
        assert_eq!(r.string(&once), once);
        assert!(!once.contains("abc"));
    }

    #[test]
    fn the_key_list_is_configurable() {
        let r = Redactor::new("pin, ");
        assert_eq!(r.string("DB_PASSWORD=x"), "DB_PASSWORD=x");
        assert_eq!(
            r.string("USER_PIN=1234"),
            format!("USER_PIN={}", marker("1234"))
        );
        let none = Redactor::new("");
        assert_eq!(none.text("TOKEN=a"), "TOKEN=a");
    }

    #[test]
    fn known_values_are_redacted_anywhere() {
        let mut r = Redactor::default();
        r.remember(b"Zq8w-generated-secret\n");
        r.remember(b"abc"); // too short to search for
        let t = r.text("error: login as admin with Zq8w-generated-secret failed; abc");
        assert!(!t.contains("Zq8w"), "{t}");
        assert!(t.contains(&marker("Zq8w-generated-secret")), "{t}");
        assert!(t.ends_with("; abc"));
    }

    #[test]
    fn pairs_in_free_text_and_urls() {
        let r = Redactor::default();
        let t = r.text(
            r#"args ["--api-key=k1k1k1", "x=1"] env DB_PASSWORD=pw1 https://u:pw2@h/x?token=t0k&y=2"#,
        );
        for s in ["k1k1k1", "pw1", "pw2", "t0k"] {
            assert!(!t.contains(s), "{s} in {t}");
        }
        assert!(t.contains("x=1") && t.contains("y=2"), "{t}");
        assert_eq!(r.text(&t), t, "idempotent");
    }

    #[test]
    fn diffs_keep_keys_and_show_the_change_by_hash() {
        let r = Redactor::default();
        let mut d = FieldDiff {
            field: "TaskTemplate.ContainerSpec.Env".into(),
            desired: r#"["A=1","DB_PASSWORD=old-pass"]"#.into(),
            live: r#"["A=1","DB_PASSWORD=new-pass"]"#.into(),
        };
        r.field_diff(&mut d);
        assert_eq!(
            d.desired,
            format!(r#"["A=1","DB_PASSWORD={}"]"#, marker("old-pass"))
        );
        assert_eq!(
            d.live,
            format!(r#"["A=1","DB_PASSWORD={}"]"#, marker("new-pass"))
        );
        assert_ne!(d.desired, d.live, "the drift stays visible");
    }

    #[test]
    fn json_specs_are_redacted_in_place() {
        let mut r = Redactor::default();
        r.remember(b"file-secret-value");
        let mut v = serde_json::json!({
            "Env": ["SECRET_KEY=abcdef", "PLAIN=1"],
            "Labels": {"x": "uses file-secret-value"},
            "Args": ["--token", "not-a-pair"]
        });
        r.json(&mut v);
        let s = v.to_string();
        assert!(
            !s.contains("abcdef") && !s.contains("file-secret-value"),
            "{s}"
        );
        assert!(s.contains("PLAIN=1") && s.contains("not-a-pair"), "{s}");
    }
}
