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
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    init_logging_with(std::io::stderr, &directives, true);
}

/// Records hearth never writes, whatever `RUST_LOG` says: bollard's debug and trace records
/// carry whole request bodies, and a secret's create request holds its value.
pub fn never_logged(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("bollard") && *meta.level() > tracing::Level::INFO
}

/// Installs hearth's log subscriber writing to `writer` with the `EnvFilter` `directives`, less
/// what [`never_logged`] keeps out. Does nothing when a subscriber is already installed.
pub fn init_logging_with<W>(writer: W, directives: &str, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi)
        .with_filter(filter)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| !never_logged(m)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

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
