//! The REST API v4 face of the simulator (and the door to GraphQL, `/api/graphql`, served by
//! `crate::graphql`): one dispatcher over the raw (still percent-encoded) path, so that `:id` can
//! be a number or an encoded full path (`a%2Fb`) everywhere, and one file per resource area. Handlers are synchronous: they take the store lock, do their work
//! and return a [`Reply`]; they never await while holding it. This module must never know
//! about datasets or faults.

pub mod badges;
pub mod boards;
pub mod designs;
pub mod epics;
pub mod events;
pub mod groups;
pub mod imports;
pub mod issues;
pub mod iterations;
pub mod labels;
pub mod members;
pub mod merge_requests;
pub mod milestones;
pub mod namespaces;
pub mod notes;
pub mod pipelines;
pub mod projects;
pub mod protected_branches;
pub mod releases;
pub mod repository_settings;
pub mod request;
pub mod settings;
pub mod snippets;
pub mod uploads;
pub mod users;
pub mod wikis;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::auth::{self, Scope};
use crate::error::ApiError;
use crate::model::Parent;
use crate::state::Sim;
use request::{Params, parse_pairs};

/// Largest request body accepted (uploads included).
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Largest project export archive `POST /projects/import` accepts (GitLab's default maximum import
/// size is 10 GiB; the simulator holds the archive in memory, so benchmarks of large repositories
/// need memory of a few times the archive).
const IMPORT_BODY_LIMIT: usize = 10 * 1024 * 1024 * 1024;

/// One API request, parsed and authenticated.
pub struct Ctx<'a> {
    pub sim: &'a Sim,
    /// The same simulator as a shared handle, for work that outlives the request (imports).
    pub handle: Arc<Sim>,
    pub user_id: u64,
    pub params: Params,
    /// The raw request path, for pagination links.
    pub path: String,
    /// The query pairs in order, for pagination links.
    pub query: Vec<(String, String)>,
    /// Records a project import is to refuse (`FaultConfig::import_refusals`).
    pub refusals: crate::faults::ImportRefusals,
}

impl Ctx<'_> {
    /// The current time for records written through the API.
    pub fn now(&self) -> String {
        crate::timestamp::format_time(time::OffsetDateTime::now_utc())
    }
}

/// What a handler answers: a status, a body and extra headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: ReplyBody,
    pub headers: Vec<(String, String)>,
}

pub enum ReplyBody {
    Json(Value),
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
    },
    Empty,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: ReplyBody::Json(body),
            headers: Vec::new(),
        }
    }

    pub fn created(body: Value) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            body: ReplyBody::Json(body),
            headers: Vec::new(),
        }
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: ReplyBody::Empty,
            headers: Vec::new(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            ReplyBody::Json(value) => (self.status, axum::Json(value)).into_response(),
            ReplyBody::Bytes {
                content_type,
                bytes,
            } => (self.status, [(header::CONTENT_TYPE, content_type)], bytes).into_response(),
            ReplyBody::Empty => self.status.into_response(),
        };
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

pub type Answer = Result<Reply, ApiError>;

/// The axum fallback that serves every path not claimed by a merged router.
pub async fn dispatch(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let raw_path = req.uri().path();
    if !raw_path.starts_with("/api/")
        && (raw_path.contains(".git/info/lfs/") || raw_path.contains(".git/gitlab-lfs/"))
    {
        return crate::lfs::handle_lfs(sim, req)
            .await
            .unwrap_or_else(|| ApiError::NoRoute.into_response());
    }
    if !raw_path.starts_with("/api/") && raw_path.contains(".git/") {
        return crate::git::handle_git(sim, req)
            .await
            .unwrap_or_else(|| ApiError::NoRoute.into_response());
    }
    let (parts, body) = req.into_parts();
    let limit = if parts.method == Method::POST && parts.uri.path() == "/api/v4/projects/import" {
        IMPORT_BODY_LIMIT
    } else {
        BODY_LIMIT
    };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large",
            )
            .into_response();
        }
    };
    let path = parts.uri.path().to_string();
    let query = parse_pairs(parts.uri.query().unwrap_or_default());
    let refusals = parts
        .extensions
        .get::<crate::faults::ImportRefusals>()
        .cloned()
        .unwrap_or_default();
    // Handlers take the store lock and may run git; keep them off the async workers.
    let answer = tokio::task::spawn_blocking(move || {
        if path == "/api/graphql" {
            Ok(crate::graphql::handle(
                &sim,
                &parts.method,
                &parts.headers,
                &query,
                &bytes,
            ))
        } else if let Some(rest) = path.strip_prefix("/api/v4/") {
            api(
                &sim,
                &parts.method,
                &parts.headers,
                rest,
                &path,
                query,
                &bytes,
                refusals,
            )
        } else if path.contains(designs::MARKER) {
            designs::raw_image(&sim, &parts.method, &parts.headers, &path, &query)
        } else {
            uploads::web(&sim, &parts.method, &parts.headers, &path, &query)
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(ApiError::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
        ))
    });
    let mut response = match answer {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "max-age=0, private, must-revalidate"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("vary", "Origin, Accept-Encoding"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[allow(clippy::too_many_arguments)]
fn api(
    sim: &Arc<Sim>,
    method: &Method,
    headers: &HeaderMap,
    rest: &str,
    path: &str,
    query: Vec<(String, String)>,
    body: &[u8],
    refusals: crate::faults::ImportRefusals,
) -> Answer {
    let segments: Vec<String> = rest
        .trim_end_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let user_id = auth::authenticate(sim, headers, &query)?;
    let mut params = Params::default();
    params.add_pairs(&query);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    params.add_body(content_type, body)?;
    let ctx = Ctx {
        sim,
        handle: Arc::clone(sim),
        user_id,
        params,
        path: path.to_string(),
        query,
        refusals,
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    route(&ctx, method, &segs)
}

fn route(ctx: &Ctx, method: &Method, segs: &[&str]) -> Answer {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let put = method == Method::PUT;
    let delete = method == Method::DELETE;
    match segs {
        ["version"] if get => Ok(Reply::ok(json!({
            "version": "17.6.0",
            "revision": "2c7a1ad5d8c",
            "kas": { "enabled": false, "externalUrl": null, "version": null },
            "enterprise": true
        }))),
        ["metadata"] if get => Ok(Reply::ok(json!({
            "version": "17.6.0", "revision": "2c7a1ad5d8c",
            "kas": { "enabled": false, "externalUrl": null, "version": null },
            "enterprise": true
        }))),
        ["user"] if get => users::current(ctx),
        ["application", "settings"] if get => settings::get(ctx),
        ["application", "settings"] if put => settings::update(ctx),
        ["personal_access_tokens", "self"] if get => users::token_self(ctx),
        ["namespaces"] if get => namespaces::list(ctx),
        ["namespaces", id, "exists"] if get => namespaces::exists(ctx, id),
        ["namespaces", id] if get => namespaces::get(ctx, id),
        ["users"] if get => users::list(ctx),
        ["users", id] if get => users::get(ctx, id),
        ["groups"] if get => groups::list(ctx),
        ["groups"] if post => groups::create(ctx),
        ["projects"] if get => projects::list(ctx, None),
        ["projects"] if post => projects::create(ctx),
        ["projects", "import"] if post => imports::create(ctx),
        ["projects", "import-relation"] if post => imports::create_relation(ctx),
        ["groups", id, rest @ ..] => {
            let scope = auth::group_scope(ctx, id)?;
            group_routes(ctx, method, &scope, rest, get, post, put, delete)
        }
        ["projects", id, rest @ ..] => {
            let scope = auth::project_scope(ctx, id)?;
            project_routes(ctx, method, &scope, rest, get, post, put, delete)
        }
        _ => Err(ApiError::NoRoute),
    }
}

#[allow(clippy::too_many_arguments)]
fn group_routes(
    ctx: &Ctx,
    method: &Method,
    scope: &Scope,
    rest: &[&str],
    get: bool,
    post: bool,
    put: bool,
    delete: bool,
) -> Answer {
    let gid = scope.parent.id();
    match rest {
        [] if get => groups::get(ctx, scope),
        [] if put => groups::update(ctx, scope),
        ["avatar"] if get => groups::avatar(ctx, scope),
        ["subgroups"] if get => groups::subgroups(ctx, scope, false),
        ["descendant_groups"] if get => groups::subgroups(ctx, scope, true),
        ["projects"] if get => projects::list(ctx, Some(gid)),
        ["issues"] if get => issues::list_in_group(ctx, scope),
        ["merge_requests"] if get => merge_requests::list_in_group(ctx, scope),
        ["epics"] if get => epics::list(ctx, scope),
        ["epics"] if post => epics::create(ctx, scope),
        ["epics", iid] if get => epics::get(ctx, scope, iid),
        ["epics", iid] if put => epics::update(ctx, scope, iid),
        ["epics", iid] if delete => epics::remove(ctx, scope, iid),
        ["epics", iid, "epics"] if get => epics::children(ctx, scope, iid),
        ["epics", iid, "epics", child] if put => epics::reorder_child(ctx, scope, iid, child),
        ["epics", iid, "issues"] if get => epics::issues(ctx, scope, iid),
        ["epics", iid, "issues", issue] if post => epics::assign_issue(ctx, scope, iid, issue),
        // Award emoji address epics by iid, notes and discussions by id (as GitLab does).
        ["epics", iid, sub @ ..]
            if matches!(sub, ["award_emoji"] | ["notes", _, "award_emoji"]) =>
        {
            let epic = epics::find(ctx, scope, iid)?;
            noteable_routes(ctx, scope, Parent::Epic(epic), sub, get, post)
        }
        ["epics", id, sub @ ..] => {
            let epic = epics::find_by_id(ctx, scope, id)?;
            noteable_routes(ctx, scope, Parent::Epic(epic), sub, get, post)
        }
        ["iterations"] if get => iterations::list(ctx, scope),
        // GitLab's group markdown uploads API (download by secret and file name).
        ["uploads", secret, filename] if get => uploads::get(ctx, scope, secret, filename),
        _ => shared_routes(ctx, method, scope, rest, get, post, put, delete),
    }
}

#[allow(clippy::too_many_arguments)]
fn project_routes(
    ctx: &Ctx,
    method: &Method,
    scope: &Scope,
    rest: &[&str],
    get: bool,
    post: bool,
    put: bool,
    delete: bool,
) -> Answer {
    match rest {
        [] if get => projects::get(ctx, scope),
        [] if put => projects::update(ctx, scope),
        ["import"] if get => imports::status(ctx, scope),
        ["relation-imports"] if get => imports::relation_imports(ctx, scope),
        ["issues"] if get => issues::list(ctx, scope),
        ["issues"] if post => issues::create(ctx, scope),
        ["issues", iid] if get => issues::get(ctx, scope, iid),
        ["issues", iid] if put => issues::update(ctx, scope, iid),
        ["issues", iid] if delete => issues::remove(ctx, scope, iid),
        ["issues", iid, sub @ ..] => {
            let issue = issues::find(ctx, scope, iid)?;
            noteable_routes(ctx, scope, Parent::Issue(issue), sub, get, post)
        }
        ["merge_requests"] if get => merge_requests::list(ctx, scope),
        ["merge_requests"] if post => merge_requests::create(ctx, scope),
        ["merge_requests", iid] if get => merge_requests::get(ctx, scope, iid),
        ["merge_requests", iid] if put => merge_requests::update(ctx, scope, iid),
        ["merge_requests", iid, "approvals"] if get => {
            let mr = merge_requests::find(ctx, scope, iid)?;
            events::approvals(ctx, scope, mr)
        }
        ["merge_requests", iid, sub @ ..] => {
            let mr = merge_requests::find(ctx, scope, iid)?;
            noteable_routes(ctx, scope, Parent::MergeRequest(mr), sub, get, post)
        }
        ["snippets"] if get => snippets::list(ctx, scope),
        ["snippets"] if post => snippets::create(ctx, scope),
        ["snippets", id, "raw"] if get => snippets::raw(ctx, scope, id),
        ["snippets", id, sub @ ..] if !sub.is_empty() => {
            let snippet = snippets::find(ctx, scope, id)?;
            noteable_routes(ctx, scope, Parent::Snippet(snippet), sub, get, post)
        }
        ["snippets", id] if get => snippets::get(ctx, scope, id),
        ["releases"] if get => releases::list(ctx, scope),
        ["releases"] if post => releases::create(ctx, scope),
        ["releases", tag] if get => releases::get(ctx, scope, tag),
        ["protected_branches"] if get => protected_branches::list(ctx, scope),
        ["protected_branches"] if post => protected_branches::create(ctx, scope),
        ["protected_tags"] if get => repository_settings::protected_tags(ctx, scope),
        ["protected_tags"] if post => repository_settings::create_protected_tag(ctx, scope),
        ["push_rule"] if get => repository_settings::push_rule(ctx, scope),
        ["repository", "commits", sha, "comments"] if get => {
            repository_settings::commit_comments(ctx, scope, sha)
        }
        ["pipelines"] if get => pipelines::list(ctx, scope),
        ["pipeline_schedules"] if get => pipelines::schedules(ctx, scope),
        ["pipeline_schedules"] if post => pipelines::create_schedule(ctx, scope),
        ["uploads"] if get => uploads::list(ctx, scope),
        ["uploads", secret, filename] if get => uploads::get(ctx, scope, secret, filename),
        ["wikis"] if get => wikis::list(ctx, scope),
        ["wikis", slug] if get => wikis::get(ctx, scope, slug),
        _ => shared_routes(ctx, method, scope, rest, get, post, put, delete),
    }
}

/// Relations that both groups and projects have.
#[allow(clippy::too_many_arguments)]
fn shared_routes(
    ctx: &Ctx,
    method: &Method,
    scope: &Scope,
    rest: &[&str],
    get: bool,
    post: bool,
    put: bool,
    delete: bool,
) -> Answer {
    let _ = method;
    match rest {
        ["labels"] if get => labels::list(ctx, scope),
        ["labels"] if post => labels::create(ctx, scope),
        ["labels"] if put => labels::by_param(ctx, scope, false),
        ["labels"] if delete => labels::by_param(ctx, scope, true),
        ["labels", id] if get => labels::get(ctx, scope, id),
        ["labels", id] if put => labels::update(ctx, scope, id),
        ["labels", id] if delete => labels::remove(ctx, scope, id),
        ["milestones"] if get => milestones::list(ctx, scope),
        ["milestones"] if post => milestones::create(ctx, scope),
        ["milestones", id] if get => milestones::get(ctx, scope, id),
        ["milestones", id] if put => milestones::update(ctx, scope, id),
        ["milestones", id] if delete => milestones::remove(ctx, scope, id),
        ["badges"] if get => badges::list(ctx, scope),
        ["badges"] if post => badges::create(ctx, scope),
        ["badges", id] if get => badges::get(ctx, scope, id),
        ["badges", id] if put => badges::update(ctx, scope, id),
        ["badges", id] if delete => badges::remove(ctx, scope, id),
        ["boards"] if get => boards::list(ctx, scope),
        ["boards"] if post => boards::create(ctx, scope),
        ["boards", id] if get => boards::get(ctx, scope, id),
        ["boards", id] if put => boards::update(ctx, scope, id),
        ["boards", id] if delete => boards::remove(ctx, scope, id),
        ["boards", id, "lists"] if get => boards::lists(ctx, scope, id),
        ["boards", id, "lists"] if post => boards::create_list(ctx, scope, id),
        ["members"] if get => members::list(ctx, scope, false),
        ["members", "all"] if get => members::list(ctx, scope, true),
        ["members"] if post => members::create(ctx, scope),
        ["members", "all", user] if get => members::get(ctx, scope, user, true),
        ["members", user] if get => members::get(ctx, scope, user, false),
        ["members", user] if put => members::update(ctx, scope, user),
        ["members", user] if delete => members::remove(ctx, scope, user),
        ["uploads"] if post => uploads::create(ctx, scope),
        _ => Err(ApiError::NoRoute),
    }
}

/// Notes, award emoji and resource events of an issue, merge request, epic or snippet.
fn noteable_routes(
    ctx: &Ctx,
    scope: &Scope,
    noteable: Parent,
    sub: &[&str],
    get: bool,
    post: bool,
) -> Answer {
    match sub {
        ["resource_state_events"] if get => events::state_events(ctx, scope, noteable),
        ["resource_label_events"] if get => events::label_events(ctx, scope, noteable),
        ["notes"] if get => notes::list(ctx, scope, noteable),
        ["discussions"] if get => notes::discussions(ctx, scope, noteable),
        ["discussions"] if post => notes::create_discussion(ctx, scope, noteable),
        ["notes"] if post => notes::create(ctx, scope, noteable),
        ["notes", id] if get => notes::get(ctx, scope, noteable, id),
        ["award_emoji"] if get => notes::award_emoji(ctx, scope, noteable),
        ["award_emoji"] if post => notes::award(ctx, scope, noteable),
        ["notes", id, "award_emoji"] if get => {
            let note = notes::find(ctx, noteable, id)?;
            notes::award_emoji(ctx, scope, Parent::Note(note))
        }
        ["notes", id, "award_emoji"] if post => {
            let note = notes::find(ctx, noteable, id)?;
            notes::award(ctx, scope, Parent::Note(note))
        }
        _ => Err(ApiError::NoRoute),
    }
}
