//! CI/CD records a project keeps: its pipelines (`GET /projects/:id/pipelines`, GitLab's
//! `PipelineBasic`) and pipeline schedules (`GET /projects/:id/pipeline_schedules`). Read only:
//! the simulator runs nothing: pipelines only arrive seeded or through a project import; a
//! developer creates a schedule (`POST /projects/:id/pipeline_schedules`), which never runs.

use serde_json::json;

use super::{Answer, Ctx};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::model::{Pipeline, PipelineSchedule, access};
use crate::pagination::{Keyset, paginate};
use axum::http::StatusCode;

/// Reporters read a private project's pipelines (`read_pipeline`); `?status`, `?ref`, `?sha`,
/// `?source` filter, newest first unless `sort=asc`.
pub fn list(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::REPORTER)?;
    let store = ctx.sim.read();
    let p = &ctx.params;
    let (status, git_ref, sha, source) = (
        p.text("status"),
        p.text("ref"),
        p.text("sha"),
        p.text("source"),
    );
    let mut pipelines: Vec<&Pipeline> = store
        .pipelines
        .children(scope.parent)
        .filter(|x| status.as_ref().is_none_or(|s| &x.status == s))
        .filter(|x| git_ref.as_ref().is_none_or(|r| &x.git_ref == r))
        .filter(|x| sha.as_ref().is_none_or(|s| &x.sha == s))
        .filter(|x| source.as_ref().is_none_or(|s| &x.source == s))
        .collect();
    pipelines.sort_by_key(|x| x.id);
    if p.text("sort").as_deref() != Some("asc") {
        pipelines.reverse();
    }
    let web = scope.web_url.clone();
    paginate(
        ctx,
        pipelines,
        Keyset::NotOffered,
        |x| x.id,
        |x| {
            json!({
                "id": x.id, "iid": x.iid, "project_id": x.project_id, "sha": x.sha,
                "ref": x.git_ref, "status": x.status, "source": x.source,
                "created_at": x.created_at, "updated_at": x.updated_at,
                "web_url": format!("{web}/-/pipelines/{}", x.id)
            })
        },
    )
}

fn render_schedule(
    ctx: &Ctx,
    store: &crate::state::Store,
    s: &PipelineSchedule,
) -> serde_json::Value {
    json!({
        "id": s.id, "description": s.description, "ref": s.git_ref, "cron": s.cron,
        "cron_timezone": s.cron_timezone, "next_run_at": s.next_run_at,
        "active": s.active, "created_at": s.created_at, "updated_at": s.updated_at,
        "owner": super::users::basic(ctx.sim, store, s.owner_id)
    })
}

/// `POST /projects/:id/pipeline_schedules`: `description`, `ref` and `cron` required,
/// `cron_timezone` (default UTC), `active` (default true); for developers.
pub fn create_schedule(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::DEVELOPER)?;
    let description = ctx.params.required("description")?;
    let git_ref = ctx.params.required("ref")?;
    let cron = ctx.params.required("cron")?;
    if cron.split_whitespace().count() != 5 {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"cron": ["is invalid syntax"]}),
        ));
    }
    let mut store = ctx.sim.write();
    let now = ctx.now();
    let schedule = PipelineSchedule {
        id: store.pipeline_schedules.next_id(),
        project_id: scope.parent.id(),
        description,
        git_ref,
        cron,
        cron_timezone: ctx
            .params
            .text("cron_timezone")
            .unwrap_or_else(|| "UTC".into()),
        next_run_at: None,
        active: ctx.params.bool("active")?.unwrap_or(true),
        owner_id: ctx.user_id,
        created_at: now.clone(),
        updated_at: now,
    };
    let value = render_schedule(ctx, &store, &schedule);
    store.pipeline_schedules.insert(schedule);
    Ok(super::Reply::created(value))
}

/// Developers read a project's schedules (`read_pipeline_schedule`); `?scope=active|inactive`.
pub fn schedules(ctx: &Ctx, scope: &Scope) -> Answer {
    scope.require(access::DEVELOPER)?;
    let store = ctx.sim.read();
    let active = match ctx.params.text("scope").as_deref() {
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        _ => None,
    };
    let schedules: Vec<&PipelineSchedule> = store
        .pipeline_schedules
        .children(scope.parent)
        .filter(|s| active.is_none_or(|a| s.active == a))
        .collect();
    paginate(
        ctx,
        schedules,
        Keyset::NotOffered,
        |s| s.id,
        |s| render_schedule(ctx, &store, s),
    )
}
