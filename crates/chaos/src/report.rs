//! `CHAOS.md`: the seed and the machine, the fault timeline, every invariant with its checks and
//! violations, the time to converge after each fault class, and the command that replays the run.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::check::{INVARIANTS, Summary};
use crate::schedule::PoolState;

/// One played step.
#[derive(Debug, Clone)]
pub struct Record {
    pub index: usize,
    /// Seconds since the first fault.
    pub at_s: f64,
    pub class: String,
    pub fault: String,
    pub during: Option<String>,
    pub note: String,
    /// Seconds from the end of the fault to a converged pool; `None`: not within the limit.
    pub converge_s: Option<f64>,
}

pub struct Report {
    pub seed: u64,
    pub minutes: f64,
    pub records: Vec<Record>,
    pub summary: Summary,
    pub final_converged: bool,
    pub plan_clean: bool,
    pub plan_output: String,
    pub error: Option<String>,
    pub state: PoolState,
    pub lease_limit_s: u64,
    pub repo: PathBuf,
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// (min, median, max) of `v` (not empty).
pub fn spread(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], median, v[n - 1]))
}

impl Report {
    pub fn violations(&self) -> u64 {
        self.summary.invariants.values().map(|t| t.violations).sum()
    }

    pub fn passed(&self) -> bool {
        self.error.is_none() && self.violations() == 0 && self.final_converged && self.plan_clean
    }

    pub fn verdict(&self) -> String {
        format!(
            "chaos soak {}: seed {}, {} steps, {} violations, converged at the end: {}, plan clean: {}{}",
            if self.passed() { "PASSED" } else { "FAILED" },
            self.seed,
            self.records.len(),
            self.violations(),
            self.final_converged,
            self.plan_clean,
            self.error
                .as_ref()
                .map(|e| format!(", error: {e}"))
                .unwrap_or_default()
        )
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Chaos soak\n");
        let _ = writeln!(s, "**{}**\n", self.verdict());
        let _ = writeln!(
            s,
            "- Seed: `{}`; faults for {} minutes; hearth commit `{}`",
            self.seed,
            self.minutes,
            sh(&format!(
                "git -C '{}' rev-parse --short HEAD",
                self.repo.display()
            ))
        );
        let _ = writeln!(s, "- Date: {}", sh("date -u +%Y-%m-%dT%H:%M:%SZ"));
        let _ = writeln!(
            s,
            "- Machine: {} cores, {} MiB memory, kernel {}, Docker {}",
            sh("nproc"),
            sh("awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo"),
            sh("uname -r"),
            sh("docker version -f '{{.Server.Version}}'")
        );
        let _ = writeln!(
            s,
            "- Cluster: three managers from `scripts/swarm-multi` (heartbeat 1s); hearth's self-deploy \
            stack with `compose.ha.yml` (two replicas sharing the lease); 11 deployments (12 once the provider is added) \
            from the fixture recipes, manifests from a local git remote"
        );
        let _ = writeln!(
            s,
            "\nReplay: `scripts/chaos --minutes {} --seed {}`\n",
            self.minutes, self.seed
        );
        if let Some(e) = &self.error {
            let _ = writeln!(s, "The soak stopped early: {e}\n");
        }

        let _ = writeln!(
            s,
            "## Invariants (independent checker, {} rounds)\n",
            self.summary.rounds
        );
        let _ = writeln!(
            s,
            "| invariant | meaning | checks | violations |\n|---|---|---:|---:|"
        );
        for (k, meaning) in INVARIANTS {
            let t = self.summary.invariants.get(k).cloned().unwrap_or_default();
            let _ = writeln!(s, "| `{k}` | {meaning} | {} | {} |", t.checks, t.violations);
        }
        let _ = writeln!(
            s,
            "\nAdvance-record writes during the soak: {} ({} before any lease version was seen, not judged). \
            Lease holder changes: {}. Largest hearth RSS: {:.1} MiB.",
            self.summary.writes_seen,
            self.summary.writes_unjudged,
            self.summary.holders.len().saturating_sub(1),
            self.summary.rss_max_kib as f64 / 1024.0
        );

        self.convergence(&mut s);
        let _ = writeln!(s, "\n## Timeline\n");
        let _ = writeln!(
            s,
            "| step | at (s) | fault | during it | converged after (s) | note |\n|---:|---:|---|---|---:|---|"
        );
        for r in &self.records {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {} | {} | {} |",
                r.index,
                r.at_s,
                r.fault,
                r.during.clone().unwrap_or_default(),
                r.converge_s
                    .map(|c| format!("{c:.1}"))
                    .unwrap_or_else(|| "no".into()),
                r.note.trim()
            );
        }

        self.end_state(&mut s);
        s
    }

    fn convergence(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Convergence after each fault class\n");
        let _ = writeln!(
            s,
            "Seconds from the end of the fault (heal, thaw, start, commit pushed) until the leader \
            has applied the remote's head and every deployment is at its expected phase.\n"
        );
        let _ = writeln!(
            s,
            "| class | faults | converged | min | median | max |\n|---|---:|---:|---:|---:|---:|"
        );
        let mut by: BTreeMap<&str, (usize, Vec<f64>)> = BTreeMap::new();
        for r in &self.records {
            let e = by.entry(&r.class).or_default();
            e.0 += 1;
            if let Some(c) = r.converge_s {
                e.1.push(c);
            }
        }
        for (class, (n, mut v)) in by {
            let conv = v.len();
            match spread(&mut v) {
                Some((a, m, b)) => {
                    let _ = writeln!(s, "| {class} | {n} | {conv} | {a:.1} | {m:.1} | {b:.1} |");
                }
                None => {
                    let _ = writeln!(s, "| {class} | {n} | 0 | - | - | - |");
                }
            }
        }
    }

    fn end_state(&self, s: &mut String) {
        let _ = writeln!(s, "\n## End state\n");
        let _ = writeln!(
            s,
            "- Every deployment at its expected phase within {} s of the last fault: {}",
            self.lease_limit_s,
            if self.final_converged { "yes" } else { "no" }
        );
        let _ = writeln!(
            s,
            "- Manifests at the end: forge {}, pds {}, provider gitea-warm {}, trio-a REPLICAS={}",
            if self.state.bad {
                "at the crash-looping version (AdvanceFailed expected)"
            } else {
                "at its good version"
            },
            if self.state.removed {
                "removed"
            } else {
                "present"
            },
            if self.state.provider {
                "added (Held expected: the canonical's old volume is recorded there)"
            } else {
                "absent"
            },
            self.state.replicas
        );
        let _ = writeln!(
            s,
            "- `hearth plan --detailed-exitcode`: {}",
            if self.plan_clean {
                "clean (exit 0)"
            } else {
                "NOT clean"
            }
        );
        if !self.plan_clean {
            let _ = writeln!(s, "\n```\n{}\n```", self.plan_output.trim());
        }
        if !self.summary.violations.is_empty() {
            let _ = writeln!(s, "\n## Violations\n");
            for v in &self.summary.violations {
                let _ = writeln!(
                    s,
                    "- {:.0}s, {}: `{}` {}",
                    v.at_s, v.step, v.invariant, v.detail
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_min_median_max() {
        assert_eq!(spread(&mut [3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(spread(&mut [4.0, 1.0, 2.0, 3.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(spread(&mut []), None);
    }
}
