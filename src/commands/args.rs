//! Command-line arguments that several commands share, each named, documented and parsed once. Tokens
//! are parsed straight into `SecretString`, so printing an argument struct never shows one.

use secrecy::SecretString;

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

/// A live GitLab source.
#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    /// Base URL of the source GitLab instance.
    #[arg(
        id = "source_url",
        long = "source-url",
        value_name = "URL",
        env = "APPLIANCE_SOURCE_URL"
    )]
    pub url: String,
    /// Access token on the source (prefer the environment variable: arguments are visible to `ps`).
    #[arg(
        id = "source_token",
        long = "source-token",
        value_name = "TOKEN",
        env = "APPLIANCE_SOURCE_TOKEN",
        hide_env_values = true,
        value_parser = secret
    )]
    pub token: SecretString,
}

/// A live GitLab destination.
#[derive(clap::Args, Debug)]
pub struct DestinationArgs {
    /// Base URL of the destination GitLab instance.
    #[arg(
        id = "destination_url",
        long = "destination-url",
        value_name = "URL",
        env = "APPLIANCE_DESTINATION_URL"
    )]
    pub url: String,
    /// Access token on the destination (prefer the environment variable: arguments are visible to
    /// `ps`).
    #[arg(
        id = "destination_token",
        long = "destination-token",
        value_name = "TOKEN",
        env = "APPLIANCE_DESTINATION_TOKEN",
        hide_env_values = true,
        value_parser = secret
    )]
    pub token: SecretString,
}

/// Where the migrated group is created at the destination.
#[derive(clap::Args, Debug)]
pub struct PlacementArgs {
    /// Full path of the destination namespace (an existing group).
    #[arg(long = "to")]
    pub to: String,
    /// Path of the new group in the destination namespace; defaults to the source group's path.
    #[arg(long)]
    pub slug: Option<String>,
}

impl PlacementArgs {
    /// The namespace without stray slashes.
    pub fn namespace(&self) -> String {
        self.to.trim_matches('/').to_string()
    }

    /// The entities `--group` and `--project` name, each placed under `--to` (at `--slug`, else
    /// its source path's last part), as `migrate` and `check` ask for them.
    pub fn entities(
        &self,
        groups: &[String],
        projects: &[String],
        migrate_projects: bool,
        migrate_memberships: bool,
    ) -> Vec<crate::model::EntityRequest> {
        use crate::model::EntityType;
        groups
            .iter()
            .map(|g| (EntityType::Group, g))
            .chain(projects.iter().map(|p| (EntityType::Project, p)))
            .map(|(entity_type, path)| {
                let path = path.trim_matches('/');
                crate::model::EntityRequest {
                    entity_type,
                    source_full_path: path.to_string(),
                    destination_slug: self
                        .slug
                        .clone()
                        .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(path).to_string()),
                    destination_namespace: self.namespace(),
                    migrate_projects,
                    migrate_memberships,
                }
            })
            .collect()
    }
}

/// How forge clients and git reach forges: extra certificate authorities and a proxy
/// (`crate::forge::network`).
#[derive(clap::Args, Debug, Default)]
pub struct NetworkArgs {
    /// A PEM bundle of CA certificates the forges' certificates may chain to (an internal PKI),
    /// trusted as well as the system's, by the HTTP client and git.
    #[arg(long, value_name = "PATH", env = "APPLIANCE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Reach forges through this proxy (http://[user:password@]host:port), the HTTP client and git
    /// alike; NO_PROXY still applies. Without it, HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured.
    /// Prefer the environment variable when the URL holds a password: arguments are visible to `ps`.
    #[arg(
        long,
        value_name = "URL",
        env = "APPLIANCE_PROXY",
        hide_env_values = true,
        value_parser = secret
    )]
    pub proxy: Option<SecretString>,
}

impl NetworkArgs {
    /// Checks the settings and makes them the process's, before any forge client is built.
    pub fn install(&self) -> anyhow::Result<()> {
        let network = crate::forge::network::Network::new(
            self.ca_file
                .as_deref()
                .map(|p| (p, "--ca-file (or APPLIANCE_CA_FILE)")),
            self.proxy
                .as_ref()
                .map(|p| (p, "--proxy (or APPLIANCE_PROXY)")),
        )
        .map_err(anyhow::Error::msg)?;
        crate::forge::network::install(network).map_err(anyhow::Error::msg)
    }
}
