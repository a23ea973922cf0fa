//! The `hearth` command line: parsing (clap) and one function per subcommand. Subcommands print
//! problems as `file:line:col: field: message` and return the process exit code.

mod advance_cmd;
mod apply_cmd;
mod common;
mod healthcheck_cmd;
mod import_cmd;
pub mod logging;
mod migrate_cmd;
mod plan_cmd;
mod purge_cmd;
mod render_cmd;
mod run_cmd;
mod schema_cmd;
mod status_cmd;
mod validate;

pub use run_cmd::{init_logging, init_logging_with, never_logged};

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
    /// Docker daemon to talk to (`unix:///var/run/docker.sock`, `tcp://host:2376`); default
    /// `DOCKER_HOST` or the local socket. Give it several times (or comma-separated) for several
    /// Swarm managers: hearth uses the first that answers with a leader and fails over to the next
    /// when it stops answering or loses quorum. A worker is refused.
    #[arg(long, global = true, env = "HEARTH_DOCKER_HOST", value_delimiter = ',')]
    pub docker_host: Vec<String>,
    /// Env keys whose values are never printed (plan, drift, render, API, status page, logs):
    /// a key containing one of these comma-separated words, case-insensitive, has its value shown
    /// as `<redacted:sha256:1a2b3c4d>` (the value's SHA-256 prefix). Empty: key-based redaction off
    /// (values of secrets hearth made or read are still hidden). See docs/redaction.md.
    #[arg(long, global = true, env = "HEARTH_REDACT_KEYS", default_value = crate::redact::DEFAULT_KEYS)]
    pub redact_keys: String,
    /// Log lines on stderr as `text` or `json` (one object per line, with fields such as
    /// deployment, phase, reason, action). Colour only on a terminal and never with NO_COLOR.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "HEARTH_LOG_FORMAT"
    )]
    pub log_format: logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Where manifests and recipes come from.
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// Manifest files or directories (multi-document YAML), read recursively.
    #[arg(short = 'f', long = "file", num_args = 1..)]
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

/// The exit code of a command line hearth cannot parse (BSD `EX_USAGE`); not 2, which is
/// `plan --detailed-exitcode`'s "changes present".
pub const EXIT_USAGE: u8 = 64;

/// Parses the process's arguments. Help and `--version` print and give `Err(0)`; a usage error
/// prints clap's message and gives `Err(EXIT_USAGE)`.
pub fn parse() -> Result<Cli, ExitCode> {
    parse_from(std::env::args_os())
}

/// [`parse`] over given arguments (the first is the program name).
pub fn parse_from<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// A deployment named either way: `hearth CMD NAME` or `hearth CMD --deployment NAME`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeploymentName {
    /// The deployment (the same as --deployment).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The deployment (the same as the NAME argument).
    #[arg(long = "deployment", value_name = "NAME", conflicts_with = "name")]
    pub deployment: Option<String>,
}

impl DeploymentName {
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref().or(self.deployment.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests and render every deployment; exit 0 when valid, 1 when not. When a Docker
    /// daemon answers, the live swarm is consulted too: a stack name held by a stack the pool did
    /// not make is an error, aliases and hosts other stacks claim are warnings.
    Validate {
        #[command(flatten)]
        source: Source,
        /// `text`: one `file:line:col: field: message` line per problem; `json`: a list of
        /// problems with file, line, column, field, message and severity.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: validate::ValidateOutput,
        /// Do not consult the live swarm.
        #[arg(long)]
        offline: bool,
    },
    /// Print the exact Swarm objects one deployment renders to.
    #[command(group = clap::ArgGroup::new("which").required(true).args(["name", "deployment"]))]
    Render {
        #[command(flatten)]
        source: Source,
        /// The deployment to render: `render NAME -f ...` or `render -f ... --deployment NAME`.
        #[command(flatten)]
        deployment: DeploymentName,
        #[arg(long, short = 'o', value_enum, default_value = "json")]
        output: Output,
        /// Print credential values as they are (by default they are redacted like everywhere).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the JSON Schema of manifests (docs/manifest.schema.json), or with --markdown the
    /// field reference (docs/manifest.md).
    Schema {
        /// The reference as Markdown instead of the schema.
        #[arg(long)]
        markdown: bool,
    },
    /// Print a shell completion script: `hearth completions bash > /etc/bash_completion.d/hearth`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Show what `apply` would change on the swarm, with reasons.
    Plan {
        #[command(flatten)]
        source: Source,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
        /// Exit 0 when nothing would change, 2 when something would, 1 on error (a usage error
        /// exits 64).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Do not check the manifests against the other stacks of the live swarm (held stack
        /// names, shadowed aliases, claimed hosts).
        #[arg(long)]
        offline: bool,
    },
    /// Run the controller: keep the pool converged until SIGTERM.
    Run {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        git: Box<run_cmd::GitArgs>,
        /// Full resync interval (reload manifests, look at every deployment).
        #[arg(long, default_value = "30s", value_parser = crate::manifest::parse_duration)]
        resync: std::time::Duration,
        /// How often deployments that are not settled are looked at again.
        #[arg(long, default_value = "2s", value_parser = crate::manifest::parse_duration)]
        poll: std::time::Duration,
        /// How long in-flight changes may take to finish after SIGTERM.
        #[arg(long, default_value = "30s", value_parser = crate::manifest::parse_duration)]
        grace: std::time::Duration,
        /// Address of the status page, JSON API and /metrics. Loopback by default; another
        /// address (e.g. 0.0.0.0:9480) needs --api-token-file (or --insecure-listen).
        #[arg(long, default_value = crate::report::DEFAULT_LISTEN, env = "HEARTH_LISTEN")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        endpoints: run_cmd::EndpointArgs,
        /// How probes reach tasks: `gwbridge` (hearth on a swarm node, outside any container:
        /// the task's docker_gwbridge address) or `overlay[:NET,...]` (hearth in a container
        /// attached to the apps' overlay networks: their task addresses, optionally only on NETs).
        #[arg(long, default_value = "gwbridge", env = "HEARTH_PROBE_REACH")]
        probe_reach: crate::probe::ReachPolicy,
        #[command(flatten)]
        lease: run_cmd::LeaseArgs,
        #[command(flatten)]
        snapshots: advance_cmd::SnapshotArgs,
    },
    /// List a deployment's snapshots (newest first).
    Snapshots {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        snapshots: advance_cmd::SnapshotArgs,
        /// The deployment.
        name: String,
    },
    /// Restore a deployment's snapshot into its live volumes (the latest by default).
    Restore {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        snapshots: advance_cmd::SnapshotArgs,
        /// The deployment.
        name: String,
        /// The snapshot id (see `hearth snapshots NAME`).
        snapshot: Option<String>,
    },
    /// Remove what is left of a deployment no manifest declares any more, its secrets included
    /// (prune and park keep them), and list the volumes left (never removed).
    Purge {
        #[command(flatten)]
        source: Source,
        /// The deployment.
        name: String,
    },
    /// Clear a deployment's AdvanceFailed so the running controller tries the version again.
    Retry {
        #[command(flatten)]
        source: Source,
        /// The deployment.
        name: String,
    },
    /// Move a deployment held with StackMoveHeld to the stack its manifests now give, with its
    /// data: snapshot its volumes, create the new stack, restore, verify, remove the old stack
    /// (the old volumes are kept). Resumes a move left half done.
    Migrate {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        snapshots: advance_cmd::SnapshotArgs,
        /// How long the new stack may take to converge with passing probes after the restore.
        #[arg(long, default_value = "10m", value_parser = crate::manifest::parse_duration)]
        timeout: std::time::Duration,
        /// The deployment.
        name: String,
    },
    /// Show the deployments of a running hearth (its JSON API at --url).
    Status {
        /// The deployment to show in detail (default: the whole pool as a table): `status NAME`
        /// or `status --deployment NAME`.
        #[command(flatten)]
        name: DeploymentName,
        /// Where the running hearth listens.
        #[arg(long, default_value = "http://127.0.0.1:9480", env = "HEARTH_URL")]
        url: String,
        /// CA certificates (PEM) to trust besides the system roots, for an https:// --url.
        #[arg(long, env = "HEARTH_CACERT")]
        cacert: Option<PathBuf>,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: status_cmd::StatusOutput,
        /// File of the bearer token the API needs (a hearth with --api-token-file).
        #[arg(long, env = "HEARTH_API_TOKEN_FILE")]
        token_file: Option<PathBuf>,
    },
    /// Exit 0 when the hearth listening at --listen answers `/healthz` (the image's HEALTHCHECK).
    Healthcheck {
        #[arg(long, default_value = crate::report::DEFAULT_LISTEN, env = "HEARTH_LISTEN")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "5s", value_parser = crate::manifest::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print the Prometheus alert rules, with runbook links under --runbook-base-url.
    Rules {
        /// Base URL of the runbook pages (`<base>/<alert>.md`).
        #[arg(long, env = "HEARTH_RUNBOOK_BASE_URL", default_value = crate::report::rules::DEFAULT_RUNBOOK_BASE_URL)]
        runbook_base_url: String,
    },
    /// Converge the swarm to the manifests once and exit.
    Apply {
        #[command(flatten)]
        source: Source,
        /// Only this deployment: `apply NAME -f ...` or `apply -f ... --deployment NAME`.
        #[command(flatten)]
        deployment: DeploymentName,
        /// Wait until every applied service runs its desired tasks.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits (e.g. 90s, 5m).
        #[arg(long, default_value = "5m", value_parser = crate::manifest::parse_duration)]
        timeout: std::time::Duration,
        /// Also apply the deferred changes of adopted services: their tasks restart (see
        /// docs/abra.md). Needs --deployment.
        #[arg(long, requires = "deployment")]
        restart: bool,
    },
    /// Write Pool and Deployment manifests for the apps abra deployed on one server (its
    /// `~/.abra/servers/<server>/*.env` files); see docs/abra.md.
    Import(import_cmd::ImportArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // Several managers travel as one comma-separated string (`Client::connect` splits it).
    let docker_host = (!cli.docker_host.is_empty()).then(|| cli.docker_host.join(","));
    crate::redact::configure(&cli.redact_keys);
    // The controller logs what it does; one-shot commands print their results and log warnings.
    let level = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    match cli.command {
        Command::Validate {
            source,
            output,
            offline,
        } => validate::run(&source, output, docker_host.as_deref(), offline),
        Command::Render {
            source,
            deployment,
            output,
            show_secrets,
        } => render_cmd::run(
            &source,
            deployment.get().unwrap_or_default(),
            output,
            show_secrets,
        ),
        Command::Schema { markdown } => schema_cmd::run(markdown),
        Command::Completions { shell } => schema_cmd::completions(shell),
        Command::Plan {
            source,
            output,
            detailed_exitcode,
            offline,
        } => plan_cmd::run(
            &source,
            docker_host.as_deref(),
            output,
            detailed_exitcode,
            offline,
        ),
        Command::Run {
            source,
            git,
            resync,
            poll,
            grace,
            listen,
            endpoints,
            probe_reach,
            lease,
            snapshots,
        } => run_cmd::run(&run_cmd::RunArgs {
            source: &source,
            git: &git,
            host: docker_host.as_deref(),
            resync,
            poll,
            grace,
            listen,
            endpoints: &endpoints,
            probe_reach,
            lease: &lease,
            advance: snapshots.config(),
        }),
        Command::Healthcheck { listen, timeout } => healthcheck_cmd::run(listen, timeout),
        Command::Snapshots {
            source,
            snapshots,
            name,
        } => advance_cmd::snapshots(&source, &snapshots, &name),
        Command::Restore {
            source,
            snapshots,
            name,
            snapshot,
        } => advance_cmd::restore(
            &source,
            docker_host.as_deref(),
            &snapshots,
            &name,
            snapshot.as_deref(),
        ),
        Command::Purge { source, name } => purge_cmd::run(&source, docker_host.as_deref(), &name),
        Command::Retry { source, name } => {
            advance_cmd::retry(&source, docker_host.as_deref(), &name)
        }
        Command::Migrate {
            source,
            snapshots,
            timeout,
            name,
        } => migrate_cmd::run_cmd(&migrate_cmd::MigrateArgs {
            source: &source,
            host: docker_host.as_deref(),
            snapshots: &snapshots,
            name: &name,
            timeout,
        }),
        Command::Status {
            name,
            url,
            output,
            token_file,
            cacert,
        } => status_cmd::run(&status_cmd::StatusArgs {
            url: &url,
            cacert: cacert.as_deref(),
            output,
            name: name.get(),
            token_file: token_file.as_deref(),
        }),
        Command::Rules { runbook_base_url } => {
            print!("{}", crate::report::rules::render(&runbook_base_url));
            ExitCode::SUCCESS
        }
        Command::Apply {
            source,
            deployment,
            wait,
            timeout,
            restart,
        } => apply_cmd::run(&apply_cmd::ApplyArgs {
            source: &source,
            host: docker_host.as_deref(),
            deployment: deployment.get(),
            wait,
            timeout,
            restart,
        }),
        Command::Import(args) => import_cmd::run(&args, docker_host.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn listen_of(args: &[&str]) -> std::net::SocketAddr {
        match Cli::try_parse_from(args).expect("parses").command {
            Command::Run { listen, .. } => listen,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn docker_host_may_be_given_several_times() {
        let cli = Cli::try_parse_from([
            "hearth",
            "--docker-host",
            "unix:///run/a.sock",
            "--docker-host",
            "tcp://10.0.0.2:2375,tcp://10.0.0.3:2375",
            "plan",
            "-f",
            "p",
        ])
        .expect("parses");
        assert_eq!(
            cli.docker_host,
            [
                "unix:///run/a.sock",
                "tcp://10.0.0.2:2375",
                "tcp://10.0.0.3:2375"
            ]
        );
    }

    #[test]
    fn run_listens_on_loopback_unless_told_otherwise() {
        // The default, unless the environment sets one.
        if std::env::var_os("HEARTH_LISTEN").is_none() {
            let l = listen_of(&["hearth", "run", "-f", "pool.yml"]);
            assert!(l.ip().is_loopback());
            assert_eq!(l.to_string(), crate::report::DEFAULT_LISTEN);
        }
        let l = listen_of(&["hearth", "run", "-f", "p", "--listen", "0.0.0.0:9999"]);
        assert_eq!(l.to_string(), "0.0.0.0:9999");
        assert!(Cli::try_parse_from(["hearth", "run", "-f", "p", "--listen", "nope"]).is_err());
    }

    #[test]
    fn status_takes_url_output_and_name() {
        let cli = Cli::try_parse_from([
            "hearth",
            "status",
            "--url",
            "http://h:1",
            "-o",
            "json",
            "gitea",
        ])
        .expect("parses");
        match cli.command {
            Command::Status {
                name, url, output, ..
            } => {
                assert_eq!(name.get(), Some("gitea"));
                assert_eq!(url, "http://h:1");
                assert_eq!(output, status_cmd::StatusOutput::Json);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["hearth", "status", "-o", "yaml"]).is_err());
    }
}
