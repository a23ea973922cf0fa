//! The fault schedule: pure, from a seed. Faults come in rounds; each round is a random order of
//! every fault class, so a long soak meets every class many times and in many orders, and a
//! short one still meets several. Held faults (a node down, a partition, a freeze, the git remote
//! gone) sometimes get a second fault in the middle of them (the leading hearth killed, or a
//! commit), so faults also meet each other. The same seed gives the same steps.

use serde::Serialize;

use crate::rng::Rng;

/// The cluster's nodes (all managers).
pub const NODES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL of the hearth replica that holds the lease.
    KillLeader,
    /// SIGKILL of the replica that stands by.
    KillStandby,
    /// SIGKILL of a node's dockerd, started again at once (containers keep running).
    DockerdRestart { node: u32 },
    /// A node's dockerd, containerd, shims and containers killed; the node started again later.
    NodeKill { node: u32, hold_s: u64 },
    /// A node's cable unplugged, plugged back later.
    Partition { node: u32, hold_s: u64 },
    /// Every process of a node frozen, thawed later.
    Freeze { node: u32, hold_s: u64 },
    /// A commit advancing `forge` to the version that crash-loops.
    AdvanceBad,
    /// A commit setting `forge` back to its good version.
    AdvanceBack,
    /// A commit changing an env value (`trio-a`'s `REPLICAS`).
    EnvChange { replicas: u32 },
    /// A commit removing the stateful deployment `pds` (prune is on).
    Remove,
    /// A commit adding `pds` back.
    AddBack,
    /// A commit adding a provider beside the canonical `gitea` (which then moves its stack).
    AddProvider,
    /// The git remote unreachable for a while.
    RemoteDown { hold_s: u64 },
}

impl Fault {
    /// The class a fault's convergence time is counted under.
    pub fn class(&self) -> &'static str {
        match self {
            Fault::KillLeader => "kill-leader",
            Fault::KillStandby => "kill-standby",
            Fault::DockerdRestart { .. } => "dockerd-restart",
            Fault::NodeKill { .. } => "node-kill",
            Fault::Partition { .. } => "partition",
            Fault::Freeze { .. } => "freeze",
            Fault::AdvanceBad | Fault::AdvanceBack => "advance",
            Fault::EnvChange { .. } => "env-change",
            Fault::Remove | Fault::AddBack => "remove-add",
            Fault::AddProvider => "provider-move",
            Fault::RemoteDown { .. } => "remote-down",
        }
    }

    /// How long the fault lasts before it is undone (0: instantaneous).
    pub fn hold_s(&self) -> u64 {
        match self {
            Fault::NodeKill { hold_s, .. }
            | Fault::Partition { hold_s, .. }
            | Fault::Freeze { hold_s, .. }
            | Fault::RemoteDown { hold_s } => *hold_s,
            _ => 0,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Fault::KillLeader => "SIGKILL the leading hearth".into(),
            Fault::KillStandby => "SIGKILL the standby hearth".into(),
            Fault::DockerdRestart { node } => format!("restart dockerd on node {node}"),
            Fault::NodeKill { node, hold_s } => {
                format!("kill node {node}, start it after {hold_s}s")
            }
            Fault::Partition { node, hold_s } => {
                format!("partition node {node}, heal after {hold_s}s")
            }
            Fault::Freeze { node, hold_s } => format!("freeze node {node}, thaw after {hold_s}s"),
            Fault::AdvanceBad => "commit: forge -> the crash-looping version".into(),
            Fault::AdvanceBack => "commit: forge -> back to its good version".into(),
            Fault::EnvChange { replicas } => format!("commit: trio-a REPLICAS={replicas}"),
            Fault::Remove => "commit: remove pds".into(),
            Fault::AddBack => "commit: add pds back".into(),
            Fault::AddProvider => "commit: add provider gitea-warm beside canonical gitea".into(),
            Fault::RemoteDown { hold_s } => format!("git remote unreachable for {hold_s}s"),
        }
    }
}

/// What the manifests declare; the schedule keeps it to choose each commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolState {
    /// `forge` at its crash-looping version.
    pub bad: bool,
    /// `pds` removed.
    pub removed: bool,
    /// The provider `gitea-warm` added.
    pub provider: bool,
    /// `trio-a`'s `REPLICAS`.
    pub replicas: u32,
}

impl Default for PoolState {
    fn default() -> Self {
        PoolState {
            bad: false,
            removed: false,
            provider: false,
            replicas: 1,
        }
    }
}

impl PoolState {
    /// The state after a commit fault (other faults leave it alone).
    pub fn after(&self, f: &Fault) -> PoolState {
        let mut s = self.clone();
        match f {
            Fault::AdvanceBad => s.bad = true,
            Fault::AdvanceBack => s.bad = false,
            Fault::EnvChange { replicas } => s.replicas = *replicas,
            Fault::Remove => s.removed = true,
            Fault::AddBack => s.removed = false,
            Fault::AddProvider => s.provider = true,
            _ => {}
        }
        s
    }
}

/// One step: a fault, maybe a second one `after_s` into it, then a pause once converged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub index: usize,
    pub fault: Fault,
    /// A second fault during a held one: (seconds into the first, the fault).
    pub during: Option<(u64, Fault)>,
    /// Seconds of quiet after convergence, before the next step.
    pub gap_s: u64,
}

const CLASSES: [&str; 11] = [
    "kill-leader",
    "kill-standby",
    "dockerd-restart",
    "node-kill",
    "partition",
    "freeze",
    "advance",
    "env-change",
    "remove-add",
    "provider-move",
    "remote-down",
];

/// `count` steps from `seed`.
pub fn schedule(seed: u64, count: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut state = PoolState::default();
    let mut steps = Vec::with_capacity(count);
    let mut round: Vec<&str> = Vec::new();
    while steps.len() < count {
        if round.is_empty() {
            round = CLASSES.to_vec();
            // Fisher-Yates, so each round is a random order of every class.
            for i in (1..round.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                round.swap(i, j);
            }
        }
        let class = round.pop().expect("a class");
        let fault = pick(class, &state, &mut rng);
        state = state.after(&fault);
        let during = if fault.hold_s() >= 10 && rng.chance(40) {
            let second = if matches!(fault, Fault::RemoteDown { .. }) || rng.chance(50) {
                Fault::KillLeader
            } else {
                let f = Fault::EnvChange {
                    replicas: other_replicas(state.replicas),
                };
                state = state.after(&f);
                f
            };
            Some((rng.range(2, fault.hold_s() / 2), second))
        } else {
            None
        };
        steps.push(Step {
            index: steps.len() + 1,
            fault,
            during,
            gap_s: rng.range(2, 10),
        });
    }
    steps
}

fn other_replicas(r: u32) -> u32 {
    if r == 1 { 2 } else { 1 }
}

fn pick(class: &str, state: &PoolState, rng: &mut Rng) -> Fault {
    let node = rng.range(1, NODES as u64) as u32;
    match class {
        "kill-leader" => Fault::KillLeader,
        "kill-standby" => Fault::KillStandby,
        "dockerd-restart" => Fault::DockerdRestart { node },
        "node-kill" => Fault::NodeKill {
            node,
            hold_s: rng.range(10, 40),
        },
        "partition" => Fault::Partition {
            node,
            hold_s: rng.range(10, 40),
        },
        "freeze" => Fault::Freeze {
            node,
            hold_s: rng.range(10, 30),
        },
        "advance" if state.bad => Fault::AdvanceBack,
        "advance" => Fault::AdvanceBad,
        "remove-add" if state.removed => Fault::AddBack,
        "remove-add" => Fault::Remove,
        // The move happens once; later rounds change an env value instead.
        "provider-move" if !state.provider => Fault::AddProvider,
        "remote-down" => Fault::RemoteDown {
            hold_s: rng.range(15, 45),
        },
        _ => Fault::EnvChange {
            replicas: other_replicas(state.replicas),
        },
    }
}

/// The state the manifests are in after the first `n` steps.
#[cfg(test)]
pub fn state_after(steps: &[Step], n: usize) -> PoolState {
    let mut s = PoolState::default();
    for st in steps.iter().take(n) {
        s = s.after(&st.fault);
        if let Some((_, f)) = &st.during {
            s = s.after(f);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule() {
        assert_eq!(schedule(42, 30), schedule(42, 30));
        assert_ne!(schedule(42, 30), schedule(43, 30));
    }

    #[test]
    fn every_class_appears_in_the_first_round() {
        let steps = schedule(9, CLASSES.len());
        let mut seen: Vec<&str> = steps.iter().map(|s| s.fault.class()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), CLASSES.len(), "{seen:?}");
    }

    #[test]
    fn commits_alternate_and_the_provider_is_added_once() {
        let steps = schedule(3, 200);
        let mut s = PoolState::default();
        let mut providers = 0;
        for st in &steps {
            match st.fault {
                Fault::AdvanceBad => assert!(!s.bad),
                Fault::AdvanceBack => assert!(s.bad),
                Fault::Remove => assert!(!s.removed),
                Fault::AddBack => assert!(s.removed),
                Fault::AddProvider => providers += 1,
                _ => {}
            }
            s = s.after(&st.fault);
            if let Some((at, f)) = &st.during {
                assert!(*at >= 2 && *at <= st.fault.hold_s() / 2);
                assert!(matches!(f, Fault::KillLeader | Fault::EnvChange { .. }));
                s = s.after(f);
            }
        }
        assert_eq!(providers, 1);
        assert_eq!(state_after(&steps, steps.len()), s);
    }

    #[test]
    fn nodes_are_in_the_cluster() {
        for st in schedule(5, 300) {
            if let Fault::DockerdRestart { node }
            | Fault::NodeKill { node, .. }
            | Fault::Partition { node, .. }
            | Fault::Freeze { node, .. } = st.fault
            {
                assert!((1..=NODES).contains(&node));
            }
        }
    }
}
