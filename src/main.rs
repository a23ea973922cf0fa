//! The `hearth` binary: see [`hearth::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    hearth::cli::run(hearth::cli::Cli::parse())
}
