//! `hearth-chaos`: the chaos soak of docs/chaos.md.
//!
//! - `hearth-chaos run [--minutes 20] [--seed S] [--out CHAOS.md] [--keep]`: the soak (the driver,
//!   `drive`), as `scripts/chaos` runs it.
//! - `hearth-chaos check --dir D --seed S --pool P --hearth-stack S`: the independent checker
//!   (`check`), started by the driver as its own process.
//! - `hearth-chaos schedule [--minutes M] [--seed S]`: prints the steps a seed plays, without a
//!   cluster.

mod check;
mod cluster;
mod drive;
mod pool;
mod report;
mod rng;
mod schedule;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: hearth-chaos run [--minutes M] [--seed S] [--out FILE] [--hearth BIN] [--image REF] [--keep]\n       \
         hearth-chaos schedule [--seed S] [--count N]\n       \
         hearth-chaos check --dir D --seed S --pool P --hearth-stack S"
    );
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let mut flags = std::collections::HashMap::new();
    let mut keep = false;
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--keep" {
            keep = true;
            i += 1;
            continue;
        }
        let Some(k) = a.strip_prefix("--") else {
            return usage();
        };
        let Some(v) = args.get(i + 1) else {
            return usage();
        };
        flags.insert(k.to_string(), v.clone());
        i += 2;
    }
    let seed: u64 = match flags.get("seed").map(|s| s.parse()) {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            eprintln!("--seed: not a number");
            return ExitCode::from(64);
        }
    };
    match cmd.as_str() {
        "schedule" => {
            let count = flags
                .get("count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(20);
            for st in schedule::schedule(seed, count) {
                let during = st
                    .during
                    .map(|(at, f)| format!(" [+{at}s: {}]", f.describe()))
                    .unwrap_or_default();
                println!(
                    "{:>3}. {}{during}; then {}s",
                    st.index,
                    st.fault.describe(),
                    st.gap_s
                );
            }
            ExitCode::SUCCESS
        }
        "check" => {
            let (Some(dir), Some(pool), Some(stack)) = (
                flags.get("dir"),
                flags.get("pool"),
                flags.get("hearth-stack"),
            ) else {
                return usage();
            };
            match check::main(check::Args {
                dir: PathBuf::from(dir),
                seed,
                pool: pool.clone(),
                hearth_stack: stack.clone(),
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("checker: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        "run" => {
            let minutes = match flags.get("minutes").map(|m| m.parse::<f64>()) {
                None => 20.0,
                Some(Ok(m)) if m > 0.0 => m,
                _ => {
                    eprintln!("--minutes: a positive number");
                    return ExitCode::from(64);
                }
            };
            let repo = drive::repo_root();
            let opts = drive::Opts {
                minutes,
                seed,
                out: flags
                    .get("out")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("CHAOS.md")),
                hearth: flags
                    .get("hearth")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo.join("target/debug/hearth")),
                image: flags
                    .get("image")
                    .cloned()
                    .unwrap_or_else(|| "hearth:test".into()),
                work: drive::default_work(),
                repo,
                keep,
            };
            match drive::main(opts) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("chaos soak (seed {seed}): {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}
