//! Files referenced from markdown (`/uploads/<secret>/<file name>`, as GitLab stores them in
//! descriptions and notes). A live source's files are read into the record itself, so they travel
//! in bundles too; at a live destination each is uploaded to the group again and the markdown is
//! rewritten to its new address. Files over `MAX_UPLOAD`, or gone from the source, stay as links and
//! are named in the record (`omitted`).

use super::LoadError;
use crate::forge::{ForgeError, GitLab};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The largest file carried inside a record.
pub const MAX_UPLOAD: usize = 25 * 1024 * 1024;

/// The upload links in `text`, in order, without duplicates.
pub fn links(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("/uploads/") {
        let tail = &rest[at + "/uploads/".len()..];
        let secret: String = tail.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        let after = &tail[secret.len()..];
        if secret.len() >= 16
            && let Some(name_part) = after.strip_prefix('/')
        {
            let name: String = name_part
                .chars()
                .take_while(|c| {
                    !matches!(c, ')' | ']' | '"' | '\'' | '<' | '>') && !c.is_whitespace()
                })
                .collect();
            if !name.is_empty() {
                let link = format!("/uploads/{secret}/{name}");
                if !out.contains(&link) {
                    out.push(link);
                }
            }
        }
        rest = &rest[at + 1..];
    }
    out
}

/// `text` with every upload secret replaced by `*`: the same text before and after its links moved.
pub fn masked(text: &str) -> String {
    links(text).iter().fold(text.to_string(), |t, link| {
        let name = link.rsplit('/').next().unwrap_or("");
        t.replace(link, &format!("/uploads/*/{name}"))
    })
}

/// Reads the files `texts` link to from the group `group` (a source id) of a live source.
pub async fn collect(
    source: &GitLab,
    group: &str,
    texts: &[&str],
) -> Result<Vec<Value>, ForgeError> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for link in texts.iter().flat_map(|t| links(t)) {
        if seen.contains(&link) {
            continue;
        }
        seen.push(link.clone());
        let filename = link.rsplit('/').next().unwrap_or("file").to_string();
        match source
            .client
            .get_bytes(&format!("groups/{group}{link}"), MAX_UPLOAD)
            .await
        {
            Ok(bytes) => out.push(json!({
                "path": link,
                "filename": filename,
                "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(&bytes)),
                "content": base64::engine::general_purpose::STANDARD.encode(&bytes),
            })),
            Err(e @ ForgeError::Decode { .. }) => {
                out.push(json!({ "path": link, "filename": filename, "omitted": e.to_string() }))
            }
            Err(e) if e.status() == Some(404) => out.push(json!({
                "path": link, "filename": filename, "omitted": "the file is gone from the source",
            })),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The bytes of a carried file (`content`, base64), checked against its `sha256`; None when the file
/// was not carried (`omitted`).
pub fn carried_bytes(file: &Value, what: &str) -> Result<Option<Vec<u8>>, LoadError> {
    let Some(content) = file.get("content").and_then(Value::as_str) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|e| LoadError::internal(format!("the carried {what} is not base64: {e}")))?;
    if file.get("sha256").and_then(Value::as_str) != Some(&hex::encode(Sha256::digest(&bytes))) {
        return Err(LoadError::internal(format!(
            "the carried {what} does not match its sha256"
        )));
    }
    Ok(Some(bytes))
}

/// Uploads the carried files into the destination group `group`; returns (old link, new link) pairs.
pub async fn place(
    dest: &GitLab,
    group: u64,
    uploads: &[Value],
) -> Result<Vec<(String, String)>, LoadError> {
    let mut moves = Vec::new();
    for u in uploads {
        let Some(path) = u["path"].as_str() else {
            continue;
        };
        let Some(bytes) = carried_bytes(u, &format!("file {path}"))? else {
            continue;
        };
        let filename = u["filename"].as_str().unwrap_or("file");
        let placed = dest
            .client
            .post_file(&format!("groups/{group}/uploads"), filename, bytes)
            .await?;
        if let Some(url) = placed.get("url").and_then(Value::as_str) {
            moves.push((path.to_string(), url.to_string()));
        }
    }
    Ok(moves)
}

/// `text` with each old link replaced by its new one.
pub fn rewrite(text: &str, moves: &[(String, String)]) -> String {
    moves
        .iter()
        .fold(text.to_string(), |t, (old, new)| t.replace(old, new))
}

/// The files a record's texts link to (its carried `uploads`), uploaded to the destination group the
/// first time a text needs them.
pub(crate) struct Files<'a> {
    group: u64,
    carried: &'a [Value],
    moves: Option<Vec<(String, String)>>,
}

impl<'a> Files<'a> {
    pub(crate) fn new(group: u64, record: &'a Value) -> Files<'a> {
        let carried = record["uploads"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Files {
            group,
            carried,
            moves: None,
        }
    }

    /// `text` with its upload links pointing at the destination's copies.
    pub(crate) async fn rewrite(&mut self, dest: &GitLab, text: &str) -> Result<String, LoadError> {
        if links(text).is_empty() {
            return Ok(text.to_string());
        }
        if self.moves.is_none() {
            self.moves = Some(place(dest, self.group, self.carried).await?);
        }
        Ok(rewrite(text, self.moves.as_deref().unwrap_or(&[])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_in_markdown_and_html() {
        let text = "See ![roadmap](/uploads/0123456789abcdef0123456789abcdef/road%20map.png) and \
                    <a href=\"/uploads/fedcba9876543210fedcba9876543210/log.txt\">log</a>, again \
                    ![roadmap](/uploads/0123456789abcdef0123456789abcdef/road%20map.png); not /uploads/xyz/a.png";
        assert_eq!(
            links(text),
            vec![
                "/uploads/0123456789abcdef0123456789abcdef/road%20map.png",
                "/uploads/fedcba9876543210fedcba9876543210/log.txt"
            ]
        );
    }

    #[test]
    fn rewritten_text_masks_to_the_original() {
        let old = "![a](/uploads/0123456789abcdef0123456789abcdef/a.png)";
        let moves = vec![(
            "/uploads/0123456789abcdef0123456789abcdef/a.png".to_string(),
            "/uploads/ffffffffffffffffffffffffffffffff/a.png".to_string(),
        )];
        let new = rewrite(old, &moves);
        assert_ne!(old, new);
        assert_eq!(masked(old), masked(&new));
    }
}
