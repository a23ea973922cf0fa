//! The controller: `hearth run`'s reconcile loop.
//!
//! One task owns the state. It listens to the Docker events stream (services, containers,
//! networks, secrets, configs, nodes) and maps each event to the deployment it concerns; a periodic
//! resync reloads the manifests and marks every deployment as a safety net. Marked deployments go
//! through the [`queue::Queue`] (never two reconciles of one deployment at once, bursts coalesce,
//! bounded concurrency, backoff with jitter on errors). A pass takes ONE snapshot of the swarm for
//! all the deployments it reconciles (seven list calls, whatever their number), plans and assesses
//! each, and spawns the applies. The events stream and the daemon are reconnected when they drop;
//! SIGTERM (the `shutdown` channel) lets in-flight applies finish within a grace period, then the
//! loop returns.

pub mod advance_store;
mod advancer;
pub mod cost;
mod decide;
pub mod events;
pub mod filewatch;
mod gitpoll;
mod judge;
pub mod leader;
pub mod lease;
mod prober;
pub mod queue;
mod reconcile;
pub mod status;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::desired::{self, DesiredPool, RenderCache};
use crate::manifest::{self, DesiredState, Loaded};
use crate::observed::{Snapshot, StackView};
use crate::plan::SnapIndex;
use crate::recipe::RecipeStore;
use crate::swarm::Client;
use crate::swarm::apply::Ids;

pub use advancer::AdvanceConfig;
use events::Affects;
pub use gitpoll::GitConfig;
pub use leader::LeaseConfig;
use queue::Queue;
pub use status::{DeploymentStatus, Shared};

/// How `hearth run` runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Manifest files or directories.
    pub paths: Vec<PathBuf>,
    /// Manifests from a git branch instead of `paths`.
    pub git: Option<GitConfig>,
    /// Recipe repos directory (default: the Pool's).
    pub recipes: Option<PathBuf>,
    pub docker_host: Option<String>,
    /// Full resync (reload manifests, mark everything) interval.
    pub resync: Duration,
    /// How often deployments that are not settled (progressing, waiting) are looked at again.
    pub poll: Duration,
    /// How long in-flight applies may take to finish after SIGTERM.
    pub grace: Duration,
    /// Take part in leader election (`None`: this instance always acts; see [`lease`]).
    pub lease: Option<LeaseConfig>,
    /// Snapshots for version advances.
    pub advance: AdvanceConfig,
    /// How probes reach tasks (see `probe::target`).
    pub probe_reach: crate::probe::ReachPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            paths: Vec::new(),
            git: None,
            recipes: None,
            docker_host: None,
            resync: Duration::from_secs(30),
            poll: Duration::from_secs(2),
            grace: Duration::from_secs(30),
            lease: None,
            advance: AdvanceConfig::default(),
            probe_reach: Default::default(),
        }
    }
}

fn c_git_options(git: &Option<GitConfig>) -> crate::source::GitOptions {
    git.as_ref().map(|g| g.options.clone()).unwrap_or_default()
}

/// The result of one spawned apply.
struct Applied {
    deployment: String,
    result: Result<usize, String>,
}

struct Controller {
    cfg: Config,
    /// [`manifest::fingerprint`] of the manifest files at the last reload (files source only).
    files_fingerprint: [u8; 32],
    shared: Arc<Shared>,
    client: Client,
    queue: Queue,
    cache: RenderCache,
    loaded: Loaded,
    desired: DesiredPool,
    /// stack -> deployment, for mapping events.
    stacks: BTreeMap<String, String>,
    /// Deployments of this pool found on the swarm but gone from the manifests (pruned when the
    /// pool prunes).
    orphans: BTreeSet<String>,
    /// When a deployment's current desired spec was applied (for the progress deadline).
    progressing_since: HashMap<String, SystemTime>,
    applies: JoinSet<Applied>,
    /// Log tails of failed containers (they do not change once a container died).
    logs: HashMap<String, Vec<String>>,
    probe_specs: watch::Sender<prober::ProbeSpecs>,
    latest: watch::Sender<Option<Arc<Snapshot>>>,
    probe_outcomes: prober::Outcomes,
    /// The applied git revision's manifests (when following a git source).
    git_loaded: Option<watch::Receiver<Option<Loaded>>>,
    recipe_remote: crate::source::RecipeRemote,
    /// Failed task IDs already counted.
    seen_failed: std::collections::HashSet<String>,
    /// Drives version advances (snapshot, update, verify, roll back, restore).
    advancer: advancer::Advancer,
    /// What each deployment claims against other stacks (`conflicts`), kept while its render is.
    claims: crate::conflicts::ClaimsCache,
    /// What the last pass's swarm said about names (canonicals are settled from it).
    live_names: manifest::settle::LiveNames,
}

/// Runs the controller until `shutdown` turns true. Returns after in-flight work finished or the
/// grace period ran out.
pub async fn run(
    cfg: Config,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    cost::tune_allocator();
    let Some(client) = connect(&cfg, &shared, &mut shutdown).await? else {
        return Ok(());
    };
    // With a lease, nothing is changed until this instance holds it.
    let lease = cfg
        .lease
        .clone()
        .map(|l| leader::spawn(client.clone(), l, shared.clone()));
    let mut leadership = shared.leadership.subscribe();
    let mut c = Controller::new(cfg, shared, client);
    let (ev_tx, mut ev_rx) = mpsc::channel(1024);
    let git_task = c.start_git(&ev_tx)?;
    c.reload();
    c.mark_all();
    // Saved local edits reload at once (the resync stays as the safety net).
    let (edit_tx, mut edits) = mpsc::channel(1);
    let _filewatch = c.watch_files(edit_tx);

    let events = tokio::spawn(watch_events(
        c.client.clone(),
        ev_tx.clone(),
        c.shared.clone(),
    ));
    let prober = tokio::spawn(prober::run(
        c.client.clone(),
        c.probe_specs.subscribe(),
        c.latest.subscribe(),
        c.probe_outcomes.clone(),
        ev_tx,
        c.cfg.probe_reach.clone(),
    ));
    let mut resync = tokio::time::interval(c.cfg.resync);
    resync.tick().await;
    let mut poll = tokio::time::interval(c.cfg.poll);
    loop {
        // A standby takes nothing from the queue: its backoffs must not wake it in a loop.
        let wake = c
            .queue
            .next_wakeup()
            .filter(|_| c.shared.is_leader())
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(affects) = ev_rx.recv() => {
                c.on_event(affects);
                // Coalesce a burst of events into one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while let Ok(more) = ev_rx.try_recv() {
                    c.on_event(more);
                }
            }
            _ = resync.tick() => {
                c.reload();
                c.mark_all();
            }
            Some(()) = edits.recv() => {
                tracing::info!("local files changed: reloading the manifests");
                c.reload();
                c.mark_all();
            }
            _ = poll.tick() => {
                // Manifest files changed: reload and look at everything at once.
                if c.git_loaded.is_none() && c.files_changed() {
                    c.reload();
                    c.mark_all();
                }
                c.mark_unsettled();
            }
            Ok(()) = leadership.changed() => {
                if c.shared.is_leader() {
                    // Taking over: look at everything afresh.
                    c.reload();
                    c.mark_all();
                }
            }
            Some(done) = c.applies.join_next() => {
                if let Ok(done) = done {
                    c.finish_apply(done);
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if !c.shared.is_leader() {
            leader::publish_standby(&c.shared, c.loaded.deployments.iter().map(|d| d.name()));
            continue;
        }
        c.pass().await;
    }
    c.drain().await;
    if let Some(lease) = lease {
        // Nothing is applying any more: hand over at once.
        lease.release().await;
    }
    events.abort();
    prober.abort();
    if let Some(t) = git_task {
        t.abort();
    }
    Ok(())
}

/// Connects to the daemon, retrying while it is unreachable. `None`: shut down meanwhile.
async fn connect(
    cfg: &Config,
    shared: &Arc<Shared>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Client>> {
    let client = loop {
        match Client::connect(cfg.docker_host.as_deref()).await {
            Ok(c) => break c,
            // A worker (or a daemon in no swarm) will not become a manager by waiting.
            Err(e @ crate::swarm::SwarmError::NotManager { .. }) => return Err(e.into()),
            Err(e) => {
                shared.docker_up.store(false, Ordering::SeqCst);
                tracing::warn!("docker unreachable: {e}; retrying in 2s");
                tokio::select! {
                    _ = shutdown.changed() => return Ok(None),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    shared.docker_up.store(true, Ordering::SeqCst);
    let _ = shared.client.set(client.clone());
    Ok(Some(client))
}

/// Follows the events stream, reconnecting when it drops; sends what each event affects.
async fn watch_events(client: Client, tx: mpsc::Sender<Affects>, shared: Arc<Shared>) {
    // The controller maps raw events to deployments: it owns the stack -> deployment map.
    loop {
        let mut stream = Box::pin(client.events(events::filters()));
        let mut got_any = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(ev) => {
                    got_any = true;
                    shared.docker_up.store(true, Ordering::SeqCst);
                    if tx.send(Affects::Raw(Box::new(ev))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("docker events stream: {e}");
                    break;
                }
            }
        }
        shared.docker_up.store(false, Ordering::SeqCst);
        tracing::warn!("docker events stream ended; reconnecting");
        // Something may have changed while we were not listening.
        if tx.send(Affects::All).await.is_err() {
            return;
        }
        let pause = if got_any { 200 } else { 2000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

impl Controller {
    /// A controller with nothing loaded yet, acting through `client`.
    fn new(cfg: Config, shared: Arc<Shared>, client: Client) -> Controller {
        // Every write of this controller (applies, advances, snapshots) is checked against the
        // lease just before it is sent; the lease task keeps its own unfenced client.
        let fence = shared.clone();
        let client = client.with_write_fence(Arc::new(move || fence.may_write()));
        let recipe_remote = crate::source::RecipeRemote::new(c_git_options(&cfg.git));
        let advancer = advancer::Advancer::new(cfg.advance.clone());
        Controller {
            files_fingerprint: [0; 32],
            cfg,
            shared,
            client,
            queue: Queue::default(),
            cache: RenderCache::new(),
            loaded: Loaded::default(),
            desired: DesiredPool::default(),
            stacks: BTreeMap::new(),
            orphans: BTreeSet::new(),
            progressing_since: HashMap::new(),
            applies: JoinSet::new(),
            logs: HashMap::new(),
            probe_specs: watch::channel(Vec::new()).0,
            latest: watch::channel(None).0,
            probe_outcomes: Default::default(),
            git_loaded: None,
            recipe_remote,
            seen_failed: Default::default(),
            advancer,
            claims: Default::default(),
            live_names: Default::default(),
        }
    }

    /// Follows the git source, when there is one: its task, sending new revisions to `ev_tx`.
    fn start_git(
        &mut self,
        ev_tx: &mpsc::Sender<Affects>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(g) = self.cfg.git.clone() else {
            return Ok(None);
        };
        let src = crate::source::GitSource::new(&g.url, &g.branch, &g.path, &g.cache_dir)
            .map_err(|e| anyhow::anyhow!("git source: {e}"))?
            .with_options(g.options.clone());
        let (tx, rx) = watch::channel(None);
        self.git_loaded = Some(rx);
        Ok(Some(tokio::spawn(gitpoll::run(
            src,
            g.interval,
            self.shared.clone(),
            tx,
            ev_tx.clone(),
        ))))
    }

    /// Watches the local manifest files (not with a git source) and the recipes for edits.
    fn watch_files(&self, edit_tx: mpsc::Sender<()>) -> Option<filewatch::FileWatch> {
        let paths = if self.git_loaded.is_some() {
            Vec::new()
        } else {
            self.cfg.paths.clone()
        };
        let recipes = self.store().map(|s| s.dir().to_path_buf());
        filewatch::spawn(filewatch::Roots::new(&paths, recipes), edit_tx)
    }

    /// After SIGTERM: lets in-flight applies finish within the grace period.
    async fn drain(&mut self) {
        tracing::info!(
            "shutting down: waiting up to {:?} for {} in-flight apply(s)",
            self.cfg.grace,
            self.applies.len()
        );
        let grace = tokio::time::sleep(self.cfg.grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = self.applies.join_next() => match next {
                    Some(Ok(done)) => self.finish_apply(done),
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = &mut grace => {
                    tracing::warn!("grace period over: abandoning {} apply(s); the next run resumes them", self.applies.len());
                    self.applies.abort_all();
                    break;
                }
            }
        }
    }

    fn store(&self) -> Option<RecipeStore> {
        desired::recipe_store(&self.loaded, self.cfg.recipes.clone())
    }

    /// Whether the manifest files differ from what the last reload read.
    fn files_changed(&self) -> bool {
        manifest::fingerprint(&self.cfg.paths) != self.files_fingerprint
    }

    /// Reloads the manifests (files, or the applied git revision) and re-renders what changed.
    fn reload(&mut self) {
        let meter = cost::Meter::start(0);
        if self.git_loaded.is_none() {
            self.files_fingerprint = manifest::fingerprint(&self.cfg.paths);
        }
        self.loaded = match &self.git_loaded {
            // Until a revision is applied there is nothing to reconcile (and nothing to prune).
            Some(rx) => rx.borrow().clone().unwrap_or_default(),
            None => manifest::load_paths(&self.cfg.paths),
        };
        if self.loaded.pool.is_none() && self.git_loaded.is_some() {
            return;
        }
        let Some(store) = self.store() else {
            *self.shared.manifest_errors.write().expect("errors") =
                vec!["no Pool manifest: cannot find recipes".to_string()];
            return;
        };
        // Recipes named by a git `source:` URL: clone them, or fetch tags when the declared
        // version is not known yet.
        for d in &self.loaded.deployments {
            if let Some(url) = &d.spec.source {
                let r = tokio::task::block_in_place(|| {
                    self.recipe_remote
                        .ensure(&d.spec.recipe, url, &d.spec.version, store.dir())
                });
                if let Err(e) = r {
                    tracing::warn!(deployment = %d.name(), "recipe source: {e}");
                }
            }
        }
        store.refresh();
        // Canonicals named as the last pass saw the swarm (each pass settles them again).
        if let Some(pool) = &self.loaded.pool {
            manifest::settle::settle(pool, &mut self.loaded.deployments, &self.live_names);
        }
        self.rerender(&store);
        cost::log("reload", &meter.finish(0, self.loaded.deployments.len()));
    }

    /// Renders the loaded manifests again (what changed) and refreshes what derives from them:
    /// stack index, probe specs, statuses of deployments gone.
    fn rerender(&mut self, store: &RecipeStore) {
        self.desired = desired::build_cached(&self.loaded, store, None, &mut self.cache);
        crate::redact::remember_pool(&self.loaded, &self.desired);
        self.shared
            .set_lease_pool(self.loaded.pool.as_ref().map(|p| status::LeasePool {
                name: p.metadata.name.clone(),
                labels: p.spec.labels.clone().into_iter().collect(),
            }));
        let mut errors: Vec<String> = self
            .shared
            .source
            .read()
            .expect("source")
            .bad_errors
            .clone();
        errors.extend(self.desired.errors.iter().map(|e| e.to_string()));
        *self.shared.manifest_errors.write().expect("errors") = errors;
        if self.git_loaded.is_none() {
            self.shared
                .source_synced_at
                .store(status::unix(SystemTime::now()) as u64, Ordering::SeqCst);
        }
        self.stacks = self
            .desired
            .deployments
            .iter()
            .map(|d| (d.stack.clone(), d.deployment.clone()))
            .collect();
        let specs: prober::ProbeSpecs = self
            .loaded
            .deployments
            .iter()
            .filter(|d| {
                !d.spec.probes.is_empty()
                    && !d.spec.suspend
                    && d.spec.state == DesiredState::Running
            })
            .filter_map(|d| {
                let r = self.desired.get(d.name())?;
                let subject = crate::probe::Subject {
                    stack: r.stack.clone(),
                    domain: r.domain.clone(),
                };
                Some((d.name().to_string(), subject, d.spec.probes.clone()))
            })
            .collect();
        self.probe_specs.send_if_modified(|old| {
            let changed = *old != specs;
            *old = specs;
            changed
        });
        // Forget deployments gone from the manifests.
        let known: BTreeSet<String> = self
            .loaded
            .deployments
            .iter()
            .map(|d| d.name().to_string())
            .collect();
        let mut statuses = self.shared.statuses.write().expect("statuses");
        let gone: Vec<String> = statuses
            .keys()
            .filter(|k| !known.contains(*k))
            .cloned()
            .collect();
        for g in gone {
            statuses.remove(&g);
            self.queue.forget(&g);
        }
        drop(statuses);
        self.claims.retain(|d| known.contains(d));
    }

    /// Names the canonicals from this pass's swarm ([`manifest::settle`]); renders again when a
    /// choice changed (a canonical about to be created steps aside from a held warm domain).
    fn settle_names(&mut self, held: &crate::conflicts::SwarmIndex) {
        let Some(pool) = &self.loaded.pool else {
            return;
        };
        let live = held.live_names(&pool.metadata.name);
        let changed = manifest::settle::settle(pool, &mut self.loaded.deployments, &live);
        self.live_names = live;
        if changed.is_empty() {
            return;
        }
        for c in &changed {
            tracing::info!(deployment = %c.deployment, domain = %c.domain, "named from the swarm: {}", c.why);
        }
        if let Some(store) = self.store() {
            self.rerender(&store);
        }
    }

    fn mark_all(&mut self) {
        for d in &self.loaded.deployments {
            self.queue.mark(d.name());
        }
        for o in self.orphans.clone() {
            self.queue.mark(&o);
        }
    }

    /// Deployments reporting a conflict with another stack are looked at again.
    fn mark_conflicted(&mut self) {
        let statuses = self.shared.statuses.read().expect("statuses");
        let conflicted: Vec<String> = statuses
            .values()
            .filter(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.kind == crate::conflicts::CONDITION && c.status)
            })
            .map(|s| s.name.clone())
            .collect();
        drop(statuses);
        for n in conflicted {
            self.queue.mark(&n);
        }
    }

    /// Deployments that are not settled are looked at again every `poll`.
    fn mark_unsettled(&mut self) {
        let statuses = self.shared.statuses.read().expect("statuses");
        let unsettled: Vec<String> = statuses
            .values()
            .filter(|s| s.phase.unsettled())
            .map(|s| s.name.clone())
            .collect();
        drop(statuses);
        for n in unsettled {
            self.queue.mark(&n);
        }
    }

    fn on_event(&mut self, affects: Affects) {
        match affects {
            Affects::All => self.mark_all(),
            // A new revision is acted on at once, not at the next resync.
            Affects::Reload => {
                self.reload();
                self.mark_all();
            }
            Affects::Deployments(ds) => ds.iter().for_each(|d| self.queue.mark(d)),
            Affects::Raw(ev) => match events::affected(&ev, &self.stacks) {
                Affects::All => self.mark_all(),
                Affects::Deployments(ds) => ds.iter().for_each(|d| self.queue.mark(d)),
                // Another stack's service changed: a conflict with it may have cleared (new
                // conflicts are found by the next resync).
                _ if ev.typ == Some(bollard::models::EventMessageTypeEnum::SERVICE) => {
                    self.mark_conflicted()
                }
                _ => {}
            },
            Affects::Nothing => {}
        }
    }

    fn concurrency(&self) -> usize {
        self.loaded
            .pool
            .as_ref()
            .map(|p| p.spec.defaults.concurrency as usize)
            .unwrap_or(4)
            .max(1)
    }

    /// One pass over the deployments ready to run, on one snapshot.
    async fn pass(&mut self) {
        // Every deployment that is due is looked at in this pass (planning and assessing from one
        // snapshot is cheap); `concurrency` bounds the applies running at once, not the looking.
        let ready = self.queue.take(Instant::now(), usize::MAX);
        if ready.is_empty() {
            return;
        }
        let looked_at = ready.len();
        let span = tracing::info_span!("pass", due = looked_at);
        self.pass_over(ready).instrument(span).await;
    }

    /// The pass proper, in its span.
    async fn pass_over(&mut self, ready: Vec<String>) {
        let meter = cost::Meter::start(self.client.counts().total());
        let looked_at = ready.len();
        // Let the previous snapshot go before reading the next (not two in memory at once); the
        // prober skips a round meanwhile.
        self.latest.send_replace(None);
        cost::release_free_memory();
        let read = Instant::now();
        let snap = match self.client.snapshot().await {
            Ok(s) => {
                self.shared.docker_up.store(true, Ordering::SeqCst);
                s
            }
            Err(e) => {
                self.shared.docker_up.store(false, Ordering::SeqCst);
                tracing::warn!("cannot read the swarm: {e}");
                for name in ready {
                    self.queue.done(&name, false, Instant::now());
                }
                return;
            }
        };
        let snapshot_took = read.elapsed().as_secs_f64();
        self.note_orphans(&snap);
        let snap = Arc::new(snap);
        self.latest.send_replace(Some(snap.clone()));
        // Group the snapshot by stack once per pass, not once per deployment.
        let stacks = snap.stacks();
        self.count_task_failures(&snap, &stacks);
        let ids = Ids::from_snapshot(&snap);
        let ix = SnapIndex::new(&snap);
        let owners = crate::migrate::Owners::new(&snap);
        // Other stacks' aliases, router hosts and namespaces: one index per pass (no Docker call).
        let held = crate::conflicts::SwarmIndex::new(&snap);
        self.settle_names(&held);
        for name in ready {
            let start = Instant::now();
            let view = self
                .desired
                .get(&name)
                .and_then(|d| stacks.get(d.stack.as_str()))
                .cloned()
                .unwrap_or_default();
            let span = tracing::info_span!("reconcile", deployment = %name);
            let pass = decide::Pass {
                snap: &snap,
                ids: &ids,
                ix: &ix,
                owners: &owners,
                held: &held,
            };
            self.reconcile(&name, &pass, view).instrument(span).await;
            self.shared
                .counters
                .reconcile_took(start.elapsed().as_secs_f64());
        }
        if self.queue.is_idle() || self.queue.in_flight() == 0 {
            self.shared.synced.store(true, Ordering::SeqCst);
        }
        let spent = cost::Cost {
            snapshot: snapshot_took,
            ..meter.finish(self.client.counts().total(), looked_at)
        };
        cost::log("pass", &spent);
        self.shared.counters.pass_done(spent);
    }

    /// Counts each failed task of a known stack once (`hearth_task_failures_total`).
    fn count_task_failures(&mut self, snap: &Snapshot, stacks: &BTreeMap<&str, StackView<'_>>) {
        use bollard::models::TaskState;
        for (stack, view) in stacks {
            let Some(deployment) = self.stacks.get(*stack) else {
                continue;
            };
            for t in &view.tasks {
                let failed = t.status.as_ref().and_then(|s| s.state) == Some(TaskState::FAILED);
                let Some(id) = t.id.as_ref().filter(|_| failed) else {
                    continue;
                };
                if self.seen_failed.insert(id.clone()) {
                    let service = view
                        .services
                        .iter()
                        .find(|s| s.id == t.service_id)
                        .and_then(|s| s.spec.as_ref()?.name.clone())
                        .unwrap_or_default();
                    let key = service
                        .strip_prefix(&format!("{stack}_"))
                        .unwrap_or(&service)
                        .to_string();
                    self.shared.counters.task_failed(deployment, &key);
                }
            }
        }
        // Bound the memory: task IDs of tasks Swarm no longer keeps can go.
        if self.seen_failed.len() > 50_000 {
            let live: BTreeSet<&str> = snap.tasks.iter().filter_map(|t| t.id.as_deref()).collect();
            self.seen_failed.retain(|id| live.contains(id.as_str()));
        }
    }

    fn note_orphans(&mut self, snap: &Snapshot) {
        let Some(pool) = &self.loaded.pool else {
            return;
        };
        let known: BTreeSet<&str> = self.loaded.deployments.iter().map(|d| d.name()).collect();
        self.orphans = crate::plan::orphans(snap, &pool.metadata.name, &known);
    }
}
