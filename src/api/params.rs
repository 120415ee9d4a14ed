//! The parameters of the bulk_imports endpoints, validated as GitLab's Grape declarations do and
//! refused with Grape's messages (`configuration is missing, configuration[url] is missing`), joined
//! with ", " into one 400. Source and destination paths follow GitLab's path rules; the deprecated
//! `destination_name` is accepted in place of `destination_slug`.

use super::error::ApiError;
use super::pagination::{PageRequest, Query, last, page_request};
use crate::model::{EntityRequest, EntityType, Status};
use crate::store::SortOrder;
use crate::user_map::{UserMap, UserMapping};
use secrecy::SecretString;
use serde_json::{Map, Value};

/// A validated `POST /bulk_imports`.
pub struct CreateParams {
    pub url: String,
    pub access_token: SecretString,
    pub entities: Vec<EntityRequest>,
    /// Appliance extension: explicit user mapping, as CSV text or `[{source, destination}]`.
    pub user_map: Vec<UserMapping>,
    /// Appliance extension `configuration[bundle]`: replay this bundle (a file name in the bundle
    /// directory) instead of reading a live source; `url` and `access_token` are then not needed.
    pub replay_bundle: Option<String>,
    /// Appliance extension `export_bundle`: export the entities into this bundle file (a file name in
    /// the bundle directory) instead of migrating them into the destination.
    pub export_bundle: Option<String>,
    /// Appliance extension `dry_run`: check the request and say what it would move and what blocks
    /// it (`Engine::preflight`), recording and writing nothing.
    pub dry_run: bool,
}

/// A bundle file name: letters, digits, `.`, `_`, `-`, not starting with `.` (no paths).
fn bundle_name(value: Option<&Value>, field: &str, errors: &mut Vec<String>) -> Option<String> {
    let v = value?;
    match v.as_str() {
        Some(name)
            if !name.is_empty()
                && !name.starts_with('.')
                && name.len() <= 200
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            Some(name.to_string())
        }
        _ => {
            errors.push(format!(
                "{field} is invalid: a file name in the bundle directory (letters, digits, '.', '_', '-')"
            ));
            None
        }
    }
}

/// GitLab's limit on a group's path (`Namespace` validates `path` with `length: { maximum: 255 }`).
pub const MAX_PATH_LENGTH: usize = 255;

/// GitLab's `Gitlab::Regex.oci_repository_path_regex_message`, with the example the API adds.
const SLUG_RULE: &str = "can only include non-accented letters, digits, '_', '-' and '.'. \
    It must not start with '-', '_', or '.', nor end with '-', '_', '.', '.git', or '.atom'. \
    For example, 'destination_namespace' not 'destination/namespace'";
const SOURCE_PATH_RULE: &str = "must be a relative path and not include protocol, sub-domain, or domain information. \
    For example, 'source/full/path' not 'https://example.com/source/full/path'";
const NAMESPACE_RULE: &str = "must be a relative path and not include protocol, sub-domain, or domain information. \
    For example, 'destination/full/path' not 'https://example.com/destination/full/path'";

/// Grape's `type: String`: strings, and numbers as their text.
fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Grape's `type: Boolean` (dry-types' `Params::Bool`). An empty form value counts as absent.
fn bool_of(v: &Value) -> Result<Option<bool>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Ok(Some(true)),
            Some(0) => Ok(Some(false)),
            _ => Err(()),
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "1" | "on" | "t" | "true" | "y" | "yes" => Ok(Some(true)),
            "0" | "off" | "f" | "false" | "n" | "no" => Ok(Some(false)),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// One segment of a GitLab namespace or project path (`Gitlab::PathRegex`): letters, digits, `_`,
/// `-`, `.`; not starting with `-`, not ending with `.`, `.git` or `.atom`.
fn valid_path_segment(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= MAX_PATH_LENGTH
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && (first.is_ascii_alphanumeric() || matches!(first, b'_' | b'.'))
        && (last.is_ascii_alphanumeric() || matches!(last, b'_' | b'-'))
        && !s.ends_with(".git")
        && !s.ends_with(".atom")
}

/// A full namespace path (`a/b/c`), as GitLab's `NamespacePathValidator.valid_path?`.
pub fn valid_namespace_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    segments.len() <= 21 && segments.iter().all(|s| valid_path_segment(s))
}

/// A full project path: a namespace and the project's own path.
pub fn valid_project_path(path: &str) -> bool {
    path.contains('/') && valid_namespace_path(path)
}

/// A destination slug, as `Gitlab::Regex.oci_repository_path_regex` (`[a-zA-Z0-9]+([._-][a-zA-Z0-9]+)*`),
/// plus the `.git` and `.atom` endings its message promises to refuse.
pub fn valid_slug(slug: &str) -> bool {
    let mut prev_special = true;
    for b in slug.bytes() {
        if b.is_ascii_alphanumeric() {
            prev_special = false;
        } else if matches!(b, b'.' | b'_' | b'-') && !prev_special {
            prev_special = true;
        } else {
            return false;
        }
    }
    !slug.is_empty() && !prev_special && !slug.ends_with(".git") && !slug.ends_with(".atom")
}

/// Validates the body of `POST /bulk_imports` (a JSON tree, from JSON or a form) as GitLab's Grape
/// declaration: every problem is reported, in declaration order, in one 400.
pub fn create_params(body: &Value) -> Result<CreateParams, ApiError> {
    let mut errors = Vec::new();
    let empty = Map::new();
    let root = body.as_object().unwrap_or(&empty);

    let mut url = None;
    let mut access_token = None;
    let mut replay_bundle = None;
    let export_bundle = bundle_name(root.get("export_bundle"), "export_bundle", &mut errors);
    let dry_run = match root.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        Some(_) => {
            errors.push("dry_run is invalid".to_string());
            false
        }
    };
    match root.get("configuration") {
        None | Some(Value::Null) => {
            errors.push("configuration is missing".to_string());
            errors.push("configuration[url] is missing".to_string());
            errors.push("configuration[access_token] is missing".to_string());
        }
        Some(Value::Object(config)) if config.contains_key("bundle") => {
            replay_bundle = bundle_name(config.get("bundle"), "configuration[bundle]", &mut errors);
            url = Some(String::new());
            access_token = Some(String::new());
        }
        Some(Value::Object(config)) => {
            url = required_string(config, "configuration[url]", "url", &mut errors);
            access_token = required_string(
                config,
                "configuration[access_token]",
                "access_token",
                &mut errors,
            );
        }
        Some(_) => errors.push("configuration is invalid".to_string()),
    }

    let entities = match root.get("entities") {
        None | Some(Value::Null) => {
            errors.push("entities is missing".to_string());
            for name in ["source_type", "source_full_path", "destination_namespace"] {
                errors.push(format!("entities[{name}] is missing"));
            }
            errors.push(
                "entities[destination_slug], entities[destination_name] are missing, at least one parameter must be provided"
                    .to_string(),
            );
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            errors.push("entities is missing".to_string());
            Vec::new()
        }
        Some(Value::Array(items)) => entity_params(items, &mut errors),
        // A single entity sent as a hash (python-gitlab users sometimes do) counts as a list of one.
        Some(Value::Object(one)) => entity_params(&[Value::Object(one.clone())], &mut errors),
        Some(_) => {
            errors.push("entities is invalid".to_string());
            Vec::new()
        }
    };

    let user_map = match root.get("user_map") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(csv)) => UserMap::parse_csv(csv).unwrap_or_else(|e| {
            errors.push(format!("user_map is invalid: {e}"));
            Vec::new()
        }),
        Some(Value::Array(items)) => {
            let parsed: Option<Vec<UserMapping>> = items
                .iter()
                .map(|i| {
                    let source = i.get("source")?.as_str()?.trim();
                    let destination = i.get("destination")?.as_str()?.trim();
                    (!source.is_empty() && !destination.is_empty()).then(|| UserMapping {
                        source: source.to_string(),
                        destination: destination.to_string(),
                    })
                })
                .collect();
            parsed.unwrap_or_else(|| {
                errors.push(
                    "user_map is invalid: each entry needs a source and a destination".to_string(),
                );
                Vec::new()
            })
        }
        Some(_) => {
            errors.push("user_map is invalid".to_string());
            Vec::new()
        }
    };

    match (url, access_token) {
        (Some(url), Some(token)) if errors.is_empty() => Ok(CreateParams {
            url,
            access_token: SecretString::from(token),
            entities,
            user_map,
            replay_bundle,
            export_bundle,
            dry_run,
        }),
        _ => Err(ApiError::BadRequest(errors.join(", "))),
    }
}

fn required_string(
    map: &Map<String, Value>,
    full: &str,
    key: &str,
    errors: &mut Vec<String>,
) -> Option<String> {
    match map.get(key) {
        None | Some(Value::Null) => {
            errors.push(format!("{full} is missing"));
            None
        }
        Some(v) => {
            let s = string_of(v);
            if s.is_none() {
                errors.push(format!("{full} is invalid"));
            }
            s
        }
    }
}

/// The entities of a request. Grape runs each validator over every element before the next one, so
/// the messages come attribute by attribute.
fn entity_params(items: &[Value], errors: &mut Vec<String>) -> Vec<EntityRequest> {
    let empty = Map::new();
    let objects: Vec<&Map<String, Value>> = items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => m,
            _ => {
                errors.push(format!("entities[{i}] is invalid"));
                &empty
            }
        })
        .collect();
    let name = |i: usize, key: &str| format!("entities[{i}][{key}]");
    let get = |m: &Map<String, Value>, key: &str| m.get(key).filter(|v| !v.is_null()).cloned();

    let mut types = vec![None; objects.len()];
    for (i, m) in objects.iter().enumerate() {
        match get(m, "source_type").map(|v| string_of(&v)) {
            None => errors.push(format!("{} is missing", name(i, "source_type"))),
            Some(None) => errors.push(format!("{} is invalid", name(i, "source_type"))),
            Some(Some(t)) => match t.as_str() {
                "group_entity" => types[i] = Some(EntityType::Group),
                "project_entity" => types[i] = Some(EntityType::Project),
                _ => errors.push(format!(
                    "{} does not have a valid value",
                    name(i, "source_type")
                )),
            },
        }
    }
    let mut sources = vec![String::new(); objects.len()];
    for (i, m) in objects.iter().enumerate() {
        match get(m, "source_full_path").map(|v| string_of(&v)) {
            None => errors.push(format!("{} is missing", name(i, "source_full_path"))),
            Some(None) => errors.push(format!("{} is invalid", name(i, "source_full_path"))),
            Some(Some(path)) => {
                // Which rule applies depends on the type; an unknown type is reported on its own.
                let valid = match types[i] {
                    Some(EntityType::Group) => valid_namespace_path(&path),
                    Some(EntityType::Project) => valid_project_path(&path),
                    None => true,
                };
                if !valid {
                    errors.push(format!(
                        "{} {SOURCE_PATH_RULE}",
                        name(i, "source_full_path")
                    ));
                }
                sources[i] = path;
            }
        }
    }
    let mut namespaces = vec![String::new(); objects.len()];
    for (i, m) in objects.iter().enumerate() {
        match get(m, "destination_namespace").map(|v| string_of(&v)) {
            None => errors.push(format!("{} is missing", name(i, "destination_namespace"))),
            Some(None) => errors.push(format!("{} is invalid", name(i, "destination_namespace"))),
            Some(Some(ns)) => {
                if !ns.trim().is_empty() && !valid_namespace_path(&ns) {
                    errors.push(format!(
                        "{} {NAMESPACE_RULE}",
                        name(i, "destination_namespace")
                    ));
                }
                namespaces[i] = if ns.trim().is_empty() {
                    String::new()
                } else {
                    ns
                };
            }
        }
    }
    let mut slugs: Vec<Option<String>> = vec![None; objects.len()];
    for key in ["destination_slug", "destination_name"] {
        for (i, m) in objects.iter().enumerate() {
            match get(m, key).map(|v| string_of(&v)) {
                None => {}
                Some(None) => errors.push(format!("{} is invalid", name(i, key))),
                Some(Some(slug)) => {
                    if slug.chars().count() > MAX_PATH_LENGTH {
                        errors.push(format!(
                            "{} is expected to have length less than or equal to {MAX_PATH_LENGTH}",
                            name(i, key)
                        ));
                    } else if !valid_slug(&slug) {
                        errors.push(format!("{} {SLUG_RULE}", name(i, key)));
                    }
                    slugs[i].get_or_insert(slug);
                }
            }
        }
    }
    let mut flags = vec![(true, true); objects.len()];
    for key in ["migrate_projects", "migrate_memberships"] {
        for (i, m) in objects.iter().enumerate() {
            let Some(v) = m.get(key) else { continue };
            match bool_of(v) {
                Ok(Some(b)) if key == "migrate_projects" => flags[i].0 = b,
                Ok(Some(b)) => flags[i].1 = b,
                Ok(None) => {}
                Err(()) => errors.push(format!("{} is invalid", name(i, key))),
            }
        }
    }
    for (i, m) in objects.iter().enumerate() {
        let slug = get(m, "destination_slug").is_some();
        let alias = get(m, "destination_name").is_some();
        let pair = format!(
            "{}, {}",
            name(i, "destination_slug"),
            name(i, "destination_name")
        );
        if slug && alias {
            errors.push(format!("{pair} are mutually exclusive"));
        } else if !slug && !alias {
            errors.push(format!(
                "{pair} are missing, at least one parameter must be provided"
            ));
        }
    }

    (0..objects.len())
        .filter_map(|i| {
            Some(EntityRequest {
                entity_type: types[i]?,
                source_full_path: sources[i].clone(),
                destination_slug: slugs[i].clone()?,
                destination_namespace: namespaces[i].clone(),
                migrate_projects: flags[i].0,
                migrate_memberships: flags[i].1,
            })
        })
        .collect()
}

/// `sort`, `status` and pagination of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListParams {
    pub status: Option<Status>,
    pub sort: SortOrder,
    pub page: PageRequest,
}

impl ListParams {
    pub fn store_query(&self) -> crate::store::ListQuery {
        crate::store::ListQuery {
            status: self.status,
            sort: self.sort,
            page: self.page.page,
            per_page: self.page.per_page,
        }
    }
}

/// Reads a listing's query string; problems are appended to `errors` in Grape's words.
pub fn list_params(query: &Query, errors: &mut Vec<String>) -> ListParams {
    let page = page_request(query, errors);
    let sort = match last(query, "sort") {
        None | Some("desc") => SortOrder::Desc,
        Some("asc") => SortOrder::Asc,
        Some(_) => {
            errors.push("sort does not have a valid value".into());
            SortOrder::Desc
        }
    };
    let status = match last(query, "status") {
        None => None,
        Some(s) => {
            let parsed = Status::parse(s);
            if parsed.is_none() {
                errors.push("status does not have a valid value".into());
            }
            parsed
        }
    };
    ListParams { status, sort, page }
}

/// A numeric id from the path, as Grape's `type: Integer`: text that is not an integer is a 400
/// (`import_id is invalid`); a negative one cannot exist and is a 404.
pub fn path_id(raw: &str, name: &str, errors: &mut Vec<String>) -> Option<u64> {
    match raw.parse::<i64>() {
        Ok(n) => u64::try_from(n).ok(),
        Err(_) => {
            errors.push(format!("{name} is invalid"));
            None
        }
    }
}

/// Turns collected Grape messages into one 400, or nothing when there are none.
pub fn check(errors: Vec<String>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(errors.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn error_of(body: Value) -> String {
        match create_params(&body) {
            Err(ApiError::BadRequest(m)) => m,
            Err(other) => panic!("expected a 400, got {other:?}"),
            Ok(_) => panic!("expected a 400, the body was accepted"),
        }
    }

    fn valid() -> Value {
        json!({
            "configuration": {"url": "https://src.example", "access_token": "glpat-abc"},
            "entities": [{
                "source_type": "group_entity",
                "source_full_path": "full_path",
                "destination_slug": "destination_slug",
                "destination_namespace": "dest/ns"
            }]
        })
    }

    #[test]
    fn a_valid_body_gives_entity_requests_with_defaults() {
        let p = create_params(&valid()).unwrap();
        assert_eq!(p.url, "https://src.example");
        assert_eq!(p.access_token.expose_secret(), "glpat-abc");
        assert_eq!(
            p.entities,
            [EntityRequest {
                entity_type: EntityType::Group,
                source_full_path: "full_path".into(),
                destination_slug: "destination_slug".into(),
                destination_namespace: "dest/ns".into(),
                migrate_projects: true,
                migrate_memberships: true,
            }]
        );
    }

    #[test]
    fn an_empty_body_reports_everything_missing_like_grape() {
        assert_eq!(
            error_of(json!({})),
            "configuration is missing, configuration[url] is missing, configuration[access_token] is missing, \
             entities is missing, entities[source_type] is missing, entities[source_full_path] is missing, \
             entities[destination_namespace] is missing, entities[destination_slug], entities[destination_name] are missing, \
             at least one parameter must be provided"
        );
    }

    #[test]
    fn gitlab_request_spec_messages() {
        let mut both = valid();
        both["entities"][0]["destination_name"] = json!("destination_name");
        assert_eq!(
            error_of(both),
            "entities[0][destination_slug], entities[0][destination_name] are mutually exclusive"
        );

        let mut neither = valid();
        neither["entities"][0]
            .as_object_mut()
            .unwrap()
            .remove("destination_slug");
        assert_eq!(
            error_of(neither),
            "entities[0][destination_slug], entities[0][destination_name] are missing, at least one parameter must be provided"
        );

        let mut source = valid();
        source["entities"][0]["source_full_path"] = json!("http://example.com/full_path");
        assert_eq!(
            error_of(source),
            "entities[0][source_full_path] must be a relative path and not include protocol, sub-domain, \
             or domain information. For example, 'source/full/path' not 'https://example.com/source/full/path'"
        );

        let mut ns = valid();
        ns["entities"][0]["destination_namespace"] = json!("dest?nation-namespace");
        assert!(error_of(ns).contains(
            "entities[0][destination_namespace] must be a relative path and not include protocol, sub-domain, \
             or domain information. For example, 'destination/full/path' not 'https://example.com/destination/full/path'"
        ));

        let mut slug = valid();
        slug["entities"][0]["destination_slug"] = json!("des?tin?atoi-slugg");
        assert!(error_of(slug).contains(
            "entities[0][destination_slug] can only include non-accented letters, digits, '_', '-' and '.'. \
             It must not start with '-', '_', or '.', nor end with '-', '_', '.', '.git', or '.atom'. \
             For example, 'destination_namespace' not 'destination/namespace'"
        ));
    }

    #[test]
    fn source_type_flags_and_the_deprecated_name() {
        let mut body = valid();
        body["entities"][0]["source_type"] = json!("user_entity");
        assert_eq!(
            error_of(body),
            "entities[0][source_type] does not have a valid value"
        );

        let mut body = valid();
        body["entities"][0]["migrate_projects"] = json!("maybe");
        assert_eq!(error_of(body), "entities[0][migrate_projects] is invalid");

        let mut body = valid();
        let e = body["entities"][0].as_object_mut().unwrap();
        e.remove("destination_slug");
        e.insert("destination_name".into(), json!("old-style"));
        e.insert("migrate_projects".into(), json!("false"));
        e.insert("migrate_memberships".into(), json!(false));
        e.insert("destination_namespace".into(), json!(""));
        let p = create_params(&body).unwrap();
        assert_eq!(p.entities[0].destination_slug, "old-style");
        assert_eq!(p.entities[0].destination_namespace, "");
        assert!(!p.entities[0].migrate_projects);
        assert!(!p.entities[0].migrate_memberships);

        let mut body = valid();
        body["entities"][0]["source_type"] = json!("project_entity");
        body["entities"][0]["source_full_path"] = json!("group/project");
        assert_eq!(
            create_params(&body).unwrap().entities[0].entity_type,
            EntityType::Project
        );
        body["entities"][0]["source_full_path"] = json!("lonely");
        assert!(
            error_of(body).starts_with("entities[0][source_full_path] must be a relative path")
        );
    }

    #[test]
    fn wrong_shapes_are_invalid_not_panics() {
        assert_eq!(
            error_of(json!({"configuration": "x", "entities": 3})),
            "configuration is invalid, entities is invalid"
        );
        assert!(error_of(json!({"configuration": {"url": [], "access_token": {}}, "entities": ["x"]})).starts_with(
            "configuration[url] is invalid, configuration[access_token] is invalid, entities[0] is invalid"
        ));
        assert!(error_of(json!([1, 2])).starts_with("configuration is missing"));
        assert_eq!(
            error_of(json!({"configuration": {"url": "u", "access_token": "t"}, "entities": []})),
            "entities is missing"
        );
    }

    #[test]
    fn errors_never_repeat_the_access_token() {
        let mut body = valid();
        body["configuration"]["access_token"] = json!("glpat-should-not-leak");
        body["entities"][0]["destination_slug"] = json!("bad slug");
        assert!(!error_of(body).contains("glpat-should-not-leak"));
    }

    #[test]
    fn slugs_and_names_longer_than_gitlabs_255_are_refused() {
        for key in ["destination_slug", "destination_name"] {
            let mut body = valid();
            let e = body["entities"][0].as_object_mut().unwrap();
            e.remove("destination_slug");
            e.insert(key.into(), json!("a".repeat(256)));
            assert_eq!(
                error_of(body.clone()),
                format!("entities[0][{key}] is expected to have length less than or equal to 255")
            );
            body["entities"][0][key] = json!("a".repeat(255));
            assert!(
                create_params(&body).is_ok(),
                "{key} of 255 is GitLab's maximum"
            );
        }
    }

    #[test]
    fn slug_rules() {
        for ok in ["a", "destination_slug", "a.b-c_d", "A1", "x.gitlab"] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "_a",
            ".a",
            "a..b",
            "a/b",
            "a b",
            "é",
            "repo.git",
            "feed.atom",
            "a?b",
        ] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn namespace_path_rules() {
        for ok in ["group", "group/sub", "a.b/c_d-e", "_private", "g1/g2/g3"] {
            assert!(valid_namespace_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/group",
            "group/",
            "a//b",
            "http://x.com/a",
            "-a",
            "a.",
            "a.git",
            "a b",
            "a?b",
        ] {
            assert!(!valid_namespace_path(bad), "{bad}");
        }
    }

    #[test]
    fn list_parameters_and_their_errors() {
        let q = |s: &str| super::super::pagination::parse_query(Some(s));
        let mut errors = Vec::new();
        let p = list_params(
            &q("sort=asc&status=finished&page=2&per_page=5"),
            &mut errors,
        );
        assert!(errors.is_empty());
        assert_eq!(p.sort, SortOrder::Asc);
        assert_eq!(p.status, Some(Status::Finished));
        assert_eq!(
            p.page,
            PageRequest {
                page: 2,
                per_page: 5
            }
        );
        assert_eq!(list_params(&q(""), &mut errors).sort, SortOrder::Desc);
        list_params(&q("sort=up&status=done"), &mut errors);
        assert_eq!(
            errors,
            [
                "sort does not have a valid value",
                "status does not have a valid value"
            ]
        );
        let mut errors = Vec::new();
        assert_eq!(path_id("12", "import_id", &mut errors), Some(12));
        assert_eq!(path_id("-1", "import_id", &mut errors), None);
        assert!(errors.is_empty());
        assert_eq!(path_id("abc", "import_id", &mut errors), None);
        assert_eq!(errors, ["import_id is invalid"]);
    }
}
