//! The GitLab REST calls the appliance makes, named as GitLab names them.

use super::{ForgeClient, ForgeError};
use crate::user_map::UserMap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// A GitLab instance reached through one client, with a cache of the users it was asked about.
#[derive(Clone)]
pub struct GitLab {
    pub client: ForgeClient,
    directory: Arc<Directory>,
}

/// A destination user a source user maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedUser {
    pub id: u64,
    pub username: String,
}

#[derive(Default)]
struct Directory {
    explicit: UserMap,
    users: Mutex<HashMap<u64, Value>>,
    mapped: Mutex<HashMap<String, Option<MappedUser>>>,
    current: tokio::sync::OnceCell<Value>,
    import_settings: tokio::sync::OnceCell<Option<ImportSettings>>,
}

/// What an instance's settings say about importing GitLab export archives (`GET /application/settings`,
/// which only an administrator's token may read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSettings {
    /// `import_sources` holds `gitlab_project`.
    pub accepts_gitlab_exports: bool,
    /// `max_import_size`, MiB; None when unlimited (0).
    pub max_import_mib: Option<u64>,
}

/// Where an administrator changes the import settings, for messages.
pub const IMPORT_SETTINGS_PLACE: &str =
    "Admin area > Settings > General > Import and export settings";

/// Encodes a full path (`a/b`) for use as `:id` in a URL (`a%2Fb`).
pub fn encode_path(full_path: &str) -> String {
    percent_encoding::utf8_percent_encode(full_path, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl GitLab {
    pub fn new(client: ForgeClient) -> GitLab {
        GitLab {
            client,
            directory: Arc::default(),
        }
    }

    /// The same instance, mapping users through `map` before it looks for matching emails.
    pub fn with_user_map(&self, map: UserMap) -> GitLab {
        GitLab {
            client: self.client.clone(),
            directory: Arc::new(Directory {
                explicit: map,
                ..Default::default()
            }),
        }
    }

    /// `GET /users/:id`, asked once per user.
    pub async fn user(&self, id: u64) -> Result<Value, ForgeError> {
        if let Some(u) = self.directory.users.lock().await.get(&id) {
            return Ok(u.clone());
        }
        let u = self.client.get(&format!("users/{id}"), &[]).await?;
        self.directory.users.lock().await.insert(id, u.clone());
        Ok(u)
    }

    /// `GET /user`: the user whose token this is (the importing user on a destination).
    pub async fn current_user(&self) -> Result<Value, ForgeError> {
        self.directory
            .current
            .get_or_try_init(|| self.client.get("user", &[]))
            .await
            .cloned()
    }

    /// The destination user a source user (a record's `{username, public_email}`) maps to: by the
    /// explicit map, else by a destination user whose email equals the source user's public email.
    pub async fn map_user(&self, source_user: &Value) -> Result<Option<MappedUser>, ForgeError> {
        let (username, email) = identity(source_user);
        let key = format!(
            "{}|{}",
            username.to_lowercase(),
            email.unwrap_or("").to_lowercase()
        );
        if let Some(hit) = self.directory.mapped.lock().await.get(&key) {
            return Ok(hit.clone());
        }
        let found = match self.directory.explicit.lookup(username, email) {
            Some(dest) => {
                let users = self
                    .client
                    .get("users", &[("username", dest.to_string())])
                    .await?;
                first_user(&users, |u| text(u, "username").eq_ignore_ascii_case(dest))
            }
            None => match email {
                Some(email) => {
                    let users = self
                        .client
                        .get("users", &[("search", email.to_string())])
                        .await?;
                    first_user(&users, |u| {
                        text(u, "email").eq_ignore_ascii_case(email)
                            || text(u, "public_email").eq_ignore_ascii_case(email)
                    })
                }
                None => None,
            },
        };
        self.directory
            .mapped
            .lock()
            .await
            .insert(key, found.clone());
        Ok(found)
    }

    /// The email GitLab's project import would map a source user to the destination user an explicit
    /// user map names (the destination user's email, which an administrator's token sees, else their
    /// public email). None when the map does not name the user, or the named user has no email the
    /// token can see.
    pub async fn explicitly_mapped_email(
        &self,
        source_user: &Value,
    ) -> Result<Option<String>, ForgeError> {
        let (username, email) = identity(source_user);
        let Some(dest) = self.directory.explicit.lookup(username, email) else {
            return Ok(None);
        };
        let users = self
            .client
            .get("users", &[("username", dest.to_string())])
            .await?;
        Ok(users
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| text(u, "username").eq_ignore_ascii_case(dest))
            .and_then(|u| {
                [text(u, "email"), text(u, "public_email")]
                    .into_iter()
                    .find(|e| !e.is_empty())
                    .map(str::to_string)
            }))
    }

    /// The instance's import settings, asked once; None when the token may not read them (not an
    /// administrator's): then the import itself says what it refuses.
    pub async fn import_settings(&self) -> Result<Option<ImportSettings>, ForgeError> {
        self.directory
            .import_settings
            .get_or_try_init(|| async {
                match self.client.get("application/settings", &[]).await {
                    Ok(v) => Ok(Some(ImportSettings {
                        accepts_gitlab_exports: v
                            .get("import_sources")
                            .and_then(Value::as_array)
                            .is_none_or(|s| s.iter().any(|x| x == "gitlab_project")),
                        max_import_mib: v
                            .get("max_import_size")
                            .and_then(Value::as_u64)
                            .filter(|m| *m > 0),
                    })),
                    Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
            .cloned()
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
        self.find(&format!("groups/{}", encode_path(id_or_path)))
            .await
    }

    /// The project at `id_or_path`, if there is one.
    pub async fn project(&self, id_or_path: &str) -> Result<Option<Value>, ForgeError> {
        self.find(&format!("projects/{}", encode_path(id_or_path)))
            .await
    }

    /// A single record, or None when the forge answers 404.
    async fn find(&self, path: &str) -> Result<Option<Value>, ForgeError> {
        match self.client.get(path, &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// How many records a list holds, from one request of one record: its `X-Total` header, else
    /// the length of a list that fits one page; None when GitLab does not say (it leaves `X-Total`
    /// out of lists over 10,000 records).
    pub async fn count(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<u64>, ForgeError> {
        let mut q = query.to_vec();
        q.push(("per_page", "1".into()));
        let page = self.client.list_page(path, &q, None).await?;
        Ok(page
            .total
            .or_else(|| page.next.is_none().then_some(page.items.len() as u64)))
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

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// A source user record's username and public email (when it shows one): what maps them.
fn identity(source_user: &Value) -> (&str, Option<&str>) {
    let username = source_user
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or("");
    let email = source_user
        .get("public_email")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty());
    (username, email)
}

fn first_user(users: &Value, matches: impl Fn(&Value) -> bool) -> Option<MappedUser> {
    users.as_array()?.iter().find(|u| matches(u)).and_then(|u| {
        Some(MappedUser {
            id: id_of(u)?,
            username: text(u, "username").to_string(),
        })
    })
}
