//! `GET /application/settings` and `PUT /application/settings`, for administrators only (403 for anyone
//! else, as GitLab answers): the settings that govern importing GitLab export archives.

use super::{Answer, Ctx, Reply};
use crate::error::ApiError;
use serde_json::json;

fn render(settings: &crate::state::ApplicationSettings) -> serde_json::Value {
    json!({
        "import_sources": settings.import_sources,
        "max_import_size": settings.max_import_size,
        "relation_export_batch_size": settings.relation_export_batch_size,
        "project_export_enabled": true,
        "bulk_import_enabled": true,
    })
}

pub fn get(ctx: &Ctx) -> Answer {
    let store = ctx.sim.read();
    if !store.is_admin(ctx.user_id) {
        return Err(ApiError::Forbidden);
    }
    Ok(Reply::ok(render(&store.settings)))
}

pub fn update(ctx: &Ctx) -> Answer {
    let mut store = ctx.sim.write();
    if !store.is_admin(ctx.user_id) {
        return Err(ApiError::Forbidden);
    }
    if let Some(sources) = ctx.params.list("import_sources") {
        store.settings.import_sources = sources;
    }
    if let Some(size) = ctx.params.u64("max_import_size")? {
        store.settings.max_import_size = size;
    }
    if let Some(size) = ctx.params.u64("relation_export_batch_size")? {
        if size == 0 {
            return Err(ApiError::Param(
                "relation_export_batch_size does not have a valid value".into(),
            ));
        }
        store.settings.relation_export_batch_size = size as usize;
    }
    Ok(Reply::ok(render(&store.settings)))
}
