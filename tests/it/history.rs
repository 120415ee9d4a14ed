//! `appliance list`, `status` and `report` read what ran from the data directory alone: the same
//! report the run printed, and files a user can keep (JSON, CSV, Markdown).

use crate::common;

use common::*;
use serde_json::Value;

fn at(data: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = appliance();
    cmd.args(args).arg("--data").arg(data);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn list_status_and_report_read_a_migration_back_from_the_store() {
    let (src, dst) = (source().await, destination().await);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let migrated = migrate_group(&src, &dst, &data, "acme", "imported", &[]).await;
    assert!(migrated.status.success(), "{}", explain(&migrated));
    let printed = report(&migrated);
    src.shutdown().await;
    dst.shutdown().await; // nothing below asks a forge

    let listed = run(at(&data, &["list", "--json"])).await;
    assert!(listed.status.success(), "{}", explain(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["id"], printed["id"]);
    assert_eq!(listed[0]["status"], "finished");
    assert_eq!(
        listed[0]["entities"].as_array().unwrap().len(),
        printed["entities"].as_array().unwrap().len()
    );
    let table = run(at(&data, &["list"])).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("acme -> imported/acme"), "{table}");

    // The same report the run printed, entity by entity.
    let id = printed["id"].to_string();
    let status = run(at(&data, &["status", &id, "--json"])).await;
    assert!(status.status.success(), "{}", explain(&status));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["entities"], printed["entities"]);

    // CSV: one row per entity and relation, with the run's counts.
    let csv_file = dir.path().join("report.csv");
    let out = run(at(
        &data,
        &[
            "report",
            &id,
            "--format",
            "csv",
            "--out",
            csv_file.to_str().unwrap(),
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", explain(&out));
    let csv = std::fs::read_to_string(&csv_file).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let stats: usize = printed["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stats"].as_array().unwrap().len())
        .sum();
    assert_eq!(rows.len() - 1, stats, "{csv}");
    let labels = rows
        .iter()
        .find(|r| r[col("source_full_path")] == "acme" && r[col("relation")] == "labels")
        .expect("a row for acme's labels");
    let want = printed["entities"][0]["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["relation"] == "labels")
        .unwrap()
        .clone();
    assert_eq!(labels[col("source")], want["source"].to_string());
    assert_eq!(labels[col("imported")], want["imported"].to_string());

    // Markdown, and a file that is there already is not replaced without --force.
    let md_file = dir.path().join("report.md");
    let md_args = ["report", &id, "--out", md_file.to_str().unwrap()];
    assert!(run(at(&data, &md_args)).await.status.success());
    let md = std::fs::read_to_string(&md_file).unwrap();
    assert!(
        md.contains("## group acme → imported/acme (finished)"),
        "{md}"
    );
    // What is left out of every group and project on purpose is named, with why: in the JSON
    // report, the text one and the Markdown one.
    let kinds: Vec<&str> = printed["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["entity_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["group", "project"], "{:#}", printed["excluded"]);
    let project_items = &printed["excluded"][1]["items"];
    assert!(
        project_items
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"item": "CI/CD variables", "why": "sensitive"})),
        "{project_items:#}"
    );
    assert!(
        md.contains("## Not migrated, on purpose")
            && md.contains(
                "- Of each group: CI/CD variables, Deploy tokens, Webhooks (they might hold secrets"
            )
            && md.contains("- Of each project: CI/CD job logs, CI/CD variables,"),
        "{md}"
    );
    let text = run(at(&data, &["status", &id])).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Not migrated, on purpose:")
            && text.contains(
                "of each project: Designs and their repository (GitLab's direct transfer migrates them, this version of the appliance does not yet"
            ),
        "{text}"
    );
    let again = run(at(&data, &md_args)).await;
    assert_eq!(again.status.code(), Some(1), "{}", explain(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // Mistakes are said as such.
    let missing = run(at(&data, &["status", "99"])).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("there is no migration 99"),
        "{}",
        explain(&missing)
    );
    let empty = run(at(&dir.path().join("nothing-here"), &["list"])).await;
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("no migration has run in"),
        "{}",
        explain(&empty)
    );
    assert!(
        !dir.path().join("nothing-here").exists(),
        "reading never creates a data directory"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_is_logged_with_the_correlation_id_its_row_shows() {
    let (src, dst) = (source().await, destination().await);
    refuse_a_label(&src, &dst, "acme").await;
    let dir = tempfile::tempdir().unwrap();
    let out = migrate_group(
        &src,
        &dst,
        &dir.path().join("data"),
        "acme",
        "imported",
        &["--skip-projects", "--log-format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let r = report(&out);
    let failure = r["entities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["failures"].as_array().unwrap())
        .find(|f| f["relation"] == "labels")
        .expect("the refused label is a failure")
        .clone();
    let id = failure["correlation_id"].as_str().unwrap();
    let logged = String::from_utf8_lossy(&out.stderr);
    let line: Value = logged
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l.to_string().contains(id))
        .unwrap_or_else(|| panic!("no log line names {id}:\n{logged}"));
    assert!(line.to_string().contains("Label is invalid"), "{line}");
    assert!(line.to_string().contains("failure recorded"), "{line}");
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_prints_only_the_result_and_verbose_says_more() {
    let (src, dst) = (source().await, destination().await);
    refuse_a_label(&src, &dst, "acme").await;
    let dir = tempfile::tempdir().unwrap();
    let out = migrate_group(
        &src,
        &dst,
        &dir.path().join("quiet"),
        "acme",
        "imported",
        &["--skip-projects", "--quiet"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert_eq!(report(&out)["has_failures"], true, "the result is printed");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("WARN"), "--quiet prints no warning: {said}");

    let out = migrate_group(
        &src,
        &dst,
        &dir.path().join("verbose"),
        "acme",
        "imported",
        &["--skip-projects", "-v", "--slug", "acme-verbose"],
    )
    .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("INFO"),
        "-v prints what each step does: {said}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}
