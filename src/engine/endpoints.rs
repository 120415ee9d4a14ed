//! Opens the source and the sink a bulk import names: a live GitLab (through the sealed token or the
//! configured destination) or a bundle.

use super::{Engine, EngineError, blocking};
use crate::forge::{ForgeClient, GitLab, base_string, parse_forge_url};
use crate::model::{BulkImport, DestinationKind, SourceKind};
use crate::sink::{LiveSink, Sink};
use crate::source::{LiveSource, Source};
use crate::user_map::UserMap;
use std::sync::Arc;

impl Engine {
    pub(super) async fn open_source(
        &self,
        bulk: &BulkImport,
    ) -> Result<Arc<dyn Source>, EngineError> {
        match &bulk.source {
            SourceKind::Live { url } => {
                let (store, id) = (self.store.clone(), bulk.id);
                let sealed = blocking(move || store.sealed_token(id)).await?;
                let token = self.sealer.unseal(&sealed)?;
                // The URL passed the transport policy when the migration was accepted.
                let url = parse_forge_url(url, true)?;
                let client = ForgeClient::with_role(
                    "source",
                    url,
                    token,
                    self.config.http_concurrency,
                    self.config.retry.clone(),
                )?;
                // Known while the run lasts, so `Engine::rate_limit_waits` can show its waits.
                if let Ok(mut sources) = self.sources.lock() {
                    sources.insert(bulk.id, client.clone());
                }
                Ok(Arc::new(LiveSource::new(
                    GitLab::new(client),
                    self.data_dir().to_path_buf(),
                )))
            }
            SourceKind::Bundle { path } => {
                let source = crate::source::bundle::BundleSource::open(path)
                    .await
                    .map_err(|e| {
                        EngineError::Setup(format!(
                            "bulk import {} cannot replay {path}: {e}",
                            bulk.id
                        ))
                    })?;
                Ok(Arc::new(source))
            }
        }
    }

    pub(super) async fn open_sink(&self, bulk: &BulkImport) -> Result<Arc<dyn Sink>, EngineError> {
        match &bulk.destination {
            DestinationKind::Live { url } => {
                let configured = self
                    .destination
                    .as_ref()
                    .filter(|d| base_string(d.client.base()) == *url);
                let gitlab = configured.cloned().ok_or_else(|| {
                    EngineError::Setup(format!(
                        "bulk import {} writes into {url}, but this appliance is configured for {}; start it with --destination-url {url}",
                        bulk.id,
                        self.destination_url().map(|u| u.to_string()).unwrap_or_else(|| "no destination".into())
                    ))
                })?;
                let (store, id) = (self.store.clone(), bulk.id);
                let explicit = blocking(move || store.user_map(id)).await?;
                Ok(Arc::new(LiveSink::new(
                    gitlab.with_user_map(UserMap::new(&explicit)),
                )))
            }
            DestinationKind::Bundle { path } => Ok(Arc::new(crate::sink::bundle::BundleSink::new(
                self.data_dir(),
                bulk,
                path,
            ))),
        }
    }
}
