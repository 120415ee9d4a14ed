//! The page's parts as HTML, from what the store holds (rendered through the API's own bodies,
//! `api::render`, so the page and `GET /bulk_imports/:id/entities` say the same). Pure functions:
//! no store, no request.

use super::bundles::{OnDisk, Verdict};
use super::html::{esc, record_link, size, time};
use crate::api::render::{BulkImportBody, EntityBody, FailureBody};
use crate::model::{BulkImport, DestinationKind, SourceKind};
use std::fmt::Write;

/// A migration (a bulk import) with its entities.
pub struct Migration {
    pub bulk: BulkImport,
    pub body: BulkImportBody,
    pub entities: Vec<EntityView>,
}

pub struct EntityView {
    pub body: EntityBody,
    /// Records deliberately not migrated, with the reason.
    pub skipped: Vec<FailureBody>,
}

impl Migration {
    /// Still moving: the page keeps itself current while one is.
    pub fn active(&self) -> bool {
        matches!(self.body.status, "created" | "started")
    }

    fn failure_count(&self) -> usize {
        self.entities.iter().map(|e| e.body.failures.len()).sum()
    }
}

/// The words (and a symbol, so status is not told by colour alone) for a status; a finished
/// migration with failures is "Partially completed", as GitLab's history page says.
pub fn status_badge(status: &str, has_failures: bool) -> String {
    let (class, symbol, words) = match (status, has_failures) {
        ("created", _) => ("pending", "○", "Pending"),
        ("started", _) => ("running", "◔", "Running"),
        ("finished", true) => ("partial", "◑", "Partially completed"),
        ("finished", false) => ("finished", "✓", "Finished"),
        ("failed", _) => ("failed", "✗", "Failed"),
        ("canceled", _) => ("canceled", "⊘", "Canceled"),
        ("timeout", _) => ("failed", "⧖", "Timed out"),
        _ => ("pending", "?", "Unknown"),
    };
    format!(
        "<span class=\"badge {class}\" data-status=\"{}\"><span aria-hidden=\"true\">{symbol}</span> {words}</span>",
        esc(status)
    )
}

fn file_name(path: &str) -> &str {
    std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// The live region: the history table and the bundles, replaced in place by `ui.js` while anything in
/// it moves.
pub fn live(
    migrations: &[Migration],
    page: u64,
    pages: u64,
    bundles: &[(OnDisk, Option<Verdict>)],
    bundle_dir: &str,
    csrf: &str,
) -> String {
    let active = migrations.iter().any(Migration::active)
        || bundles
            .iter()
            .any(|(_, v)| matches!(v, Some(Verdict::Verifying)));
    let mut out = format!(
        "<div id=\"live\" data-live-src=\"/fragments/history?page={page}\" data-active=\"{active}\">\n"
    );
    out.push_str(&history(migrations, page, pages));
    out.push_str(&bundles_section(bundles, bundle_dir, csrf));
    out.push_str("</div>\n");
    out
}

fn history(migrations: &[Migration], page: u64, pages: u64) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"history-h\">\n<h2 id=\"history-h\">Import history</h2>\n",
    );
    let running = migrations.iter().filter(|m| m.active()).count();
    let _ = writeln!(
        out,
        "<p class=\"summary\" role=\"status\" aria-live=\"polite\">{}</p>",
        match running {
            0 => "Nothing is running.".to_string(),
            1 => "1 migration is running; this page updates itself.".to_string(),
            n => format!("{n} migrations are running; this page updates itself."),
        }
    );
    if migrations.is_empty() {
        out.push_str("<p>No migration yet. Start one below.</p>\n</section>\n");
        return out;
    }
    out.push_str(
        "<table class=\"history\">\n<caption>Migrations, newest first</caption>\n<thead><tr><th scope=\"col\">Source</th><th scope=\"col\">Destination</th><th scope=\"col\">Started</th><th scope=\"col\">Status</th><th scope=\"col\">Errors and details</th></tr></thead>\n<tbody>\n",
    );
    for m in migrations {
        out.push_str(&history_row(m));
    }
    out.push_str("</tbody>\n</table>\n");
    if pages > 1 {
        out.push_str("<nav aria-label=\"History pages\" class=\"pages\">");
        if page > 1 {
            let _ = write!(
                out,
                "<a href=\"/?page={}\" rel=\"prev\">Newer</a> ",
                page - 1
            );
        }
        let _ = write!(out, "<span>Page {page} of {pages}</span>");
        if page < pages {
            let _ = write!(
                out,
                " <a href=\"/?page={}\" rel=\"next\">Older</a>",
                page + 1
            );
        }
        out.push_str("</nav>\n");
    }
    out.push_str("</section>\n");
    out
}

fn history_row(m: &Migration) -> String {
    let id = m.bulk.id;
    let roots: Vec<&EntityBody> = m
        .entities
        .iter()
        .map(|e| &e.body)
        .filter(|e| e.parent_id.is_none())
        .collect();
    let more = m.entities.len() - roots.len();
    let source_where = match &m.bulk.source {
        SourceKind::Live { url } => format!("<small>{}</small>", esc(url)),
        SourceKind::Bundle { path } => {
            format!("<small>bundle {}</small>", esc(file_name(path)))
        }
    };
    let dest_where = match &m.bulk.destination {
        DestinationKind::Live { url } => format!("<small>{}</small>", esc(url)),
        DestinationKind::Bundle { path } => {
            format!("<small>bundle {}</small>", esc(file_name(path)))
        }
    };
    let list = |f: &dyn Fn(&EntityBody) -> &str| {
        roots
            .iter()
            .map(|e| format!("<code>{}</code>", esc(f(e))))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let sources = list(&|e| e.source_full_path.as_str());
    let destinations = list(&|e| e.destination_full_path.as_str());
    let more = match more {
        0 => String::new(),
        1 => "<br><small>and 1 subgroup or project</small>".to_string(),
        n => format!("<br><small>and {n} subgroups and projects</small>"),
    };
    let done = m
        .entities
        .iter()
        .filter(|e| !matches!(e.body.status, "created" | "started"))
        .count();
    let progress = if m.active() && !m.entities.is_empty() {
        format!(
            "<br><small>{done} of {} entities done</small>",
            m.entities.len()
        )
    } else {
        String::new()
    };
    let mut out = format!(
        "<tr id=\"import-{id}\">\n<td>{sources}{more}<br>{source_where}</td>\n<td>{destinations}<br>{dest_where}</td>\n<td>{}</td>\n<td>{}{progress}</td>\n<td>",
        time(&m.body.created_at),
        status_badge(m.body.status, m.body.has_failures),
    );
    let failures = m.failure_count();
    if failures > 0 {
        const SHOWN: usize = 20;
        let _ = write!(
            out,
            "<details id=\"errors-{id}\" class=\"errors\"><summary>Show errors ({failures})</summary>\n<table>\n<caption class=\"sr-only\">Errors of migration {id}</caption>\n<thead><tr><th scope=\"col\">Entity</th><th scope=\"col\">Relation</th><th scope=\"col\">Record</th><th scope=\"col\">Error</th></tr></thead>\n<tbody>\n"
        );
        let rows = m
            .entities
            .iter()
            .flat_map(|e| e.body.failures.iter().map(move |f| (e, f)));
        for (e, f) in rows.take(SHOWN) {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.body.source_full_path),
                esc(&f.relation),
                record_link(f.source_url.as_deref(), f.source_title.as_deref()),
                esc(&f.exception_message)
            );
        }
        out.push_str("</tbody>\n</table>\n");
        if failures > SHOWN {
            let _ = write!(
                out,
                "<p>{} more in <a href=\"/imports/{id}\">the details</a>.</p>",
                failures - SHOWN
            );
        }
        out.push_str("</details>\n");
    } else if m.body.has_failures {
        out.push_str("<p>Some records were not migrated: see the details.</p>\n");
    } else {
        out.push_str("<p class=\"quiet\">No errors</p>\n");
    }
    let _ = write!(
        out,
        "<a href=\"/imports/{id}\">View details<span class=\"sr-only\"> of migration {id}</span></a></td>\n</tr>\n"
    );
    out
}

fn bundles_section(bundles: &[(OnDisk, Option<Verdict>)], dir: &str, csrf: &str) -> String {
    let mut out = format!(
        "<section id=\"bundles\" aria-labelledby=\"bundles-h\">\n<h2 id=\"bundles-h\">Bundles</h2>\n<p>In <code>{}</code> (<code>bundle_dir</code>). Verifying reads every byte; its result is kept until the file changes.</p>\n",
        esc(dir)
    );
    if bundles.is_empty() {
        out.push_str("<p>No bundle there yet. Carry one in (<code>appliance export</code> on the connected side) to replay it.</p>\n</section>\n");
        return out;
    }
    out.push_str("<table class=\"bundles\">\n<caption class=\"sr-only\">Bundles on disk</caption>\n<thead><tr><th scope=\"col\">Bundle</th><th scope=\"col\">Size</th><th scope=\"col\">Modified</th><th scope=\"col\">Verified</th><th scope=\"col\">Replay</th></tr></thead>\n<tbody>\n");
    for (i, (b, verdict)) in bundles.iter().enumerate() {
        let modified = b
            .modified
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| crate::model::format_millis(d.as_millis() as i64))
            .unwrap_or_default();
        let volumes = if b.volumes > 1 {
            format!("<br><small>{} volumes</small>", b.volumes)
        } else {
            String::new()
        };
        let verify_button = format!(
            "<form method=\"post\" action=\"/bundles/verify\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"bundle\" value=\"{}\"><button type=\"submit\">Verify<span class=\"sr-only\"> {}</span></button></form>",
            esc(csrf),
            esc(&b.name),
            esc(&b.label)
        );
        let (status, replay) = match verdict {
            None => (
                format!("<span class=\"badge pending\">Not verified</span> {verify_button}"),
                "<small>Verify it first.</small>".to_string(),
            ),
            Some(Verdict::Verifying) => (
                "<span class=\"badge running\"><span aria-hidden=\"true\">◔</span> Verifying…</span>".to_string(),
                String::new(),
            ),
            Some(Verdict::Intact {
                roots,
                entities,
                records,
            }) => (
                format!(
                    "<span class=\"badge finished\"><span aria-hidden=\"true\">✓</span> Intact</span><br><small>{entities} entities, {records} records</small>"
                ),
                replay_form(i, b, roots, csrf),
            ),
            Some(Verdict::Damaged(problems)) => {
                let mut s = format!(
                    "<span class=\"badge failed\"><span aria-hidden=\"true\">✗</span> Damaged</span><details><summary>{} problem(s)</summary><ul>",
                    problems.len()
                );
                for p in problems.iter().take(20) {
                    let _ = write!(s, "<li>{}</li>", esc(p));
                }
                s.push_str("</ul></details>");
                s.push_str(&verify_button);
                (s, "<small>Not replayable.</small>".to_string())
            }
            Some(Verdict::Refused(why)) => (
                format!(
                    "<span class=\"badge failed\"><span aria-hidden=\"true\">✗</span> Refused</span><br><small>{}</small> {verify_button}",
                    esc(why)
                ),
                "<small>Not replayable.</small>".to_string(),
            ),
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code>{volumes}</td><td>{}</td><td>{}</td><td>{status}</td><td>{replay}</td></tr>",
            esc(&b.label),
            size(b.bytes),
            time(&modified),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

fn replay_form(i: usize, b: &OnDisk, roots: &[super::bundles::Root], csrf: &str) -> String {
    let groups = roots
        .iter()
        .map(|r| format!("<code>{}</code>", esc(&r.full_path)))
        .collect::<Vec<_>>()
        .join(", ");
    let slug = if roots.len() == 1 {
        format!(
            "<label for=\"replay-slug-{i}\">New path <small>(optional, default <code>{}</code>)</small></label><input id=\"replay-slug-{i}\" name=\"destination_slug\" autocomplete=\"off\">",
            esc(&roots[0].path)
        )
    } else {
        String::new()
    };
    format!(
        "<form method=\"post\" action=\"/replays\" class=\"replay\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"bundle\" value=\"{}\"><p><small>Creates {groups} under:</small></p><label for=\"replay-ns-{i}\">Destination group</label><input id=\"replay-ns-{i}\" name=\"destination_namespace\" required autocomplete=\"off\">{slug}<button type=\"submit\">Replay<span class=\"sr-only\"> {}</span></button></form>",
        esc(csrf),
        esc(&b.name),
        esc(&b.label)
    )
}

/// The values of the start form, kept when it is refused (never the token).
#[derive(Clone, Debug)]
pub struct StartForm {
    pub source_url: String,
    pub entity_type: String,
    pub source_full_path: String,
    pub destination_namespace: String,
    pub destination_slug: String,
    pub migrate_projects: bool,
}

impl Default for StartForm {
    fn default() -> Self {
        StartForm {
            source_url: String::new(),
            entity_type: "group".into(),
            source_full_path: String::new(),
            destination_namespace: String::new(),
            destination_slug: String::new(),
            migrate_projects: true,
        }
    }
}

pub fn start_form(v: &StartForm, csrf: &str) -> String {
    let selected = |t: &str| if v.entity_type == t { " selected" } else { "" };
    format!(
        r#"<section aria-labelledby="start-h">
<h2 id="start-h">Start a migration</h2>
<form method="post" action="/migrations" class="start">
<input type="hidden" name="csrf" value="{csrf}">
<label for="source_url">Source GitLab URL</label>
<input id="source_url" name="source_url" type="url" required placeholder="https://gitlab.example.com" value="{source_url}">
<label for="source_token">Source access token <small>(api scope; kept sealed, never shown again)</small></label>
<input id="source_token" name="source_token" type="password" required autocomplete="off">
<label for="entity_type">What</label>
<select id="entity_type" name="entity_type"><option value="group"{g}>A group, with its subgroups</option><option value="project"{p}>A project</option></select>
<label for="source_full_path">Its full path on the source</label>
<input id="source_full_path" name="source_full_path" required placeholder="acme" value="{source_full_path}" autocomplete="off">
<label for="destination_namespace">Destination group <small>(its full path; a group is created in it)</small></label>
<input id="destination_namespace" name="destination_namespace" placeholder="imported" value="{destination_namespace}" autocomplete="off">
<label for="destination_slug">New path <small>(optional; default: the source's last path component)</small></label>
<input id="destination_slug" name="destination_slug" value="{destination_slug}" autocomplete="off">
<div class="check"><input id="migrate_projects" name="migrate_projects" type="checkbox" value="true"{checked}><label for="migrate_projects">Migrate the group's projects</label></div>
<button type="submit">Start migration</button>
</form>
</section>
"#,
        csrf = esc(csrf),
        source_url = esc(&v.source_url),
        g = selected("group"),
        p = selected("project"),
        source_full_path = esc(&v.source_full_path),
        destination_namespace = esc(&v.destination_namespace),
        destination_slug = esc(&v.destination_slug),
        checked = if v.migrate_projects { " checked" } else { "" },
    )
}

/// The details of one migration: each entity with each relation's counts, its errors, and what was
/// left out on purpose, with the reason.
/// A migration's details; while it runs, with a form to cancel it (`csrf`: the session's form token).
pub fn details(m: &Migration, csrf: &str) -> String {
    let id = m.bulk.id;
    let mut out = format!(
        "<div id=\"live\" data-live-src=\"/fragments/imports/{id}\" data-active=\"{}\">\n<p><a href=\"/#import-{id}\">← Import history</a></p>\n<h1>Migration {id} {}</h1>\n<dl class=\"facts\"><dt>Source</dt><dd>{}</dd><dt>Destination</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>Last change</dt><dd>{}</dd></dl>\n",
        m.active(),
        status_badge(m.body.status, m.body.has_failures),
        match &m.bulk.source {
            SourceKind::Live { url } => format!("<code>{}</code>", esc(url)),
            SourceKind::Bundle { path } => format!("bundle <code>{}</code>", esc(file_name(path))),
        },
        match &m.bulk.destination {
            DestinationKind::Live { url } => format!("<code>{}</code>", esc(url)),
            DestinationKind::Bundle { path } =>
                format!("bundle <code>{}</code>", esc(file_name(path))),
        },
        time(&m.body.created_at),
        time(&m.body.updated_at),
    );
    if m.active() {
        out.push_str(&format!(
            "<form method=\"post\" action=\"/imports/{id}/cancel\" class=\"cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Cancel migration {id}</button> <small>It stops at its next record. What arrived stays at the destination; a canceled migration does not resume.</small></form>\n",
            esc(csrf)
        ));
    }
    if m.entities.is_empty() {
        out.push_str("<p>No entity recorded.</p>\n");
    }
    for e in &m.entities {
        out.push_str(&entity_section(e));
    }
    out.push_str(&excluded_section(m));
    out.push_str("</div>\n");
    out
}

/// The kinds of items left out of every group or project on purpose, each named with why.
fn excluded_section(m: &Migration) -> String {
    let mut kinds: Vec<(&'static str, &[crate::relations::excluded::Excluded])> = Vec::new();
    for e in &m.entities {
        if !kinds.iter().any(|(k, _)| *k == e.body.entity_type) {
            kinds.push((e.body.entity_type, e.body.excluded));
        }
    }
    if kinds.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section class=\"excluded\" aria-labelledby=\"excluded-h\">\n<h2 id=\"excluded-h\">Not migrated, on purpose</h2>\n<dl>\n",
    );
    for (kind, items) in kinds {
        for (why, items) in crate::relations::excluded::by_reason(items) {
            let _ = writeln!(
                out,
                "<dt>Of each {}: {}</dt><dd>{}</dd>",
                esc(kind),
                esc(&items.join(", ")),
                esc(why.says())
            );
        }
    }
    out.push_str("</dl>\n</section>\n");
    out
}

fn entity_section(e: &EntityView) -> String {
    let b = &e.body;
    let mut out = format!(
        "<section id=\"entity-{}\" class=\"entity\" aria-labelledby=\"entity-h-{}\">\n<h2 id=\"entity-h-{}\">{} <code>{}</code> → <code>{}</code> {}</h2>\n",
        b.id,
        b.id,
        b.id,
        if b.entity_type == "project" {
            "Project"
        } else {
            "Group"
        },
        esc(&b.source_full_path),
        esc(&b.destination_full_path),
        status_badge(b.status, b.has_failures),
    );
    if b.stats.is_empty() {
        out.push_str("<p class=\"quiet\">No relation started yet.</p>\n");
    } else {
        let _ = write!(
            out,
            "<table class=\"stats\">\n<caption>What moved, by relation</caption>\n<thead><tr><th scope=\"col\">Relation</th><th scope=\"col\">In the source</th><th scope=\"col\">Fetched</th><th scope=\"col\">Imported</th><th scope=\"col\">Errors</th><th scope=\"col\">Left out</th></tr></thead>\n<tbody>\n"
        );
        for (relation, s) in &b.stats {
            let errors = b
                .failures
                .iter()
                .filter(|f| &f.relation == relation)
                .count();
            let skipped = e.skipped.iter().filter(|f| &f.relation == relation).count();
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{errors}</td><td>{skipped}</td></tr>",
                esc(relation),
                s.source,
                s.fetched,
                s.imported
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !b.failures.is_empty() {
        let _ = write!(
            out,
            "<table class=\"failures\">\n<caption>Errors: records the destination did not take ({})</caption>\n<thead><tr><th scope=\"col\">Relation</th><th scope=\"col\">Record</th><th scope=\"col\">Error</th><th scope=\"col\">Kind</th><th scope=\"col\">Correlation id</th></tr></thead>\n<tbody>\n",
            b.failures.len()
        );
        for f in &b.failures {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(&f.relation),
                record_link(f.source_url.as_deref(), f.source_title.as_deref()),
                esc(&f.exception_message),
                esc(&f.exception_class),
                esc(&f.correlation_id_value)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !e.skipped.is_empty() {
        let _ = write!(
            out,
            "<table class=\"skipped\">\n<caption>Left out on purpose ({})</caption>\n<thead><tr><th scope=\"col\">Relation</th><th scope=\"col\">Record</th><th scope=\"col\">Why</th></tr></thead>\n<tbody>\n",
            e.skipped.len()
        );
        for f in &e.skipped {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.relation),
                record_link(f.source_url.as_deref(), f.source_title.as_deref()),
                esc(&f.exception_message)
            );
        }
        out.push_str("</tbody>\n</table>\n");
        if e.skipped
            .iter()
            .any(|f| f.exception_class == crate::relations::UNMAPPED_USER_CLASS)
        {
            let _ = writeln!(
                out,
                "<p><a href=\"/imports/{}/unmapped-users.csv\" download>Download the unmapped users</a> <small>(a user map to complete: fill in each destination username and pass it with the next migration)</small></p>",
                b.bulk_import_id
            );
        }
    }
    if b.failures.is_empty() && e.skipped.is_empty() && !b.stats.is_empty() {
        out.push_str("<p class=\"quiet\">Every record fetched was imported.</p>\n");
    }
    out.push_str("</section>\n");
    out
}

/// The sign-in form. `clear_text_remote` warns that the token would cross a network unencrypted.
pub fn login(message: Option<&str>, clear_text_remote: bool) -> String {
    let mut out = String::from("<h1>Sign in</h1>\n");
    if let Some(m) = message {
        out.push_str(&super::html::notice(true, m));
    }
    if clear_text_remote {
        out.push_str("<p class=\"notice error\" role=\"note\"><strong>Plain HTTP:</strong> this page is not served over TLS, so the token you enter crosses the network unencrypted. Put a TLS-terminating proxy in front of <code>appliance serve</code>, or reach it on this machine (127.0.0.1).</p>\n");
    }
    out.push_str(
        r#"<form method="post" action="/login" class="login">
<label for="token">API token</label>
<input id="token" name="token" type="password" required autocomplete="current-password" aria-describedby="token-help">
<p id="token-help"><small>The token API clients send as <code>PRIVATE-TOKEN</code>: <code>api_token_file</code> or <code>APPLIANCE_API_TOKEN</code> when set, else the file <code>api-token</code> in the data directory (<code>/var/lib/appliance/api-token</code> for the service). It is kept in a cookie scripts cannot read, and cleared when you sign out.</small></p>
<button type="submit">Sign in</button>
</form>
"#,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::render;
    use crate::model::{Entity, EntityType, Failure, RelationStats, Status, Tracker};

    fn migration(status: Status, path: &str, message: &str) -> Migration {
        let bulk = BulkImport {
            id: 4,
            status,
            source_type: "gitlab".into(),
            source_url: "https://src.example".into(),
            source: SourceKind::Live {
                url: "https://src.example".into(),
            },
            destination: DestinationKind::Live {
                url: "https://dst.example".into(),
            },
            created_at: 1_624_009_555_358,
            updated_at: 1_624_009_587_003,
            has_failures: !message.is_empty(),
        };
        let entity = Entity {
            id: 9,
            bulk_import_id: 4,
            status,
            entity_type: EntityType::Group,
            source_full_path: path.into(),
            source_xid: None,
            destination_slug: path.into(),
            destination_namespace: "imported".into(),
            parent_id: None,
            namespace_id: None,
            project_id: None,
            migrate_projects: true,
            migrate_memberships: true,
            created_at: 1_624_009_555_358,
            updated_at: 1_624_009_587_003,
            has_failures: !message.is_empty(),
        };
        let failures: Vec<Failure> = (!message.is_empty())
            .then(|| Failure {
                entity_id: 9,
                relation: "labels".into(),
                step: "loader".into(),
                exception_class: "Appliance::DestinationRejected".into(),
                exception_message: message.into(),
                correlation_id: "c".into(),
                source_url: Some("javascript:alert(1)".into()),
                source_title: Some(message.into()),
                pipeline_class: "p".into(),
                created_at: 1_624_009_555_358,
            })
            .into_iter()
            .collect();
        let tracker = Tracker {
            entity_id: 9,
            relation: "labels".into(),
            stage: 1,
            status: Status::Finished,
            cursor: None,
            in_doubt: false,
            stats: RelationStats {
                source: 3,
                fetched: 3,
                imported: 2,
            },
            extracted_via: None,
            pages: 1,
            updated_at: 0,
        };
        Migration {
            body: render::bulk_import(&bulk),
            entities: vec![EntityView {
                body: render::entity(&entity, &[tracker], &failures),
                skipped: failures.iter().map(render::failure).collect(),
            }],
            bulk,
        }
    }

    #[test]
    fn hostile_names_and_messages_are_shown_as_text() {
        let hostile = "<script>alert(1)</script>";
        let m = migration(Status::Finished, hostile, "<img src=x onerror=alert(2)>");
        for html in [
            live(&[m], 1, 1, &[], "<dir>", "t"),
            details(&migration(Status::Finished, hostile, "<b>x"), "t"),
        ] {
            assert!(!html.contains("<script>alert"), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("<dir>"), "{html}");
            assert!(!html.contains("href=\"javascript:"), "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{html}"
            );
        }
    }

    #[test]
    fn unmapped_users_can_be_downloaded_from_the_details() {
        let mut m = migration(Status::Finished, "acme", "`ada` has no public email");
        assert!(!details(&m, "t").contains("unmapped-users.csv"));
        m.entities[0].skipped[0].exception_class = crate::relations::UNMAPPED_USER_CLASS.into();
        let html = details(&m, "t");
        assert!(
            html.contains(&format!(
                "href=\"/imports/{}/unmapped-users.csv\" download>Download the unmapped users",
                m.bulk.id
            )),
            "{html}"
        );
    }

    #[test]
    fn a_finished_migration_with_failures_is_partially_completed() {
        let html = live(
            &[migration(Status::Finished, "acme", "Title is invalid")],
            1,
            1,
            &[],
            "d",
            "t",
        );
        assert!(html.contains("Partially completed"), "{html}");
        assert!(html.contains("Show errors (1)"), "{html}");
        assert!(html.contains("Title is invalid"), "{html}");
        assert!(html.contains("data-active=\"false\""), "{html}");
        let html = live(
            &[migration(Status::Started, "acme", "")],
            1,
            1,
            &[],
            "d",
            "t",
        );
        assert!(html.contains(">◔</span> Running"), "{html}");
        assert!(html.contains("data-active=\"true\""), "{html}");
        assert!(!html.contains("Show errors"), "{html}");
        let html = details(
            &migration(Status::Finished, "acme", "Title is invalid"),
            "t",
        );
        assert!(
            html.contains(
                "<th scope=\"row\">labels</th><td>3</td><td>3</td><td>2</td><td>1</td><td>1</td>"
            ),
            "{html}"
        );
        assert!(html.contains("Left out on purpose (1)"), "{html}");
        // The kinds of items no group migration carries are named, with why.
        assert!(
            html.contains("<dt>Of each group: CI/CD variables, Deploy tokens, Webhooks</dt><dd>they might hold secrets"),
            "{html}"
        );
        assert!(
            html.contains("<dt>Of each group: Epic boards and their lists, Group wiki</dt>"),
            "{html}"
        );
    }
}
