//! A project's wiki pages, read from its wiki repository (`<project>.wiki.git`) as GitLab's wikis
//! API answers: `GET /projects/:id/wikis` (every page, not paginated; `with_content=1` adds each
//! page's content) and `GET /projects/:id/wikis/:slug` (the slug URL-encoded, `dir%2Fpage`).
//! It never writes a wiki: pages arrive by git push or a project import.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::git::WikiPage;

fn render(page: &WikiPage, content: bool) -> Value {
    let mut v = json!({
        "format": page.format,
        "slug": page.slug,
        "title": page.title,
        "encoding": "UTF-8",
    });
    if content {
        v["content"] = json!(page.content);
    }
    v
}

/// The wiki's pages; 403 when the project has its wiki turned off (GitLab's `read_wiki`).
fn pages(ctx: &Ctx, scope: &Scope) -> Result<Vec<WikiPage>, ApiError> {
    let enabled = ctx
        .sim
        .read()
        .project(scope.parent.id())
        .is_some_and(|p| p.wiki_enabled);
    if !enabled {
        return Err(ApiError::Forbidden);
    }
    ctx.sim.git.wiki_pages(&scope.full_path).map_err(|e| {
        tracing::warn!(project = %scope.full_path, error = %e, "cannot read the wiki");
        ApiError::message(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
        )
    })
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let with_content = ctx.params.bool("with_content")?.unwrap_or(false);
    let pages = pages(ctx, scope)?;
    Ok(Reply::ok(Value::Array(
        pages.iter().map(|p| render(p, with_content)).collect(),
    )))
}

pub fn get(ctx: &Ctx, scope: &Scope, slug: &str) -> Answer {
    let page = pages(ctx, scope)?
        .into_iter()
        .find(|p| p.slug == slug)
        .ok_or(ApiError::NotFound("Wiki Page"))?;
    let mut v = render(&page, true);
    v["front_matter"] = json!({});
    Ok(Reply::ok(v))
}
