//! The `hearth` command line: parsing (clap) and one function per subcommand. Subcommands print
//! problems as `file:line:col: field: message` and return the process exit code.

mod render_cmd;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hearth",
    version,
    about = "Keeps Co-op Cloud deployments converged on Docker Swarm"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where manifests and recipes come from.
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// Manifest files or directories (multi-document YAML), read recursively.
    #[arg(short = 'f', long = "file", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Directory of recipe git repos (default: the Pool's `spec.recipes`).
    #[arg(long, env = "HEARTH_RECIPES")]
    pub recipes: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests and render every deployment; exit 0 when valid, 1 when not.
    Validate {
        #[command(flatten)]
        source: Source,
    },
    /// Print the exact Swarm objects one deployment renders to.
    Render {
        #[command(flatten)]
        source: Source,
        /// The deployment to render.
        #[arg(long)]
        deployment: String,
        #[arg(long, short = 'o', value_enum, default_value = "json")]
        output: Output,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { source } => validate::run(&source),
        Command::Render {
            source,
            deployment,
            output,
        } => render_cmd::run(&source, &deployment, output),
    }
}
