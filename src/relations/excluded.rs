//! What a migration leaves out on purpose, per kind of entity, and why: the items GitLab's own direct
//! transfer excludes (`shared/spec/direct-transfer-migrated-items.md`, "Excluded items"), and the
//! items this appliance does not migrate yet. Reports, the API (each entity's `excluded` extension
//! field) and the web page name every one of them, so nothing is left out silently.
//!
//! These are kinds of items, not records: nothing is read from the source to list them (counting
//! them would cost requests, and for secrets such as CI/CD variables, rights a migration token
//! need not have).

use crate::model::EntityType;
use serde::Serialize;

/// Why an item is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// It might hold secrets; GitLab's direct transfer leaves it out too.
    Sensitive,
    /// GitLab's import cannot restore it; GitLab's direct transfer leaves it out too.
    Unsupported,
    /// The source holds nothing a destination could restore.
    Unrecoverable,
    /// Groups load through the destination's API, which cannot create it.
    NoApi,
    /// GitLab's direct transfer migrates it, this appliance does not yet.
    NotYet,
}

impl Why {
    /// The reason in words, for reports and the page.
    pub fn says(self) -> &'static str {
        match self {
            Why::Sensitive => {
                "they might hold secrets; GitLab's direct transfer leaves them out too"
            }
            Why::Unsupported => {
                "GitLab's import cannot restore them; GitLab's direct transfer leaves them out too"
            }
            Why::Unrecoverable => "the source holds no data to restore them from",
            Why::NoApi => "GitLab's API, through which groups load, cannot create them",
            Why::NotYet => {
                "GitLab's direct transfer migrates them, this version of the appliance does not yet: \
                 move them by hand"
            }
        }
    }
}

/// One kind of item left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub item: &'static str,
    pub why: Why,
}

const fn x(item: &'static str, why: Why) -> Excluded {
    Excluded { item, why }
}

const GROUP: &[Excluded] = &[
    x("CI/CD variables", Why::Sensitive),
    x("Deploy tokens", Why::Sensitive),
    x("Webhooks", Why::Sensitive),
    x("Custom fields", Why::Unsupported),
    x("Pending member invitations", Why::Unsupported),
    x("Push rules", Why::Unsupported),
    x("Epic system notes", Why::NoApi),
    x("Epic boards and their lists", Why::NotYet),
    x("Group wiki", Why::NotYet),
];

const PROJECT: &[Excluded] = &[
    x("CI/CD job logs", Why::Sensitive),
    x("CI/CD variables", Why::Sensitive),
    x("Container registry images", Why::Sensitive),
    x("Deploy keys", Why::Sensitive),
    x("Deploy tokens", Why::Sensitive),
    x("Encrypted tokens", Why::Sensitive),
    x("Job artifacts", Why::Sensitive),
    x("Pipeline schedule variables", Why::Sensitive),
    x("Pipeline triggers", Why::Sensitive),
    x("Webhooks", Why::Sensitive),
    x("Agents", Why::Unsupported),
    x("Container registry", Why::Unsupported),
    x("Custom fields", Why::Unsupported),
    x("Environments", Why::Unsupported),
    x("Feature flags", Why::Unsupported),
    x("Infrastructure registry", Why::Unsupported),
    x("Linked issues", Why::Unsupported),
    x("Merge request approval rules", Why::Unsupported),
    x("Merge request dependencies", Why::Unsupported),
    x("Package registry", Why::Unsupported),
    x("Pages domains", Why::Unsupported),
    x("Pending member invitations", Why::Unsupported),
    x("Remote mirrors", Why::Unsupported),
    x("Wiki comments", Why::Unsupported),
    x(
        "Merge requests with no diff or source information",
        Why::Unrecoverable,
    ),
    x("Designs and their repository", Why::NotYet),
];

/// `items` grouped by why they are left out, in the order first seen: (why, item names).
pub fn by_reason(items: &[Excluded]) -> Vec<(Why, Vec<&'static str>)> {
    let mut out: Vec<(Why, Vec<&'static str>)> = Vec::new();
    for x in items {
        match out.iter_mut().find(|(why, _)| *why == x.why) {
            Some((_, names)) => names.push(x.item),
            None => out.push((x.why, vec![x.item])),
        }
    }
    out
}

/// What a migration of an entity of this kind leaves out.
pub fn of(kind: EntityType) -> &'static [Excluded] {
    match kind {
        EntityType::Group => GROUP,
        EntityType::Project => PROJECT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items GitLab's direct transfer leaves out that the appliance migrates: a cadence's automatic
    /// scheduling, duration, iterations in advance and roll over (`cadence_schedules`).
    const MIGRATED_BEYOND_GITLAB: &[&str] = &["Iteration cadence settings"];

    /// Every item GitLab's documentation lists as excluded is named, for groups and for projects.
    #[test]
    fn every_item_gitlabs_documentation_excludes_is_named() {
        let spec = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/spec/direct-transfer-migrated-items.md"
        ));
        let Ok(spec) = spec else {
            panic!("the specification is beside the project (../shared/spec)");
        };
        let mut sections = spec.split("### Excluded items").skip(1);
        for kind in [EntityType::Group, EntityType::Project] {
            let section = sections.next().expect("an excluded-items section per kind");
            let section = section.split("\n## ").next().unwrap_or(section);
            let named: Vec<&str> = of(kind).iter().map(|e| e.item).collect();
            for line in section.lines() {
                let Some(item) = line.trim_start().strip_prefix("- ") else {
                    continue;
                };
                // Headings of the list ("Might contain sensitive information:") and notes aside.
                if item.ends_with(':') || !line.starts_with("  ") {
                    continue;
                }
                let item = item.split(" (").next().unwrap_or(item).trim();
                // One entry of GitLab's list is about migrating to GitLab.com only.
                if item.starts_with("Instance administrators") {
                    continue;
                }
                if MIGRATED_BEYOND_GITLAB.contains(&item) {
                    continue;
                }
                assert!(
                    named.contains(&item),
                    "{kind:?}: GitLab excludes `{item}`, which the appliance does not name"
                );
            }
        }
    }

    #[test]
    fn no_item_is_named_twice() {
        for kind in [EntityType::Group, EntityType::Project] {
            let items = of(kind);
            for (i, a) in items.iter().enumerate() {
                assert!(
                    items[i + 1..].iter().all(|b| b.item != a.item),
                    "{}",
                    a.item
                );
            }
        }
    }
}
