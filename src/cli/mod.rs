//! The `hearth` command line: parsing (clap) and one function per subcommand. Subcommands print
//! problems as `file:line:col: field: message` and return the process exit code.

mod advance_cmd;
mod apply_cmd;
mod common;
mod healthcheck_cmd;
pub mod logging;
mod plan_cmd;
mod render_cmd;
mod run_cmd;
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
    /// Show what `apply` would change on the swarm, with reasons.
    Plan {
        #[command(flatten)]
        source: Source,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
        /// Exit 0 when nothing would change, 2 when something would, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
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
        /// Address of the status page, JSON API and /metrics. Loopback by default: the endpoints
        /// are unauthenticated, so give another address (e.g. 0.0.0.0:9480) only on purpose.
        #[arg(long, default_value = crate::report::DEFAULT_LISTEN, env = "HEARTH_LISTEN")]
        listen: std::net::SocketAddr,
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
    /// Clear a deployment's AdvanceFailed so the running controller tries the version again.
    Retry {
        #[command(flatten)]
        source: Source,
        /// The deployment.
        name: String,
    },
    /// Show the deployments of a running hearth (its JSON API at --url).
    Status {
        /// The deployment to show in detail (default: the whole pool as a table).
        name: Option<String>,
        /// Where the running hearth listens.
        #[arg(long, default_value = "http://127.0.0.1:9480", env = "HEARTH_URL")]
        url: String,
        /// CA certificates (PEM) to trust besides the system roots, for an https:// --url.
        #[arg(long, env = "HEARTH_CACERT")]
        cacert: Option<PathBuf>,
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: status_cmd::StatusOutput,
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
        /// Only this deployment.
        #[arg(long)]
        deployment: Option<String>,
        /// Wait until every applied service runs its desired tasks.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits (e.g. 90s, 5m).
        #[arg(long, default_value = "5m", value_parser = crate::manifest::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // Several managers travel as one comma-separated string (`Client::connect` splits it).
    let docker_host = (!cli.docker_host.is_empty()).then(|| cli.docker_host.join(","));
    // The controller logs what it does; one-shot commands print their results and log warnings.
    let level = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    match cli.command {
        Command::Validate { source } => validate::run(&source),
        Command::Render {
            source,
            deployment,
            output,
        } => render_cmd::run(&source, &deployment, output),
        Command::Plan {
            source,
            output,
            detailed_exitcode,
        } => plan_cmd::run(&source, docker_host.as_deref(), output, detailed_exitcode),
        Command::Run {
            source,
            git,
            resync,
            poll,
            grace,
            listen,
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
        Command::Retry { source, name } => {
            advance_cmd::retry(&source, docker_host.as_deref(), &name)
        }
        Command::Status {
            name,
            url,
            cacert,
            output,
        } => status_cmd::run(&status_cmd::StatusArgs {
            url: &url,
            cacert: cacert.as_deref(),
            output,
            name: name.as_deref(),
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
        } => apply_cmd::run(&apply_cmd::ApplyArgs {
            source: &source,
            host: docker_host.as_deref(),
            deployment: deployment.as_deref(),
            wait,
            timeout,
        }),
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
                assert_eq!(name.as_deref(), Some("gitea"));
                assert_eq!(url, "http://h:1");
                assert_eq!(output, status_cmd::StatusOutput::Json);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["hearth", "status", "-o", "yaml"]).is_err());
    }
}
