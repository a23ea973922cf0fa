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
pub mod events;
pub mod filewatch;
mod gitpoll;
mod judge;
pub mod leader;
pub mod lease;
mod prober;
pub mod queue;
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
use crate::plan::{Intent, Plan, SnapIndex, plan_indexed, plan_prune};
use crate::recipe::RecipeStore;
use crate::swarm::Client;
use crate::swarm::apply::{Ids, StepEvent, apply_plan};

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
    let client = loop {
        match Client::connect(cfg.docker_host.as_deref()).await {
            Ok(c) => break c,
            // A worker (or a daemon in no swarm) will not become a manager by waiting.
            Err(e @ crate::swarm::SwarmError::NotManager { .. }) => return Err(e.into()),
            Err(e) => {
                shared.docker_up.store(false, Ordering::SeqCst);
                tracing::warn!("docker unreachable: {e}; retrying in 2s");
                tokio::select! {
                    _ = shutdown.changed() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    shared.docker_up.store(true, Ordering::SeqCst);
    let _ = shared.client.set(client.clone());
    // With a lease, nothing is changed until this instance holds it.
    let lease = cfg
        .lease
        .clone()
        .map(|l| leader::spawn(client.clone(), l, shared.clone()));
    let mut leadership = shared.leadership.subscribe();
    // Every write of this controller (applies, advances, snapshots) is checked against the lease
    // just before it is sent; the lease task above keeps its own unfenced client.
    let fence = shared.clone();
    let client = client.with_write_fence(Arc::new(move || fence.may_write()));
    let cfg_git = cfg.git.clone();
    let advancer = advancer::Advancer::new(cfg.advance.clone());
    let mut c = Controller {
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
        recipe_remote: crate::source::RecipeRemote::new(c_git_options(&cfg_git)),
        seen_failed: Default::default(),
        advancer,
        claims: Default::default(),
        live_names: Default::default(),
    };
    let (ev_tx, mut ev_rx) = mpsc::channel(1024);
    let mut git_task = None;
    if let Some(g) = cfg_git {
        let src = crate::source::GitSource::new(&g.url, &g.branch, &g.path, &g.cache_dir)
            .map_err(|e| anyhow::anyhow!("git source: {e}"))?
            .with_options(g.options.clone());
        let (tx, rx) = watch::channel(None);
        c.git_loaded = Some(rx);
        git_task = Some(tokio::spawn(gitpoll::run(
            src,
            g.interval,
            c.shared.clone(),
            tx,
            ev_tx.clone(),
        )));
    }
    c.reload();
    c.mark_all();
    // Saved local edits reload at once (the resync stays as the safety net).
    let (edit_tx, mut edits) = mpsc::channel(1);
    let _filewatch = {
        let paths = if c.git_loaded.is_some() {
            Vec::new()
        } else {
            c.cfg.paths.clone()
        };
        let recipes = c.store().map(|s| s.dir().to_path_buf());
        filewatch::spawn(filewatch::Roots::new(&paths, recipes), edit_tx)
    };

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
    tracing::info!(
        "shutting down: waiting up to {:?} for {} in-flight apply(s)",
        c.cfg.grace,
        c.applies.len()
    );
    let grace = tokio::time::sleep(c.cfg.grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = c.applies.join_next() => match next {
                Some(Ok(done)) => c.finish_apply(done),
                Some(Err(_)) => {}
                None => break,
            },
            _ = &mut grace => {
                tracing::warn!("grace period over: abandoning {} apply(s); the next run resumes them", c.applies.len());
                c.applies.abort_all();
                break;
            }
        }
    }
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
            .filter(|s| judge::unsettled(&s.phase))
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
            self.reconcile(&name, &snap, view, &ids, &ix, &owners, &held)
                .instrument(span)
                .await;
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

    /// Plans, decides, assesses one deployment; spawns its apply when there is work.
    /// `view` is the deployment's stack in `snap` (empty when it has nothing live).
    // Eight inputs: the pass's shared indexes are not yet one `Facts` value (docs/architecture.md, known debts).
    #[allow(clippy::too_many_arguments)]
    async fn reconcile(
        &mut self,
        name: &str,
        snap: &Snapshot,
        view: StackView<'_>,
        ids: &Ids,
        ix: &SnapIndex<'_>,
        owners: &crate::migrate::Owners<'_>,
        held: &crate::conflicts::SwarmIndex,
    ) {
        let now = SystemTime::now();
        let Some(d) = self.loaded.deployment(name).cloned() else {
            // Not in the manifests: an orphan of this pool, removed only when the pool prunes.
            let prune = self
                .loaded
                .pool
                .as_ref()
                .filter(|p| p.spec.defaults.prune)
                .map(|p| p.metadata.name.clone());
            match prune {
                Some(pool) if self.orphans.contains(name) => {
                    let plan = plan_prune(&pool, name, snap);
                    self.spawn_apply(plan, ids.clone());
                }
                _ => {
                    self.queue.done(name, true, Instant::now());
                }
            }
            return;
        };
        let mut st = self.shared.status(name).unwrap_or_default();
        st.name = name.to_string();
        st.recipe = d.spec.recipe.clone();
        st.role = format!("{:?}", d.spec.role).to_lowercase();
        st.desired_version = d.spec.version.clone();
        st.last_reconcile = Some(now);

        if let Some(problems) = self.desired.invalid.get(name) {
            let msg = problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            st.set_phase("Invalid", "InvalidManifest", &msg, now);
            self.publish(st);
            self.queue.done(name, true, Instant::now());
            return;
        }
        let Some(desired) = self.desired.shared(name).cloned() else {
            st.set_phase(
                "Invalid",
                "NotRendered",
                "the deployment did not render",
                now,
            );
            self.publish(st);
            self.queue.done(name, true, Instant::now());
            return;
        };
        st.stack = desired.stack.clone();
        st.domain = desired.domain.clone();
        let claims = self.claims.get(&desired);
        st.live_version = judge::live_version(&view, &desired.stack);

        let pool_name = self
            .loaded
            .pool
            .as_ref()
            .map(|p| p.metadata.name.clone())
            .unwrap_or_default();
        // A stack move held or running, a stack name or volume held by another: nothing else.
        let subject =
            crate::migrate::subject_of(&pool_name, &d, &desired.stack, &desired.stack_spec);
        if let Some(hold) = crate::migrate::decide(owners, &subject) {
            self.hold(name, st, &d, &desired, &hold, now);
            return;
        }
        // A version advance in progress (or held, or failed) may converge another version.
        let prepared = self.advancer.prepare(
            &self.loaded,
            self.store(),
            &d,
            &desired,
            &pool_name,
            snap,
            st.live_version.as_deref(),
        );
        let mut desired = match prepared.as_ref().and_then(|p| p.desired.clone()) {
            Some(other) => Arc::new(other),
            None => desired,
        };
        // Stateful services stay on the node holding their data (plan/pin.rs), whichever version
        // is converged.
        if d.spec.pin_volumes
            && let Some((pinned, _)) = crate::plan::pin_volumes_in(
                &desired.stack_spec,
                &view,
                crate::plan::eligible_nodes(&snap.nodes),
            )
        {
            let mut with_pins = (*desired).clone();
            with_pins.stack_spec = pinned;
            desired = Arc::new(with_pins);
        }
        let parked = d.spec.state == DesiredState::Parked;
        let mut plan = plan_indexed(
            &Intent {
                pool: &pool_name,
                deployment: name,
                stack: &desired.stack,
                desired: (!parked).then_some(&desired.stack_spec),
                secrets: &d.spec.secrets,
                secret_files: &desired.secret_files,
                secret_hints: &desired.secret_hints,
                adopt: d.spec.adopt,
                restart: false,
            },
            ix,
        );
        let self_heal = self
            .loaded
            .pool
            .as_ref()
            .is_none_or(|p| p.spec.defaults.self_heal);
        if !self_heal {
            plan.steps.retain(|s| !s.heals_drift);
        }
        st.drift = plan.drift.clone();
        crate::redact::with(|r| st.drift.iter_mut().for_each(|d| r.drift(d)));

        let dependencies: Vec<(String, crate::assess::Phase)> = d
            .spec
            .depends_on
            .iter()
            .map(|dep| {
                let phase = self
                    .shared
                    .phase(dep)
                    .and_then(|p| {
                        crate::assess::Phase::ALL
                            .into_iter()
                            .find(|x| x.as_str() == p)
                    })
                    .unwrap_or(crate::assess::Phase::Pending);
                (dep.clone(), phase)
            })
            .collect();
        let deps_waiting = dependencies
            .iter()
            .any(|(_, p)| *p != crate::assess::Phase::Ready);
        let deadline = d
            .spec
            .progress_deadline
            .or(self
                .loaded
                .pool
                .as_ref()
                .map(|p| p.spec.defaults.progress_deadline))
            .unwrap_or(Duration::from_secs(600));
        // Every configured probe counts; one without a result yet is not passing.
        let outcomes = self
            .probe_outcomes
            .read()
            .expect("outcomes")
            .get(name)
            .cloned()
            .unwrap_or_default();
        let probes: Vec<crate::assess::ProbeOutcome> = if parked || d.spec.suspend {
            Vec::new()
        } else {
            crate::probe::probe_names(&d.spec.probes)
                .into_iter()
                .map(|n| {
                    outcomes.iter().find(|o| o.name == n).cloned().unwrap_or(
                        crate::assess::ProbeOutcome {
                            name: n,
                            ok: false,
                            message: "not probed yet".into(),
                        },
                    )
                })
                .collect()
        };
        st.probes = probes
            .iter()
            .map(|p| status::ProbeStatus {
                name: p.name.clone(),
                ok: p.ok,
                message: p.message.clone(),
            })
            .collect();
        let progressing_since = self
            .progressing_since
            .get(name)
            .copied()
            .or_else(|| judge::last_spec_change(&view));
        // "Was Ready" counts since the last change hearth applied: a deployment mid-update is
        // Progressing, not Degraded.
        let was_ready = match (st.last_ready, self.progressing_since.get(name)) {
            (Some(ready), Some(changed)) => ready >= *changed,
            (ready, _) => ready.is_some(),
        };
        let mut verdict = None;
        for _ in 0..2 {
            let v = judge::judge(&judge::Facts {
                now,
                snap,
                view: &view,
                desired: &desired,
                parked,
                suspended: d.spec.suspend,
                plan: &plan,
                probes: &probes,
                dependencies: &dependencies,
                progressing_since,
                deadline,
                was_ready,
                logs: &self.logs,
            });
            let missing: Vec<String> = v
                .logs_wanted
                .iter()
                .filter(|id| !self.logs.contains_key(*id))
                .cloned()
                .collect();
            verdict = Some(v);
            if missing.is_empty() {
                break;
            }
            for id in missing {
                let lines = self
                    .client
                    .container_log_tail(&id, 10)
                    .await
                    .unwrap_or_default();
                self.logs.insert(id, lines);
            }
        }
        if self.logs.len() > 1000 {
            self.logs.clear();
        }
        let verdict = verdict.expect("judged at least once");
        st.services = verdict.services.clone();
        let mut conditions = verdict.conditions.clone();
        // Collisions with other stacks never change the phase: they are conditions.
        let conflicts = crate::conflicts::find(&claims, &pool_name, name, held);
        conditions.extend(
            crate::conflicts::conditions(&conflicts)
                .into_iter()
                .map(|c| status::ConditionStatus {
                    kind: c.kind,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    since: None,
                }),
        );
        st.set_conditions(conditions, now);

        // A dependent is first deployed once its dependencies are Ready; once deployed it is kept
        // converged (a provider's hiccup does not freeze its dependents' updates).
        let deployed = !view.services.is_empty();
        let may_apply = !d.spec.suspend && (!deps_waiting || deployed) && plan.problems.is_empty();
        if let Some(prepared) = prepared {
            let normal_apply = prepared.target.normal_apply;
            let pool_labels = self
                .loaded
                .pool
                .as_ref()
                .map(desired::pool_labels)
                .unwrap_or_default();
            let driven = self
                .advancer
                .drive(
                    prepared,
                    advancer::Pass {
                        client: &self.client,
                        shared: &self.shared,
                        deployment: &d,
                        pool: &pool_name,
                        pool_labels: &pool_labels,
                        stack: &desired.stack,
                        live: st.live_version.clone(),
                        verdict: (&verdict.phase, &verdict.reason, &verdict.message),
                        plan: &plan,
                        ids,
                        now,
                        deadline,
                    },
                )
                .await;
            if driven.applied {
                self.progressing_since.insert(name.to_string(), now);
            }
            if let Some(s) = driven.status {
                st.set_phase(&s.phase, &s.reason, &s.message, now);
                self.publish(st);
                if normal_apply && may_apply && !plan.is_empty() {
                    self.spawn_apply(plan, ids.clone());
                } else {
                    self.queue.done(name, true, Instant::now());
                    if driven.again {
                        self.queue.mark(name);
                    }
                }
                return;
            }
            if !normal_apply {
                plan.steps.clear();
            }
        }
        if may_apply && !plan.is_empty() && self.applies.len() >= self.concurrency() {
            // Every apply slot is busy: look again when one frees up.
            st.set_phase(
                "Progressing",
                "WaitingForApplySlot",
                &format!(
                    "{} change(s) queued behind {} running apply(s)",
                    plan.steps.len(),
                    self.applies.len()
                ),
                now,
            );
            self.publish(st);
            self.queue.done(name, true, Instant::now());
            self.queue.mark(name);
            return;
        }
        if may_apply && !plan.is_empty() {
            if plan.steps.iter().any(|s| !s.heals_drift) {
                self.progressing_since.insert(name.to_string(), now);
            }
            st.set_phase(
                "Progressing",
                "Applying",
                &format!("applying {} change(s)", plan.steps.len()),
                now,
            );
            self.publish(st);
            self.spawn_apply(plan, ids.clone());
            return;
        }
        tracing::debug!(deployment = %name, phase = %verdict.phase, reason = %verdict.reason, "{}", verdict.message);
        st.set_phase(&verdict.phase, &verdict.reason, &verdict.message, now);
        if verdict.phase == "Ready" {
            self.progressing_since.remove(name);
        }
        self.publish(st);
        self.shared.counters.reconciled(name, true);
        self.queue.done(name, true, Instant::now());
    }

    /// Reports a hold (`migrate::hold`); a move that is to run (allowed, or recorded and left
    /// half done) runs in an apply slot.
    fn hold(
        &mut self,
        name: &str,
        mut st: DeploymentStatus,
        d: &manifest::Deployment,
        desired: &Arc<desired::Desired>,
        hold: &crate::migrate::Hold,
        now: SystemTime,
    ) {
        use crate::migrate::Hold;
        let held = hold.held(name);
        st.drift.clear();
        st.set_phase(&held.phase, &held.reason, &held.message, now);
        st.set_conditions(
            vec![
                status::ConditionStatus {
                    kind: "Ready".into(),
                    status: false,
                    reason: held.reason.clone(),
                    message: held.message.clone(),
                    since: None,
                },
                status::ConditionStatus {
                    kind: "Held".into(),
                    status: true,
                    reason: held.reason.clone(),
                    message: held.message.clone(),
                    since: None,
                },
            ],
            now,
        );
        self.publish(st);
        let run = match hold {
            Hold::StackMove { auto: true, .. } => Some(true),
            Hold::Migrating { .. } => Some(false),
            _ => None,
        };
        let (Some(start), Some(pool)) = (run, self.loaded.pool.as_ref()) else {
            self.queue.done(name, true, Instant::now());
            return;
        };
        let extra = desired::pool_labels(pool);
        let adv = &self.cfg.advance;
        let job = crate::swarm::migrate::Job {
            pool: pool.metadata.name.clone(),
            deployment: name.to_string(),
            extra: extra.clone(),
            desired: desired.clone(),
            secrets: d.spec.secrets.clone(),
            probes: d.spec.probes.clone(),
            reach: self.cfg.probe_reach.clone(),
            store: crate::backup::Store::new(adv.snapshot_dir.clone(), adv.snapshot_keep),
            backup: crate::backup::Options {
                helper_image: adv.backup_image.clone(),
                labels: extra,
                ..Default::default()
            },
            deadline: d
                .spec
                .progress_deadline
                .unwrap_or(pool.spec.defaults.progress_deadline),
        };
        let client = self.client.clone();
        self.applies.spawn(async move {
            let deployment = job.deployment.clone();
            let progress = |line: &str| tracing::info!(deployment = %deployment, "{line}");
            let result = crate::swarm::migrate::run(&client, &job, start, &progress).await;
            Applied {
                deployment: job.deployment.clone(),
                result: result.map(|_| 0),
            }
        });
    }

    fn publish(&mut self, st: DeploymentStatus) {
        let mut statuses = self.shared.statuses.write().expect("statuses");
        let old = statuses.get(&st.name).map(|o| o.phase.clone());
        if old.as_deref() != Some(st.phase.as_str()) {
            tracing::info!(
                deployment = %st.name,
                phase = %st.phase,
                reason = %st.reason,
                "{}",
                st.message
            );
        }
        let name = st.name.clone();
        let became_ready = st.phase == "Ready" && old.as_deref() != Some("Ready");
        statuses.insert(name.clone(), st);
        drop(statuses);
        if became_ready {
            // Dependents waiting on it can go now.
            let dependents: Vec<String> = self
                .loaded
                .deployments
                .iter()
                .filter(|d| d.spec.depends_on.contains(&name))
                .map(|d| d.name().to_string())
                .collect();
            for d in dependents {
                self.queue.mark(&d);
            }
        }
    }

    fn spawn_apply(&mut self, plan: Plan, mut ids: Ids) {
        let client = self.client.clone();
        let shared = self.shared.clone();
        let span = tracing::info_span!("apply", deployment = %plan.deployment);
        self.applies.spawn(async move {
            let deployment = plan.deployment.clone();
            let progress = |e: StepEvent<'_>| match e {
                StepEvent::Started(_) => {}
                StepEvent::Done(s) => {
                    shared.counters.action(s.action.kind());
                    tracing::info!(
                        deployment = %deployment,
                        action = s.action.kind(),
                        "{} {}: {}",
                        s.action.kind(),
                        s.action.object(),
                        s.reason
                    );
                }
                StepEvent::Failed(s, m) => tracing::warn!(
                    deployment = %deployment,
                    action = s.action.kind(),
                    "{} {} failed: {m}",
                    s.action.kind(),
                    s.action.object()
                ),
            };
            // Losing the lease cuts the apply between two Docker calls.
            let mut leadership = shared.leadership.subscribe();
            let result = tokio::select! {
                r = apply_plan(&client, &plan, &mut ids, &progress) => r.map_err(|e| e.to_string()),
                _ = leadership.wait_for(|l| !l.leading) => {
                    tracing::warn!(deployment = %deployment, "lost the leader lease: apply stopped");
                    Err("lost the leader lease: apply stopped".to_string())
                }
            };
            Applied { deployment, result }
        }.instrument(span));
    }

    fn finish_apply(&mut self, done: Applied) {
        let ok = done.result.is_ok();
        self.shared.counters.reconciled(&done.deployment, ok);
        if let Some(mut st) = self.shared.status(&done.deployment) {
            st.last_error = done.result.as_ref().err().cloned();
            self.shared
                .statuses
                .write()
                .expect("statuses")
                .insert(done.deployment.clone(), st);
        }
        if let Some(delay) = self.queue.done(&done.deployment, ok, Instant::now()) {
            tracing::warn!(
                deployment = %done.deployment,
                "apply failed: {}; retrying in {delay:?}",
                done.result.err().unwrap_or_default()
            );
        } else {
            // Look again at what the apply did.
            self.queue.mark(&done.deployment);
        }
    }
}
