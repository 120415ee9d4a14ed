//! How git is run against a forge (project migration will clone and push repositories): with the same
//! rules as the HTTP client. The token goes to git through its environment (`GIT_CONFIG_*`), never on
//! the command line (`ps` shows it) and never in a git config file; it is sent only to the forge's own
//! URL (a URL-scoped `http.<base>/.extraHeader`), and git follows no redirect, so it cannot carry the
//! token to another origin. No prompt, credential helper or other protocol is used.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use std::process::Command;
use url::Url;

/// A `git` command for the forge at `base` with `token`; the caller adds the subcommand and its
/// arguments (e.g. `ls-remote`, `clone --mirror`). Git answers 401 or a redirect with an error.
pub fn git_command(base: &Url, token: &SecretString) -> Command {
    let scope = format!("{}/", super::base_string(base));
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("oauth2:{}", token.expose_secret()));
    let config: [(String, String); 3] = [
        ("http.followRedirects".into(), "false".into()),
        // Only requests under the forge's own URL carry the token.
        (
            format!("http.{scope}.extraHeader"),
            format!("Authorization: Basic {basic}"),
        ),
        // Nothing is asked of a terminal or stored in a credential helper.
        ("credential.helper".into(), String::new()),
    ];
    let mut cmd = Command::new("git");
    // Configuration from the environment of whoever started the appliance must not add to ours.
    cmd.env_remove("GIT_CONFIG_PARAMETERS")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", base.scheme())
        .env("GIT_CONFIG_COUNT", config.len().to_string());
    for (i, (key, value)) in config.iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
            .env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    fn env_of(cmd: &Command) -> HashMap<String, String> {
        cmd.get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect()
    }

    #[test]
    fn the_token_is_in_the_environment_scoped_to_the_forge_and_redirects_are_off() {
        let token = SecretString::from("glpat-git-secret".to_string());
        let base = Url::parse("https://gitlab.example.com/gitlab").unwrap();
        let mut cmd = git_command(&base, &token);
        cmd.args([
            "ls-remote",
            "https://gitlab.example.com/gitlab/acme/app.git",
        ]);
        let argv: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            !argv
                .iter()
                .any(|a| a.contains("glpat") || a.contains("Basic"))
        );
        let env = env_of(&cmd);
        let config: HashMap<&str, &str> = (0..env["GIT_CONFIG_COUNT"].parse::<usize>().unwrap())
            .map(|i| {
                (
                    env[&format!("GIT_CONFIG_KEY_{i}")].as_str(),
                    env[&format!("GIT_CONFIG_VALUE_{i}")].as_str(),
                )
            })
            .collect();
        assert_eq!(config["http.followRedirects"], "false");
        let header = config["http.https://gitlab.example.com/gitlab/.extraHeader"];
        let basic = base64::engine::general_purpose::STANDARD.encode("oauth2:glpat-git-secret");
        assert_eq!(header, format!("Authorization: Basic {basic}"));
        assert_eq!(env["GIT_ALLOW_PROTOCOL"], "https");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
    }

    /// git itself, against a forge that redirects to another origin: it fails, and the other origin
    /// never hears from it.
    #[tokio::test(flavor = "multi_thread")]
    async fn git_follows_no_redirect_to_another_origin() {
        use axum::{Router, http::StatusCode, http::Uri};
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let other = Router::new().fallback(move |uri: Uri| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(uri.to_string());
                StatusCode::NOT_FOUND
            }
        });
        let other_port = serve(other).await;
        let redirecting = Router::new().fallback(move |uri: Uri| async move {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            (
                StatusCode::FOUND,
                [("location", format!("http://localhost:{other_port}{path}"))],
                "",
            )
        });
        let port = serve(redirecting).await;
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut cmd = git_command(&base, &SecretString::from("glpat-x".to_string()));
        cmd.args(["ls-remote", &format!("{base}acme/app.git")]);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("git runs"))
            .await
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
    }

    async fn serve(app: axum::Router) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }
}
