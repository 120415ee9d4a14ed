//! Export: records go into a bundle instead of a destination. Each page is buffered while the engine
//! loads it and written as one staged batch in `end_page` (atomically, so a crashed export resumes
//! with every committed page on disk); `finish` packs the staged batches into the bundle. The sink never
//! writes a token: only records and the source URL the engine already stores without credentials.

use super::{CreatedProject, ProjectPackage, Sink};
use crate::bundle::sign::load_signing_key;
use crate::bundle::writer::source_date_epoch;
use crate::bundle::{BundleError, ManifestEntity, PackOptions, Staging, pack};
use crate::engine::EngineError;
use crate::model::{BulkImport, Entity};
use crate::relations::{EntityContext, LoadError, Relation};
use crate::source::RepositoryKind;
use crate::store::Store;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How `appliance export` wants the bundle packed; kept in the staging directory so a resumed export
/// packs the same way. Holds the key's path, never the key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportOptions {
    pub volume_size: Option<u64>,
    pub sign_key: Option<PathBuf>,
}

const OPTIONS_FILE: &str = "export.json";

/// `<data>/exports/<bulk import id>`: the staged batches of one export.
pub fn staging_dir(data_dir: &Path, bulk_import_id: u64) -> PathBuf {
    data_dir.join("exports").join(bulk_import_id.to_string())
}

pub fn write_options(dir: &Path, options: &ExportOptions) -> Result<(), BundleError> {
    std::fs::create_dir_all(dir).map_err(BundleError::write(dir))?;
    let bytes = serde_json::to_vec_pretty(options)
        .map_err(|e| BundleError::write(dir)(std::io::Error::other(e)))?;
    crate::bundle::staging::write_atomic(&dir.join(OPTIONS_FILE), &bytes)
}

fn read_options(dir: &Path) -> Result<ExportOptions, BundleError> {
    let path = dir.join(OPTIONS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            BundleError::read(&path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ExportOptions::default()),
        Err(e) => Err(BundleError::read(&path)(e)),
    }
}

pub struct BundleSink {
    bulk_import_id: u64,
    out: PathBuf,
    staging: Arc<Staging>,
    /// Records of the page being loaded, per (entity id, relation).
    pages: Mutex<HashMap<(u64, &'static str), Vec<Value>>>,
    synthetic: AtomicU64,
}

impl BundleSink {
    pub fn new(data_dir: &Path, bulk: &BulkImport, out: &str) -> BundleSink {
        BundleSink {
            bulk_import_id: bulk.id,
            out: PathBuf::from(out),
            staging: Arc::new(Staging::new(staging_dir(data_dir, bulk.id))),
            pages: Mutex::new(HashMap::new()),
            synthetic: AtomicU64::new(1 << 62),
        }
    }
}

fn sink_error(e: impl std::fmt::Display) -> LoadError {
    LoadError {
        class: "Appliance::BundleError".into(),
        message: e.to_string(),
        correlation_id: None,
        unreachable: false,
    }
}

#[async_trait]
impl Sink for BundleSink {
    /// One export's id map is its own: a new export of the same group writes every record again.
    fn identity(&self) -> String {
        format!("bundle:{}#{}", self.out.display(), self.bulk_import_id)
    }

    async fn load(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        record: &Value,
        _in_doubt: bool,
    ) -> Result<u64, LoadError> {
        let mut pages = self.pages.lock().map_err(sink_error)?;
        pages
            .entry((ctx.entity.id, relation.name()))
            .or_default()
            .push(record.clone());
        // The "destination id" of an exported record is its source id: stable across resumes.
        Ok(record
            .get("id")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| self.synthetic.fetch_add(1, Ordering::Relaxed)))
    }

    async fn list_child(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        record: &Value,
    ) -> Result<(), LoadError> {
        self.load(relation, ctx, record, false).await.map(|_| ())
    }

    /// A project is stored as it came: its attributes, each relation that travels with it, and the
    /// `git bundle` of its repository, of its wiki and of its designs, its uploads and LFS objects (records of
    /// relations `uploads` and `lfs_objects`, bytes as blobs); a replay hands the same package to
    /// the destination.
    async fn create_project(
        &self,
        ctx: &EntityContext,
        package: &ProjectPackage,
        _in_doubt: bool,
    ) -> Result<CreatedProject, LoadError> {
        let staging = Arc::clone(&self.staging);
        let entity = ctx.entity.source_full_path.clone();
        let attributes = package.attributes.clone();
        let relations = package.relations.clone();
        let repositories: Vec<(&'static str, Option<PathBuf>)> = RepositoryKind::ALL
            .iter()
            .map(|kind| (kind.relation(), package.repository(*kind).cloned()))
            .collect();
        let upload_records: Vec<Value> = package.uploads.iter().map(|u| u.record()).collect();
        let lfs_records: Vec<Value> = package
            .lfs_objects
            .iter()
            .map(|o| {
                let mut record = serde_json::json!({ "oid": o.oid, "size": o.size });
                // Only when it is not the project's alone, so a bundle without designs is the
                // same as before them (format version 2).
                if o.repositories != [crate::forge::lfs::PROJECT_REPOSITORY] {
                    record["repositories"] = serde_json::json!(o.repositories);
                }
                record
            })
            .collect();
        let snippet_records: Vec<Value> = package
            .snippet_repositories
            .iter()
            .map(|r| r.record())
            .collect();
        let blobs: Vec<(String, PathBuf)> = package
            .uploads
            .iter()
            .map(|u| (u.sha256.clone(), u.path.clone()))
            .chain(
                package
                    .lfs_objects
                    .iter()
                    .map(|o| (o.oid.clone(), o.path.clone())),
            )
            .chain(
                package
                    .snippet_repositories
                    .iter()
                    .map(|r| (r.sha256.clone(), r.path.clone())),
            )
            .collect();
        let id = attributes
            .get("id")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| self.synthetic.fetch_add(1, Ordering::Relaxed));
        // Staged again whole on a resume: every page and the file are replaced, never added to.
        tokio::task::spawn_blocking(move || -> Result<(), crate::bundle::BundleError> {
            staging.write_batch(&entity, "project", 0, std::slice::from_ref(&attributes))?;
            for (name, file) in &relations {
                staging.write_relation_file(&entity, name, file)?;
            }
            for (relation, file) in &repositories {
                match file {
                    Some(file) => staging.write_file(&entity, relation, file)?,
                    None => staging.remove_file(&entity, relation)?,
                }
            }
            // Uploads: one record each (a page without records is not packed), and their bytes
            // as blobs, staged before the records that name them.
            staging.write_blobs(&entity, &blobs)?;
            staging.write_batch(&entity, "uploads", 0, &upload_records)?;
            staging.write_batch(&entity, "lfs_objects", 0, &lfs_records)?;
            staging.write_batch(&entity, "snippet_repositories", 0, &snippet_records)?;
            Ok(())
        })
        .await
        .map_err(sink_error)?
        .map_err(sink_error)?;
        Ok(CreatedProject {
            id,
            failed_relations: Vec::new(),
        })
    }

    async fn end_page(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        page: u64,
    ) -> Result<(), LoadError> {
        let records = self
            .pages
            .lock()
            .map_err(sink_error)?
            .remove(&(ctx.entity.id, relation.name()))
            .unwrap_or_default();
        let staging = Arc::clone(&self.staging);
        let (entity, name) = (ctx.entity.source_full_path.clone(), relation.name());
        tokio::task::spawn_blocking(move || staging.write_batch(&entity, name, page, &records))
            .await
            .map_err(sink_error)?
            .map_err(sink_error)?;
        Ok(())
    }

    async fn finish(
        &self,
        _store: &Store,
        bulk: &BulkImport,
        entities: &[Entity],
    ) -> Result<(), EngineError> {
        let by_id: HashMap<u64, &Entity> = entities.iter().map(|e| (e.id, e)).collect();
        let manifest_entities = entities
            .iter()
            .map(|e| ManifestEntity {
                source_full_path: e.source_full_path.clone(),
                entity_type: e.entity_type.as_str().into(),
                id: e.source_xid,
                path: e
                    .source_full_path
                    .rsplit('/')
                    .next()
                    .unwrap_or(&e.source_full_path)
                    .to_string(),
                parent: e
                    .parent_id
                    .and_then(|p| by_id.get(&p))
                    .map(|p| p.source_full_path.clone()),
                status: e.status.as_str().into(),
            })
            .collect();
        let staging = Arc::clone(&self.staging);
        let (out, source_url) = (self.out.clone(), bulk.source_url.clone());
        let packed = tokio::task::spawn_blocking(move || {
            let options = read_options(staging.dir())?;
            let sign_key = options
                .sign_key
                .as_deref()
                .map(load_signing_key)
                .transpose()?;
            pack(
                &staging,
                PackOptions {
                    out,
                    source_url,
                    entities: manifest_entities,
                    volume_size: options.volume_size,
                    sign_key,
                    source_date_epoch: source_date_epoch(),
                },
            )
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        packed.map_err(|e| EngineError::Setup(format!("writing the bundle: {e}")))?;
        Ok(())
    }
}
