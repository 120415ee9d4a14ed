//! Replay: records come from a bundle instead of a live source. `open` verifies the whole bundle before
//! the engine runs anything, so a damaged bundle is refused before the destination sees a request.
//! Batches are read one at a time through the bundle's index, so memory stays bounded by one batch.

use super::{ExtractedPage, Source};
use crate::bundle::{Bundle, BundleError, verify};
use crate::forge::ForgeError;
use crate::relations::{EntityContext, Relation};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

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
        let bundle = tokio::task::spawn_blocking(move || -> Result<Bundle, BundleError> {
            let bundle = Bundle::open(&paths)?;
            if let Some(problem) = verify(&bundle, None).into_iter().next() {
                return Err(problem);
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
            if relation.name() == "group" {
                return Err(self.error(format!(
                    "the bundle holds no record of group `{entity}`: its export did not finish"
                )));
            }
            return Ok(ExtractedPage {
                records: Vec::new(),
                next: None,
                total: Some(0),
            });
        };
        let index: usize = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| self.error(format!("`{c}` is not a batch number")))?,
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
        let records = tokio::task::spawn_blocking(move || bundle.records(&member))
            .await
            .map_err(|e| self.error(e.to_string()))?
            .map_err(|e| self.error(e.to_string()))?;
        Ok(ExtractedPage {
            records,
            next: (index + 1 < batches.len()).then(|| (index + 1).to_string()),
            total: Some(total),
        })
    }

    async fn subgroups(&self, ctx: &EntityContext) -> Result<Vec<Value>, ForgeError> {
        Ok(self
            .bundle
            .manifest
            .children(&ctx.entity.source_full_path)
            .into_iter()
            .filter(|e| e.status == "finished")
            .map(|e| json!({ "id": e.id, "full_path": e.source_full_path, "path": e.path }))
            .collect())
    }
}
