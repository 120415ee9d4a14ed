//! Placeholder for direct-transfer relation exports (owned by the edges helper, who replaces this file).

/// Relation export routes; none yet.
pub fn routes() -> axum::Router<std::sync::Arc<crate::state::Sim>> {
    axum::Router::new()
}
