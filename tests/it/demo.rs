//! The README's first command: `appliance demo` migrates the sample tree live and through a bundle and
//! reports two copies that match, with no failure.

use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_migrates_live_and_through_a_bundle_and_the_copies_match() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = appliance();
    cmd.arg("demo").arg("--data").arg(data.path());
    let out = run(cmd).await;
    let printed = explain(&out);
    assert!(out.status.success(), "{printed}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("Failures: 0").count(),
        3,
        "the live migration, the export and the replay report no failure: {printed}"
    );
    assert!(
        stdout.contains("The two copies have the same number of records of each kind."),
        "{printed}"
    );
    // The copies are not empty: every kind the demo lists has records in both.
    let table = stdout
        .split("== Live and offline copies at the destination")
        .nth(1)
        .expect("the side-by-side table");
    for kind in [
        "groups",
        "labels",
        "milestones",
        "badges",
        "epics",
        "boards",
        "members",
        "cadences",
        "iterations",
        "projects",
        "issues",
        "merge requests",
        "notes",
        "releases",
    ] {
        let row = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{kind} ")))
            .unwrap_or_else(|| panic!("a row for {kind}: {table}"));
        let numbers: Vec<u64> = row
            .split_whitespace()
            .skip(kind.split_whitespace().count())
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            numbers.len() == 2 && numbers[0] > 0 && numbers[0] == numbers[1],
            "{row}"
        );
    }
    // `--data` keeps the bundle, and it verifies on its own.
    let bundle = data.path().join("acme.bundle");
    let mut verify = appliance();
    verify.arg("verify").arg(&bundle);
    let verified = run(verify).await;
    assert!(verified.status.success(), "{}", explain(&verified));
}
