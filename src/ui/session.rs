//! Who is signed in to the page, and which forms are the page's own.
//!
//! The sign-in form posts the appliance's API token; it is checked with the API's own comparison
//! (`api::auth::tokens_match`) and kept, with a session id drawn at sign-in, in a cookie the
//! browser's scripts cannot read: `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, and `Secure` when the request came over TLS: `serve`'s own
//! (`tls_cert_file`, `tls_key_file`; [`mark_direct_tls`]), or a TLS-terminating proxy's
//! (`X-Forwarded-Proto: https` or `Forwarded: proto=https`). On plain HTTP the cookie goes without
//! `Secure` (a browser drops a `Secure` cookie an `http://` origin sets),
//! which keeps it on the machine when `serve` listens on loopback, as it does by default; on any other
//! address `serve` warns that tokens cross the network in clear, and so does the sign-in page.
//!
//! A cookie signs in only while its session is open ([`Sessions`], in memory): signing out closes
//! it, so a copy of the cookie taken before is worthless; a session ends by itself after
//! [`SESSION_LIFETIME`], and every session ends when the process does.
//!
//! Every form that changes something carries a per-session token, HMAC-SHA256 of the cookie's token
//! under a key drawn when the process starts (so the page never holds anything the API token can be
//! recovered from), and is refused when the browser says it comes from another site (`Origin`,
//! `Sec-Fetch-Site`). The token itself is never logged, rendered into a page or put in a URL.

use crate::api::auth::tokens_match;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rand::TryRngCore;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie that holds the session id and the API token.
pub const COOKIE_NAME: &str = "appliance_token";

/// How long a sign-in lasts: a working day.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// At most this many sessions are open at once; a sign-in beyond it ends the oldest. Only holders of
/// the API token can open one, so this bounds memory, not who may sign in.
const MAX_SESSIONS: usize = 1024;

/// The open sessions: id -> when it ends.
#[derive(Clone)]
pub struct Sessions {
    open: Arc<Mutex<HashMap<String, Instant>>>,
    lifetime: Duration,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::with_lifetime(SESSION_LIFETIME)
    }
}

impl Sessions {
    pub fn with_lifetime(lifetime: Duration) -> Sessions {
        Sessions {
            open: Arc::default(),
            lifetime,
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; its id, 256 random bits in hex.
    pub fn open(&self) -> String {
        let mut id = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut id)
            .expect("the operating system's random source");
        let id = hex::encode(id);
        let now = Instant::now();
        let mut open = self.sessions();
        open.retain(|_, ends| *ends > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), now + self.lifetime);
        id
    }

    pub fn is_open(&self, id: &str) -> bool {
        self.sessions()
            .get(id)
            .is_some_and(|ends| *ends > Instant::now())
    }

    pub fn close(&self, id: &str) {
        self.sessions().remove(id);
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// The key of the per-session form tokens, drawn once per process.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn random() -> CsrfKey {
        let mut key = [0u8; 32];
        // The OS's random source; if it fails the process cannot make tokens of its own either.
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .expect("the operating system's random source");
        CsrfKey(key)
    }

    /// The form token of the session that holds `token`.
    pub fn form_token(&self, token: &SecretString) -> String {
        hex::encode(hmac_sha256(&self.0, token.expose_secret().as_bytes()))
    }
}

fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, msg)
        .as_ref()
        .try_into()
        .expect("HMAC-SHA256 is 32 bytes")
}

/// The session the request's cookie names, if that session is open and the cookie holds the
/// appliance's token.
pub fn signed_in(
    headers: &HeaderMap,
    expected: &SecretString,
    sessions: &Sessions,
) -> Option<String> {
    let (id, token) = cookie_session(headers)?;
    (tokens_match(&token, expected) && sessions.is_open(&id)).then_some(id)
}

/// The session id and the token of the request's cookie (`<id>.<token percent-encoded>`).
fn cookie_session(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim())?;
    let (id, token) = value.split_once('.')?;
    let token = percent_decode_str(token).decode_utf8_lossy().into_owned();
    Some((id.to_string(), token))
}

/// For `serve` terminating TLS itself: the request came in over https, whatever a client claims, so
/// `X-Forwarded-Proto` is set to `https` (the one thing [`over_tls`] goes by that `serve` can vouch
/// for) and `Forwarded` is dropped.
pub async fn mark_direct_tls<B>(mut req: axum::http::Request<B>) -> axum::http::Request<B> {
    let headers = req.headers_mut();
    headers.remove("forwarded");
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    req
}

/// Whether the browser reached us over TLS: `serve`'s own ([`mark_direct_tls`]), or a proxy's in
/// front of `serve`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    header("x-forwarded-proto").split(',').next().map(str::trim) == Some("https")
        || header("forwarded")
            .split([';', ','])
            .any(|p| p.trim() == "proto=https")
}

/// The `Set-Cookie` that signs in to session `id` with `token`, for as long as the session lasts.
pub fn sign_in_cookie(id: &str, token: &str, lifetime: Duration, tls: bool) -> HeaderValue {
    let value = utf8_percent_encode(token, NON_ALPHANUMERIC);
    let secure = if tls { "; Secure" } else { "" };
    let max_age = lifetime.as_secs();
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={id}.{value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .expect("a hex id and a percent-encoded token make a valid header value")
}

/// The `Set-Cookie` that signs out: the cookie emptied and expired.
pub fn sign_out_cookie(tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ))
    .expect("a valid header value")
}

/// Why a form post is refused before it is read; None when it comes from this page.
pub fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = get("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Some("the form was sent from another site");
    }
    if let Some(origin) = get(ORIGIN.as_str()) {
        let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or("");
        let host = get("x-forwarded-host")
            .and_then(|h| h.split(',').next())
            .map(str::trim)
            .or_else(|| get(HOST.as_str()));
        if host != Some(authority) {
            return Some("the form was sent from another site");
        }
    }
    None
}

/// Whether the form's token is the session's.
pub fn form_token_ok(key: &CsrfKey, token: &SecretString, presented: Option<&str>) -> bool {
    let expected = SecretString::from(key.form_token(token));
    presented.is_some_and(|p| tokens_match(p, &expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2 uses a 4-byte key; a 32-byte key zero-padded is the same HMAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_cookie_signs_in_only_with_the_token_and_an_open_session() {
        let token = SecretString::from("s3cret; =x".to_string());
        let sessions = Sessions::default();
        let id = sessions.open();
        let set = sign_in_cookie(&id, "s3cret; =x", SESSION_LIFETIME, false);
        let set = set.to_str().unwrap();
        assert!(
            set.contains("HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"),
            "{set}"
        );
        assert!(!set.contains("Secure") && !set.contains("s3cret;"), "{set}");
        assert!(
            sign_in_cookie(&id, "t", SESSION_LIFETIME, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        let value = set.split(';').next().unwrap();
        let cookie = headers(&[("cookie", &format!("a=b; {value}"))]);
        assert_eq!(signed_in(&cookie, &token, &sessions), Some(id.clone()));
        // The right token without a session, or in another process's session: not signed in.
        let other = Sessions::default();
        assert_eq!(signed_in(&cookie, &token, &other), None);
        let bare = headers(&[("cookie", "appliance_token=s3cret%3B%20%3Dx")]);
        assert_eq!(signed_in(&bare, &token, &sessions), None);
        let made_up = headers(&[("cookie", "appliance_token=00.s3cret%3B%20%3Dx")]);
        assert_eq!(signed_in(&made_up, &token, &sessions), None);
        // An open session with another token: not signed in.
        let wrong = format!("appliance_token={id}.s3cret");
        assert_eq!(
            signed_in(&headers(&[("cookie", &wrong)]), &token, &sessions),
            None
        );
        assert_eq!(signed_in(&HeaderMap::new(), &token, &sessions), None);
        // Closed (signed out): the same cookie no longer signs in.
        sessions.close(&id);
        assert_eq!(signed_in(&cookie, &token, &sessions), None);
    }

    #[test]
    fn sessions_end_by_themselves_and_stay_bounded() {
        let brief = Sessions::with_lifetime(Duration::ZERO);
        let id = brief.open();
        assert!(!brief.is_open(&id), "a session past its lifetime is closed");
        let sessions = Sessions::default();
        let first = sessions.open();
        for _ in 0..MAX_SESSIONS {
            sessions.open();
        }
        assert!(!sessions.is_open(&first), "the oldest session makes room");
        assert_eq!(sessions.sessions().len(), MAX_SESSIONS);
    }

    #[test]
    fn tls_is_what_the_proxy_says() {
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_tls(&headers(&[(
            "forwarded",
            "for=1.2.3.4;proto=https"
        )])));
        assert!(!over_tls(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_tls(&HeaderMap::new()));
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(cross_site(&own), None);
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(cross_site(&other).is_some());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(cross_site(&null).is_some());
        let fetch = headers(&[("host", "a"), ("sec-fetch-site", "cross-site")]);
        assert!(cross_site(&fetch).is_some());
        assert_eq!(cross_site(&headers(&[("host", "a")])), None);
    }

    #[test]
    fn form_tokens_are_per_session_and_per_process() {
        let (k1, k2) = (CsrfKey::random(), CsrfKey::random());
        let t = SecretString::from("token-a".to_string());
        let f = k1.form_token(&t);
        assert!(form_token_ok(&k1, &t, Some(&f)));
        assert!(!form_token_ok(&k2, &t, Some(&f)));
        assert!(!form_token_ok(
            &k1,
            &SecretString::from("token-b".to_string()),
            Some(&f)
        ));
        assert!(!form_token_ok(&k1, &t, None));
        assert!(!f.contains("token-a"));
    }
}
