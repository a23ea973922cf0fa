//! [`ProbeRunner`]: one probe's schedule, bound and failure budget, and its recorded results.
//!
//! Defaults (when the manifest leaves them out): `interval` 5s, `timeout` 3s, `failures` 3.
//! `failures` is the number of consecutive failed checks at which the probe counts as failing
//! (as Kubernetes' `failureThreshold`): with 3, two failures in a row after a pass are tolerated
//! (the outcome stays ok and says so), the third makes it fail; `failures: 1` fails on the first
//! failure, and 0 is taken as 1. A probe that has never passed is not ok (not ready yet).

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::{Check, Round, Subject, probe_names};
use crate::manifest::{Probe, ProbeTiming};
use crate::swarm::Client;

/// A probe's timing after defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Time between the starts of two checks.
    pub interval: Duration,
    /// Bound of one check (a `tcp` probe adds its `stableFor`).
    pub timeout: Duration,
    /// Consecutive failures at which the probe counts as failing (at least 1).
    pub failures: u32,
}

impl Settings {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_FAILURES: u32 = 3;
    /// Slack on top of a kind's own bound before the runner cuts a check off (the kinds time
    /// themselves out with a better message first).
    pub const GRACE: Duration = Duration::from_secs(1);

    pub fn from_timing(t: ProbeTiming) -> Settings {
        Settings {
            interval: t.interval.unwrap_or(Self::DEFAULT_INTERVAL),
            timeout: t.timeout.unwrap_or(Self::DEFAULT_TIMEOUT),
            failures: t.failures.unwrap_or(Self::DEFAULT_FAILURES).max(1),
        }
    }

    /// The longest one check of `probe` may take: timeout (+ `stableFor` for tcp) + [`Self::GRACE`].
    pub fn bound(&self, probe: &Probe) -> Duration {
        let stable = match probe {
            Probe::Tcp(t) => t.stable_for.unwrap_or_default(),
            _ => Duration::ZERO,
        };
        self.timeout + stable + Self::GRACE
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_timing(ProbeTiming::default())
    }
}

/// One recorded check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub ok: bool,
    pub message: String,
    /// When the check started.
    pub at: SystemTime,
    pub duration: Duration,
    /// Failed checks in a row up to and including this one (0 when it passed).
    pub consecutive_failures: u32,
}

pub use crate::assess::ProbeOutcome;

/// One probe of one deployment, with its state between rounds.
#[derive(Debug, Clone)]
pub struct ProbeRunner {
    name: String,
    probe: Probe,
    subject: Subject,
    settings: Settings,
    last: Option<ProbeResult>,
    passed_once: bool,
    last_started: Option<Instant>,
}

impl ProbeRunner {
    pub fn new(name: String, probe: Probe, subject: Subject) -> ProbeRunner {
        let settings = Settings::from_timing(probe.timing());
        ProbeRunner {
            name,
            probe,
            subject,
            settings,
            last: None,
            passed_once: false,
            last_started: None,
        }
    }

    /// One runner per probe of a deployment, named by [`probe_names`].
    pub fn for_deployment(subject: &Subject, probes: &[Probe]) -> Vec<ProbeRunner> {
        probe_names(probes)
            .into_iter()
            .zip(probes)
            .map(|(name, p)| ProbeRunner::new(name, p.clone(), subject.clone()))
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The last recorded check.
    pub fn last(&self) -> Option<&ProbeResult> {
        self.last.as_ref()
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.last.as_ref().map_or(0, |r| r.consecutive_failures)
    }

    /// Whether a check should start at `now` (never run, or `interval` since the last start).
    pub fn due(&self, now: Instant) -> bool {
        self.last_started
            .is_none_or(|s| now.saturating_duration_since(s) >= self.settings.interval)
    }

    /// Forgets every result (a new version of the deployment starts from "not ready").
    pub fn reset(&mut self) {
        self.last = None;
        self.passed_once = false;
        self.last_started = None;
    }

    /// Runs one check now, bounded by [`Settings::bound`], and records it.
    pub async fn run(&mut self, client: &Client, round: Round<'_>) -> &ProbeResult {
        let started = Instant::now();
        let at = SystemTime::now();
        self.last_started = Some(started);
        let bound = self.settings.bound(&self.probe);
        let fut = super::check(client, round, &self.subject, &self.probe, &self.settings);
        let check = match tokio::time::timeout(bound, fut).await {
            Ok(c) => c,
            Err(_) => Err(format!(
                "no verdict within {}",
                humantime::format_duration(bound)
            )),
        };
        self.record(check, at, started.elapsed())
    }

    /// Records a check's verdict (pure state update; [`Self::run`] calls it).
    pub fn record(&mut self, check: Check, at: SystemTime, duration: Duration) -> &ProbeResult {
        let (ok, message) = match check {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        let consecutive_failures = if ok {
            0
        } else {
            self.consecutive_failures().saturating_add(1)
        };
        self.passed_once |= ok;
        self.last.insert(ProbeResult {
            ok,
            message,
            at,
            duration,
            consecutive_failures,
        })
    }

    /// The failure budget is spent: `failures` checks in a row failed.
    pub fn failing(&self) -> bool {
        self.consecutive_failures() >= self.settings.failures
    }

    /// The probe's verdict for the assessment (see the module doc for the rules).
    pub fn outcome(&self) -> ProbeOutcome {
        let (ok, message) = match &self.last {
            None => (false, "not probed yet".to_string()),
            Some(r) if r.ok => (true, r.message.clone()),
            Some(r) if !self.passed_once => (false, format!("not passed yet: {}", r.message)),
            Some(r) if self.failing() => (
                false,
                format!(
                    "failed {} times in a row: {}",
                    r.consecutive_failures, r.message
                ),
            ),
            Some(r) => (
                true,
                format!(
                    "{} (failure {} of {} tolerated)",
                    r.message,
                    r.consecutive_failures,
                    self.settings.failures - 1
                ),
            ),
        };
        ProbeOutcome {
            name: self.name.clone(),
            ok,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(yaml: &str) -> ProbeRunner {
        let probe: Probe = serde_saphyr::from_str(yaml).unwrap();
        let subject = Subject {
            stack: "web".into(),
            domain: "web.example.org".into(),
        };
        ProbeRunner::for_deployment(&subject, &[probe]).remove(0)
    }

    fn rec(r: &mut ProbeRunner, check: Check) -> ProbeOutcome {
        r.record(check, SystemTime::UNIX_EPOCH, Duration::from_millis(5));
        r.outcome()
    }

    #[test]
    fn defaults_and_overrides() {
        let r = runner("http: {service: app, port: 80}");
        assert_eq!(r.name(), "http:app:80");
        assert_eq!(
            r.settings(),
            Settings {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(3),
                failures: 3
            }
        );
        let r = runner(
            "tcp: {service: app, port: 9, stableFor: 10s, timeout: 2s, interval: 1m, failures: 0}",
        );
        assert_eq!(r.settings().interval, Duration::from_secs(60));
        assert_eq!(r.settings().failures, 1, "0 is taken as 1");
        assert_eq!(
            r.settings().bound(r.probe()),
            Duration::from_secs(10 + 2 + 1)
        );
    }

    #[test]
    fn budget_tolerates_failures_after_a_pass() {
        let mut r = runner("http: {service: app, port: 80, failures: 3}");
        let o = r.outcome();
        assert!(!o.ok);
        assert_eq!(o.message, "not probed yet");

        let o = rec(&mut r, Err("refused".into()));
        assert!(!o.ok, "never passed: not ready");
        assert_eq!(o.message, "not passed yet: refused");

        let o = rec(&mut r, Ok("200".into()));
        assert!(o.ok);
        assert_eq!(o.message, "200");
        assert_eq!(r.consecutive_failures(), 0);

        let o = rec(&mut r, Err("503".into()));
        assert!(o.ok);
        assert_eq!(o.message, "503 (failure 1 of 2 tolerated)");
        let o = rec(&mut r, Err("503".into()));
        assert!(o.ok);
        let o = rec(&mut r, Err("503".into()));
        assert!(!o.ok);
        assert!(r.failing());
        assert_eq!(o.message, "failed 3 times in a row: 503");
        assert_eq!(r.last().unwrap().consecutive_failures, 3);

        let o = rec(&mut r, Ok("200".into()));
        assert!(o.ok);
        assert_eq!(r.consecutive_failures(), 0);
        r.reset();
        assert!(!r.outcome().ok);
    }

    #[test]
    fn budget_of_one_fails_at_once() {
        let mut r = runner("exec: {service: db, command: ['true'], failures: 1}");
        assert!(rec(&mut r, Ok("".into())).ok);
        assert!(!rec(&mut r, Err("exit 1".into())).ok);
    }

    #[test]
    fn due_follows_the_interval() {
        let mut r = runner("docker: {service: db, interval: 2s}");
        let now = Instant::now();
        assert!(r.due(now));
        r.last_started = Some(now);
        assert!(!r.due(now + Duration::from_secs(1)));
        assert!(r.due(now + Duration::from_secs(2)));
    }
}
