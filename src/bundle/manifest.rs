//! The manifest: what a bundle holds and the sha256 of every member. Its own sha256 is the bundle's root
//! digest, so checking that one value out of band pins every byte of the bundle.

use super::{
    BLOB_RELATION, BundleError, FORMAT_NAME, FORMAT_VERSION, MAX_BATCH_BYTES,
    OLDEST_FORMAT_VERSION, blob_member_path, check_member_name, file_member_path, is_file_relation,
    member_path,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `appliance-bundle`.
    pub format: String,
    pub format_version: u64,
    /// The appliance release that wrote the bundle.
    pub appliance_version: String,
    /// The source instance's base URL, never with credentials.
    pub source_url: String,
    /// The latest `updated_at`/`created_at` among the records (or SOURCE_DATE_EPOCH), RFC 3339.
    pub source_state_time: String,
    /// The same instant in seconds since the Unix epoch; every tar header carries it as mtime.
    pub source_state_epoch: i64,
    /// Sorted by source full path.
    pub entities: Vec<ManifestEntity>,
    /// Sorted by path; the tar holds them in this order.
    pub members: Vec<ManifestMember>,
    /// The Ed25519 public key (64 hex digits) that signed the bundle, when it is signed: every verify
    /// checks `manifest.sig` against it, so a damaged signature is found without a trusted key. Which
    /// key to trust is still `--trusted-key`'s to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntity {
    pub source_full_path: String,
    /// `group` or `project` (version 2).
    #[serde(rename = "type")]
    pub entity_type: String,
    /// The entity's numeric id on the source.
    pub id: Option<u64>,
    /// The last component of the full path.
    pub path: String,
    /// The parent entity's source full path; None for the group the export was asked for.
    pub parent: Option<String>,
    /// How the export of this entity ended: `finished` or `failed` (a failed one has no records).
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestMember {
    pub path: String,
    /// The entity's source full path.
    pub entity: String,
    pub relation: String,
    /// 0-based, consecutive per (entity, relation).
    pub batch: u64,
    pub records: u64,
    /// Bytes of NDJSON once decompressed.
    pub size: u64,
    /// Bytes of the member in the tar.
    pub compressed_size: u64,
    /// sha256 of the member's bytes in the tar (the compressed bytes), lowercase hex.
    pub sha256: String,
}

impl Manifest {
    /// Parses and checks a manifest: the format and version first (so a newer bundle gets a clear
    /// message), then every member's name and its place.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        // Only the two fields that say what the file is are read first (the rest is skipped without
        // being kept), then the manifest straight into its types: no JSON tree of a large manifest.
        #[derive(Deserialize)]
        struct Head {
            #[serde(default)]
            format: Option<serde_json::Value>,
            #[serde(default)]
            format_version: Option<serde_json::Value>,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| {
            BundleError::NotABundle(format!("manifest.json is not valid JSON: {e}"))
        })?;
        if head.format.as_ref().and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(BundleError::NotABundle(format!(
                "manifest.json does not say `\"format\": \"{FORMAT_NAME}\"`"
            )));
        }
        let version = head
            .format_version
            .as_ref()
            .and_then(|v| v.as_u64())
            .ok_or_else(|| BundleError::NotABundle("manifest.json has no format_version".into()))?;
        if !(u64::from(OLDEST_FORMAT_VERSION)..=u64::from(FORMAT_VERSION)).contains(&version) {
            return Err(BundleError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| BundleError::NotABundle(format!("manifest.json: {e}")))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), BundleError> {
        let types: BTreeMap<&str, &str> = self
            .entities
            .iter()
            .map(|e| (e.source_full_path.as_str(), e.entity_type.as_str()))
            .collect();
        if types.len() != self.entities.len() {
            return Err(BundleError::ManifestMismatch(
                "an entity is listed twice".into(),
            ));
        }
        for e in &self.entities {
            check_member_name(&e.source_full_path)?;
            let known = match e.entity_type.as_str() {
                "group" => true,
                "project" => self.format_version >= 2,
                _ => false,
            };
            if !known {
                return Err(BundleError::ManifestMismatch(format!(
                    "entity `{}` is of type `{}`, which a version {} bundle does not hold",
                    e.source_full_path, e.entity_type, self.format_version
                )));
            }
            if let Some(p) = &e.parent
                && types.get(p.as_str()) != Some(&"group")
            {
                return Err(BundleError::ManifestMismatch(format!(
                    "entity `{}` names a parent `{p}` that is not a group in the bundle",
                    e.source_full_path
                )));
            }
        }
        let mut seen = HashSet::new();
        for (i, m) in self.members.iter().enumerate() {
            check_member_name(&m.path)?;
            if !seen.insert(m.path.as_str()) {
                return Err(BundleError::DuplicateMember(m.path.clone()));
            }
            if i > 0 && self.members[i - 1].path.as_bytes() > m.path.as_bytes() {
                return Err(BundleError::ManifestMismatch(format!(
                    "the members are not sorted by path: `{}` is listed before `{}`",
                    self.members[i - 1].path,
                    m.path
                )));
            }
            let Some(entity_type) = types.get(m.entity.as_str()) else {
                return Err(BundleError::ManifestMismatch(format!(
                    "member `{}` belongs to entity `{}`, which the manifest does not list",
                    m.path, m.entity
                )));
            };
            if m.relation == BLOB_RELATION {
                // A blob sits where its digest puts it, stored as it is, of any size (streamed).
                if *entity_type != "project"
                    || m.batch != 0
                    || m.records != 0
                    || m.size != m.compressed_size
                {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` is a blob, which only a project has, stored as it is (batch 0, 0 records, size = compressed_size)",
                        m.path
                    )));
                }
                if !super::is_sha256(&m.sha256) || m.path != blob_member_path(&m.sha256) {
                    return Err(BundleError::ManifestMismatch(format!(
                        "blob `{}` does not sit where its sha256 `{}` puts it (blobs/sha256/<first two digits>/<sha256>, lowercase)",
                        m.path, m.sha256
                    )));
                }
            } else if is_file_relation(&m.relation) {
                // A file (a repository) is stored as it is, of any size: it is streamed, never
                // held in memory.
                if *entity_type != "project"
                    || m.batch != 0
                    || m.records != 0
                    || m.size != m.compressed_size
                {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` is a `{}` file, which only a project has, once, stored as it is (batch 0, 0 records, size = compressed_size)",
                        m.path, m.relation
                    )));
                }
                if m.relation == "design" && self.format_version < 3 {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` is a design repository, which a version {} bundle does not hold",
                        m.path, self.format_version
                    )));
                }
                if Some(&m.path) != file_member_path(&m.entity, &m.relation).as_ref() {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` does not sit where the {} of entity `{}` belongs",
                        m.path, m.relation, m.entity
                    )));
                }
            } else {
                if crate::relations::schema::fields(&m.relation).is_none() {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` holds `{}` records, a relation this appliance does not know; replay it with the appliance release that wrote it",
                        m.path, m.relation
                    )));
                }
                if m.path != member_path(entity_type, &m.entity, &m.relation, m.batch) {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` does not sit where entity `{}`, relation `{}`, batch {} belongs",
                        m.path, m.entity, m.relation, m.batch
                    )));
                }
                if m.size > MAX_BATCH_BYTES || m.compressed_size > MAX_BATCH_BYTES {
                    return Err(BundleError::ManifestMismatch(format!(
                        "member `{}` declares {} bytes, more than any batch this appliance writes",
                        m.path,
                        m.size.max(m.compressed_size)
                    )));
                }
            }
            if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BundleError::ManifestMismatch(format!(
                    "member `{}` has no valid sha256",
                    m.path
                )));
            }
        }
        for ((_, relation), batches) in self.relations() {
            if relation == BLOB_RELATION {
                // Blobs are not batches: each is its own file, at batch 0.
                continue;
            }
            for (i, m) in batches.iter().enumerate() {
                if m.batch != i as u64 {
                    return Err(BundleError::ManifestMismatch(format!(
                        "batches of `{}` / `{}` are not consecutive from 0: batch {} is missing",
                        m.entity, m.relation, i
                    )));
                }
            }
        }
        Ok(())
    }

    /// The members of every (entity, relation), in batch order.
    pub fn relations(&self) -> BTreeMap<(&str, &str), Vec<&ManifestMember>> {
        let mut out: BTreeMap<(&str, &str), Vec<&ManifestMember>> = BTreeMap::new();
        for m in &self.members {
            out.entry((m.entity.as_str(), m.relation.as_str()))
                .or_default()
                .push(m);
        }
        for batches in out.values_mut() {
            batches.sort_by_key(|m| m.batch);
        }
        out
    }

    pub fn entity(&self, source_full_path: &str) -> Option<&ManifestEntity> {
        self.entities
            .iter()
            .find(|e| e.source_full_path == source_full_path)
    }

    /// The top-level groups a replay loads (an export of several groups has several), each into its
    /// own new group; `verify` asks the same, so it refuses what a replay would, in the same words. A
    /// top-level group inside another one of the bundle would be loaded twice, so it is refused.
    pub fn replay_roots(&self) -> Result<Vec<&ManifestEntity>, BundleError> {
        let roots = self.roots();
        if roots.is_empty() {
            return Err(BundleError::NotReplayable(
                "the bundle holds no top-level group or project: every entity names a parent"
                    .into(),
            ));
        }
        if let Some(other) = roots
            .iter()
            .find(|e| !matches!(e.entity_type.as_str(), "group" | "project"))
        {
            return Err(BundleError::NotReplayable(format!(
                "`{}` is a `{}`, which is neither a group nor a project",
                other.source_full_path.escape_debug(),
                other.entity_type.escape_debug()
            )));
        }
        for inner in &roots {
            if let Some(outer) = roots.iter().find(|outer| {
                inner
                    .source_full_path
                    .strip_prefix(&outer.source_full_path)
                    .is_some_and(|rest| rest.starts_with('/'))
            }) {
                return Err(BundleError::NotReplayable(format!(
                    "`{}` is a top-level entity of the bundle but lies inside `{}`, which the bundle also holds, so it would be loaded twice",
                    inner.source_full_path, outer.source_full_path
                )));
            }
        }
        Ok(roots)
    }

    /// The entities the export was asked for (no parent in the bundle).
    pub fn roots(&self) -> Vec<&ManifestEntity> {
        self.entities
            .iter()
            .filter(|e| e.parent.is_none())
            .collect()
    }

    pub fn children(&self, parent: &str) -> Vec<&ManifestEntity> {
        self.entities
            .iter()
            .filter(|e| e.parent.as_deref() == Some(parent))
            .collect()
    }
}
