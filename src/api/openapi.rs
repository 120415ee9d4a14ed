//! `GET /api/v4/openapi.json`: the OpenAPI 3.0 description of this API (`openapi.json` beside this
//! file, written by hand from GitLab's bulk_imports documentation and the appliance's extensions). It is
//! public, like GitLab's own API documentation: it holds no secret. `tests/it/observability.rs` keeps it
//! true: every route of the router is in it and nothing else, and each operation answers.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// Where the document is served.
pub const PATH: &str = "/api/v4/openapi.json";

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_0_json_whose_references_all_resolve() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').expect("local references only");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }
}
