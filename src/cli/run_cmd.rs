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

pub struct RunArgs<'a> {
    pub source: &'a Source,
    pub host: Option<&'a str>,
    pub resync: Duration,
    pub poll: Duration,
    pub grace: Duration,
    pub listen: std::net::SocketAddr,
}

pub fn run(args: &RunArgs) -> ExitCode {
    init_logging();
    let cfg = Config {
        paths: args.source.paths.clone(),
        recipes: args.source.recipes.clone(),
        docker_host: args.host.map(str::to_string),
        resync: args.resync,
        poll: args.poll,
        grace: args.grace,
    };
    runtime().block_on(async {
        let shared = Arc::new(Shared::default());
        let listener = match report::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {}: {e}", args.listen);
                return ExitCode::from(1);
            }
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(report::serve(listener, shared.clone(), async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        }));
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

/// Log lines on stderr; `RUST_LOG` (e.g. `hearth=debug`) sets the level, default info.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
