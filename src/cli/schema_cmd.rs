//! `hearth schema` (the manifest JSON Schema or, with `--markdown`, the field reference) and
//! `hearth completions SHELL`.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::manifest::schema;

pub fn run(markdown: bool) -> ExitCode {
    if markdown {
        print!("{}", schema::markdown());
    } else {
        print!("{}", schema::json_schema_text());
    }
    ExitCode::SUCCESS
}

pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "hearth", &mut std::io::stdout());
    ExitCode::SUCCESS
}
