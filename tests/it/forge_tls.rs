//! Forges behind TLS with certificates from an internal CA (`--ca-file`): a live migration between two
//! simulators served over https reaches both, REST, GraphQL and git alike (git through the bundle
//! `GIT_SSL_CAINFO` names); without the CA it is refused.

use crate::common;

use common::*;
use forge_sim::{Dataset, RunningSim, SimConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::sync::Arc;

/// An internal CA (its PEM) and a server configuration for 127.0.0.1 with a certificate it issued.
fn internal_pki() -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    appliance::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_between_forges_on_an_internal_ca_needs_and_uses_ca_file() {
    let (ca_pem, tls) = internal_pki();
    let src = RunningSim::start_tls(SimConfig::new(Dataset::Small, SEED), tls.clone())
        .await
        .unwrap();
    let dst = RunningSim::start_tls(SimConfig::new(Dataset::Empty, SEED), tls)
        .await
        .unwrap();
    assert!(src.url.starts_with("https://"), "{}", src.url);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("internal-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();

    // Without the CA, the source's certificate is not trusted.
    let out = migrate_group(
        &src,
        &dst,
        &dir.path().join("no-ca"),
        "acme",
        "imported",
        &[],
    )
    .await;
    assert!(!out.status.success(), "{}", explain(&out));

    let out = migrate_group(
        &src,
        &dst,
        &dir.path().join("with-ca"),
        "acme",
        "imported",
        &["--ca-file", ca_file.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", explain(&out));
    let r = report(&out);
    assert_eq!(r["status"], "finished", "{}", explain(&out));
    assert_eq!(r["has_failures"], false, "{}", explain(&out));
    // The repositories came over git, which trusted the same CA.
    let projects: Vec<String> = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity_type"] == "project")
        .map(|e| e["source_full_path"].as_str().unwrap().to_string())
        .collect();
    assert!(!projects.is_empty(), "{}", explain(&out));
    let branches = |sim: &RunningSim, path: &str| {
        let refs = sim.sim.git.refs(path).unwrap();
        refs.into_iter()
            .filter(|(name, _)| name.starts_with("refs/heads/"))
            .collect::<Vec<_>>()
    };
    for path in &projects {
        let want = branches(&src, path);
        assert!(!want.is_empty(), "{path} has branches");
        assert_eq!(branches(&dst, &format!("imported/{path}")), want, "{path}");
    }
}
