//! Form-encoded bodies with Rack's bracket keys, as `curl -d` and GitLab's own docs send them:
//! `configuration[url]=...&entities[][source_type]=group_entity&entities[][source_full_path]=a`.
//! The keys are folded into the same JSON tree a JSON body gives, following Rack's rules (a `[]`
//! segment starts a new hash in the array once the last one already has the key), so that one
//! validator serves both. `entities[0][...]` (indexed) keys become an array as well.
//! Errors name keys only, never values: a value may be a token.

use serde_json::{Map, Value};

/// Rack's default nesting limit is deeper; nothing in this API nests beyond three levels.
const MAX_DEPTH: usize = 32;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("expected {expected} (got {got}) for param `{key}'")]
    Type {
        expected: &'static str,
        got: &'static str,
        key: String,
    },
    #[error("the parameters are nested too deeply")]
    TooDeep,
}

/// Parses an `application/x-www-form-urlencoded` body into a JSON object.
pub fn parse(body: &[u8]) -> Result<Value, FormError> {
    let mut root = Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        normalize(&mut root, &k, Value::String(v.into_owned()), 0)?;
    }
    Ok(indexed_arrays(Value::Object(root)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "Hash",
        Value::Array(_) => "Array",
        _ => "String",
    }
}

/// Rack's `normalize_params`: stores `v` under the bracketed `name` inside `params`.
fn normalize(
    params: &mut Map<String, Value>,
    name: &str,
    v: Value,
    depth: usize,
) -> Result<(), FormError> {
    if depth >= MAX_DEPTH {
        return Err(FormError::TooDeep);
    }
    let (k, after) = if depth == 0 {
        // At the start a leading `[` is part of the key.
        match name.char_indices().skip(1).find(|(_, c)| *c == '[') {
            Some((i, _)) => (&name[..i], &name[i..]),
            None => (name, ""),
        }
    } else if let Some(rest) = name.strip_prefix("[]") {
        ("[]", rest)
    } else if let Some(end) = name.strip_prefix('[').and_then(|rest| rest.find(']')) {
        (&name[1..end + 1], &name[end + 2..])
    } else {
        (name, "")
    };
    if k.is_empty() {
        return Ok(());
    }
    if after.is_empty() {
        params.insert(k.to_string(), v);
    } else if after == "[" {
        params.insert(name.to_string(), v);
    } else if after == "[]" {
        let slot = params
            .entry(k.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        match slot {
            Value::Array(items) => items.push(v),
            other => return Err(type_error("Array", other, k)),
        }
    } else if let Some(rest) = after.strip_prefix("[]") {
        // `x[][y]`: a hash inside an array.
        let child_key = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .filter(|c| !c.is_empty() && !c.contains('[') && !c.contains(']'))
            .unwrap_or(rest);
        let slot = params
            .entry(k.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        let items = match slot {
            Value::Array(items) => items,
            other => return Err(type_error("Array", other, k)),
        };
        let reuse_last =
            matches!(items.last(), Some(Value::Object(last)) if !has_key(last, child_key));
        match items.last_mut() {
            Some(Value::Object(last)) if reuse_last => normalize(last, child_key, v, depth + 1)?,
            _ if child_key == "[]" => items.push(Value::Array(vec![v])),
            _ => {
                let mut fresh = Map::new();
                normalize(&mut fresh, child_key, v, depth + 1)?;
                items.push(Value::Object(fresh));
            }
        }
    } else {
        let slot = params
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(inner) => normalize(inner, after, v, depth + 1)?,
            other => return Err(type_error("Hash", other, k)),
        }
    }
    Ok(())
}

fn type_error(expected: &'static str, got: &Value, key: &str) -> FormError {
    FormError::Type {
        expected,
        got: kind(got),
        key: key.to_string(),
    }
}

/// Rack's `params_hash_has_key?`: whether the bracketed `key` already has a value in `hash`.
fn has_key(hash: &Map<String, Value>, key: &str) -> bool {
    if key.contains("[]") {
        return false;
    }
    let mut current = hash;
    let parts: Vec<&str> = key.split(['[', ']']).filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        match current.get(*part) {
            None => return false,
            Some(Value::Object(inner)) => current = inner,
            Some(_) if i + 1 == parts.len() => return true,
            Some(_) => return false,
        }
    }
    true
}

/// Turns a hash whose keys are all indexes (`entities[0][...]`, `entities[1][...]`) into an array in
/// index order, at every level.
fn indexed_arrays(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let indexed = !map.is_empty()
                && map
                    .keys()
                    .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
            if indexed {
                let mut items: Vec<(u128, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse::<u128>().unwrap_or(u128::MAX), indexed_arrays(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, indexed_arrays(v)))
                        .collect(),
                )
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(indexed_arrays).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Value {
        parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn nested_hash_keys_become_objects() {
        assert_eq!(
            p(
                "configuration[url]=https%3A%2F%2Fgitlab.example.com&configuration[access_token]=t%2B1"
            ),
            json!({"configuration": {"url": "https://gitlab.example.com", "access_token": "t+1"}})
        );
    }

    #[test]
    fn empty_brackets_start_a_new_hash_when_the_last_already_has_the_key() {
        let body = "entities[][source_type]=group_entity&entities[][source_full_path]=a\
                    &entities[][source_type]=group_entity&entities[][source_full_path]=b&entities[][migrate_projects]=false";
        assert_eq!(
            p(body),
            json!({"entities": [
                {"source_type": "group_entity", "source_full_path": "a"},
                {"source_type": "group_entity", "source_full_path": "b", "migrate_projects": "false"}
            ]})
        );
    }

    #[test]
    fn indexed_keys_become_an_array_in_index_order() {
        let body = "entities[1][source_full_path]=b&entities[0][source_full_path]=a&entities[10][source_full_path]=c";
        assert_eq!(
            p(body),
            json!({"entities": [{"source_full_path": "a"}, {"source_full_path": "b"}, {"source_full_path": "c"}]})
        );
    }

    #[test]
    fn plain_keys_arrays_and_pluses() {
        assert_eq!(
            p("a=1&b[]=x&b[]=y&c=hello+world&d"),
            json!({"a": "1", "b": ["x", "y"], "c": "hello world", "d": ""})
        );
    }

    #[test]
    fn a_later_plain_value_replaces_an_earlier_one() {
        assert_eq!(p("sort=asc&sort=desc"), json!({"sort": "desc"}));
    }

    #[test]
    fn conflicting_types_are_refused_without_echoing_values() {
        let err = parse(b"configuration=secret-token&configuration[url]=x").unwrap_err();
        assert_eq!(
            err,
            FormError::Type {
                expected: "Hash",
                got: "String",
                key: "configuration".into()
            }
        );
        assert!(!err.to_string().contains("secret-token"));
        assert!(parse(b"entities=x&entities[][a]=1").is_err());
    }

    #[test]
    fn absurd_nesting_is_refused() {
        let key = "a".to_string() + &"[b]".repeat(40);
        assert_eq!(
            parse(format!("{key}=1").as_bytes()).unwrap_err(),
            FormError::TooDeep
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        assert_eq!(p(""), json!({}));
    }
}
