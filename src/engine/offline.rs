//! Offline transfer as bulk imports: an export (live source -> bundle file) and a replay (a verified
//! bundle -> the live destination) are recorded and run like any migration, so `appliance serve` runs
//! them in the background and its bulk_imports endpoints list them with their stats and failures.
//! A replay verifies the whole bundle before anything is recorded or written.

use super::{Engine, Plan, SubmitError, SubmitRequest};
use crate::bundle::{Bundle, verify};
use crate::forge::base_string;
use crate::model::{BulkImport, DestinationKind, Entity, EntityRequest, SourceKind};
use crate::sink::bundle::{ExportOptions, staging_dir, write_options};
use crate::user_map::UserMapping;
use std::path::PathBuf;
use std::sync::Arc;

impl Engine {
    /// Checks the source, then records and starts an export of `req`'s entities into the bundle `out`.
    pub async fn submit_export(
        self: &Arc<Self>,
        req: SubmitRequest,
        out: PathBuf,
    ) -> Result<(BulkImport, Vec<Entity>), SubmitError> {
        super::refuse_nested_roots(&req.entities)?;
        let url = self
            .check_source(&req.source_url, &req.source_token, &req.entities)
            .await?;
        let (bulk, entities) = self
            .record(Plan {
                source_url: base_string(&url),
                source: SourceKind::Live {
                    url: base_string(&url),
                },
                source_token: Some(req.source_token),
                destination: DestinationKind::Bundle {
                    path: out.display().to_string(),
                },
                entities: req.entities,
                user_map: Vec::new(),
            })
            .await?;
        write_options(
            &staging_dir(self.data_dir(), bulk.id),
            &ExportOptions::default(),
        )
        .map_err(|e| SubmitError::InvalidBundle(e.to_string()))?;
        self.spawn(bulk.id);
        Ok((bulk, entities))
    }

    /// Verifies the bundle at `path` completely, checks the destination, then records and starts the
    /// replay of `entities` (each must be an entity of the bundle) into the configured destination.
    pub async fn submit_replay(
        self: &Arc<Self>,
        path: PathBuf,
        entities: Vec<EntityRequest>,
        user_map: Vec<UserMapping>,
        continue_earlier: bool,
    ) -> Result<(BulkImport, Vec<Entity>), SubmitError> {
        let destination = self
            .destination
            .as_ref()
            .ok_or(SubmitError::NoDestination)?;
        let paths = vec![path.clone()];
        let checked = tokio::task::spawn_blocking(move || {
            let bundle = Bundle::open(&paths)?;
            let problems = verify(&bundle, None);
            Ok::<_, crate::bundle::BundleError>((bundle, problems))
        })
        .await
        .map_err(|e| SubmitError::InvalidBundle(e.to_string()))?;
        let (bundle, problems) = checked.map_err(|e| SubmitError::InvalidBundle(e.to_string()))?;
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(SubmitError::InvalidBundle(list.join("; ")));
        }
        let source_url = bundle.manifest.source_url.clone();
        for e in &entities {
            if !bundle.manifest.entities.iter().any(|m| {
                m.source_full_path == e.source_full_path && m.entity_type == e.entity_type.as_str()
            }) {
                return Err(SubmitError::SourceEntityNotFound {
                    entity_type: e.entity_type.as_str(),
                    full_path: e.source_full_path.clone(),
                });
            }
            self.check_destination_for(destination, &source_url, e, continue_earlier)
                .await?;
        }
        let (bulk, entities) = self
            .record(Plan {
                source_url,
                source: SourceKind::Bundle {
                    path: path.display().to_string(),
                },
                source_token: None,
                destination: DestinationKind::Live {
                    url: base_string(destination.client.base()),
                },
                entities,
                user_map,
            })
            .await?;
        self.spawn(bulk.id);
        Ok((bulk, entities))
    }
}
