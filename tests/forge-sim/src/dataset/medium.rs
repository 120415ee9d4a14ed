//! The `medium` benchmark dataset: group `bench` with two subgroups, 20 projects,
//! 20,000 issues, 5,000 merge requests and 100,000 notes (80,000 on issues, 20,000 on merge
//! requests), plus a few labels and milestones per project. Text is short and templated to
//! keep memory modest and startup within a few seconds.
//! It never reads the clock or the environment; only the seed shapes the data.

use super::{Builder, Seeded};
use crate::Dataset;
use crate::model::{Parent, access};

pub const PROJECTS: usize = 20;
pub const ISSUES_PER_PROJECT: usize = 1_000;
pub const MERGE_REQUESTS_PER_PROJECT: usize = 250;
pub const NOTES_PER_ISSUE: usize = 4;
pub const NOTES_PER_MERGE_REQUEST: usize = 4;

pub fn build(seed: u64) -> Seeded {
    let mut b = Builder::new(Dataset::Medium, seed, 1).with_pace(30);
    b.users();
    let people: Vec<u64> = ["ada", "bjorn", "chen", "dmitri", "farah"]
        .iter()
        .map(|u| b.user_id(u))
        .collect();
    let ada = people[0];
    let bench = b.group("Bench", "bench", None, "private", "Benchmark data");
    let alpha = b.group("Alpha", "alpha", Some(bench), "private", "");
    let beta = b.group("Beta", "beta", Some(bench), "private", "");
    b.member(Parent::Group(bench), ada, access::OWNER);
    b.member(Parent::Group(bench), people[1], access::DEVELOPER);
    for (n, name) in ["bug", "feature", "performance", "ux", "security"]
        .iter()
        .enumerate()
    {
        b.label(
            Parent::Group(bench),
            name,
            ["#d9534f", "#5cb85c", "#f0ad4e", "#428bca", "#330066"][n],
            None,
        );
    }
    b.epic(
        bench,
        "Scale",
        "Make it fast.",
        ada,
        None,
        &["performance"],
        false,
        false,
    );
    b.milestone(Parent::Group(bench), "2024", false, Some(100));

    for p in 0..PROJECTS {
        let group = [bench, alpha, beta][p % 3];
        let project = b.project(
            group,
            &format!("Service {p:02}"),
            &format!("service-{p:02}"),
            "private",
            ada,
        );
        let milestones: Vec<u64> = (0..5)
            .map(|m| {
                b.milestone(
                    Parent::Project(project),
                    &format!("{p}.{m}"),
                    m < 2,
                    Some(m as i64 * 14),
                )
            })
            .collect();
        b.protected_branch(project, "main");
        for n in 0..ISSUES_PER_PROJECT {
            let author = people[n % people.len()];
            let issue = b.issue(
                project,
                format!("Issue {n} of service {p:02}"),
                format!("Description of issue {n}. See #{} and ~bug.", n / 2 + 1),
                author,
                vec![people[(n + 1) % people.len()]],
                if n % 3 == 0 {
                    vec!["bug".into()]
                } else {
                    vec!["feature".into()]
                },
                Some(milestones[n % milestones.len()]),
                (n % 4 == 0).then_some(ada),
                n % 50 == 0,
            );
            for k in 0..NOTES_PER_ISSUE {
                b.note(
                    Parent::Issue(issue),
                    format!("Note {k} on issue {n}."),
                    people[(n + k) % people.len()],
                    false,
                    false,
                );
            }
        }
        for n in 0..MERGE_REQUESTS_PER_PROJECT {
            let state = ["merged", "opened", "closed", "merged"][n % 4];
            let mr = b.merge_request(
                project,
                format!("MR {n} of service {p:02}"),
                format!("Closes #{}", n + 1),
                people[n % people.len()],
                format!("topic-{n}"),
                state,
                Vec::new(),
                (state == "merged").then_some(ada),
            );
            for k in 0..NOTES_PER_MERGE_REQUEST {
                b.note(
                    Parent::MergeRequest(mr),
                    format!("Review {k} on MR {n}."),
                    people[(n + k) % people.len()],
                    false,
                    false,
                );
            }
        }
    }
    let repositories = b
        .store
        .projects
        .values()
        .map(|p| p.path_with_namespace.clone())
        .collect();
    Seeded {
        admin_token: b.token("root"),
        owner_token: b.token("ada"),
        repositories,
        wikis: Vec::new(),
        lfs: Vec::new(),
        designs: Vec::new(),
        store: b.store,
    }
}
