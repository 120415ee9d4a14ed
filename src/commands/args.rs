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
}
