//! python-gitlab, the most used GitLab client, against the simulator: the script
//! `python_gitlab_check.py` lists groups, pages through issues both lazily and all at once, uses
//! keyset pagination and creates a label. CI installs the client with `pip install python-gitlab`.

use std::path::Path;

use forge_sim::{Dataset, RunningSim, SimConfig};

#[tokio::test]
async fn python_gitlab_reads_pages_and_writes() {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import gitlab"])
        .output()
        .await
        .expect("python3 runs (install python3 to run this test)");
    assert!(
        probe.status.success(),
        "python-gitlab is not installed; install it with `pip install python-gitlab`: {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let sim = RunningSim::start(SimConfig::new(Dataset::Small, 7))
        .await
        .expect("sim");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_gitlab_check.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .args([&sim.url, &sim.owner_token])
        .output()
        .await
        .expect("python3 runs the check script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python-gitlab check failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.starts_with("ok:"), "{stdout}");
    sim.shutdown().await;
}
