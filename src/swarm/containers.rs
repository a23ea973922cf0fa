//! Short-lived local containers (the snapshot helpers): create, start, wait, remove, and the
//! archive API (`GET`/`PUT /containers/{id}/archive`) streamed to and from files. Each method is
//! one counted request on [`Client`]; none changes the swarm, so none is in `WRITE_OPS`.

use std::path::Path;
use std::time::Instant;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, RemoveContainerOptions,
    StartContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Client, SwarmError};

fn io_error(op: &'static str, err: std::io::Error) -> SwarmError {
    SwarmError::Other {
        op,
        source: bollard::errors::Error::IOError { err },
    }
}

impl Client {
    /// Creates a container named `name` (not started); returns its id.
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, SwarmError> {
        let opts = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let r = self
            .call(
                "container_create",
                self.docker().create_container(Some(opts), body),
            )
            .await?;
        Ok(r.id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), SwarmError> {
        self.call(
            "container_start",
            self.docker()
                .start_container(id, None::<StartContainerOptions>),
        )
        .await
    }

    /// Waits until the container stops; returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64, SwarmError> {
        let start = Instant::now();
        let mut stream = self
            .docker()
            .wait_container(id, None::<WaitContainerOptions>);
        let mut code = None;
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(r) => code = Some(r.status_code),
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                    code = Some(c)
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.count_op("container_wait", start.elapsed());
        match (code, failure) {
            (_, Some(source)) => Err(SwarmError::from_bollard("container_wait", source)),
            (Some(c), None) => Ok(c),
            (None, None) => Err(SwarmError::Server {
                op: "container_wait",
                status: 0,
                message: "no exit status reported".into(),
            }),
        }
    }

    /// Removes a container, stopping it first if it runs (its volumes are kept).
    pub async fn remove_container(&self, id: &str) -> Result<(), SwarmError> {
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        self.call(
            "container_remove",
            self.docker().remove_container(id, Some(opts)),
        )
        .await
    }

    /// Streams the tar of `path` in container `id` (created or running; mounted volumes included)
    /// into the file `dest`; returns the bytes written.
    pub async fn download_archive(
        &self,
        id: &str,
        path: &str,
        dest: &Path,
    ) -> Result<u64, SwarmError> {
        const OP: &str = "container_archive_get";
        let start = Instant::now();
        let res = async {
            let mut file = tokio::fs::File::create(dest)
                .await
                .map_err(|e| io_error(OP, e))?;
            let opts = DownloadFromContainerOptions {
                path: path.to_string(),
            };
            let mut stream = self.docker().download_from_container(id, Some(opts));
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| SwarmError::from_bollard(OP, e))?;
                file.write_all(&chunk).await.map_err(|e| io_error(OP, e))?;
                n += chunk.len() as u64;
            }
            file.flush().await.map_err(|e| io_error(OP, e))?;
            Ok(n)
        }
        .await;
        self.count_op(OP, start.elapsed());
        res
    }

    /// Extracts the tar file `src` into the directory `path` of container `id` (created or
    /// stopped; mounted volumes included), streaming it.
    pub async fn upload_archive(&self, id: &str, path: &str, src: &Path) -> Result<(), SwarmError> {
        const OP: &str = "container_archive_put";
        let file = tokio::fs::File::open(src)
            .await
            .map_err(|e| io_error(OP, e))?;
        let body = futures::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 256 * 1024];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((buf.into(), file)))
        });
        let opts = UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        self.call(
            OP,
            self.docker()
                .upload_to_container(id, Some(opts), bollard::body_try_stream(body)),
        )
        .await
    }
}
