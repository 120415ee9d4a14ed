//! Replay: records come from a bundle instead of a live source. `open` verifies the whole bundle before
//! the engine runs anything, so a damaged bundle is refused before the destination sees a request.
//! Batches are read one at a time through the bundle's index, by the same streaming reader `verify`
//! uses, and handed to the engine in pages of at most `PAGE_BYTES` of records (the cursor is
//! `<batch>:<record>`), so memory stays bounded whatever a batch declares.

use super::{ExtractedPage, ProjectUpload, RepositoryKind, Source};
use crate::bundle::{Bundle, BundleError, ManifestMember, verify};
use crate::forge::ForgeError;
use crate::relations::{EntityContext, Relation};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Root digests of bundles a command verified (with its trusted key) in this process: the engine opens
/// the bundle again and refuses it if it is no longer the bundle that was verified.
static PINNED: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Remembers that the bundle at `path` was verified with this root digest.
pub fn pin(path: &str, root_digest: &str) {
    if let Ok(mut pinned) = PINNED.lock() {
        pinned.insert(path.to_string(), root_digest.to_string());
    }
}

/// About how many bytes of NDJSON one page of a replay holds (the writer's batches are about this
/// size, so a page is usually a batch): a larger batch (a hostile one, or one large page of the
/// source) is loaded in several pages, so memory stays bounded with several relations at once.
pub const PAGE_BYTES: usize = 1 << 20;

pub struct BundleSource {
    bundle: Arc<Bundle>,
    /// (entity, relation) -> indexes into the manifest's members, in batch order.
    batches: HashMap<(String, String), Vec<usize>>,
    name: String,
}

impl BundleSource {
    /// Opens and verifies every byte of the bundle (on the blocking pool).
    pub async fn open(path: &str) -> Result<BundleSource, BundleError> {
        let paths = vec![PathBuf::from(path)];
        let name = path.to_string();
        let bundle = tokio::task::spawn_blocking(move || -> Result<Bundle, BundleError> {
            let bundle = Bundle::open(&paths)?;
            if let Some(problem) = verify(&bundle, None).into_iter().next() {
                return Err(problem);
            }
            let pinned = PINNED.lock().ok().and_then(|p| p.get(&name).cloned());
            if let Some(digest) = pinned
                && digest != bundle.root_digest
            {
                return Err(BundleError::Signature(format!(
                    "{name} changed after it was verified (root digest sha256:{digest}, now sha256:{}); it was refused",
                    bundle.root_digest
                )));
            }
            Ok(bundle)
        })
        .await
        .map_err(|e| BundleError::NotABundle(e.to_string()))??;
        let mut batches: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, m) in bundle.manifest.members.iter().enumerate() {
            batches
                .entry((m.entity.clone(), m.relation.clone()))
                .or_default()
                .push(i);
        }
        for list in batches.values_mut() {
            list.sort_by_key(|i| bundle.manifest.members[*i].batch);
        }
        Ok(BundleSource {
            bundle: Arc::new(bundle),
            batches,
            name: path.to_string(),
        })
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The members of one relation of the entity, in batch order.
    /// Each record of the project's `relation` (one that names blobs, [`crate::bundle::BLOB_REFERENCES`])
    /// made into a file by `place` (where it goes, from its record), with the blob it names copied
    /// out there, its size and sha256 checked as it streams.
    async fn copy_out_blobs<T: BlobFile + Send + 'static>(
        &self,
        ctx: &EntityContext,
        relation: &str,
        place: impl Fn(&Value) -> Result<T, String> + Send + 'static,
    ) -> Result<Vec<T>, ForgeError> {
        let members = self.members_of(ctx, relation);
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let bundle = Arc::clone(&self.bundle);
        tokio::task::spawn_blocking(move || -> Result<Vec<T>, String> {
            let blobs = blob_index(&bundle);
            let mut out = Vec::new();
            for member in &members {
                for record in bundle.records(member).map_err(|e| e.to_string())? {
                    let file = place(&record)?;
                    let (sha256, size, path) = file.blob();
                    copy_blob(&bundle, &blobs, sha256, size, path)?;
                    out.push(file);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| self.error(e.to_string()))?
        .map_err(|e| self.error(e))
    }

    fn members_of(&self, ctx: &EntityContext, relation: &str) -> Vec<ManifestMember> {
        let key = (ctx.entity.source_full_path.clone(), relation.to_string());
        self.batches
            .get(&key)
            .into_iter()
            .flatten()
            .map(|i| self.bundle.manifest.members[*i].clone())
            .collect()
    }

    fn error(&self, message: String) -> ForgeError {
        ForgeError::Decode {
            url: self.name.clone(),
            message,
        }
    }
}

#[async_trait]
impl Source for BundleSource {
    fn via(&self) -> &'static str {
        "bundle"
    }

    async fn pages(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
    ) -> Result<Option<u64>, ForgeError> {
        // A relation without records has no member, and one empty page.
        Ok(Some(
            (self.members_of(ctx, relation.name()).len() as u64).max(1),
        ))
    }

    fn project_absent(&self, full_path: &str) -> Option<String> {
        let manifest = &self.bundle.manifest;
        if manifest.format_version < 2 {
            return Some(format!(
                "this bundle (format version {}) was written before bundles carried projects: \
                 export the group again, or migrate this project live (appliance migrate --project)",
                manifest.format_version
            ));
        }
        match manifest.entity(full_path) {
            Some(e) if e.entity_type == "project" && e.status == "finished" => None,
            Some(e) if e.entity_type == "project" => Some(format!(
                "the export of this project did not finish (it {}): export it again",
                e.status
            )),
            _ => Some(
                "the bundle lists this project but does not carry it: it was exported with \
                 migrate_projects false (--skip-projects)"
                    .into(),
            ),
        }
    }

    async fn repository(
        &self,
        ctx: &EntityContext,
        kind: RepositoryKind,
        dir: &std::path::Path,
    ) -> Result<Option<PathBuf>, ForgeError> {
        let Some(member) = self.members_of(ctx, kind.relation()).into_iter().next() else {
            return Ok(None);
        };
        let bundle = Arc::clone(&self.bundle);
        let path = dir.join(kind.archive_name());
        let out = path.clone();
        tokio::task::spawn_blocking(move || copy_member_to(&bundle, &member, &out))
            .await
            .map_err(|e| self.error(e.to_string()))?
            .map_err(|e| self.error(e.to_string()))?;
        Ok(Some(path))
    }

    /// The project's uploads: each record of its `uploads` relation, with the blob it names
    /// copied out to `<dir>/uploads/<secret>/<filename>`, its size and sha256 checked as it
    /// streams (the names were checked when the bundle was verified, and are again).
    async fn uploads(
        &self,
        ctx: &EntityContext,
        dir: &std::path::Path,
    ) -> Result<Vec<ProjectUpload>, ForgeError> {
        let dir = dir.join("uploads");
        self.copy_out_blobs(ctx, "uploads", move |record| {
            let (secret, filename, size, sha256) = ProjectUpload::from_record(record)?;
            let path = dir.join(&secret).join(&filename);
            Ok(ProjectUpload {
                secret,
                filename,
                path,
                size,
                sha256,
            })
        })
        .await
    }

    /// The project's LFS objects: each record of its `lfs_objects` relation (which names the
    /// repositories that point to it, its design repository's among them), with its blob copied
    /// out to `<dir>/lfs-objects/<oid>`, size and sha256 checked as it streams.
    async fn lfs_objects(
        &self,
        ctx: &EntityContext,
        _designs: &std::collections::BTreeMap<String, u64>,
        dir: &std::path::Path,
    ) -> Result<crate::forge::lfs::Downloaded, ForgeError> {
        let dir = dir.join("lfs-objects");
        let objects = self
            .copy_out_blobs(ctx, "lfs_objects", move |record| {
                let (_, oid, size) = crate::bundle::blob_reference("lfs_objects", record)?;
                let repositories = crate::bundle::lfs_repositories(record)?;
                let path = dir.join(&oid);
                Ok(crate::forge::lfs::LfsObject {
                    oid,
                    size,
                    path,
                    repositories,
                })
            })
            .await?;
        Ok(crate::forge::lfs::Downloaded {
            objects,
            missing: Vec::new(),
        })
    }

    /// The project's snippet repositories: each record of its `snippet_repositories` relation,
    /// with the `git bundle` it names copied out to `<dir>/snippet-<hexdigest>.bundle`, size and
    /// sha256 checked as it streams.
    async fn snippet_repositories(
        &self,
        ctx: &EntityContext,
        _snippets: &std::path::Path,
        dir: &std::path::Path,
    ) -> Result<Vec<super::SnippetRepository>, ForgeError> {
        let dir = dir.to_path_buf();
        self.copy_out_blobs(ctx, "snippet_repositories", move |record| {
            let (hexdigest, size, sha256) = super::SnippetRepository::from_record(record)?;
            let path = dir.join(format!("snippet-{hexdigest}.bundle"));
            Ok(super::SnippetRepository {
                hexdigest,
                path,
                size,
                sha256,
            })
        })
        .await
    }

    fn url(&self) -> String {
        self.bundle.manifest.source_url.clone()
    }

    async fn extract(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        cursor: Option<&str>,
    ) -> Result<ExtractedPage, ForgeError> {
        let entity = ctx.entity.source_full_path.as_str();
        let key = (entity.to_string(), relation.name().to_string());
        let Some(batches) = self.batches.get(&key) else {
            if relation.name() == "group" || relation.name() == "project" {
                return Err(self.error(format!(
                    "the bundle holds no record of {} `{entity}`: its export did not finish",
                    relation.name()
                )));
            }
            return Ok(ExtractedPage {
                records: Vec::new(),
                next: None,
                total: Some(0),
            });
        };
        // The cursor is `<batch>` (from its first record) or `<batch>:<record>`.
        let (index, from) = match cursor {
            None => (0, 0),
            Some(c) => {
                let (batch, record) = c.split_once(':').unwrap_or((c, "0"));
                match (batch.parse::<usize>(), record.parse::<u64>()) {
                    (Ok(b), Ok(r)) => (b, r),
                    _ => return Err(self.error(format!("`{c}` is not a batch number"))),
                }
            }
        };
        let members = &self.bundle.manifest.members;
        let total = batches.iter().map(|i| members[*i].records).sum();
        let member = batches
            .get(index)
            .map(|i| members[*i].clone())
            .ok_or_else(|| {
                self.error(format!("batch {index} of `{entity}` is not in the bundle"))
            })?;
        let bundle = Arc::clone(&self.bundle);
        let (records, rest) =
            tokio::task::spawn_blocking(move || bundle.records_from(&member, from, PAGE_BYTES))
                .await
                .map_err(|e| self.error(e.to_string()))?
                .map_err(|e| self.error(e.to_string()))?;
        let next = match rest {
            Some(record) => Some(format!("{index}:{record}")),
            None => (index + 1 < batches.len()).then(|| (index + 1).to_string()),
        };
        Ok(ExtractedPage {
            records,
            next,
            total: Some(total),
        })
    }

    async fn subgroups(&self, ctx: &EntityContext) -> Result<Vec<Value>, ForgeError> {
        Ok(self
            .bundle
            .manifest
            .children(&ctx.entity.source_full_path)
            .into_iter()
            .filter(|e| e.entity_type == "group" && e.status == "finished")
            .map(|e| json!({ "id": e.id, "full_path": e.source_full_path, "path": e.path }))
            .collect())
    }
}

/// The bundle's blobs by sha256.
fn blob_index(bundle: &Bundle) -> HashMap<&str, &ManifestMember> {
    bundle
        .manifest
        .members
        .iter()
        .filter(|m| m.relation == crate::bundle::BLOB_RELATION)
        .map(|m| (m.sha256.as_str(), m))
        .collect()
}

/// Streams the blob with this sha256 (of this size) out of the bundle into a new file at `to`,
/// checked as it passes.
fn copy_blob(
    bundle: &Bundle,
    blobs: &HashMap<&str, &ManifestMember>,
    sha256: &str,
    size: u64,
    to: &std::path::Path,
) -> Result<(), String> {
    let blob = blobs
        .get(sha256)
        .filter(|b| b.size == size)
        .ok_or_else(|| format!("the bundle holds no blob {sha256} of {size} bytes"))?;
    copy_member_to(bundle, blob, to).map_err(|e| e.to_string())
}

/// Streams file member `m` out of the bundle into a new file at `to` (its directory created),
/// checked as it passes.
fn copy_member_to(
    bundle: &Bundle,
    m: &ManifestMember,
    to: &std::path::Path,
) -> Result<(), BundleError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(BundleError::write(parent))?;
    }
    let file = std::fs::File::create(to).map_err(BundleError::write(to))?;
    let mut writer = std::io::BufWriter::new(file);
    bundle.copy_file(m, &mut writer)?;
    std::io::Write::flush(&mut writer).map_err(BundleError::write(to))
}

/// A file a bundle carries as a blob: the blob's sha256 and size, and where it is copied out to.
trait BlobFile {
    fn blob(&self) -> (&str, u64, &std::path::Path);
}

impl BlobFile for ProjectUpload {
    fn blob(&self) -> (&str, u64, &std::path::Path) {
        (&self.sha256, self.size, &self.path)
    }
}

impl BlobFile for crate::forge::lfs::LfsObject {
    fn blob(&self) -> (&str, u64, &std::path::Path) {
        (&self.oid, self.size, &self.path)
    }
}

impl BlobFile for super::SnippetRepository {
    fn blob(&self) -> (&str, u64, &std::path::Path) {
        (&self.sha256, self.size, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{ManifestEntity, PackOptions, Staging, pack};

    #[tokio::test]
    async fn a_bundle_that_changed_after_verification_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path().join("staging"));
        staging
            .write_batch("acme", "group", 0, &[json!({"id": 1, "name": "Acme"})])
            .unwrap();
        let out = dir.path().join("b.bundle");
        let packed = pack(
            &staging,
            PackOptions {
                out: out.clone(),
                source_url: "https://gitlab.example.com".into(),
                entities: vec![ManifestEntity {
                    source_full_path: "acme".into(),
                    entity_type: "group".into(),
                    id: Some(1),
                    path: "acme".into(),
                    parent: None,
                    status: "finished".into(),
                }],
                volume_size: None,
                sign_key: None,
                source_date_epoch: Some(0),
            },
        )
        .unwrap();
        let path = out.display().to_string();
        pin(&path, &packed.root_digest);
        let source = BundleSource::open(&path).await.unwrap();
        assert_eq!(source.url(), "https://gitlab.example.com");
        pin(&path, &"0".repeat(64));
        let err = BundleSource::open(&path).await.err().unwrap().to_string();
        assert!(err.contains("changed after it was verified"), "{err}");
    }
}
