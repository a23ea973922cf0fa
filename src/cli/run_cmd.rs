//! `hearth run`: the controller, until SIGTERM or SIGINT, with the reporting server
//! ([`crate::report`]) on `--listen` reading the same shared state.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::controller::{self, Config, Shared};
use crate::report;

use super::Source;
use super::common::runtime;

/// Manifests from a git branch (`hearth run --git URL`). Credentials come from the environment or
/// files, never from the manifests; they never appear in logs.
#[derive(Debug, Clone, clap::Args)]
pub struct GitArgs {
    /// Follow the manifests in this git repository (https://, ssh://, git@host:path, file://).
    #[arg(long, env = "HEARTH_GIT")]
    pub git: Option<String>,
    #[arg(long, default_value = "main", requires = "git")]
    pub branch: String,
    /// Directory of the manifests inside the repository.
    #[arg(long = "path", default_value = "", requires = "git")]
    pub git_path: String,
    /// How often to fetch.
    #[arg(long, default_value = "60s", value_parser = crate::manifest::parse_duration)]
    pub interval: Duration,
    /// Where fetched repositories are cached.
    #[arg(long, default_value = "/var/lib/hearth/cache", env = "HEARTH_CACHE")]
    pub git_cache: std::path::PathBuf,
    /// `GIT_SSH_COMMAND` for fetches, e.g. `ssh -i /run/secrets/deploy_key -o IdentitiesOnly=yes`.
    #[arg(long, env = "HEARTH_GIT_SSH_COMMAND")]
    pub git_ssh_command: Option<String>,
    /// A git credentials file (`https://user:token@host` lines) used as the only helper.
    #[arg(long, env = "HEARTH_GIT_CREDENTIALS_FILE")]
    pub git_credentials_file: Option<std::path::PathBuf>,
    /// A `GIT_ASKPASS` program.
    #[arg(long, env = "HEARTH_GIT_ASKPASS")]
    pub git_askpass: Option<std::path::PathBuf>,
    /// File holding the bearer token that enables `POST /api/v1/source/refresh`.
    #[arg(long, env = "HEARTH_REFRESH_TOKEN_FILE")]
    pub refresh_token_file: Option<std::path::PathBuf>,
}

/// Who may read the endpoints (`report::auth`, docs/endpoints.md).
#[derive(Debug, Clone, clap::Args)]
pub struct EndpointArgs {
    /// File holding the bearer token the API and status page require
    /// (`Authorization: Bearer <token>`); needed with a --listen off loopback.
    #[arg(long, env = "HEARTH_API_TOKEN_FILE")]
    pub api_token_file: Option<std::path::PathBuf>,
    /// File holding the bearer token /metrics requires (open without it).
    #[arg(long, env = "HEARTH_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<std::path::PathBuf>,
    /// Serve the API and status page without a token on an address off loopback.
    #[arg(long, env = "HEARTH_INSECURE_LISTEN")]
    pub insecure_listen: bool,
}

impl EndpointArgs {
    /// The tokens, read, after checking that `listen` may be served with them.
    fn auth(&self, listen: std::net::SocketAddr) -> Result<report::auth::Auth, String> {
        let read = |p: &Option<std::path::PathBuf>, what| {
            p.as_deref()
                .map(|p| report::auth::read_token(p, what))
                .transpose()
                .map_err(|e| e.to_string())
        };
        let auth = report::auth::Auth {
            api: read(&self.api_token_file, "API token")?,
            metrics: read(&self.metrics_token_file, "metrics token")?,
        };
        report::auth::check_listen(listen, auth.api.is_some(), self.insecure_listen)
            .map_err(|e| e.to_string())?;
        Ok(auth)
    }
}

/// Leader election between hearth instances of one pool (`controller::lease`).
#[derive(Debug, Clone, clap::Args)]
pub struct LeaseArgs {
    /// How long the leader lease lasts: the leader renews every third of it, a standby takes
    /// over within about this long after the leader dies.
    #[arg(long, default_value = "15s", value_parser = crate::manifest::parse_duration)]
    pub lease_duration: Duration,
    /// This instance's name in the lease (default `<hostname>:<pid>`).
    #[arg(long, env = "HEARTH_IDENTITY")]
    pub identity: Option<String>,
    /// Act on the swarm without a lease: only when no other hearth runs for the same pool.
    #[arg(long, conflicts_with_all = ["lease_duration", "identity"])]
    pub no_lease: bool,
}

impl LeaseArgs {
    /// The lease configuration; `None` with `--no-lease`.
    fn config(&self) -> Result<Option<controller::LeaseConfig>, String> {
        if self.no_lease {
            return Ok(None);
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err("--lease-duration must be at least 1s".into());
        }
        let identity = match &self.identity {
            Some(i) if i.trim().is_empty() => return Err("--identity must not be empty".into()),
            Some(i) => i.trim().to_string(),
            None => controller::lease::default_identity(),
        };
        Ok(Some(controller::LeaseConfig {
            duration: self.lease_duration,
            identity,
        }))
    }
}

pub struct RunArgs<'a> {
    pub source: &'a Source,
    pub git: &'a GitArgs,
    pub host: Option<&'a str>,
    pub resync: Duration,
    pub poll: Duration,
    pub grace: Duration,
    pub listen: std::net::SocketAddr,
    pub endpoints: &'a EndpointArgs,
    pub probe_reach: crate::probe::ReachPolicy,
    pub lease: &'a LeaseArgs,
    pub advance: controller::AdvanceConfig,
}

pub fn run(args: &RunArgs) -> ExitCode {
    if args.source.paths.is_empty() && args.git.git.is_none() {
        eprintln!("hearth run needs manifests: -f PATH... or --git URL");
        return ExitCode::from(1);
    }
    let git = args.git.git.as_ref().map(|url| controller::GitConfig {
        url: url.clone(),
        branch: args.git.branch.clone(),
        path: args.git.git_path.clone(),
        interval: args.git.interval,
        cache_dir: args.git.git_cache.clone(),
        options: crate::source::GitOptions {
            ssh_command: args.git.git_ssh_command.clone(),
            askpass: args.git.git_askpass.clone(),
            credentials_file: args.git.git_credentials_file.clone(),
            ..Default::default()
        },
    });
    let token = match &args.git.refresh_token_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                eprintln!("{}: the refresh token file is empty", p.display());
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("{}: cannot read the refresh token: {e}", p.display());
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let auth = match args.endpoints.auth(args.listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let lease = match args.lease.config() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut advance = args.advance.clone();
    if let Some(l) = &lease {
        advance.author = l.identity.clone();
    }
    let cfg = Config {
        paths: args.source.paths.clone(),
        git,
        recipes: args.source.recipes.clone(),
        docker_host: args.host.map(str::to_string),
        resync: args.resync,
        poll: args.poll,
        grace: args.grace,
        lease,
        advance,
        probe_reach: args.probe_reach.clone(),
    };
    runtime().block_on(async {
        let shared = Arc::new(Shared::default());
        *shared.refresh_token.write().expect("token") = token;
        let listener = match report::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {}: {e}", args.listen);
                return ExitCode::from(1);
            }
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(report::serve_with(
            listener,
            shared.clone(),
            auth,
            async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            },
        ));
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight work"),
                _ = int.recv() => tracing::info!("SIGINT: finishing in-flight work"),
            }
            let _ = stop_tx.send(true);
        });
        let result = controller::run(cfg, shared, stop_rx).await;
        // The controller returns on shutdown (or on error): the server stops with it.
        server.abort();
        match result {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::from(1)
            }
        }
    })
}

/// Text log lines on stderr at the `RUST_LOG` level (default info).
pub fn init_logging() {
    super::logging::init(super::logging::LogFormat::Text, "info");
}

pub use super::logging::never_logged;

/// Installs hearth's text log subscriber writing to `writer` (see [`super::logging::init_with`]).
pub fn init_logging_with<W>(writer: W, directives: &str, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    super::logging::init_with(writer, directives, ansi, super::logging::LogFormat::Text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct LeaseCli {
        #[command(flatten)]
        lease: LeaseArgs,
    }

    fn lease_of(args: &[&str]) -> Result<Option<controller::LeaseConfig>, String> {
        use clap::Parser;
        let mut argv = vec!["hearth"];
        argv.extend_from_slice(args);
        LeaseCli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .lease
            .config()
    }

    #[test]
    fn the_lease_is_on_by_default_and_can_be_tuned_or_turned_off() {
        let l = lease_of(&[]).expect("parses").expect("a lease");
        assert_eq!(l.duration, Duration::from_secs(15));
        assert!(l.identity.ends_with(&format!(":{}", std::process::id())));
        let l = lease_of(&["--lease-duration", "3s", "--identity", "a"])
            .expect("parses")
            .expect("a lease");
        assert_eq!(
            (l.duration, l.identity.as_str()),
            (Duration::from_secs(3), "a")
        );
        assert_eq!(lease_of(&["--no-lease"]), Ok(None));
        assert!(lease_of(&["--no-lease", "--identity", "a"]).is_err());
        assert!(lease_of(&["--lease-duration", "100ms"]).is_err());
        assert!(lease_of(&["--identity", " "]).is_err());
    }

    #[test]
    fn bollard_request_bodies_are_never_logged() {
        use tracing::Level;
        use tracing::callsite::Identifier;
        use tracing::metadata::Kind;
        struct Cs;
        impl tracing::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unimplemented!()
            }
        }
        static CS: Cs = Cs;
        let meta = |target: &'static str, level: Level| {
            tracing::Metadata::new(
                "e",
                target,
                level,
                None,
                None,
                None,
                tracing::field::FieldSet::new(&[], Identifier(&CS)),
                Kind::EVENT,
            )
        };
        assert!(never_logged(&meta("bollard::docker", Level::DEBUG)));
        assert!(never_logged(&meta("bollard", Level::TRACE)));
        assert!(!never_logged(&meta("bollard::docker", Level::WARN)));
        assert!(!never_logged(&meta("hearth::controller", Level::TRACE)));
    }
}
