//! Diagnostics: one problem in one input, located by file, line, column and field.
//!
//! Every loader (manifests, recipes, compose files) reports problems as [`Diagnostic`]s so the CLI can
//! print them uniformly as `file:line:col: field: message` and keep going past the first one.

use std::fmt;
use std::path::PathBuf;

/// A 1-based position in a text file. `line == 0` means "the whole file".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One problem found in an input file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file the problem is in (for a recipe file, `recipe@version:path`).
    pub file: PathBuf,
    pub pos: Pos,
    /// Dotted path of the offending field (`spec.probes[0].http.port`), empty when not known.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<PathBuf>,
        pos: Pos,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            pos,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.pos.line > 0 {
            write!(f, ":{}:{}", self.pos.line, self.pos.col.max(1))?;
        }
        write!(f, ": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// A list of diagnostics that is itself an error (what a loader returns when nothing usable remains).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_line_col_field() {
        let d = Diagnostic::new(
            "m/a.yml",
            Pos { line: 3, col: 5 },
            "spec.version",
            "missing",
        );
        assert_eq!(d.to_string(), "m/a.yml:3:5: spec.version: missing");
        let d = Diagnostic::new("m/a.yml", Pos::default(), "", "unreadable");
        assert_eq!(d.to_string(), "m/a.yml: unreadable");
    }
}
