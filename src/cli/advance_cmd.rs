//! `hearth snapshots NAME`, `hearth restore NAME [SNAPSHOT]` and `hearth retry NAME`: the snapshot
//! store and the advance record, by hand. The snapshot flags are shared with `hearth run`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::advance::{self, labels::Owner};
use crate::backup::{self, SnapshotMeta, Store};
use crate::controller::AdvanceConfig;
use crate::desired;
use crate::manifest::{self, Loaded};

use super::Source;
use super::common::{connect, load_and_render, runtime};

/// Where snapshots are kept and how they are taken.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotArgs {
    /// The snapshot store (a directory; one subdirectory per deployment).
    #[arg(
        long,
        default_value = "/var/lib/hearth/snapshots",
        env = "HEARTH_SNAPSHOT_DIR"
    )]
    pub snapshot_dir: PathBuf,
    /// Snapshots kept per deployment.
    #[arg(long, default_value_t = 5)]
    pub snapshot_keep: usize,
    /// Image of the helper container that copies volume data (default: the service's own image).
    #[arg(long, env = "HEARTH_BACKUP_IMAGE")]
    pub backup_image: Option<String>,
}

impl SnapshotArgs {
    pub fn config(&self) -> AdvanceConfig {
        AdvanceConfig {
            snapshot_dir: self.snapshot_dir.clone(),
            snapshot_keep: self.snapshot_keep.max(1),
            backup_image: self.backup_image.clone(),
            ..AdvanceConfig::default()
        }
    }

    pub fn store(&self) -> Store {
        Store::new(self.snapshot_dir.clone(), self.snapshot_keep.max(1))
    }
}

/// The manifests, checking that `name` is one of their deployments.
fn load(source: &Source, name: &str) -> Option<Loaded> {
    if source.paths.is_empty() {
        eprintln!("no manifests given: -f PATH...");
        return None;
    }
    let loaded = manifest::load_paths(&source.paths);
    if loaded.deployment(name).is_none() {
        eprintln!("no deployment named {name:?} in the manifests");
        return None;
    }
    Some(loaded)
}

/// One line per snapshot.
pub fn table(metas: &[SnapshotMeta]) -> String {
    let mut out = format!(
        "{:<32} {:<28} {:<26} {:>12}  VOLUMES\n",
        "ID", "VERSION", "CREATED", "BYTES"
    );
    for m in metas {
        let vols: Vec<String> = m
            .volumes
            .iter()
            .map(|v| format!("{}/{}", v.service, v.volume))
            .collect();
        out.push_str(&format!(
            "{:<32} {:<28} {:<26} {:>12}  {}\n",
            m.id,
            m.version,
            m.created,
            m.bytes,
            vols.join(",")
        ));
    }
    out
}

pub fn snapshots(source: &Source, args: &SnapshotArgs, name: &str) -> ExitCode {
    if load(source, name).is_none() {
        return ExitCode::from(1);
    }
    match args.store().list(name) {
        Ok(metas) if metas.is_empty() => {
            println!("no snapshots of {name} in {}", args.snapshot_dir.display());
            ExitCode::SUCCESS
        }
        Ok(metas) => {
            print!("{}", table(&metas));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

pub fn restore(
    source: &Source,
    host: Option<&str>,
    args: &SnapshotArgs,
    name: &str,
    snapshot: Option<&str>,
) -> ExitCode {
    let Some(loaded) = load(source, name) else {
        return ExitCode::from(1);
    };
    let store = args.store();
    let meta = match snapshot {
        Some(id) => store.get(name, id),
        None => store.list(name).and_then(|m| {
            m.into_iter()
                .next()
                .ok_or_else(|| backup::BackupError::NotFound(format!("no snapshots of {name}")))
        }),
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let opts = backup::Options {
        helper_image: args.backup_image.clone(),
        labels: loaded
            .pool
            .as_ref()
            .map(desired::pool_labels)
            .unwrap_or_default(),
        ..Default::default()
    };
    eprintln!(
        "restoring {name} from snapshot {} (version {}, {})",
        meta.id, meta.version, meta.created
    );
    runtime().block_on(async {
        let client = match connect(host).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let progress = |line: &str| eprintln!("  {line}");
        match backup::restore(&client, &store, &opts, &meta, &progress).await {
            Ok(()) => {
                eprintln!("restored {name} from {}", meta.id);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("restore failed: {e}");
                ExitCode::from(1)
            }
        }
    })
}

pub fn retry(source: &Source, host: Option<&str>, name: &str) -> ExitCode {
    let Some((loaded, pool)) = load_and_render(source, Some(name), host) else {
        return ExitCode::from(1);
    };
    let (Some(p), Some(d)) = (&loaded.pool, pool.get(name)) else {
        eprintln!("{name} did not render: cannot find its stack");
        return ExitCode::from(1);
    };
    let pool_name = p.metadata.name.clone();
    let extra = desired::pool_labels(p);
    runtime().block_on(async {
        let client = match connect(host).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        // A compare-and-swap: a controller writing at the same time makes this retry once more.
        for _ in 0..5 {
            let stored =
                match crate::controller::advance_store::load(&client, &pool_name, name, &d.stack)
                    .await
                {
                    Ok(Some(s)) => s,
                    Ok(None) => {
                        eprintln!("{name} has no advance record: nothing to retry");
                        return ExitCode::from(1);
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(1);
                    }
                };
            let Some(cleared) = advance::retry(&stored.record) else {
                eprintln!(
                    "{name} is {}, not AdvanceFailed: nothing to retry",
                    stored.record.state
                );
                return ExitCode::from(1);
            };
            let owner = Owner {
                pool: &pool_name,
                deployment: name,
                stack: &d.stack,
                extra: &extra,
            };
            match crate::controller::advance_store::save(
                &client,
                &owner,
                Some(&stored),
                &cleared,
                &format!("cli:{}", crate::controller::lease::default_identity()),
            )
            .await
            {
                Ok(()) => {
                    let failed = stored.record.failed.map(|f| f.version).unwrap_or_default();
                    println!("{name}: failure of {failed} cleared; the controller advances again");
                    return ExitCode::SUCCESS;
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            }
        }
        eprintln!("{name}: the advance record kept changing; try again");
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_each_snapshot_with_its_volumes() {
        let m = SnapshotMeta {
            id: "20261123T181500Z-ab12".into(),
            deployment: "mm".into(),
            stack: "mm_example_org".into(),
            version: "8.0.0+9.11.1".into(),
            created: "2026-11-23T18:15:00.000Z".into(),
            volumes: vec![backup::VolumeEntry {
                service: "db".into(),
                volume: "postgres".into(),
                docker_volume: "mm_example_org_postgres".into(),
                paths: vec!["backup.sql".into()],
                file: "db-postgres.tar".into(),
                bytes: 10240,
                sha256: "00".into(),
            }],
            bytes: 10240,
        };
        let t = table(&[m]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID"));
        assert!(lines[1].contains("20261123T181500Z-ab12"));
        assert!(lines[1].contains("8.0.0+9.11.1"));
        assert!(lines[1].ends_with("db/postgres"));
    }

    #[test]
    fn snapshot_flags_parse_with_defaults() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "hearth",
            "restore",
            "gitea",
            "snap1",
            "-f",
            "m",
            "--snapshot-keep",
            "0",
        ])
        .expect("parses");
        match cli.command {
            crate::cli::Command::Restore {
                name,
                snapshot,
                snapshots,
                ..
            } => {
                assert_eq!(name, "gitea");
                assert_eq!(snapshot.as_deref(), Some("snap1"));
                assert_eq!(snapshots.config().snapshot_keep, 1);
            }
            other => panic!("{other:?}"),
        }
    }
}
