//! hearth's log output: one `tracing` subscriber on stderr for every command, as text (the
//! default) or JSON lines (`--log-format json`: one object per event with its fields at the top
//! level, e.g. `deployment`, `phase`, `reason`, `action`, and the spans it happened in). Colour
//! only when stderr is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
//! `RUST_LOG` sets the filter; [`never_logged`] records are dropped whatever it says.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether text logs are coloured (pure): on a terminal, and `NO_COLOR` unset or empty.
pub fn use_colour(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the log subscriber on stderr: `RUST_LOG` if set, else `default_directives`.
pub fn init(format: LogFormat, default_directives: &str) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| default_directives.to_string());
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    init_with(std::io::stderr, &directives, ansi, format);
}

/// Records hearth never writes, whatever `RUST_LOG` says: bollard's debug and trace records
/// carry whole request bodies, and a secret's create request holds its value.
pub fn never_logged(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("bollard") && *meta.level() > tracing::Level::INFO
}

/// Installs hearth's log subscriber writing to `writer` with the `EnvFilter` `directives`, less
/// what [`never_logged`] keeps out. Does nothing when a subscriber is already installed.
pub fn init_with<W>(writer: W, directives: &str, ansi: bool, format: LogFormat)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::prelude::*;
    // Every line passes through the redaction of credentials (docs/redaction.md).
    let writer = crate::redact::MakeWriter(writer);
    let filter = || {
        tracing_subscriber::EnvFilter::try_new(directives)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let keep = || tracing_subscriber::filter::filter_fn(|m| !never_logged(m));
    let _ = match format {
        LogFormat::Text => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_target(false)
                .with_ansi(ansi)
                .with_filter(filter())
                .with_filter(keep());
            tracing_subscriber::registry().with(layer).try_init()
        }
        LogFormat::Json => {
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(filter())
                .with_filter(keep());
            tracing_subscriber::registry().with(layer).try_init()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buf").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// JSON lines carry the event's fields at the top level and its spans (a scoped
    /// subscriber, not the global one).
    #[test]
    fn json_lines_carry_fields_and_spans() {
        use tracing_subscriber::prelude::*;
        let buf = Buf::default();
        let w = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(move || w.clone())
            .with_ansi(false);
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            let _pass = tracing::info_span!("pass", pass = 7).entered();
            let _r = tracing::info_span!("reconcile", deployment = "gitea").entered();
            tracing::info!(
                deployment = "gitea",
                phase = "Ready",
                reason = "AllRunning",
                "up"
            );
        });
        let text = String::from_utf8(buf.0.lock().expect("buf").clone()).expect("utf8");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["deployment"], "gitea");
        assert_eq!(line["phase"], "Ready");
        assert_eq!(line["reason"], "AllRunning");
        assert_eq!(line["message"], "up");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["spans"][0]["name"], "pass");
        assert_eq!(line["spans"][1]["deployment"], "gitea");
    }
}
