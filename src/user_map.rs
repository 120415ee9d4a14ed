//! User mapping: which destination user a source user's memberships and contributions belong to.
//! An explicit map (CSV: source username or email -> destination username) wins; otherwise a source user
//! with a public email maps to the destination user with that confirmed email, as GitLab's direct
//! transfer does. A user who maps to nobody is never guessed: memberships are skipped and reported, and
//! contributions are attributed to the importing user with the original author named in the text.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One line of an explicit user map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMapping {
    /// A source username or email.
    pub source: String,
    /// A destination username.
    pub destination: String,
}

/// The explicit part of user mapping, keyed case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserMap {
    by_source: BTreeMap<String, String>,
}

impl UserMap {
    pub fn new(mappings: &[UserMapping]) -> UserMap {
        UserMap {
            by_source: mappings
                .iter()
                .map(|m| {
                    (
                        m.source.trim().to_lowercase(),
                        m.destination.trim().to_string(),
                    )
                })
                .collect(),
        }
    }

    /// Parses `source,destination` lines. Blank lines, `#` comments and a `source,destination` header
    /// are ignored; any other malformed line is an error naming its line number.
    pub fn parse_csv(text: &str) -> Result<Vec<UserMapping>, String> {
        let mut out = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line
                .split(',')
                .map(|f| f.trim().trim_matches('"').trim())
                .collect();
            match fields.as_slice() {
                [s, d]
                    if s.eq_ignore_ascii_case("source")
                        && d.eq_ignore_ascii_case("destination") => {}
                [s, d] if !s.is_empty() && !d.is_empty() => out.push(UserMapping {
                    source: s.to_string(),
                    destination: d.trim_start_matches('@').to_string(),
                }),
                _ => {
                    return Err(format!(
                        "user map line {}: expected `source username or email,destination username`, got `{line}`",
                        i + 1
                    ));
                }
            }
        }
        Ok(out)
    }

    /// A user map to complete: a `source,destination` line per user (each once, sorted, the
    /// destination left empty for a person to fill in), as `--user-map` and `user_map` read it back
    /// once completed.
    pub fn to_complete<'a>(users: impl IntoIterator<Item = &'a str>) -> String {
        let users: std::collections::BTreeSet<&str> =
            users.into_iter().filter(|u| !u.is_empty()).collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        for user in users {
            // A Vec never fails to take bytes.
            let _ = w.write_record([user, ""]);
        }
        String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// The destination username for a source user, by username first, then by email.
    pub fn lookup(&self, username: &str, email: Option<&str>) -> Option<&str> {
        self.by_source
            .get(&username.to_lowercase())
            .or_else(|| email.and_then(|e| self.by_source.get(&e.to_lowercase())))
            .map(String::as_str)
    }
}

/// How GitLab names an author it could not map, appended to the imported text.
pub fn attribution(text: &str, author_name: &str, created_at: &str) -> String {
    let date = created_at.get(..10).unwrap_or(created_at);
    if text.is_empty() {
        format!("*By {author_name} on {date} (imported from GitLab)*")
    } else {
        format!("{text}\n\n*By {author_name} on {date} (imported from GitLab)*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_maps_usernames_and_emails_case_insensitively() {
        let m = UserMap::parse_csv(
            "source,destination\n# comment\nAda,ada.l\nbjorn@example.com, @bjorn\n\n",
        )
        .unwrap();
        let map = UserMap::new(&m);
        assert_eq!(map.lookup("ada", None), Some("ada.l"));
        assert_eq!(
            map.lookup("someone", Some("BJORN@example.com")),
            Some("bjorn")
        );
        assert_eq!(map.lookup("nobody", Some("nobody@example.com")), None);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let err = UserMap::parse_csv("ada,ada\njust-one-field\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unmapped_authors_are_named_in_the_text() {
        assert_eq!(
            attribution("Body", "Eve Quiet", "2024-03-01T10:00:00.000Z"),
            "Body\n\n*By Eve Quiet on 2024-03-01 (imported from GitLab)*"
        );
    }
}
