//! What one controller pass (or manifest reload) cost: wall time, the process's CPU time and the
//! Docker requests it made. Feeds `hearth_pass_*` on /metrics and one `hearth::pass` debug log line
//! per pass (`RUST_LOG=info,hearth::pass=debug`), which `scripts/bench` reads.

use std::time::Instant;

/// CPU time (user + system) the whole process has used so far, in seconds.
pub fn process_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Tunes glibc's malloc for a long-running process whose passes allocate and free a snapshot each:
/// one arena (the controller is one task; per-thread arenas each kept their own freed pages), and
/// large blocks (a snapshot's vectors, response bodies) mapped and returned to the OS when freed
/// instead of growing the heap. Measured at N=1000: peak RSS 75 MiB -> 63 MiB, pass CPU unchanged.
/// `MALLOC_ARENA_MAX` in the environment turns this off.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets allocator parameters; called before the controller allocates
        // its state. A parameter the libc rejects is left as it was (return value ignored).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        }
    }
}

/// Gives the pages of freed heap memory back to the OS (glibc's `malloc_trim`), so the next
/// snapshot is read into fresh pages instead of on top of the last one's freed but still resident
/// pages, which kept the peak RSS that much higher. Called between a pass's dropping the previous
/// snapshot and reading the next.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The cost of one finished pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub wall: f64,
    pub cpu: f64,
    pub docker_requests: u64,
    /// Deployments looked at.
    pub deployments: u64,
    /// Wall time of the swarm snapshot (the seven list calls and parsing them), part of `wall`.
    pub snapshot: f64,
}

/// A pass under way.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    start: Instant,
    cpu: f64,
    requests: u64,
}

impl Meter {
    /// Starts measuring; `requests` is the client's request total now.
    pub fn start(requests: u64) -> Meter {
        Meter {
            start: Instant::now(),
            cpu: process_cpu(),
            requests,
        }
    }

    /// The cost since [`Meter::start`]; `requests` is the client's request total now.
    pub fn finish(&self, requests: u64, deployments: usize) -> Cost {
        Cost {
            wall: self.start.elapsed().as_secs_f64(),
            cpu: (process_cpu() - self.cpu).max(0.0),
            docker_requests: requests.saturating_sub(self.requests),
            deployments: deployments as u64,
            snapshot: 0.0,
        }
    }
}

/// Logs a pass's (or reload's) cost on the `hearth::pass` target.
pub fn log(what: &str, c: &Cost) {
    tracing::debug!(
        target: "hearth::pass",
        what,
        deployments = c.deployments,
        wall_ms = format_args!("{:.3}", c.wall * 1e3),
        snapshot_ms = format_args!("{:.3}", c.snapshot * 1e3),
        cpu_ms = format_args!("{:.3}", c.cpu * 1e3),
        docker_requests = c.docker_requests,
        "cost"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_with_work_and_requests_are_a_difference() {
        let m = Meter::start(10);
        // Burn some CPU so the process clock moves.
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let c = m.finish(16, 3);
        assert!(c.cpu > 0.0, "{c:?}");
        assert!(c.wall > 0.0);
        assert_eq!((c.docker_requests, c.deployments), (6, 3));
        // A counter that went backwards (a new client) is not negative.
        assert_eq!(Meter::start(10).finish(4, 0).docker_requests, 0);
    }
}
