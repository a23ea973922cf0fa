//! Helper containers: each mounts one volume at [`MOUNT`], is labelled so that leftovers of a killed
//! run can be found and swept, and is removed whatever happens; plus the pipe that carries an
//! archive from Docker to the tar rewrite on a blocking thread.

use std::collections::HashMap;
use std::future::Future;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions};

use super::{BackupError, Options};
use crate::swarm::{Client, label_filter};

/// Where a helper container mounts the volume it copies.
pub const MOUNT: &str = "/hearth-volume";
/// The label that marks helper containers (value [`ROLE_HELPER`]).
pub const LABEL_ROLE: &str = "hearth.role";
pub const ROLE_HELPER: &str = "backup-helper";
/// The stack a helper works for (leftovers are swept per stack).
pub const LABEL_HELPER_STACK: &str = "hearth.backup.stack";

/// The pipe between a download and the tar rewrite.
pub(super) const PIPE_BUFFER: usize = 1024 * 1024;

/// A blocking reader over an async one, for the tar rewrite on a blocking thread.
pub(super) struct BlockingRead<R> {
    pub(super) inner: R,
    pub(super) handle: tokio::runtime::Handle,
}

impl<R: tokio::io::AsyncRead + Unpin> std::io::Read for BlockingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.handle.block_on(self.inner.read(buf))
    }
}

/// The download failed because the reading side of its pipe went away.
pub(super) fn is_broken_pipe(e: &BackupError) -> bool {
    matches!(e, BackupError::Docker(d) if d.io_kind() == Some(std::io::ErrorKind::BrokenPipe))
}

/// Run as `sh -c CLEAR_SCRIPT sh <mount> [<rel>...]`: removes the given paths of the volume, or
/// everything in it (dot-files included) when none are given.
pub(super) const CLEAR_SCRIPT: &str = r#"set -e
cd "$1"
shift
if [ "$#" -eq 0 ]; then set -- * .[!.]* ..?*; fi
rm -rf -- "$@"
"#;

/// The labels of a helper container.
pub fn helper_labels(opts: &Options, stack: &str, volume: &str) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = opts.labels.clone().into_iter().collect();
    l.insert("hearth.managed-by".into(), "hearth".into());
    l.insert(LABEL_ROLE.into(), ROLE_HELPER.into());
    l.insert(LABEL_HELPER_STACK.into(), stack.into());
    l.insert("hearth.backup.volume".into(), volume.into());
    l
}

/// Creates a helper container mounting `volume` at [`MOUNT`] (running `sh -c cmd...` if started),
/// runs `body` with its id, and removes it whatever happened.
pub(super) async fn with_helper<F, Fut>(
    client: &Client,
    opts: &Options,
    stack: &str,
    image: &str,
    volume: &str,
    cmd: Vec<String>,
    body: F,
) -> Result<(), BackupError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), BackupError>>,
{
    let mut rand = [0u8; 4];
    let _ = getrandom::fill(&mut rand);
    let name = format!("hearth-backup-{}", hex::encode(rand));
    let spec = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(cmd),
        user: Some("0:0".into()),
        labels: Some(helper_labels(opts, stack, volume)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(vec![Mount {
                target: Some(MOUNT.into()),
                source: Some(volume.into()),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    no_copy: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = client.create_container(&name, spec).await?;
    let res = body(id.clone()).await;
    let removed = client.remove_container(&id).await;
    res?;
    removed?;
    Ok(())
}

/// Removes helper containers of `stack` left by a run that was killed or cancelled.
pub(super) async fn sweep_helpers(client: &Client, stack: &str) {
    let filter = label_filter(&[
        &format!("{LABEL_ROLE}={ROLE_HELPER}"),
        &format!("{LABEL_HELPER_STACK}={stack}"),
    ]);
    for c in client
        .list_containers(Some(filter))
        .await
        .unwrap_or_default()
    {
        if let Some(id) = c.id {
            let _ = client.remove_container(&id).await;
        }
    }
}

/// The volume exists on this node (a helper would otherwise create an empty, unlabelled one).
pub(super) async fn require_volume(client: &Client, name: &str) -> Result<(), BackupError> {
    let filter = HashMap::from([("name".to_string(), vec![name.to_string()])]);
    let found = client.list_volumes(Some(filter)).await?;
    if found.iter().any(|v| v.name == name) {
        Ok(())
    } else {
        Err(BackupError::NotFound(format!("volume {name} on this node")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn helpers_carry_hearth_and_caller_labels() {
        let opts = Options {
            labels: BTreeMap::from([
                ("hearth.test".to_string(), "t1".to_string()),
                (LABEL_ROLE.to_string(), "overridden".to_string()),
            ]),
            ..Default::default()
        };
        let l = helper_labels(&opts, "st", "st_data");
        assert_eq!(l["hearth.test"], "t1");
        assert_eq!(l["hearth.managed-by"], "hearth");
        assert_eq!(l[LABEL_ROLE], ROLE_HELPER, "the role is never overridden");
        assert_eq!(l[LABEL_HELPER_STACK], "st");
        assert_eq!(l["hearth.backup.volume"], "st_data");
    }
}
