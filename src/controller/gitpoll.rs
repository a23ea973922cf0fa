//! Following a git source: fetches the manifests' branch every interval (or at once on
//! `POST /api/v1/source/refresh`), hands the controller the manifests of each newly applied
//! revision, keeps the last good revision when a commit does not validate, and backs off while the
//! remote is unreachable. Git runs on blocking threads; nothing here holds up reconciling.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::manifest::Loaded;
use crate::source::{Decision, GitOptions, GitSource, SourceState, next_retry};

use super::events::Affects;
use super::status::{Shared, SourceReport};

/// `hearth run --git ...`.
#[derive(Debug, Clone)]
pub struct GitConfig {
    pub url: String,
    pub branch: String,
    /// Directory of the manifests inside the repo ("" for the root).
    pub path: String,
    pub interval: Duration,
    pub cache_dir: PathBuf,
    pub options: GitOptions,
}

/// Polls the source forever; sends the applied revision's manifests on `loaded`.
pub async fn run(
    src: GitSource,
    interval: Duration,
    shared: Arc<Shared>,
    loaded: watch::Sender<Option<Loaded>>,
    notify: mpsc::Sender<Affects>,
) {
    let mut state = SourceState::default();
    // Resume at the last good revision saved in the cache, if any, before the first fetch.
    let s = src.clone();
    if let Ok((st, restored)) = tokio::task::spawn_blocking(move || {
        let mut st = SourceState::default();
        let l = s.restore(&mut st);
        (st, l)
    })
    .await
    {
        state = st;
        if let Some(l) = restored {
            publish(&shared, &src, &state);
            loaded.send_replace(Some(l));
            let _ = notify.send(Affects::Reload).await;
        }
    }
    loop {
        let s = src.clone();
        let mut st = state.clone();
        let Ok((st, synced)) = tokio::task::spawn_blocking(move || {
            let synced = s.sync(&mut st, SystemTime::now());
            (st, synced)
        })
        .await
        else {
            return;
        };
        state = st;
        publish(&shared, &src, &state);
        let wait = match synced.decision {
            Decision::Apply(rev) => {
                tracing::info!(
                    "source: applying revision {} ({})",
                    rev.short(),
                    rev.summary
                );
                loaded.send_replace(synced.loaded);
                if notify.send(Affects::Reload).await.is_err() {
                    return;
                }
                interval
            }
            Decision::Rejected => {
                if let Some((rev, errs)) = &state.bad {
                    tracing::warn!(
                        "source: revision {} does not validate ({} problem(s)); still on {}",
                        rev.short(),
                        errs.len(),
                        state
                            .applied
                            .as_ref()
                            .map(|r| r.short().to_string())
                            .unwrap_or_else(|| "nothing".into())
                    );
                }
                interval
            }
            Decision::Unreachable => {
                let d = next_retry(state.failures);
                tracing::warn!(
                    "source: {}; retrying in {d:?}",
                    state.last_error.clone().unwrap_or_default()
                );
                d
            }
            Decision::Unchanged => interval,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.refresh.notified() => tracing::info!("source: refresh requested"),
        }
    }
}

fn publish(shared: &Shared, src: &GitSource, state: &SourceState) {
    let report = SourceReport {
        url: src.url_redacted(),
        branch: src.branch().to_string(),
        revision: state.applied.as_ref().map(|r| r.commit.clone()),
        summary: state.applied.as_ref().map(|r| r.summary.clone()),
        bad_revision: state.bad.as_ref().map(|(r, _)| r.commit.clone()),
        bad_errors: state
            .bad
            .as_ref()
            .map(|(_, e)| e.iter().map(|d| d.to_string()).collect())
            .unwrap_or_default(),
        last_error: state.last_error.clone(),
    };
    *shared.source.write().expect("source") = report;
    if let Some(t) = state.last_sync {
        shared.source_synced_at.store(
            super::status::unix(t) as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}
