//! Request parameters the way Grape sees them: query string, JSON, form-encoded and multipart
//! bodies merged into one map, with typed accessors that fail with GitLab's
//! `{"error":"<param> is invalid"}`. Unknown parameters are kept and simply never read, as in GitLab.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::error::ApiError;

/// A file sent in a multipart body.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub field: String,
    pub filename: String,
    pub content: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
pub struct Params {
    values: BTreeMap<String, Value>,
    pub files: Vec<FilePart>,
}

/// Decodes `a+b%20c` the way a form decoder does.
pub fn form_decode(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Query or form pairs in order, decoded.
pub fn parse_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(pair), String::new()),
        })
        .collect()
}

impl Params {
    /// Adds form-style pairs; `key[]` pairs collect into an array under `key`.
    pub fn add_pairs(&mut self, pairs: &[(String, String)]) {
        for (key, value) in pairs {
            if let Some(base) = key.strip_suffix("[]") {
                let entry = self
                    .values
                    .entry(base.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::String(value.clone()));
                } else {
                    *entry = Value::Array(vec![Value::String(value.clone())]);
                }
            } else {
                self.values
                    .insert(key.clone(), Value::String(value.clone()));
            }
        }
    }

    /// Adds the body according to its content type.
    pub fn add_body(&mut self, content_type: &str, body: &[u8]) -> Result<(), ApiError> {
        if body.is_empty() {
            return Ok(());
        }
        let lower = content_type.to_ascii_lowercase();
        if lower.starts_with("application/json") {
            let value: Value = serde_json::from_slice(body)
                .map_err(|_| ApiError::bad_request("400 Bad request - Invalid JSON"))?;
            if let Value::Object(map) = value {
                self.values.extend(map);
            }
        } else if lower.starts_with("multipart/form-data") {
            let boundary = content_type
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("boundary="))
                .next()
                .map(|b| b.trim_matches('"').to_string())
                .ok_or_else(|| ApiError::bad_request("400 Bad request - missing boundary"))?;
            self.add_multipart(&boundary, body);
        } else {
            let text = String::from_utf8_lossy(body);
            self.add_pairs(&parse_pairs(&text));
        }
        Ok(())
    }

    fn add_multipart(&mut self, boundary: &str, body: &[u8]) {
        let delimiter = format!("--{boundary}");
        for part in split_bytes(body, delimiter.as_bytes()) {
            let part = part.strip_prefix(b"\r\n").unwrap_or(part);
            let Some(header_end) = find(part, b"\r\n\r\n") else {
                continue;
            };
            let headers = String::from_utf8_lossy(&part[..header_end]);
            let mut content = &part[header_end + 4..];
            content = content.strip_suffix(b"\r\n").unwrap_or(content);
            let disposition = headers
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
                .unwrap_or_default();
            let name = disposition_value(disposition, "name");
            let filename = disposition_value(disposition, "filename");
            match (name, filename) {
                (Some(field), Some(filename)) => self.files.push(FilePart {
                    field,
                    filename,
                    content: content.to_vec(),
                }),
                (Some(field), None) => {
                    let text = String::from_utf8_lossy(content).into_owned();
                    self.add_pairs(&[(field, text)]);
                }
                _ => {}
            }
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.values.get(key).is_some_and(|v| !v.is_null())
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// A parameter as text; numbers and booleans as they print.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A required, non-blank text parameter.
    pub fn required(&self, key: &str) -> Result<String, ApiError> {
        match self.text(key) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            Some(_) => Err(ApiError::Param(format!("{key} is empty"))),
            None => Err(ApiError::missing(key)),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| ApiError::invalid(key)),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(key)),
            Some(_) => Err(ApiError::invalid(key)),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) => Ok(Some(n.as_u64() != Some(0))),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" => Ok(Some(true)),
                "false" | "f" | "0" | "no" | "n" => Ok(Some(false)),
                _ => Err(ApiError::invalid(key)),
            },
            Some(_) => Err(ApiError::invalid(key)),
        }
    }

    /// A list given as a JSON array, `key[]` pairs or a comma-separated string.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        let items: Vec<String> = match self.values.get(key)? {
            Value::Array(items) => items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            Value::String(s) => s.split(',').map(str::to_string).collect(),
            Value::Number(n) => vec![n.to_string()],
            _ => return None,
        };
        Some(
            items
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// A `YYYY-MM-DD` date; an empty string clears it (`Some(None)`).
    pub fn date(&self, key: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.text(key) {
            None if self.values.contains_key(key) => Ok(Some(None)),
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(Some(None)),
            Some(s) => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                let day = s.get(..10).unwrap_or(&s);
                time::Date::parse(day, format)
                    .map(|_| Some(Some(day.to_string())))
                    .map_err(|_| ApiError::invalid(key))
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter) {
        parts.push(&rest[..at]);
        rest = &rest[at + delimiter.len()..];
    }
    parts.push(rest);
    parts
        .into_iter()
        .skip(1)
        .filter(|p| !p.starts_with(b"--"))
        .collect()
}

fn disposition_value(header: &str, key: &str) -> Option<String> {
    header.split(';').find_map(|piece| {
        let (k, v) = piece.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_arrays_and_json_merge() {
        let mut params = Params::default();
        params.add_pairs(&parse_pairs("labels[]=a&labels[]=b+c&title=x%2Fy"));
        assert_eq!(params.list("labels"), Some(vec!["a".into(), "b c".into()]));
        assert_eq!(params.text("title").as_deref(), Some("x/y"));
        params
            .add_body(
                "application/json",
                br#"{"parent_id": 12, "confidential": true}"#,
            )
            .unwrap();
        assert_eq!(params.u64("parent_id").unwrap(), Some(12));
        assert_eq!(params.bool("confidential").unwrap(), Some(true));
    }

    #[test]
    fn multipart_file_and_fields() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--XX\r\nContent-Disposition: form-data; name=\"alt\"\r\n\r\nhello\r\n--XX--\r\n";
        let mut params = Params::default();
        params
            .add_body("multipart/form-data; boundary=XX", body)
            .unwrap();
        assert_eq!(params.files.len(), 1);
        assert_eq!(params.files[0].filename, "a.png");
        assert_eq!(params.files[0].content, b"PNGDATA");
        assert_eq!(params.text("alt").as_deref(), Some("hello"));
    }
}
