//! Who may use the API: whoever presents the appliance's token, as GitLab clients do (`PRIVATE-TOKEN`
//! or `Authorization: Bearer`). The token comes from serve's settings (`api_token` or
//! `api_token_file`, `APPLIANCE_API_TOKEN`...), else `<data>/api-token`, else is generated there (mode 0600) on first start. Comparison is constant-time; the token is a
//! `SecretString` and is never logged.

use super::ApiState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::TryRngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// The file under the data directory that keeps the API token.
pub const TOKEN_FILE: &str = "api-token";

/// Where the API token came from, so that the caller can tell the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOrigin {
    /// Serve's settings; the string names where (`APPLIANCE_API_TOKEN`, `api_token_file in ...`).
    Configured(String),
    /// An existing `<data>/api-token`.
    File(PathBuf),
    /// Generated just now into this file (mode 0600): print its path so the operator can read it.
    Generated(PathBuf),
}

/// The API token: the configured one (with where it was configured) if any; else `<data>/api-token`; else 32 random
/// bytes, hex-encoded, written to `<data>/api-token` with mode 0600.
pub fn load_or_create_token(
    configured: Option<(SecretString, String)>,
    data_dir: &Path,
) -> io::Result<(SecretString, TokenOrigin)> {
    if let Some((t, from)) = configured.filter(|(t, _)| !t.expose_secret().trim().is_empty()) {
        return Ok((t, TokenOrigin::Configured(from)));
    }
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(content) => {
            let t = content.trim();
            if t.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the API token file {} is empty; write a token into it, remove it to have one generated, or set api_token_file (APPLIANCE_API_TOKEN_FILE) to a file holding one",
                        path.display()
                    ),
                ));
            }
            Ok((SecretString::from(t.to_string()), TokenOrigin::File(path)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng
                .try_fill_bytes(&mut bytes)
                .map_err(io::Error::other)?;
            let token = hex::encode(bytes);
            crate::secret::write_private(&path, format!("{token}\n").as_bytes())?;
            Ok((SecretString::from(token), TokenOrigin::Generated(path)))
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot read the API token file {}: {e}", path.display()),
        )),
    }
}

/// The token a request presents: `PRIVATE-TOKEN: <t>` or `Authorization: Bearer <t>`.
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("private-token").and_then(|v| v.to_str().ok()) {
        let t = t.trim();
        if !t.is_empty() {
            return Some(t);
        }
    }
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    let t = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !t.is_empty()).then_some(t)
}

/// Compares digests so that neither the content nor the length of the expected token leaks through
/// timing.
pub fn tokens_match(presented: &str, expected: &SecretString) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.expose_secret().as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Middleware: refuses a request without the appliance's token with GitLab's 401.
pub async fn require_token(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    match presented_token(req.headers()) {
        Some(t) if tokens_match(t, &state.token) => next.run(req).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn private_token_and_bearer_are_both_read() {
        assert_eq!(
            presented_token(&headers(&[("private-token", "abc")])),
            Some("abc")
        );
        assert_eq!(
            presented_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            presented_token(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            presented_token(&headers(&[("authorization", "Basic YTpi")])),
            None
        );
        assert_eq!(
            presented_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(presented_token(&headers(&[("private-token", "")])), None);
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }

    #[test]
    fn tokens_match_only_when_equal() {
        let expected = SecretString::from("s3cret".to_string());
        assert!(tokens_match("s3cret", &expected));
        assert!(!tokens_match("s3cre", &expected));
        assert!(!tokens_match("s3cret ", &expected));
        assert!(!tokens_match("", &expected));
    }

    #[test]
    fn the_configured_token_wins_then_file_then_a_generated_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let configured = (
            SecretString::from("from-env"),
            "APPLIANCE_API_TOKEN".to_string(),
        );
        let (t, origin) = load_or_create_token(Some(configured), dir.path()).unwrap();
        assert_eq!(
            (t.expose_secret(), origin),
            (
                "from-env",
                TokenOrigin::Configured("APPLIANCE_API_TOKEN".into())
            )
        );
        assert!(!dir.path().join(TOKEN_FILE).exists());

        let (generated, origin) =
            load_or_create_token(Some((SecretString::from(""), "x".into())), dir.path()).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        assert_eq!(origin, TokenOrigin::Generated(path.clone()));
        assert_eq!(generated.expose_secret().len(), 64);
        assert!(
            generated
                .expose_secret()
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let (again, origin) = load_or_create_token(None, dir.path()).unwrap();
        assert_eq!(origin, TokenOrigin::File(path.clone()));
        assert_eq!(again.expose_secret(), generated.expose_secret());
    }

    #[test]
    fn an_empty_token_file_is_an_error_that_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE), "\n").unwrap();
        let err = load_or_create_token(None, dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("APPLIANCE_API_TOKEN_FILE"),
            "{err}"
        );
        assert!(err.to_string().contains("api-token"), "{err}");
    }
}
