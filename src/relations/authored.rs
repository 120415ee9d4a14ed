//! Records that carry someone's text (epics and their notes today; issues, merge requests and their
//! notes next): who writes each one at a destination, and how one written before (by a killed run, a
//! lost answer, or a retry) is found again, whichever way it was written.
//!
//! A text is written by its mapped author (GitLab's `Sudo`) when the destination token is an
//! administrator's; otherwise, or when GitLab refuses that author there (they cannot see the group or
//! change the record), by the importing user, with the author named in the text ("*By Name on date
//! (imported from GitLab)*"), as GitLab does for unmapped users. Its upload links may have been
//! rewritten to the destination's copies. So at a destination the text is in one of two forms: as the
//! author wrote it, by the user the author maps to; or named, by the importing user. [`Authored::is`]
//! recognises both, upload secrets masked, and [`create_authored`] is the one way such a record is
//! created: looked up first when in doubt, written as the author, written named when that is refused.

use super::uploads::{Files, masked};
use super::{LoadError, create_once_keyed, text};
use crate::forge::{ForgeError, GitLab};
use crate::user_map::attribution;
use serde_json::Value;
use std::future::Future;

/// A text and the ways it can be written at a destination.
#[derive(Debug, Clone)]
pub(crate) struct Authored {
    /// The text as its author wrote it.
    original: String,
    /// The text with its author named, as the importing user writes it for them.
    named: String,
    /// Who writes it first: the mapped author through `Sudo`, or None for the importing user.
    sudo: Option<String>,
    /// Whether it is first written as the author wrote it (by the author, or by the importing user
    /// when the author maps to them); else named.
    as_is: bool,
    /// The destination username the author maps to.
    mapped: Option<String>,
}

impl Authored {
    /// How `body`, written by the source user `author` at `created_at`, is written at `dest`.
    pub(crate) async fn of(
        dest: &GitLab,
        body: &str,
        author: &Value,
        created_at: &str,
    ) -> Result<Authored, LoadError> {
        let importer = dest.current_user().await?;
        let importer_id = importer.get("id").and_then(Value::as_u64);
        let admin = importer.get("is_admin").and_then(Value::as_bool) == Some(true);
        let mapped = dest.map_user(author).await?;
        let (sudo, as_is) = match &mapped {
            Some(m) if Some(m.id) == importer_id => (None, true),
            Some(m) if admin => (Some(m.username.clone()), true),
            _ => (None, false),
        };
        Ok(Authored {
            original: body.to_string(),
            named: named(body, author, created_at),
            sudo,
            as_is,
            mapped: mapped.map(|m| m.username),
        })
    }

    /// The text as it is first written.
    pub(crate) fn text(&self) -> &str {
        if self.as_is {
            &self.original
        } else {
            &self.named
        }
    }

    /// The user the text is first written as (`Sudo`); None: the importing user.
    pub(crate) fn sudo(&self) -> Option<&str> {
        self.sudo.as_deref()
    }

    /// Whether `found`, a text at the destination written by the user named `by`, is this text in any
    /// form it can have been written in: as the author wrote it, by the user the author maps to; or
    /// named by the importing user (by whoever imported it). Upload links may point anywhere.
    pub(crate) fn is(&self, found: &str, by: &str) -> bool {
        let found = masked(found);
        found == masked(&self.named)
            || (found == masked(&self.original) && self.mapped.as_deref() == Some(by))
    }
}

/// The user a source user's action is made as at `dest` (`Sudo`), or None for the importing user:
/// the same rules as for texts.
pub(crate) async fn acting_as(dest: &GitLab, user: &Value) -> Result<Option<String>, LoadError> {
    Ok(Authored::of(dest, "", user, "").await?.sudo)
}

/// `body` with its author named, for a text the importing user writes on the author's behalf.
fn named(body: &str, author: &Value, created_at: &str) -> String {
    let name = match text(author, "name") {
        "" => text(author, "username"),
        n => n,
    };
    attribution(body, name, created_at)
}

/// A write as the author (`Sudo`) that GitLab refused because the author cannot see the group (or
/// change the record) there: the importing user makes it instead.
pub(crate) fn refused(e: &LoadError) -> bool {
    e.message.starts_with("403") || e.message.starts_with("404")
}

/// Creates the record that carries `authored` in its `field` (a POST of `body` to `path`), never
/// twice. `listed` reads the destination's records that may be this one (an epic's: those of its
/// title); the first whose text and author [`Authored::is`] this one, and whose key (picked by `key`)
/// is not in `taken`, is it. When `in_doubt` it is looked up before anything is written; then it is
/// written as the author, its upload links moved to the destination's copies of `files`, and named by
/// the importing user when GitLab refuses the author. Returns the record's key.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_authored<L, LFut>(
    dest: &GitLab,
    path: &str,
    mut body: Value,
    field: &str,
    authored: &Authored,
    in_doubt: bool,
    listed: L,
    key: fn(&Value) -> Option<u64>,
    taken: &[u64],
    files: &mut Files<'_>,
) -> Result<u64, LoadError>
where
    L: Fn() -> LFut,
    LFut: Future<Output = Result<Vec<Value>, ForgeError>>,
{
    let find = || async {
        Ok(listed()
            .await?
            .iter()
            .filter(|r| authored.is(text(r, field), text(&r["author"], "username")))
            .filter_map(key)
            .find(|k| !taken.contains(k)))
    };
    if in_doubt && let Some(found) = find().await? {
        return Ok(found);
    }
    body[field] = Value::String(files.rewrite(dest, authored.text()).await?);
    let by = authored.sudo();
    match create_once_keyed(dest, path, &body, false, find, key, by).await {
        Err(e) if by.is_some() && refused(&e) => {
            body[field] = Value::String(files.rewrite(dest, &authored.named).await?);
            create_once_keyed(dest, path, &body, false, find, key, None).await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authored(sudo: Option<&str>, as_is: bool, mapped: Option<&str>) -> Authored {
        let author = serde_json::json!({ "username": "bjorn", "name": "Björn" });
        let original = "See ![x](/uploads/0123456789abcdef0123456789abcdef/x.png)";
        Authored {
            original: original.into(),
            named: named(original, &author, "2024-01-02T03:04:05Z"),
            sudo: sudo.map(str::to_string),
            as_is,
            mapped: mapped.map(str::to_string),
        }
    }

    #[test]
    fn a_text_is_found_whichever_way_it_was_written() {
        // An administrator's token: written as bjorn, or named by the importer when refused.
        let a = authored(Some("bjorn"), true, Some("bjorn"));
        let moved = "See ![x](/uploads/fedcba9876543210fedcba9876543210/x.png)";
        assert!(a.is(moved, "bjorn"), "as the author, links rewritten");
        let named_moved = named(moved, &serde_json::json!({ "name": "Björn" }), "2024-01-02");
        assert!(a.is(&named_moved, "root"), "named by the importer");
        assert!(
            !a.is(moved, "ada"),
            "the same words by someone else are another record"
        );
        assert!(!a.is("See nothing", "bjorn"));
        // An owner's token: named by the importer from the start.
        let o = authored(None, false, Some("bjorn"));
        assert_eq!(o.text(), o.named);
        assert!(o.is(&named_moved, "ada"));
    }
}
