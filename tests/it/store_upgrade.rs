//! A data directory written by an earlier release (`tests/fixtures/store-cf8a5fe/`, see its README)
//! opens with today's build: its finished export reads back with its stats, and its migration that was
//! killed mid-way resumes with the same command and ends equal to the source, projects included.

use crate::common;

use appliance::model::Status;
use appliance::store::Store;
use common::*;
use forge_sim::{Dataset, RunningSim, SimConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;

/// The simulators the fixture was made against: their URLs are in the stored migrations.
const SOURCE_PORT: u16 = 47411;
const DESTINATION_PORT: u16 = 47412;

/// A simulator on `port`. The port lies in Linux's ephemeral range, so a connection another test
/// made may hold it for a while: it is tried again for up to a minute before the test gives up.
async fn sim(dataset: Dataset, port: u16) -> RunningSim {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut cfg = SimConfig::new(dataset, SEED);
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], port));
        match RunningSim::start(cfg).await {
            Ok(sim) => return sim,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("port {port} is needed (the stored migration names it) and is taken: {e}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-cf8a5fe");
    std::fs::create_dir_all(to).unwrap();
    for f in ["appliance.redb", "seal.key"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_of_the_previous_release_opens_and_its_migration_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_fixture(&data);

    // Everything stored reads back: the finished export, with its entities and counts.
    {
        let store = Store::open(&data).expect("the old store opens");
        let export = store.bulk_import(1).unwrap();
        assert_eq!(export.status, Status::Finished);
        let entities = store.entities_of(1).unwrap();
        assert_eq!(entities.len(), 4, "{entities:?}");
        let acme = entities
            .iter()
            .find(|e| e.source_full_path == "acme")
            .unwrap();
        let labels = store.tracker(acme.id, "labels").unwrap().unwrap();
        assert_eq!((labels.status, labels.stats.fetched), (Status::Finished, 5));
        let migration = store.bulk_import(2).unwrap();
        assert_eq!(migration.status, Status::Started);
    }

    let (src, dst) = (
        sim(Dataset::Small, SOURCE_PORT).await,
        sim(Dataset::Empty, DESTINATION_PORT).await,
    );
    let out = migrate_group(&src, &dst, &data, "acme", "imported", &[]).await;
    assert!(out.status.success(), "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Resuming migration 2"),
        "the stored migration is the one that ran: {}",
        explain(&out)
    );
    let r: Value = report(&out);
    assert_eq!(r["status"], "finished", "{r:#}");
    assert_eq!(r["has_failures"], false, "{r:#}");
    let want = snapshot(&src.url, &src.owner_token, "acme").await;
    let got = snapshot(&dst.url, &dst.owner_token, "imported/acme").await;
    assert_same_tree(&want, &got);
    // Its projects too, which the earlier release did not migrate.
    let projects = get_all(
        &dst.url,
        &dst.admin_token,
        "groups/imported%2Facme/projects?include_subgroups=true",
    )
    .await;
    let source_projects = get_all(
        &src.url,
        &src.owner_token,
        "groups/acme/projects?include_subgroups=true",
    )
    .await;
    assert_eq!(projects.len(), source_projects.len(), "{projects:#?}");
    src.shutdown().await;
    dst.shutdown().await;
}
