//! `appliance serve`'s settings, from three places in rising precedence: the config file
//! (`/etc/appliance/appliance.toml`, or the one `--config` / `APPLIANCE_CONFIG` names), `APPLIANCE_*`
//! environment variables, then command-line flags. Every secret can also come from a file
//! (`<name>_file`), which is how the systemd unit passes tokens: never on a command line.
//!
//! A wrong setting (an unknown key, a value of the wrong type, a file that cannot be read) is a
//! [`ConfigError`] naming the setting the way it was given (`resume_after in /etc/...`,
//! `APPLIANCE_RESUME_AFTER`, `--resume-after`) and what to do; it never carries a secret's value.

use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The config file read when neither `--config` nor `APPLIANCE_CONFIG` names one; a missing one is fine.
pub const DEFAULT_PATH: &str = "/etc/appliance/appliance.toml";

/// The environment variable that names the config file (as `--config` does).
pub const CONFIG_ENV: &str = "APPLIANCE_CONFIG";

/// A wrong setting: the message names the setting and the fix. `appliance serve` exits with status 1
/// (refused before starting), as for any bad setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// How logs are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people (plain when standard error is not a terminal).
    #[default]
    #[value(alias = "human")]
    #[serde(alias = "human")]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" | "human" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is not a log format")),
        }
    }
}

/// One layer of settings (the file, the environment or the flags): what it sets, nothing more.
/// The file's keys are these field names; the environment's are `APPLIANCE_` and the name in
/// capitals; the flags are `--` and the name with dashes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub destination_url: Option<String>,
    pub destination_token: Option<SecretString>,
    pub destination_token_file: Option<PathBuf>,
    pub api_token: Option<SecretString>,
    pub api_token_file: Option<PathBuf>,
    pub bundle_dir: Option<PathBuf>,
    pub http_retries: Option<usize>,
    pub resume_after: Option<u64>,
    pub allow_http: Option<bool>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    pub metrics_listen: Option<SocketAddr>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// May hold credentials (`http://user:password@proxy:3128`): kept as a secret.
    pub proxy: Option<SecretString>,
}

/// Every key of [`Layer`], in the order `--help` and the default config list them.
pub const KEYS: &[&str] = &[
    "listen",
    "data",
    "destination_url",
    "destination_token",
    "destination_token_file",
    "api_token",
    "api_token_file",
    "bundle_dir",
    "http_retries",
    "resume_after",
    "allow_http",
    "log",
    "log_format",
    "metrics_listen",
    "tls_cert_file",
    "tls_key_file",
    "ca_file",
    "proxy",
];

/// What a value of each setting looks like, for error messages.
fn expected(key: &str) -> &'static str {
    match key {
        "listen" => "an address and port such as 127.0.0.1:8080 or [::1]:8080",
        "metrics_listen" => "an address and port such as 127.0.0.1:9090",
        "http_retries" => "a whole number of retries such as 8",
        "resume_after" => "a whole number of seconds such as 30",
        "allow_http" => "true or false",
        "log_format" => "text or json",
        "log" => "a log filter such as info or appliance=debug",
        "destination_token" | "api_token" => "a token (a string)",
        "tls_cert_file" => "the path of a PEM certificate chain, such as /etc/appliance/tls.crt",
        "tls_key_file" => "the path of a PEM private key, such as /etc/appliance/tls.key",
        "ca_file" => "the path of a PEM bundle of CA certificates",
        "proxy" => "a proxy URL such as http://proxy.internal:3128",
        _ => "a path or URL (a string)",
    }
}

/// Where a setting's value came from; its `Display` names the setting as it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { key: &'static str, path: PathBuf },
    Env(String),
    Flag(String),
}

impl Origin {
    fn file(key: &'static str, path: &Path) -> Origin {
        Origin::File {
            key,
            path: path.to_path_buf(),
        }
    }
    fn env(key: &str) -> Origin {
        Origin::Env(env_name(key))
    }
    fn flag(key: &str) -> Origin {
        Origin::Flag(flag_name(key))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { key, path } => write!(f, "{key} in {}", path.display()),
            Origin::Env(name) => f.write_str(name),
            Origin::Flag(name) => f.write_str(name),
        }
    }
}

pub fn env_name(key: &str) -> String {
    format!("APPLIANCE_{}", key.to_ascii_uppercase())
}

pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// A secret and where it came from (the variable or file that held it, never the value).
#[derive(Debug)]
pub struct Secret {
    pub value: SecretString,
    pub origin: Origin,
}

/// Everything `appliance serve` runs with, every layer applied.
#[derive(Debug)]
pub struct ServeSettings {
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub destination_url: (String, Origin),
    pub destination_token: Secret,
    /// `None`: the token in `<data>/api-token`, generated on first start.
    pub api_token: Option<Secret>,
    pub bundle_dir: Option<PathBuf>,
    pub http_retries: usize,
    pub resume_after: u64,
    pub allow_http: bool,
    /// The log filter (`warn` when nothing sets it).
    pub log: String,
    pub log_format: LogFormat,
    /// Where `/metrics` is served, on a listener of its own; None: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// serve's own TLS (`tls_cert_file` and `tls_key_file`), read and checked; None: plain HTTP.
    pub tls: Option<crate::tls::ServerTls>,
    /// What forge clients and git add to the system's trust and how they reach forges (`ca_file`,
    /// `proxy`).
    pub network: crate::forge::network::Network,
}

/// Reads the config file (`explicit`, else `APPLIANCE_CONFIG`, else [`DEFAULT_PATH`] if it exists),
/// then the environment through `env`, and applies `flags` over both.
pub fn resolve(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: Layer,
) -> Result<ServeSettings, ConfigError> {
    let env_config = env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (file_layer, config_file) = match (explicit, env_config) {
        (Some(path), _) => (read_file(path, "--config")?, Some(path.to_path_buf())),
        (None, Some(path)) => (read_file(&path, CONFIG_ENV)?, Some(path)),
        (None, None) => {
            let path = Path::new(DEFAULT_PATH);
            if path.exists() {
                (
                    read_file(path, "the default config file")?,
                    Some(path.into()),
                )
            } else {
                (Layer::default(), None)
            }
        }
    };
    let env_layer = from_env(env)?;
    let file_path = config_file.clone().unwrap_or_default();
    let layers = Layers {
        flags,
        env: env_layer,
        file: file_layer,
        file_path: &file_path,
    };

    macro_rules! pick {
        ($key:ident) => {
            layers.pick(stringify!($key), |l| l.$key.clone())
        };
    }
    let listen = pick!(listen)
        .map(|(v, _)| v)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let data = pick!(data)
        .map(|(v, _)| v)
        .unwrap_or_else(|| PathBuf::from("appliance-data"));
    let destination_url = pick!(destination_url)
        .filter(|(v, _)| !v.trim().is_empty())
        .ok_or_else(|| missing("destination_url", "the destination GitLab's URL", &layers))?;
    let destination_token = layers.secret("destination_token")?.ok_or_else(|| {
        missing(
            "destination_token",
            "the destination's access token",
            &layers,
        )
    })?;
    let api_token = layers.secret("api_token")?;
    let log = match pick!(log) {
        Some((filter, origin)) => {
            tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
                ConfigError(format!(
                    "{origin}: `{filter}` is not a log filter ({e}); use {}",
                    expected("log")
                ))
            })?;
            filter
        }
        None => "warn".to_string(),
    };
    let tls = match (pick!(tls_cert_file), pick!(tls_key_file)) {
        (None, None) => None,
        (Some((cert, cert_origin)), Some((key, key_origin))) => {
            Some(crate::tls::server(&cert, &cert_origin, &key, &key_origin).map_err(ConfigError)?)
        }
        (Some((_, given)), None) => return Err(tls_half(&given, "tls_key_file")),
        (None, Some((_, given))) => return Err(tls_half(&given, "tls_cert_file")),
    };
    let network = crate::forge::network::Network::new(
        pick!(ca_file)
            .map(|(path, origin)| (path, origin.to_string()))
            .as_ref()
            .map(|(p, o)| (p.as_path(), o.as_str())),
        pick!(proxy)
            .map(|(url, origin)| (url, origin.to_string()))
            .as_ref()
            .map(|(u, o)| (u, o.as_str())),
    )
    .map_err(ConfigError)?;
    Ok(ServeSettings {
        tls,
        network,
        config_file,
        listen,
        data,
        destination_url,
        destination_token,
        api_token,
        bundle_dir: pick!(bundle_dir).map(|(v, _)| v),
        http_retries: pick!(http_retries).map_or(8, |(v, _)| v),
        resume_after: pick!(resume_after).map_or(30, |(v, _)| v),
        allow_http: pick!(allow_http).is_some_and(|(v, _)| v),
        log,
        log_format: pick!(log_format).map(|(v, _)| v).unwrap_or_default(),
        metrics_listen: pick!(metrics_listen).map(|(v, _)| v),
    })
}

/// One of the two TLS settings without the other.
fn tls_half(given: &Origin, missing: &str) -> ConfigError {
    ConfigError(format!(
        "{given} is set but {missing} is not: TLS needs both tls_cert_file and tls_key_file (the \
         certificate and its private key); set {missing} ({}, {}), or remove {given} to serve plain \
         HTTP",
        env_name(missing),
        flag_name(missing)
    ))
}

fn missing(key: &'static str, what: &str, layers: &Layers<'_>) -> ConfigError {
    let file = if layers.file_path.as_os_str().is_empty() {
        format!("{key} in {DEFAULT_PATH}")
    } else {
        format!("{key} in {}", layers.file_path.display())
    };
    let alternatives = if key.ends_with("_token") {
        format!(
            "{key}_file (a file holding it) in the config file, {}_FILE",
            env_name(key)
        )
    } else {
        flag_name(key)
    };
    ConfigError(format!(
        "{what} is not set: set {file}, {}, or {alternatives}",
        env_name(key)
    ))
}

struct Layers<'a> {
    flags: Layer,
    env: Layer,
    file: Layer,
    file_path: &'a Path,
}

impl Layers<'_> {
    /// The value of the highest layer that sets `key`, with where it came from.
    fn pick<T>(&self, key: &'static str, get: impl Fn(&Layer) -> Option<T>) -> Option<(T, Origin)> {
        if let Some(v) = get(&self.flags) {
            return Some((v, Origin::flag(key)));
        }
        if let Some(v) = get(&self.env) {
            return Some((v, Origin::env(key)));
        }
        get(&self.file).map(|v| (v, Origin::file(key, self.file_path)))
    }

    /// A secret from the highest layer that gives it, as a value or as `<key>_file`; giving both in
    /// one layer is an error (which one was meant is not clear).
    fn secret(&self, key: &'static str) -> Result<Option<Secret>, ConfigError> {
        let file_key: &'static str = match key {
            "destination_token" => "destination_token_file",
            "api_token" => "api_token_file",
            other => unreachable!("{other} is not a secret setting"),
        };
        let layers: [(&Layer, Origin, Origin); 3] = [
            (&self.flags, Origin::flag(key), Origin::flag(file_key)),
            (&self.env, Origin::env(key), Origin::env(file_key)),
            (
                &self.file,
                Origin::file(key, self.file_path),
                Origin::file(file_key, self.file_path),
            ),
        ];
        for (layer, value_origin, file_origin) in layers {
            let (value, file) = match key {
                "destination_token" => (&layer.destination_token, &layer.destination_token_file),
                _ => (&layer.api_token, &layer.api_token_file),
            };
            match (value, file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError(format!(
                        "{value_origin} and {file_origin} are both set; keep one of them"
                    )));
                }
                (Some(v), None) => {
                    return Ok(Some(Secret {
                        value: v.clone(),
                        origin: value_origin,
                    }));
                }
                (None, Some(path)) => {
                    return Ok(Some(Secret {
                        value: read_secret_file(path, &file_origin)?,
                        origin: file_origin,
                    }));
                }
                (None, None) => {}
            }
        }
        Ok(None)
    }
}

/// The first line of a secret file, trimmed (a trailing newline from `echo` is not part of it).
fn read_secret_file(path: &Path, origin: &Origin) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "{origin}: cannot read {}: {e}; fix the path, or make the file readable by the user the appliance runs as",
            path.display()
        ))
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(ConfigError(format!(
            "{origin}: {} is empty; write the token into it",
            path.display()
        )));
    }
    Ok(SecretString::from(token.to_string()))
}

fn read_file(path: &Path, named_by: &str) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "cannot read the config file {} ({named_by}): {e}; fix the path or create the file",
            path.display()
        ))
    })?;
    parse_file(&text, path)
}

/// Parses a config file's text. Errors say the line and the key; a secret's line is never repeated
/// (toml's own rendering of an error quotes the line, value and all).
pub fn parse_file(text: &str, path: &Path) -> Result<Layer, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line_text = text.lines().nth(line - 1).unwrap_or("");
            let key = line_text
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string();
            (line, key)
        });
        let message = e.message().trim_end();
        match at {
            Some((line, key)) if KEYS.contains(&key.as_str()) => {
                let detail = if key.ends_with("_token") || key == "proxy" {
                    // The message may quote the value.
                    "not a valid value"
                } else {
                    message
                };
                ConfigError(format!(
                    "{}, line {line}: {key}: {detail}; expected {}",
                    path.display(),
                    expected(&key)
                ))
            }
            Some((line, _)) if message.starts_with("unknown field") => ConfigError(format!(
                "{}, line {line}: {message}; remove the line or correct the name (`appliance serve --help` lists the settings)",
                path.display()
            )),
            Some((line, _)) => ConfigError(format!(
                "{}, line {line}: {message}; the file is TOML: `key = \"text\"`, `key = 30`, `key = true`",
                path.display()
            )),
            None => ConfigError(format!("{}: {message}", path.display())),
        }
    })
}

/// The environment's layer: `APPLIANCE_<KEY>` for each key; an empty variable counts as unset.
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let get = |key: &str| env(&env_name(key)).filter(|v| !v.is_empty());
    fn parse<T: FromStr>(key: &str, value: Option<String>) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        value
            .map(|v| {
                v.trim().parse::<T>().map_err(|e| {
                    ConfigError(format!(
                        "{}=\"{v}\": {e}; expected {}",
                        env_name(key),
                        expected(key)
                    ))
                })
            })
            .transpose()
    }
    Ok(Layer {
        listen: parse("listen", get("listen"))?,
        data: get("data").map(PathBuf::from),
        destination_url: get("destination_url"),
        destination_token: get("destination_token").map(SecretString::from),
        destination_token_file: get("destination_token_file").map(PathBuf::from),
        api_token: get("api_token").map(|t| SecretString::from(t.trim().to_string())),
        api_token_file: get("api_token_file").map(PathBuf::from),
        bundle_dir: get("bundle_dir").map(PathBuf::from),
        http_retries: parse("http_retries", get("http_retries"))?,
        resume_after: parse("resume_after", get("resume_after"))?,
        allow_http: parse("allow_http", get("allow_http"))?,
        log: get("log"),
        log_format: parse("log_format", get("log_format"))?,
        metrics_listen: parse("metrics_listen", get("metrics_listen"))?,
        tls_cert_file: get("tls_cert_file").map(PathBuf::from),
        tls_key_file: get("tls_key_file").map(PathBuf::from),
        ca_file: get("ca_file").map(PathBuf::from),
        proxy: get("proxy").map(SecretString::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn config(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("appliance.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const MINIMAL: &str =
        "destination_url = \"https://gitlab.internal\"\ndestination_token = \"t\"\n";

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            &format!(
                "{MINIMAL}listen = \"0.0.0.0:1000\"\nresume_after = 10\nhttp_retries = 1\ndata = \"/from/file\"\n"
            ),
        );
        let env = env_of(&[
            ("APPLIANCE_LISTEN", "127.0.0.1:2000"),
            ("APPLIANCE_RESUME_AFTER", "20"),
        ]);
        let flags = Layer {
            listen: Some("127.0.0.1:3000".parse().unwrap()),
            ..Layer::default()
        };
        let s = resolve(Some(&path), &env, flags).unwrap();
        assert_eq!(s.listen, "127.0.0.1:3000".parse().unwrap()); // flag over env and file
        assert_eq!(s.resume_after, 20); // env over file
        assert_eq!(s.http_retries, 1); // file over the default
        assert_eq!(s.data, PathBuf::from("/from/file"));
        assert_eq!(s.log, "warn"); // the default
        assert_eq!(s.config_file.as_deref(), Some(path.as_path()));
        assert_eq!(
            s.destination_url,
            (
                "https://gitlab.internal".to_string(),
                Origin::File {
                    key: "destination_url",
                    path: path.clone()
                }
            )
        );
    }

    #[test]
    fn the_config_file_can_be_named_by_the_environment_and_a_missing_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), &format!("{MINIMAL}resume_after = 7\n"));
        let env = env_of(&[("APPLIANCE_CONFIG", path.to_str().unwrap())]);
        assert_eq!(
            resolve(None, &env, Layer::default()).unwrap().resume_after,
            7
        );

        let gone = dir.path().join("missing.toml");
        let err = resolve(Some(&gone), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the config file"), "{err}");
        assert!(err.contains("missing.toml (--config)"), "{err}");
    }

    #[test]
    fn secrets_come_from_files_in_every_layer_and_the_higher_layer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file_token = dir.path().join("file-token");
        std::fs::write(&file_token, "from-file-layer\n").unwrap();
        let env_token = dir.path().join("env-token");
        std::fs::write(&env_token, "  from-env-layer  \n").unwrap();
        let path = config(
            dir.path(),
            &format!(
                "destination_url = \"https://gitlab.internal\"\ndestination_token_file = \"{}\"\napi_token_file = \"{}\"\n",
                file_token.display(),
                file_token.display()
            ),
        );
        let s = resolve(Some(&path), &env_of(&[]), Layer::default()).unwrap();
        assert_eq!(s.destination_token.value.expose_secret(), "from-file-layer");
        assert_eq!(
            s.destination_token.origin,
            Origin::File {
                key: "destination_token_file",
                path: path.clone()
            }
        );
        assert_eq!(
            s.api_token.unwrap().value.expose_secret(),
            "from-file-layer"
        );

        let env = env_of(&[(
            "APPLIANCE_DESTINATION_TOKEN_FILE",
            env_token.to_str().unwrap(),
        )]);
        let s = resolve(Some(&path), &env, Layer::default()).unwrap();
        assert_eq!(s.destination_token.value.expose_secret(), "from-env-layer");
        assert_eq!(
            s.destination_token.origin,
            Origin::Env("APPLIANCE_DESTINATION_TOKEN_FILE".into())
        );

        let flags = Layer {
            destination_token: Some(SecretString::from("from-flag")),
            ..Layer::default()
        };
        let s = resolve(Some(&path), &env, flags).unwrap();
        assert_eq!(s.destination_token.value.expose_secret(), "from-flag");
    }

    #[test]
    fn a_secret_file_that_cannot_be_read_or_is_empty_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "destination_url = \"https://gitlab.internal\"\ndestination_token_file = \"/nonexistent/token\"\n",
        );
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("destination_token_file in ")
                && err.contains("cannot read /nonexistent/token"),
            "{err}"
        );
        assert!(err.contains("fix the path"), "{err}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let env = env_of(&[("APPLIANCE_DESTINATION_TOKEN_FILE", empty.to_str().unwrap())]);
        let err = resolve(Some(&path), &env, Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("APPLIANCE_DESTINATION_TOKEN_FILE: ")
                && err.ends_with("is empty; write the token into it"),
            "{err}"
        );
    }

    #[test]
    fn a_token_and_its_file_in_one_layer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            &format!("{MINIMAL}destination_token_file = \"/etc/appliance/destination-token\"\n"),
        );
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("destination_token in "), "{err}");
        assert!(err.contains("destination_token_file in "), "{err}");
        assert!(err.ends_with("are both set; keep one of them"), "{err}");
    }

    #[test]
    fn an_unknown_key_names_the_key_its_line_and_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), &format!("{MINIMAL}lisen = \"0.0.0.0:80\"\n"));
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3: unknown field `lisen`"), "{err}");
        assert!(err.contains("`listen`"), "{err}");
        assert!(err.contains("remove the line or correct the name"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_setting_and_what_it_takes() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), &format!("{MINIMAL}resume_after = \"soon\"\n"));
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3: resume_after: "), "{err}");
        assert!(
            err.ends_with("expected a whole number of seconds such as 30"),
            "{err}"
        );

        // The environment is read once the file is.
        let path = config(dir.path(), MINIMAL);
        let env = env_of(&[("APPLIANCE_LISTEN", "everywhere")]);
        let err = resolve(Some(&path), &env, Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("APPLIANCE_LISTEN=\"everywhere\": "),
            "{err}"
        );
        assert!(err.contains("expected an address and port"), "{err}");

        let env = env_of(&[("APPLIANCE_LOG", "appliance=loud")]);
        let err = resolve(Some(&path), &env, Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("APPLIANCE_LOG: `appliance=loud` is not a log filter"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_never_quoted_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "destination_url = \"https://gitlab.internal\"\ndestination_token = 918273645\n",
        );
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2: destination_token: not a valid value"),
            "{err}"
        );
        assert!(!err.contains("918273645"), "{err}");
    }

    #[test]
    fn a_missing_destination_says_every_way_to_set_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "destination_url = \"https://gitlab.internal\"\n",
        );
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the destination's access token is not set"),
            "{err}"
        );
        assert!(err.contains("APPLIANCE_DESTINATION_TOKEN_FILE"), "{err}");

        let err = resolve(
            Some(&config(dir.path(), "")),
            &env_of(&[]),
            Layer::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("destination_url in ")
                && err.contains("APPLIANCE_DESTINATION_URL")
                && err.contains("--destination-url"),
            "{err}"
        );
    }

    #[test]
    fn every_key_of_a_layer_is_listed_and_accepted_by_the_file() {
        // KEYS feeds error messages and help; a key missing there would be accepted but never named.
        let text: String = KEYS
            .iter()
            .map(|k| match *k {
                "listen" => "listen = \"127.0.0.1:1\"\n".to_string(),
                "metrics_listen" => "metrics_listen = \"127.0.0.1:2\"\n".to_string(),
                "http_retries" | "resume_after" => format!("{k} = 1\n"),
                "allow_http" => format!("{k} = true\n"),
                "log_format" => format!("{k} = \"json\"\n"),
                _ => format!("{k} = \"x\"\n"),
            })
            .collect();
        parse_file(&text, Path::new("t.toml")).unwrap();
        let err = parse_file("nope = 1\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        for key in KEYS {
            assert!(
                err.contains(&format!("`{key}`")),
                "{key} missing from {err}"
            );
        }
    }

    #[test]
    fn the_packaged_config_and_each_of_its_commented_examples_are_valid() {
        let text = include_str!("../packaging/appliance.toml");
        parse_file(text, Path::new("packaging/appliance.toml")).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.split(" = ").next().is_some_and(|k| KEYS.contains(&k)) => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let layer = parse_file(&uncommented, Path::new("uncommented")).unwrap();
        assert!(layer.tls_cert_file.is_some() && layer.tls_key_file.is_some());
        assert!(layer.ca_file.is_some() && layer.proxy.is_some());
    }

    #[test]
    fn one_tls_setting_alone_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            &format!("{MINIMAL}tls_key_file = \"/etc/appliance/tls.key\"\n"),
        );
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("tls_key_file in ")
                && err.contains("is set but tls_cert_file is not")
                && err.contains("APPLIANCE_TLS_CERT_FILE, --tls-cert-file"),
            "{err}"
        );
    }

    #[test]
    fn a_proxy_with_credentials_is_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            &format!("{MINIMAL}proxy = \"http://bob:hunter22@proxy.internal:3128\"\n"),
        );
        let s = resolve(Some(&path), &env_of(&[]), Layer::default()).unwrap();
        assert!(!format!("{s:?}").contains("hunter22"));
        let path = config(dir.path(), &format!("{MINIMAL}proxy = 3128\n"));
        let err = resolve(Some(&path), &env_of(&[]), Layer::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3: proxy: not a valid value"), "{err}");
    }
}
