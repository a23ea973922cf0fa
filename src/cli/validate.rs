//! `hearth validate`: every problem in the manifests and the recipes they name, one per line
//! (`-o text`) or as a JSON list (`-o json`).

use std::process::ExitCode;

use clap::ValueEnum;
use serde::Serialize;

use crate::desired;
use crate::diag::Diagnostic;
use crate::manifest;

use super::Source;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    Text,
    Json,
}

/// One problem as `validate -o json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (for a recipe file, `recipe@version:path`).
    pub file: String,
    /// 1-based; `null` when the problem is about the whole file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the field; `null` when not known.
    pub field: Option<String>,
    pub message: String,
    /// `error` (validation fails) or `warning` (printed, does not fail).
    pub severity: &'static str,
}

impl Problem {
    pub fn from_diagnostic(d: &Diagnostic) -> Problem {
        let (severity, message) = match d.message.strip_prefix("warning: ") {
            Some(m) => ("warning", m.to_string()),
            None => ("error", d.message.clone()),
        };
        let located = d.pos.line > 0;
        Problem {
            file: d.file.display().to_string(),
            line: located.then_some(d.pos.line),
            column: located.then_some(d.pos.col.max(1)),
            field: (!d.field.is_empty()).then(|| d.field.clone()),
            message,
            severity,
        }
    }
}

/// `host`: the daemon to consult (`None`: the default); `offline`: do not consult the swarm.
pub fn run(source: &Source, output: ValidateOutput, host: Option<&str>, offline: bool) -> ExitCode {
    let mut loaded = manifest::load_paths(&source.paths);
    let Some(store) = desired::recipe_store(&loaded, source.recipes.clone()) else {
        let msg = "no Pool manifest and no --recipes: cannot find recipes";
        let mut problems: Vec<Problem> = loaded
            .diagnostics
            .iter()
            .map(Problem::from_diagnostic)
            .collect();
        match output {
            ValidateOutput::Text => {
                for d in &loaded.diagnostics {
                    println!("{d}");
                }
                println!("{msg}");
            }
            ValidateOutput::Json => {
                problems.push(Problem {
                    file: String::new(),
                    line: None,
                    column: None,
                    field: None,
                    message: msg.into(),
                    severity: "error",
                });
                print_json(&problems);
            }
        }
        return ExitCode::from(1);
    };
    // When a daemon answers: a stack name held by a stack this pool did not make is an error,
    // alias and host collisions with other stacks are warnings (src/conflicts/).
    let live = if offline || loaded.pool.is_none() {
        None
    } else {
        super::common::runtime().block_on(super::common::live_index(host))
    };
    if let Some(ix) = &live {
        super::common::settle_live(&mut loaded, ix);
    }
    let pool = super::common::build_checked(&loaded, &store, None, live.as_ref());
    match output {
        ValidateOutput::Text => {
            for d in &pool.errors {
                println!("{d}");
            }
            for w in &pool.warnings {
                println!("{w}");
            }
        }
        ValidateOutput::Json => {
            let problems: Vec<Problem> = pool
                .errors
                .iter()
                .map(Problem::from_diagnostic)
                .chain(pool.warnings.iter().map(|w| {
                    let mut p = Problem::from_diagnostic(w);
                    p.severity = "warning";
                    p
                }))
                .collect();
            print_json(&problems);
        }
    }
    let n = loaded.deployments.len();
    if pool.errors.is_empty() {
        eprintln!(
            "{n} deployment(s) valid, {} rendered",
            pool.deployments.len()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} problem(s); {} of {n} deployment(s) rendered",
            pool.errors.len(),
            pool.deployments.len()
        );
        ExitCode::from(1)
    }
}

fn print_json(problems: &[Problem]) {
    match serde_json::to_string_pretty(problems) {
        Ok(t) => println!("{t}"),
        Err(e) => eprintln!("cannot print: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;

    #[test]
    fn problems_carry_position_field_and_severity() {
        let d = Diagnostic::new("m.yml", Pos { line: 3, col: 0 }, "spec.x", "bad");
        let p = Problem::from_diagnostic(&d);
        assert_eq!((p.line, p.column), (Some(3), Some(1)));
        assert_eq!(p.field.as_deref(), Some("spec.x"));
        assert_eq!(p.severity, "error");
        let w = Diagnostic::new("r@1:compose.yml", Pos::default(), "", "warning: ignored");
        let p = Problem::from_diagnostic(&w);
        assert_eq!((p.line, p.column, p.field), (None, None, None));
        assert_eq!((p.severity, p.message.as_str()), ("warning", "ignored"));
    }
}
