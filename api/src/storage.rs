//! Attachment bytes, behind one interface with two backends (the `object_store` crate's):
//! a local directory, `<data dir>/attachments/<org>/<random key>` (the embedded default), or
//! S3-compatible object storage (`SWITCHBOARD_STORAGE_URL=s3://bucket/prefix`), which
//! several instances share. Keys are never taken from the client.
//!
//! Bytes stream both ways: an upload is written part by part as it arrives (at most a part
//! and the parts in flight are in memory, never the whole file) and appears whole or not at
//! all (a staged file renamed, or a multipart upload completed); a download streams from
//! the store to the client. A store that cannot be reached, or a full disk, is
//! `503 service_unavailable`: the client may try again, and nothing is recorded.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::OrgId;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart, aws::AmazonS3Builder,
    local::LocalFileSystem,
};

use crate::auth::random_token;
use crate::config::Config;
use crate::error::ApiError;

/// Multipart parts: S3 takes parts of at least 5 MiB (but the last); a local file is written
/// in smaller steps.
const S3_PART: usize = 5 * 1024 * 1024;
const LOCAL_PART: usize = 256 * 1024;
/// Parts uploading at once, per upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Where attachment bytes live.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Under which path of the store the keys are (`prefix` of `s3://bucket/prefix`).
    prefix: Path,
    part_size: usize,
    kind: &'static str,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Storage({}, {})", self.kind, self.store)
    }
}

impl Storage {
    /// The storage the configuration names: `storage_url` (`s3://bucket/prefix`, with the
    /// endpoint, region and keys of the configuration or the usual `AWS_*` variables), or
    /// the data directory when unset.
    pub fn open(config: &Config) -> Result<Storage, String> {
        match config.storage_url.as_deref().map(str::trim) {
            None | Some("") => {
                // Directories are made as files are written, not before.
                let root = std::path::absolute(config.data_dir.join("attachments"))
                    .map_err(|error| format!("SWITCHBOARD_DATA_DIR: {error}"))?;
                let prefix = Path::from_absolute_path(&root)
                    .map_err(|error| format!("SWITCHBOARD_DATA_DIR: {error}"))?;
                Ok(Storage {
                    store: Arc::new(LocalFileSystem::new()),
                    prefix,
                    part_size: LOCAL_PART,
                    kind: "local",
                })
            }
            Some(url) => Storage::s3(config, url),
        }
    }

    fn s3(config: &Config, url: &str) -> Result<Storage, String> {
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(format!(
                "SWITCHBOARD_STORAGE_URL must be s3://bucket/prefix, not {url:?}"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("SWITCHBOARD_STORAGE_URL names no bucket".into());
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // Fail fast when the store is away: a request waits seconds, not minutes.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(3))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(endpoint) = &config.storage_endpoint {
            builder = builder.with_endpoint(endpoint);
            if endpoint.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
        }
        if let Some(region) = &config.storage_region {
            builder = builder.with_region(region);
        }
        if let (Some(id), Some(secret)) = (&config.storage_key_id, &config.storage_secret) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let s3 = builder
            .build()
            .map_err(|error| format!("object storage: {error}"))?;
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|error| format!("SWITCHBOARD_STORAGE_URL prefix: {error}"))?;
        Ok(Storage {
            store: Arc::new(s3),
            prefix,
            part_size: S3_PART,
            kind: "s3",
        })
    }

    /// A new key for a file of `org`.
    pub fn new_key(org: OrgId) -> String {
        format!("{}/{}", org.get(), random_token(18))
    }

    fn location(&self, key: &str) -> Result<Path, ApiError> {
        // Keys are ours ("<org>/<url-safe token>"); refuse anything else rather than trust it.
        let safe = key.split('/').count() == 2
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
        if !safe {
            return Err(ApiError::Internal(format!(
                "unexpected storage key {key:?}"
            )));
        }
        Ok(key
            .split('/')
            .fold(self.prefix.clone(), |path, part| path.clone().join(part)))
    }

    /// Stores bytes already in memory (a provider's inbound file) under `key`.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), ApiError> {
        let location = self.location(key)?;
        self.store
            .put(&location, bytes.into())
            .await
            .map(drop)
            .map_err(unavailable("storing an attachment"))
    }

    /// Starts writing `key` part by part; nothing is visible until [`Upload::finish`].
    pub async fn upload(&self, key: &str, limit: usize) -> Result<Upload, ApiError> {
        let location = self.location(key)?;
        let upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(unavailable("starting an upload"))?;
        Ok(Upload {
            writer: WriteMultipart::new_with_chunk_size(upload, self.part_size),
            written: 0,
            limit,
        })
    }

    /// The bytes of `key`, as a stream.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, ApiError>>, ApiError> {
        let location = self.location(key)?;
        let found = self
            .store
            .get(&location)
            .await
            .map_err(|error| match error {
                object_store::Error::NotFound { .. } => {
                    ApiError::Internal(format!("the bytes of attachment {key} are missing"))
                }
                other => unavailable("reading an attachment")(other),
            })?;
        Ok(found
            .into_stream()
            .map_err(unavailable("reading an attachment"))
            .boxed())
    }

    /// Removes `key` (the write that needed it was not recorded). Never fails: a file left
    /// behind is logged, not an error of the request.
    pub async fn remove(&self, key: &str) {
        let Ok(location) = self.location(key) else {
            return;
        };
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, key, "could not remove an unrecorded attachment");
            }
        }
    }

    /// Removes every key of `keys` (see [`Storage::remove`]).
    pub async fn remove_all(&self, keys: impl IntoIterator<Item = String>) {
        for key in keys {
            self.remove(&key).await;
        }
    }

    /// What `/readyz` says of the store: `local` (the data directory), or whether object
    /// storage answers (`ok`, `down`).
    pub async fn readiness(&self) -> &'static str {
        if self.kind == "local" {
            return "local";
        }
        if self.reachable().await { "ok" } else { "down" }
    }

    /// Whether the store answers: a probe of a key nobody writes.
    async fn reachable(&self) -> bool {
        let probe = self.prefix.clone().join("readiness-probe");
        match tokio::time::timeout(Duration::from_secs(3), self.store.head(&probe)).await {
            Ok(Ok(_)) | Ok(Err(object_store::Error::NotFound { .. })) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "object storage does not answer");
                false
            }
            Err(_) => false,
        }
    }
}

/// An upload in progress (see [`Storage::upload`]).
pub struct Upload {
    writer: WriteMultipart,
    written: usize,
    limit: usize,
}

impl Upload {
    /// Appends a chunk; a file growing past the limit is `413` (the caller aborts).
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        if self.written + chunk.len() > self.limit {
            return Err(ApiError::PayloadTooLarge);
        }
        self.written += chunk.len();
        // Waits while the parts in flight are at the bound: memory stays at a few parts.
        self.writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(unavailable("uploading an attachment"))?;
        self.writer.put(chunk);
        Ok(())
    }

    /// Completes the upload: the file appears whole.
    pub async fn finish(self) -> Result<usize, ApiError> {
        let written = self.written;
        self.writer
            .finish()
            .await
            .map(|_| written)
            .map_err(unavailable("completing an upload"))
    }

    /// Gives the upload up: nothing of it stays.
    pub async fn abort(self) {
        if let Err(error) = self.writer.abort().await {
            tracing::warn!(%error, "could not abort an upload");
        }
    }
}

/// A storage failure, as the client sees it: the dependency is unavailable (503), the cause
/// goes to the log.
fn unavailable(doing: &'static str) -> impl Fn(object_store::Error) -> ApiError {
    move |error| ApiError::Unavailable(format!("{doing}: {error}"))
}
