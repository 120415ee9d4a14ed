//! Group and project badges. A project lists its own badges and its groups' (`kind: group`);
//! placeholders such as `%{project_path}` are rendered only for project badges, as GitLab does.
//! It never changes anything but badges.

use serde_json::{Value, json};

use super::{Answer, Ctx, Reply};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Badge, Parent, access};
use crate::pagination::{Keyset, paginate};
use crate::state::Store;

fn rendered(store: &Store, scope: &Scope, url: &str) -> String {
    let Parent::Project(id) = scope.parent else {
        return url.to_string();
    };
    let Some(project) = store.project(id) else {
        return url.to_string();
    };
    url.replace("%{project_path}", &project.path_with_namespace)
        .replace("%{project_title}", &project.name)
        .replace("%{project_name}", &project.path)
        .replace("%{project_id}", &project.id.to_string())
        .replace("%{default_branch}", &project.default_branch)
        .replace("%{commit_sha}", "")
}

pub fn render(store: &Store, scope: &Scope, badge: &Badge) -> Value {
    json!({
        "id": badge.id,
        "name": badge.name,
        "link_url": badge.link_url,
        "image_url": badge.image_url,
        "rendered_link_url": rendered(store, scope, &badge.link_url),
        "rendered_image_url": rendered(store, scope, &badge.image_url),
        "kind": match badge.owner { Parent::Group(_) => "group", _ => "project" },
    })
}

pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    let store = ctx.sim.read();
    let name = ctx.params.text("name");
    let mut badges: Vec<&Badge> = store.badges.children(scope.parent).collect();
    if let Parent::Project(id) = scope.parent
        && let Some(project) = store.project(id)
    {
        for gid in store.ancestors(project.namespace_id).into_iter().rev() {
            badges.extend(store.badges.children(Parent::Group(gid)));
        }
    }
    badges.retain(|b| name.as_ref().is_none_or(|n| b.name.as_ref() == Some(n)));
    paginate(
        ctx,
        badges,
        Keyset::NotOffered,
        |b| b.id,
        |b| render(&store, scope, b),
    )
}

pub fn get(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    let store = ctx.sim.read();
    let badge = raw
        .parse::<u64>()
        .ok()
        .and_then(|id| store.badges.get(id))
        .filter(|b| b.owner == scope.parent)
        .ok_or(ApiError::NotFound("Badge"))?;
    Ok(Reply::ok(render(&store, scope, badge)))
}

pub fn create(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::MAINTAINER)?;
    let link_url = ctx.params.text("link_url");
    let image_url = ctx.params.text("image_url");
    let (link_url, image_url) = match (link_url, image_url) {
        (Some(l), Some(i)) => (l, i),
        (None, None) => {
            return Err(ApiError::Param(
                "link_url is missing, image_url is missing".into(),
            ));
        }
        (None, _) => return Err(ApiError::missing("link_url")),
        (_, None) => return Err(ApiError::missing("image_url")),
    };
    let valid = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let mut errors = serde_json::Map::new();
    if !valid(&link_url) {
        errors.insert(
            "link_url".into(),
            json!(["is blocked: Only allowed schemes are http, https"]),
        );
    }
    if !valid(&image_url) {
        errors.insert(
            "image_url".into(),
            json!(["is blocked: Only allowed schemes are http, https"]),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request(Value::Object(errors)));
    }
    let mut store = ctx.sim.write();
    let id = store.badges.next_id();
    let badge = Badge {
        id,
        owner: scope.parent,
        name: ctx.params.text("name"),
        link_url,
        image_url,
    };
    let value = render(&store, scope, &badge);
    store.badges.insert(badge);
    Ok(Reply::created(value))
}

pub fn remove(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::MAINTAINER)?;
    let mut store = ctx.sim.write();
    let id = raw
        .parse::<u64>()
        .ok()
        .filter(|id| {
            store
                .badges
                .get(*id)
                .is_some_and(|b| b.owner == scope.parent)
        })
        .ok_or(ApiError::NotFound("Badge"))?;
    store.badges.remove(id);
    Ok(Reply::no_content())
}

pub fn update(ctx: &Ctx, scope: &Scope, raw: &str) -> Answer {
    scope.require(access::MAINTAINER)?;
    let mut store = ctx.sim.write();
    let id = raw
        .parse::<u64>()
        .ok()
        .filter(|id| {
            store
                .badges
                .get(*id)
                .is_some_and(|b| b.owner == scope.parent)
        })
        .ok_or(ApiError::NotFound("Badge"))?;
    let badge = store
        .badges
        .get_mut(id)
        .ok_or(ApiError::NotFound("Badge"))?;
    if let Some(name) = ctx.params.text("name") {
        badge.name = Some(name);
    }
    if let Some(link_url) = ctx.params.text("link_url") {
        badge.link_url = link_url;
    }
    if let Some(image_url) = ctx.params.text("image_url") {
        badge.image_url = image_url;
    }
    let badge = badge.clone();
    Ok(Reply::ok(render(&store, scope, &badge)))
}
