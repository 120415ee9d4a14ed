//! The GitLab REST calls the appliance makes, named as GitLab names them.

use super::{ForgeClient, ForgeError};
use serde_json::Value;

/// A GitLab instance reached through one client.
#[derive(Clone)]
pub struct GitLab {
    pub client: ForgeClient,
}

/// Encodes a full path (`a/b`) for use as `:id` in a URL (`a%2Fb`).
pub fn encode_path(full_path: &str) -> String {
    percent_encoding::utf8_percent_encode(full_path, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl GitLab {
    pub fn new(client: ForgeClient) -> GitLab {
        GitLab { client }
    }

    /// `GET /version`: proves the instance answers and the token is accepted.
    pub async fn version(&self) -> Result<String, ForgeError> {
        let v = self.client.get("version", &[]).await?;
        Ok(v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }

    /// A group by id or full path; None when it does not exist or the token cannot see it.
    pub async fn group(&self, id_or_path: &str) -> Result<Option<Value>, ForgeError> {
        match self
            .client
            .get(&format!("groups/{}", encode_path(id_or_path)), &[])
            .await
        {
            Ok(g) => Ok(Some(g)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every page of a list endpoint, collected. For small lookups only; pipelines page themselves.
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ForgeError> {
        let mut out = Vec::new();
        let mut page = self.client.list_page(path, query, None).await?;
        loop {
            out.append(&mut page.items);
            match page.next.take() {
                Some(next) => page = self.client.list_page(path, query, Some(&next)).await?,
                None => return Ok(out),
            }
        }
    }
}

/// The numeric `id` of a GitLab record.
pub fn id_of(v: &Value) -> Option<u64> {
    v.get("id").and_then(Value::as_u64)
}
