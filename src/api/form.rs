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
    /// Rack's words for a `%` not followed by two hex digits.
    #[error("invalid %-encoding")]
    BadEncoding,
    /// Ruby's words for a name or value whose bytes are not UTF-8.
    #[error("invalid byte sequence in UTF-8")]
    NotUtf8,
}

/// Parses an `application/x-www-form-urlencoded` body into a JSON object.
pub fn parse(body: &[u8]) -> Result<Value, FormError> {
    let mut root = Map::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        normalize(&mut root, &decode(k)?, Value::String(decode(v)?), 0)?;
    }
    Ok(indexed_arrays(Value::Object(root)))
}

/// One name or value: `+` is a space and `%XX` a byte, as Rack decodes them. A malformed escape or
/// bytes that are not UTF-8 are refused rather than replaced, so no value changes on its way in.
fn decode(raw: &[u8]) -> Result<String, FormError> {
    let hex = |at: usize| raw.get(at).is_some_and(u8::is_ascii_hexdigit);
    if (0..raw.len()).any(|i| raw[i] == b'%' && !(hex(i + 1) && hex(i + 2))) {
        return Err(FormError::BadEncoding);
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
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
    fn malformed_escapes_and_bytes_that_are_not_utf8_are_refused() {
        assert_eq!(parse(b"a=%ZZ").unwrap_err(), FormError::BadEncoding);
        assert_eq!(parse(b"a=%4").unwrap_err(), FormError::BadEncoding);
        assert_eq!(parse(b"a%=1").unwrap_err(), FormError::BadEncoding);
        assert_eq!(parse(b"a=%FF%FE").unwrap_err(), FormError::NotUtf8);
        assert_eq!(parse(b"a=\xff").unwrap_err(), FormError::NotUtf8);
        assert_eq!(
            parse("a=%C3%A9&b=é".as_bytes()).unwrap(),
            json!({"a": "é", "b": "é"})
        );
        assert_eq!(p("a=1%2B1&&b=%25"), json!({"a": "1+1", "b": "%"}));
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        assert_eq!(p(""), json!({}));
    }
}
