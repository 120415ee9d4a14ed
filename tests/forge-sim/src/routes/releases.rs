//! Project releases: list, read by tag, create (409 for an existing tag). Tags are not checked
//! against the repository; `ref` is accepted and ignored.
//! It never creates tags in the repository.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::issues::client_time;
use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Parent, Release, ReleaseLink, access};
use crate::pagination::{Keyset, paginate};
use crate::state::{Sim, Store};

pub fn render(sim: &Sim, store: &Store, release: &Release) -> Value {
    let full_path = store
        .project(release.project_id)
        .map(|p| p.path_with_namespace.clone())
        .unwrap_or_default();
    let web = format!("{}/{}", sim.base_url, full_path);
    let milestones: Vec<Value> = release
        .milestones
        .iter()
        .filter_map(|title| {
            store
                .milestones
                .children(Parent::Project(release.project_id))
                .find(|m| &m.title == title)
        })
        .map(|m| super::milestones::render(sim, store, m))
        .collect();
    let links: Vec<Value> = release
        .links
        .iter()
        .map(|l| {
            json!({
                "id": l.id, "name": l.name, "url": l.url, "direct_asset_url": l.url,
                "link_type": l.link_type,
            })
        })
        .collect();
    let sources: Vec<Value> = ["zip", "tar.gz", "tar.bz2", "tar"]
        .iter()
        .map(|format| {
            json!({
                "format": format,
                "url": format!("{web}/-/archive/{tag}/{name}-{tag}.{format}", tag = release.tag_name,
                    name = full_path.rsplit('/').next().unwrap_or_default()),
            })
        })
        .collect();
    json!({
        "name": release.name,
        "tag_name": release.tag_name,
        "description": release.description,
        "created_at": release.created_at,
        "released_at": release.released_at,
        "upcoming_release": false,
        "author": super::users::basic(sim, store, release.author_id),
        "commit": null,
        "milestones": milestones,
        "commit_path": format!("/{full_path}/-/commit/{}", release.tag_name),
        "tag_path": format!("/{full_path}/-/tags/{}", release.tag_name),
        "assets": { "count": sources.len() + links.len(), "sources": sources, "links": links },
        "evidences": [],
        "_links": {
            "self": format!("{web}/-/releases/{}", release.tag_name),
            "edit_url": format!("{web}/-/releases/{}/edit", release.tag_name),
        },
    })
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let mut releases: Vec<&Release> = store.releases.children(scope.parent).collect();
    releases.sort_by(|a, b| a.released_at.cmp(&b.released_at).then(a.id.cmp(&b.id)));
    if ctx.params.text("sort").as_deref() != Some("asc") {
        releases.reverse();
    }
    paginate(
        ctx,
        releases,
        Keyset::NotOffered,
        |r| r.id,
        |r| render(ctx.sim, &store, r),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, tag: &str) -> Answer {
    let store = ctx.sim.read();
    let release = store
        .releases
        .children(scope.parent)
        .find(|r| r.tag_name == tag)
        .ok_or(ApiError::NotFound("Release"))?;
    Ok(Reply::ok(render(ctx.sim, &store, release)))
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::DEVELOPER)?;
    let p = &ctx.params;
    let tag_name = p.required("tag_name")?;
    let now = ctx.now();
    let released_at = match p.text("released_at") {
        Some(raw) => crate::timestamp::normalize_time(&raw)
            .ok_or_else(|| ApiError::invalid("released_at"))?,
        None => now.clone(),
    };
    let created_at = client_time(ctx, scope, "created_at")?.unwrap_or_else(|| now.clone());
    let mut store = ctx.sim.write();
    if store
        .releases
        .children(scope.parent)
        .any(|r| r.tag_name == tag_name)
    {
        return Err(ApiError::message(
            StatusCode::CONFLICT,
            "Release already exists",
        ));
    }
    let milestones = p.list("milestones").unwrap_or_default();
    let missing: Vec<&String> = milestones
        .iter()
        .filter(|t| {
            !store
                .milestones
                .children(scope.parent)
                .any(|m| &m.title == *t)
        })
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "Milestone(s) not found: {}",
            names.join(", ")
        )));
    }
    let mut links = Vec::new();
    if let Some(Value::Object(assets)) = p.raw("assets")
        && let Some(Value::Array(items)) = assets.get("links")
    {
        for item in items {
            let id = store.releases.next_id();
            links.push(ReleaseLink {
                id,
                name: item["name"].as_str().unwrap_or_default().to_string(),
                url: item["url"].as_str().unwrap_or_default().to_string(),
                link_type: item["link_type"].as_str().unwrap_or("other").to_string(),
            });
        }
    }
    let id = store.releases.next_id();
    let release = Release {
        id,
        project_id: scope.parent.id(),
        name: p.text("name").unwrap_or_else(|| tag_name.clone()),
        tag_name,
        description: p.text("description").unwrap_or_default(),
        author_id: ctx.user_id,
        milestones,
        links,
        created_at,
        released_at,
    };
    let value = render(ctx.sim, &store, &release);
    store.releases.insert(release);
    Ok(Reply::created(value))
}
