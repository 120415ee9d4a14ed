//! A live GitLab source read through its REST list endpoints, one page at a time.

use super::{ExtractedPage, Source};
use crate::forge::{ForgeError, GitLab};
use crate::relations::{EntityContext, Extraction, Relation};
use async_trait::async_trait;
use serde_json::Value;

pub struct LiveSource {
    pub gitlab: GitLab,
}

#[async_trait]
impl Source for LiveSource {
    fn via(&self) -> &'static str {
        "rest"
    }

    fn url(&self) -> String {
        crate::forge::base_string(self.gitlab.client.base())
    }

    async fn extract(
        &self,
        relation: &dyn Relation,
        ctx: &EntityContext,
        cursor: Option<&str>,
    ) -> Result<ExtractedPage, ForgeError> {
        match relation.extraction(ctx) {
            Extraction::Single { path } => {
                let mut record = relation.transform(self.gitlab.client.get(&path, &[]).await?);
                relation.enrich(&self.gitlab, ctx, &mut record).await?;
                Ok(ExtractedPage {
                    records: vec![record],
                    next: None,
                    total: Some(1),
                })
            }
            Extraction::List { path, query } => {
                let page = self.gitlab.client.list_page(&path, &query, cursor).await?;
                let mut records = Vec::with_capacity(page.items.len());
                for item in page.items {
                    let mut record = relation.transform(item);
                    relation.enrich(&self.gitlab, ctx, &mut record).await?;
                    records.push(record);
                }
                Ok(ExtractedPage {
                    records,
                    next: page.next,
                    total: page.total,
                })
            }
        }
    }

    async fn subgroups(&self, ctx: &EntityContext) -> Result<Vec<Value>, ForgeError> {
        self.gitlab
            .list_all(
                &format!("groups/{}/subgroups", ctx.source_id()),
                &[("all_available", "true".into())],
            )
            .await
    }
}
