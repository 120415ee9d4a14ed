//! Outbound HTTP to forges. One client per instance carries the token, bounds concurrency and the time
//! of each attempt, retries what is safe to retry, waits out rate limits (`Retry-After`, `RateLimit-*`)
//! and follows GitLab's pagination: REST list pages, and GraphQL connections by cursor (`graphql.rs`).
//! It never logs a token, refuses plain `http://` unless the host is loopback or the user allowed it,
//! sends the token only to the configured origin and follows no redirect; `git.rs` holds git to the
//! same rules.

pub mod client;
pub mod git;
pub mod gitlab;
pub mod graphql;
pub mod lfs;
pub mod network;

pub use client::{ForgeClient, ListPage};
pub use gitlab::GitLab;

use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ForgeError {
    #[error("{0}")]
    Url(String),
    #[error("{method} {url} answered {status}: {message}")]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
        correlation_id: Option<String>,
        retry_after: Option<Duration>,
        /// The request only read (a GET, or a GraphQL query): a 500 that outlasts the retries means
        /// the forge is broken, not that one record is bad.
        read: bool,
    },
    /// No usable answer. `maybe_applied` is true when the request may have reached the forge (a reset
    /// or timeout after sending), so a write may have happened.
    #[error("{method} {url} failed: {message}")]
    Network {
        method: String,
        url: String,
        message: String,
        maybe_applied: bool,
    },
    /// A 3xx answer. Never followed: the token must not reach an origin other than the configured
    /// one, so the user is told which URL to configure instead.
    #[error(
        "The {role} {base} redirected {request} to {location}: set the {role} URL to the one GitLab answers on{hint}; redirects are not followed, so the token only goes to the URL you configured"
    )]
    Redirected {
        role: &'static str,
        base: String,
        /// `GET /api/v4/version`
        request: String,
        location: String,
        hint: String,
    },
    #[error("{url} returned a body that is not what GitLab sends: {message}")]
    Decode { url: String, message: String },
    /// A GraphQL answer with an `errors` list (a document the forge's schema refuses, a resolver that
    /// failed): nothing was read, and a mutation was not applied.
    #[error("{url} answered with GraphQL errors: {message}")]
    GraphQl { url: String, message: String },
    /// The forge cannot give what is asked for (a source without the API a relation needs); the
    /// message says what it lacks and what to change.
    #[error("{0}")]
    Unsupported(String),
}

impl ForgeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ForgeError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The message a user should see in a failure row: the forge's own words when it gave any.
    pub fn message(&self) -> String {
        match self {
            ForgeError::Status { message, .. } | ForgeError::GraphQl { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        }
    }

    pub fn correlation_id(&self) -> Option<&str> {
        match self {
            ForgeError::Status { correlation_id, .. } => correlation_id.as_deref(),
            _ => None,
        }
    }

    /// The exception class reported in failure rows, in the spirit of GitLab's names.
    pub fn class(&self) -> &'static str {
        match self {
            ForgeError::Url(_) => "Appliance::InvalidUrl",
            ForgeError::Redirected { .. } => "Appliance::Redirected",
            ForgeError::Status { status: 429, .. } => "BulkImports::RetryPipelineError",
            ForgeError::Status { status, .. } if *status >= 500 => "BulkImports::NetworkError",
            ForgeError::Status { .. } => "Appliance::DestinationRejected",
            ForgeError::Network { .. } => "BulkImports::NetworkError",
            ForgeError::Decode { .. } => "BulkImports::Error",
            ForgeError::GraphQl { .. } => "Appliance::GraphQLError",
            ForgeError::Unsupported(_) => "Appliance::SourceUnsupported",
        }
    }

    /// The class of an error met while reading the source: a refusal there is the source's, not the
    /// destination's.
    pub fn source_class(&self) -> &'static str {
        match self {
            ForgeError::Status { status, .. } if *status < 500 && *status != 429 => {
                "Appliance::SourceRejected"
            }
            other => other.class(),
        }
    }

    /// True when the forge could not be reached at all (as opposed to answering with an error):
    /// the migration should pause and be resumable rather than record failures.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ForgeError::Network { .. } => true,
            // A read that still fails with 500 after every retry means the forge is broken, not that
            // one record is bad (a write's 500 may be that record's own).
            ForgeError::Status { status, read, .. } => {
                matches!(status, 429 | 502 | 503 | 504) || (*status == 500 && *read)
            }
            _ => false,
        }
    }
}

/// Parses a forge base URL and applies the transport policy: `https://` always, `http://` only to a
/// loopback host or with `--allow-http`. Credentials in the URL are refused, so they cannot be stored.
pub fn parse_forge_url(raw: &str, allow_http: bool) -> Result<Url, ForgeError> {
    let mut url = Url::parse(raw.trim())
        .map_err(|e| ForgeError::Url(format!("`{raw}` is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ForgeError::Url(format!(
            "`{}` carries credentials; pass the token with its own option instead",
            redact(&url)
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if !loopback && !allow_http {
                return Err(ForgeError::Url(format!(
                    "refusing plain http to {url}: tokens would cross the network unencrypted; use https, or pass --allow-http if this network is trusted"
                )));
            }
        }
        other => {
            return Err(ForgeError::Url(format!(
                "`{raw}`: unsupported scheme `{other}`; use https"
            )));
        }
    }
    if url.host().is_none() {
        return Err(ForgeError::Url(format!("`{raw}` has no host")));
    }
    // A base URL with or without a trailing slash means the same instance.
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The form of a base URL that users see and the store keeps: `https://host/prefix`, no trailing slash.
pub fn base_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_while_reading_is_the_sources() {
        let status = |status| ForgeError::Status {
            method: "GET".into(),
            url: "https://src.example/api/v4/groups/1/export_relations/download".into(),
            status,
            message: "404 Batch Not Found".into(),
            correlation_id: None,
            retry_after: None,
            read: true,
        };
        assert_eq!(status(404).source_class(), "Appliance::SourceRejected");
        assert_eq!(status(404).class(), "Appliance::DestinationRejected");
        assert_eq!(status(503).source_class(), "BulkImports::NetworkError");
        assert_eq!(
            status(429).source_class(),
            "BulkImports::RetryPipelineError"
        );
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_or_allowed() {
        assert!(parse_forge_url("https://gitlab.example.com", false).is_ok());
        assert!(parse_forge_url("http://127.0.0.1:8080", false).is_ok());
        assert!(parse_forge_url("http://localhost:8080", false).is_ok());
        assert!(parse_forge_url("http://[::1]:8080", false).is_ok());
        let err = parse_forge_url("http://gitlab.example.com", false).unwrap_err();
        assert!(err.to_string().contains("--allow-http"), "{err}");
        assert!(parse_forge_url("http://gitlab.example.com", true).is_ok());
    }

    #[test]
    fn urls_with_credentials_or_odd_schemes_are_refused() {
        let err = parse_forge_url("https://root:secret@gitlab.example.com", false).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(parse_forge_url("ftp://gitlab.example.com", false).is_err());
        assert!(parse_forge_url("not a url", false).is_err());
    }

    #[test]
    fn trailing_slashes_are_normalised() {
        let u = parse_forge_url("https://gitlab.example.com/gitlab/", false).unwrap();
        assert_eq!(u.as_str(), "https://gitlab.example.com/gitlab");
    }
}
