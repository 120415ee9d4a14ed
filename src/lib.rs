//! appliance: migrates GitLab groups and projects into a GitLab instance, live or through bundles.
//! The library does the work; `main.rs` only parses the command line and prints.

pub mod api;
pub mod archive;
pub mod bundle;
pub mod config;
pub mod digest;
pub mod forge;
pub mod interrupt;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod relations;
pub mod secret;
pub mod store;
pub mod tls;
pub mod ui;

/// rustls needs one process-wide crypto provider; the appliance uses ring (no aws-lc in the build).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub mod commands;
pub mod engine;
pub mod report;
pub mod sink;
pub mod source;
pub mod user_map;
