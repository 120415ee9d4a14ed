//! A live GitLab destination: each relation loads its records through the destination's REST API.

use super::{CreatedProject, ProjectPackage, Sink};
use crate::forge::GitLab;
use crate::relations::{EntityContext, LoadError, Relation};
use async_trait::async_trait;
use serde_json::Value;

pub struct LiveSink {
    pub gitlab: GitLab,
    /// The visibility ceiling of each destination group a project was created in, read once.
    ceilings: super::project_import::Ceilings,
}

impl LiveSink {
    pub fn new(gitlab: GitLab) -> LiveSink {
        LiveSink {
            gitlab,
            ceilings: Default::default(),
        }
    }
}

#[async_trait]
impl Sink for LiveSink {
    fn identity(&self) -> String {
        crate::forge::base_string(self.gitlab.client.base())
    }

    async fn load(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        record: &Value,
        in_doubt: bool,
    ) -> Result<u64, LoadError> {
        relation.load(&self.gitlab, ctx, record, in_doubt).await
    }

    async fn load_batch(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        records: &[Value],
        in_doubt: bool,
    ) -> Result<Vec<Result<u64, LoadError>>, LoadError> {
        // Only relations that load in batches are given a page at once (the pipeline's rule).
        relation
            .load_batch(&self.gitlab, ctx, records, in_doubt)
            .await
    }

    async fn count(&self, path: &str) -> Result<Option<u64>, LoadError> {
        Ok(self.gitlab.count(path, &[]).await?)
    }

    async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Vec<Value>>, LoadError> {
        Ok(Some(self.gitlab.list_all(path, query).await?))
    }

    fn reads_back_archive_relations(&self) -> bool {
        true
    }

    async fn arrived(
        &self,
        relation: &dyn Relation,
        project: u64,
        records: &[Value],
        why: Option<String>,
    ) -> Result<Option<Vec<Result<u64, LoadError>>>, LoadError> {
        relation.arrived(&self.gitlab, project, records, why).await
    }

    async fn lfs_present(
        &self,
        project_full_path: &str,
        objects: &[(String, u64)],
    ) -> Result<Option<u64>, LoadError> {
        let client = &self.gitlab.client;
        let url = format!(
            "{}/{project_full_path}.git",
            crate::forge::base_string(client.base())
        );
        let url = url::Url::parse(&url)
            .map_err(|e| LoadError::from(crate::forge::ForgeError::Url(e.to_string())))?;
        Ok(Some(
            crate::forge::lfs::present(client, &url, objects).await?,
        ))
    }

    async fn designs(
        &self,
        project_full_path: &str,
        iids: &[u64],
    ) -> Result<Option<std::collections::BTreeMap<u64, Vec<String>>>, LoadError> {
        super::project_import::designs(&self.gitlab, project_full_path, iids)
            .await
            .map(Some)
    }

    async fn map_project_members(&self, staged: &std::path::Path) -> Result<(), LoadError> {
        super::project_import::map_members(&self.gitlab, staged).await
    }

    async fn create_project(
        &self,
        ctx: &EntityContext,
        package: &ProjectPackage,
        in_doubt: bool,
    ) -> Result<CreatedProject, LoadError> {
        super::project_import::create(&self.gitlab, &self.ceilings, ctx, package, in_doubt).await
    }
}
