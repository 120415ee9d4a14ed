//! The `small` source dataset used by tests: one top-level group `acme` with two levels of
//! subgroups, four projects with git history, and every relation a migration touches, a few to
//! a few dozen each, with unicode, markdown references (`#1`, `~bug`, `%"v2.0"`, `@bjorn`) and
//! uploads, open and closed items, confidential issues and epics, nested epics, iterations, epics
//! with a history of state and label events.
//! `acme` has an avatar, and `acme/frontend`'s description links a file uploaded to that group.
//!
//! Groups: `acme` (private), `acme/backend`, `acme/backend/services`, `acme/frontend`.
//! Projects: `acme/backend/api` (12 issues, 5 MRs), `acme/backend/services/billing` (6, 3),
//! `acme/frontend/web` (9, 4), `acme/docs` (internal; 4, 1).
//! Snippets (private, each with a repository of two files and two commits, seeded by `lib.rs`):
//! id 1 "Example request" (`request.sh`, with a note) on `acme/backend/api`, id 2 "Ünïcödé
//! snippet" (`hello.js`) on `acme/frontend/web`.
//! Roles: ada owns `acme` (the owner token); chen developer on `acme`; bjorn maintainer on
//! `acme/backend`; eve guest on `acme/frontend`; dmitri reporter on `acme/backend/api`;
//! farah developer on `acme/frontend/web`; root is the admin and a member of nothing.
//! eve and root have no public email.
//! `acme/backend/api` also has CI/CD and repository settings: protected tags `v*` and `release-*`,
//! four pipelines (one for tag `v1.0.0`), two pipeline schedules (one inactive), a container
//! expiration policy, Auto DevOps, a push rule, Service Desk, an external pull request and three
//! commit notes (eve's: she is no member, so an import names her); `acme/frontend/web` a protected
//! tag, a pipeline and a schedule.
//! `acme/backend/api`'s issue #2 has designs: `mockup.png` and `flow.svg` over two versions (the
//! second replaces `mockup.png`), a note by bjorn on `mockup.png`, and a design repository whose
//! LFS objects the project keeps with type design. No other issue has designs.
//! It never reads the clock or the environment; only the seed shapes the data.

use super::{Builder, DesignRepository, PNG_1X1, Seeded};
use crate::Dataset;
use crate::model::{
    ContainerExpirationPolicy, DesignEvent, Parent, PushRule, ServiceDeskSetting, access,
};

const ISSUE_TITLES: [&str; 12] = [
    "Login fails with SSO",
    "Ünïcödé in branch names breaks the tree view",
    "Add dark mode",
    "Crash when exporting CSV",
    "日本語のタイトルを表示する",
    "Improve onboarding docs",
    "Rate limit the search endpoint",
    "Emoji 🎉 in titles are cut off",
    "Billing totals are off by one cent",
    "Upgrade the TLS library",
    "Flaky test: pipelines_spec",
    "Document the release process",
];

pub fn build(seed: u64) -> Seeded {
    let mut b = Builder::new(Dataset::Small, seed, 1);
    b.users();
    let [ada, bjorn, chen, dmitri, eve, farah] =
        ["ada", "bjorn", "chen", "dmitri", "eve", "farah"].map(|u| b.user_id(u));

    // Groups: acme / {backend / services, frontend}.
    let acme = b.group(
        "Acme Platform",
        "acme",
        None,
        "private",
        "Everything **Acme** builds. Ünïcödé welcome.",
    );
    let backend = b.group(
        "Backend",
        "backend",
        Some(acme),
        "private",
        "APIs and services",
    );
    let services = b.group(
        "Services 🚀",
        "services",
        Some(backend),
        "private",
        "Small services",
    );
    let frontend = b.group(
        "Frontend (Web)",
        "frontend",
        Some(acme),
        "private",
        "The web client",
    );

    // The top group has an avatar; a subgroup's description links a file uploaded to it.
    b.group_avatar(acme, "acme-logo.png", PNG_1X1.to_vec());
    let palette = b.upload(Parent::Group(frontend), "palette.png", PNG_1X1.to_vec());
    b.group_description(
        frontend,
        &format!("The web client. Colours: ![palette]({palette})"),
    );

    b.member(Parent::Group(acme), ada, access::OWNER);
    b.member(Parent::Group(acme), chen, access::DEVELOPER);
    b.member(Parent::Group(backend), bjorn, access::MAINTAINER);
    b.member(Parent::Group(frontend), eve, access::GUEST);

    // Projects.
    let api = b.project(backend, "API", "api", "private", ada);
    let billing = b.project(services, "Billing", "billing", "private", bjorn);
    let web = b.project(frontend, "Web App", "web", "private", ada);
    let docs = b.project(acme, "Docs", "docs", "internal", chen);
    let projects = [api, billing, web, docs];
    b.member(Parent::Project(api), dmitri, access::REPORTER);
    b.member(Parent::Project(web), farah, access::DEVELOPER);

    // Group labels, milestones, badges, boards.
    let bug = b.label(
        Parent::Group(acme),
        "bug",
        "#d9534f",
        Some("Something is broken"),
    );
    let feature = b.label(Parent::Group(acme), "feature", "#5cb85c", None);
    b.label(
        Parent::Group(acme),
        "priority::high",
        "#ff0000",
        Some("Scoped label"),
    );
    b.label(
        Parent::Group(acme),
        "déjà vu",
        "#f0ad4e",
        Some("Ünïcödé label"),
    );
    b.label(Parent::Group(acme), "documentation", "#428bca", None);
    b.label(Parent::Group(backend), "tech debt", "#7F8C8D", None);
    b.label(Parent::Group(backend), "backend-only", "#330066", None);
    b.label(Parent::Group(services), "service", "#A8D695", None);
    let ui = b.label(Parent::Group(frontend), "ui", "#69D100", None);
    b.label(
        Parent::Group(frontend),
        "a11y",
        "#FFECDB",
        Some("Accessibility"),
    );

    b.milestone(Parent::Group(acme), "v1.0", true, Some(-30));
    let v2 = b.milestone(Parent::Group(acme), "v2.0", false, Some(60));
    let plan = b.upload(
        Parent::Group(acme),
        "v2-plan.txt",
        b"Scope of v2.0\n".to_vec(),
    );
    b.milestone_description(
        v2,
        &format!("Milestone **v2.0**. Plan: [v2-plan.txt]({plan})"),
    );
    b.milestone(Parent::Group(acme), "Q3 🎯", false, None);
    b.milestone(Parent::Group(backend), "Sprint 1", false, Some(14));
    b.milestone(Parent::Group(frontend), "Redesign", false, Some(90));

    let base = "https://ci.forge-sim.test";
    b.badge(
        Parent::Group(acme),
        "pipeline",
        &format!("{base}/%{{project_path}}/-/pipelines"),
        &format!("{base}/%{{project_path}}/badges/%{{default_branch}}/pipeline.svg"),
    );
    b.badge(
        Parent::Group(acme),
        "coverage",
        &format!("{base}/%{{project_path}}/-/jobs"),
        &format!("{base}/%{{project_path}}/badges/%{{default_branch}}/coverage.svg"),
    );
    b.badge(
        Parent::Group(backend),
        "docs",
        "https://docs.forge-sim.test/backend",
        "https://img.shields.io/badge/docs-latest-blue",
    );

    b.board(Parent::Group(acme), "Development", &[bug, feature], &[v2]);
    b.board(Parent::Group(frontend), "UI board", &[ui], &[]);

    // Epics: nested across groups, one closed, one confidential.
    let logo = b.upload(Parent::Group(acme), "roadmap.png", PNG_1X1.to_vec());
    let platform = b.epic(
        acme,
        "Platform 2.0",
        &format!("The big one. See ![roadmap]({logo}) and ~feature, %\"v2.0\". cc @bjorn"),
        ada,
        None,
        &["feature"],
        false,
        false,
    );
    let billing_epic = b.epic(
        acme,
        "Billing rewrite",
        "Replace the invoice engine. Ünïcödé: ¥€£",
        bjorn,
        Some(platform),
        &["feature", "priority::high"],
        false,
        false,
    );
    b.epic(
        acme,
        "Old migration",
        "Done long ago.",
        ada,
        None,
        &[],
        true,
        false,
    );
    let security = b.epic(
        acme,
        "Security hardening",
        "Confidential work, do not share.",
        ada,
        Some(platform),
        &["bug"],
        false,
        true,
    );
    let api_v2 = b.epic(
        backend,
        "API v2",
        "Versioned endpoints, child of &1 in acme.",
        bjorn,
        Some(platform),
        &["backend-only"],
        false,
        false,
    );
    b.epic(
        backend,
        "Pagination everywhere",
        "Keyset and offset.",
        chen,
        Some(api_v2),
        &[],
        false,
        false,
    );
    b.epic(
        frontend,
        "Accessible forms",
        "Labels and focus order.",
        farah,
        Some(billing_epic),
        &["a11y"],
        false,
        false,
    );
    // Platform's children are ordered by hand, not in the order they were created.
    b.epic_position(security, 1000);
    b.epic_position(billing_epic, 2000);
    b.epic_position(api_v2, 3000);
    let epic_ids: Vec<u64> = b.store.epics.all().map(|e| e.id).collect();
    for (n, epic) in epic_ids.iter().enumerate() {
        for k in 0..(n % 3 + 1) {
            let author = [ada, bjorn, chen][k % 3];
            b.note(
                Parent::Epic(*epic),
                format!(
                    "Epic comment {k}: looks good @{}",
                    ["bjorn", "chen", "ada"][k % 3]
                ),
                author,
                false,
                false,
            );
        }
        b.award(Parent::Epic(*epic), "thumbsup", ada);
        if n % 2 == 0 {
            b.award(Parent::Epic(*epic), "rocket", bjorn);
        }
    }

    b.iterations(acme, "Two-week sprints", 4);
    b.iterations(backend, "Backend cadence", 2);

    // Project relations.
    let api_label = b.label(
        Parent::Project(api),
        "endpoint",
        "#8fbc8f",
        Some("Touches an endpoint"),
    );
    b.label(Parent::Project(api), "breaking change", "#cc0033", None);
    b.label(Parent::Project(web), "css", "#e44d26", None);
    b.label(Parent::Project(billing), "invoice", "#ad8d43", None);
    b.milestone(Parent::Project(api), "API 1.0", true, Some(-10));
    let api_11 = b.milestone(Parent::Project(api), "API 1.1", false, Some(20));
    let launch = b.milestone(Parent::Project(web), "Launch", false, Some(30));
    b.badge(
        Parent::Project(api),
        "license",
        "https://forge-sim.test/%{project_path}/-/blob/%{default_branch}/LICENSE",
        "https://img.shields.io/badge/license-MIT-green",
    );
    b.board(
        Parent::Project(api),
        "API board",
        &[api_label, bug],
        &[api_11],
    );

    let screenshot = b.upload(Parent::Project(api), "screenshot.png", PNG_1X1.to_vec());
    let log = b.upload(
        Parent::Project(api),
        "crash.log",
        b"panic at 'index out of bounds'\n".to_vec(),
    );
    let mockup = b.upload(Parent::Project(web), "mockup.png", PNG_1X1.to_vec());

    let people = [ada, bjorn, chen, dmitri, farah];
    let label_pool = [
        "bug",
        "feature",
        "documentation",
        "priority::high",
        "déjà vu",
    ];
    let epics_for_issues = [platform, billing_epic, api_v2];
    for (p_index, project) in projects.iter().enumerate() {
        let issue_count = [12, 6, 9, 4][p_index];
        let milestone = match p_index {
            0 => Some(api_11),
            2 => Some(launch),
            _ => Some(v2),
        };
        let mut issue_ids = Vec::new();
        for n in 0..issue_count {
            let title = ISSUE_TITLES[(n + p_index) % ISSUE_TITLES.len()].to_string();
            let mut description = format!(
                "Steps to reproduce:\n\n1. Open the page\n2. See #{prev} and ~bug\n\nExpected for %\"v2.0\", cc @{who}.",
                prev = n.max(1),
                who = ["ada", "bjorn", "chen"][n % 3],
            );
            if *project == api && n == 1 {
                description.push_str(&format!(
                    "\n\n![screenshot]({screenshot})\n[crash log]({log})"
                ));
            }
            if *project == web && n == 0 {
                description.push_str(&format!("\n\n![mockup]({mockup})"));
            }
            let author = people[(n + p_index) % people.len()];
            let labels: Vec<String> = (0..(n % 3))
                .map(|k| label_pool[(n + k) % label_pool.len()].to_string())
                .collect();
            let closed = n % 3 == 2;
            let confidential = n % 5 == 4;
            let assignees = if n % 2 == 0 {
                vec![people[n % people.len()]]
            } else {
                vec![]
            };
            let id = b.issue(
                *project,
                title,
                description,
                author,
                assignees,
                labels,
                if n % 4 == 0 { None } else { milestone },
                closed.then_some(ada),
                confidential,
            );
            if let Some(issue) = b.store.issues.get_mut(id) {
                if n % 4 == 1 && *project != docs {
                    issue.epic_id = Some(epics_for_issues[n % epics_for_issues.len()]);
                }
                if n % 3 == 0 {
                    issue.weight = Some((n % 5) as u64 + 1);
                }
            }
            issue_ids.push(id);
            let note_count = n % 4;
            for k in 0..note_count {
                let note_author = people[(n + k) % people.len()];
                let body = match k {
                    0 => format!("I can reproduce this on `main`, see #{}.", n + 1),
                    1 => "Ünïcödé reply: 👍 merci, спасибо".to_string(),
                    _ => "Internal: customer is **Acme Corp**.".to_string(),
                };
                let note = b.note(Parent::Issue(id), body, note_author, false, k == 2);
                if k == 0 {
                    b.award(Parent::Note(note), "thumbsup", ada);
                }
            }
            if closed {
                b.note(Parent::Issue(id), "closed".into(), ada, true, false);
            }
            if n % 2 == 0 {
                b.award(Parent::Issue(id), "thumbsup", bjorn);
            }
            if n % 3 == 0 {
                b.award(Parent::Issue(id), "thumbsdown", chen);
            }
        }

        let mr_count = [5, 3, 4, 1][p_index];
        for n in 0..mr_count {
            let state = ["merged", "opened", "closed", "merged", "opened"][n % 5];
            let author = people[(n + 1 + p_index) % people.len()];
            let closes = issue_ids
                .get(n)
                .and_then(|id| b.store.issues.get(*id))
                .map_or(1, |i| i.iid);
            let mr = b.merge_request(
                *project,
                format!(
                    "Fix #{closes}: {}",
                    ISSUE_TITLES[(n + 3) % ISSUE_TITLES.len()].to_lowercase()
                ),
                format!("Closes #{closes}\n\n- [x] tests\n- [ ] docs\n\n/cc @ada"),
                author,
                format!("feature/{}-{n}", p_index + 1),
                state,
                if n % 2 == 0 {
                    vec!["feature".into()]
                } else {
                    vec![]
                },
                (state == "merged").then_some(bjorn),
            );
            for k in 0..(n % 3 + 1) {
                b.note(
                    Parent::MergeRequest(mr),
                    format!("Review comment {k}: please rename this variable."),
                    people[k % people.len()],
                    false,
                    false,
                );
            }
            if state == "merged" {
                b.note(
                    Parent::MergeRequest(mr),
                    "merged".into(),
                    bjorn,
                    true,
                    false,
                );
                b.award(Parent::MergeRequest(mr), "tada", ada);
            }
        }
        b.protected_branch(*project, "main");
    }
    let first_issue = b
        .store
        .issues
        .children(Parent::Project(api))
        .next()
        .map(|i| i.id);
    let first_iteration = b.store.iterations.all().next().map(|i| i.id);
    if let Some(issue) = first_issue.and_then(|id| b.store.issues.get_mut(id)) {
        issue.iteration_id = first_iteration;
    }

    b.release(api, "v1.0.0", ada, vec!["API 1.0".into()]);
    b.release(api, "v1.1.0", bjorn, vec![]);
    b.release(web, "v0.1.0", farah, vec!["Launch".into()]);
    b.snippet(
        api,
        "Example request",
        "request.sh",
        "curl -H 'PRIVATE-TOKEN: …' https://forge-sim.test/api/v4/projects\n",
        ada,
    );
    b.snippet(
        web,
        "Ünïcödé snippet",
        "hello.js",
        "console.log('héllo wörld');\n",
        farah,
    );
    let snippet_id = b.store.snippets.all().next().map(|s| s.id);
    if let Some(snippet) = snippet_id {
        b.note(
            Parent::Snippet(snippet),
            "Handy, thanks!".into(),
            chen,
            false,
            false,
        );
    }

    // Epic histories, seeded last so the rest of the dataset keeps its timestamps: an epic closed,
    // reopened and closed again by different users (with a label added in between), and a label
    // added and later removed by another user. Every epic also has the events its creation made.
    b.epic_state(billing_epic, "close", chen);
    b.epic_labels(billing_epic, &["déjà vu"], &[], ada);
    b.epic_state(billing_epic, "reopen", ada);
    b.epic_state(billing_epic, "close", chen);
    b.epic_labels(api_v2, &["tech debt"], &[], bjorn);
    b.epic_labels(api_v2, &[], &["tech debt"], chen);

    // A note links a file uploaded to its project (seeded last too).
    let trace = b.upload(
        Parent::Project(api),
        "trace.txt",
        b"thread 'main' panicked at src/main.rs:3:5\n".to_vec(),
    );
    if let Some(issue) = first_issue {
        b.note(
            Parent::Issue(issue),
            format!("Full trace: [trace]({trace})"),
            bjorn,
            false,
            false,
        );
    }

    // CI/CD and repository settings, seeded after everything else so the rest keeps its timestamps:
    // the API project has them all, the web app a few. Shas name commits of the seeded `main`
    // (resolved by `lib.rs` once the repositories exist).
    b.protected_tag(api, "v*", access::MAINTAINER);
    b.protected_tag(api, "release-*", access::DEVELOPER);
    b.protected_tag(web, "v*", access::MAINTAINER);
    b.pipeline(api, "main", 2, "success", "push", ada, false);
    b.pipeline(api, "v1.0.0", 1, "success", "push", bjorn, true);
    b.pipeline(api, "main", 1, "failed", "schedule", bjorn, false);
    b.pipeline(api, "main", 0, "canceled", "web", chen, false);
    b.pipeline(web, "main", 0, "success", "push", farah, false);
    b.pipeline_schedule(
        api,
        "Nightly build",
        "main",
        "0 2 * * *",
        "UTC",
        true,
        bjorn,
    );
    b.pipeline_schedule(
        api,
        "Weekly dependency audit",
        "stable",
        "30 6 * * 1",
        "Europe/Berlin",
        false,
        ada,
    );
    b.pipeline_schedule(web, "Nightly e2e", "main", "0 3 * * *", "UTC", true, ada);
    b.container_expiration_policy(
        api,
        ContainerExpirationPolicy {
            cadence: "7d".into(),
            enabled: true,
            keep_n: Some(25),
            older_than: Some("30d".into()),
            name_regex: Some(".*".into()),
            name_regex_keep: Some("^(main|stable|v.+)$".into()),
            next_run_at: None,
            created_at: String::new(),
            updated_at: String::new(),
        },
    );
    b.auto_devops(api, true, "timed_incremental");
    b.push_rule(
        api,
        PushRule {
            commit_message_regex: Some("^(feat|fix|docs|chore): .+".into()),
            branch_name_regex: Some("^(main|stable|feature/.+)$".into()),
            max_file_size: 50,
            deny_delete_tag: true,
            member_check: true,
            prevent_secrets: true,
            ..PushRule::default()
        },
    );
    b.service_desk(
        api,
        ServiceDeskSetting {
            issue_template_key: Some("support".into()),
            project_key: Some("api-support".into()),
        },
    );
    b.external_pull_request(
        api,
        42,
        "feature/sso-login",
        "main",
        "https://github.com/acme/api",
        (0, 2),
        "open",
    );
    b.commit_note(api, 1, "Nice refactor — this unblocks v1.0.0 🎉", bjorn);
    b.commit_note(api, 1, "Agreed, but see #1 before we tag.", chen);
    b.commit_note(api, 3, "Why was the retry removed here?", eve);

    // Designs, seeded last so the rest keeps its timestamps: the API project's issue #2 has two
    // designs over two versions (the first by the issue's author, the second by ada, adding
    // flow.svg and replacing mockup.png, so mockup.png has two LFS objects over time) and bjorn's
    // note on mockup.png.
    let designs = api_designs(&mut b, api, ada, bjorn);

    let repositories = b
        .store
        .projects
        .values()
        .map(|p| p.path_with_namespace.clone())
        .collect();
    // Two projects have a wiki (a page in a directory, unicode, links between pages); the others
    // have none.
    let wiki_of = |id: u64| {
        b.store
            .project(id)
            .map(|p| p.path_with_namespace.clone())
            .unwrap_or_default()
    };
    let wikis = vec![
        (
            wiki_of(api),
            vec![
                (
                    "home.md".to_string(),
                    "# API wiki\n\nStart with [Getting started](Getting-started), then \
                     [Deploy](guides/Deploy).\n"
                        .to_string(),
                ),
                (
                    "Getting-started.md".to_string(),
                    "## Getting started\n\n1. `cargo run`\n2. Ünïcödé is fine: ✨ 资料\n"
                        .to_string(),
                ),
                (
                    "guides/Deploy.md".to_string(),
                    "Deploy with `make deploy`; see the [home](home) page.\n".to_string(),
                ),
            ],
        ),
        (
            wiki_of(docs),
            vec![
                (
                    "home.md".to_string(),
                    "# Docs\n\nThe [FAQ](FAQ) answers most questions.\n".to_string(),
                ),
                (
                    "FAQ.md".to_string(),
                    "**Q:** Where is the API?\n**A:** In `acme/backend/api`.\n".to_string(),
                ),
            ],
        ),
    ];
    // The API project keeps two binaries in Git LFS.
    let lfs = vec![(
        wiki_of(api),
        vec![
            (
                "assets/model.bin".to_string(),
                (0..4096u32).map(|i| (i * 7 % 251) as u8).collect(),
            ),
            (
                "design/mockup.psd".to_string(),
                b"8BPS fake photoshop layers \x00\x01\x02".repeat(40),
            ),
        ],
    )];
    Seeded {
        admin_token: b.token("root"),
        owner_token: b.token("ada"),
        repositories,
        wikis,
        lfs,
        designs,
        store: b.store,
    }
}

/// The first mockup.png: a real PNG.
const MOCKUP_V1: &[u8] = &PNG_1X1;
/// mockup.png as the second version replaced it: the same image with a comment chunk after it.
const MOCKUP_V2: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08\x06\x00\x00\x00mockup v2";
const FLOW_SVG: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\">\
<rect width=\"18\" height=\"18\"/><rect x=\"22\" width=\"18\" height=\"18\"/></svg>\n";

/// The designs of the API project's issue #2, and the commits of its design repository.
fn api_designs(b: &mut Builder, api: u64, editor: u64, note_author: u64) -> Vec<DesignRepository> {
    let Some((issue, author)) = b
        .store
        .issues
        .children(Parent::Project(api))
        .nth(1)
        .map(|i| (i.id, i.author_id))
    else {
        return Vec::new();
    };
    let mockup = b.design(issue, "mockup.png");
    let flow = b.design(issue, "flow.svg");
    let first = b.design_version(issue, author, &[(mockup, DesignEvent::Creation)]);
    let second = b.design_version(
        issue,
        editor,
        &[
            (flow, DesignEvent::Creation),
            (mockup, DesignEvent::Modification),
        ],
    );
    b.note(
        Parent::Design(mockup),
        "The header is cut off on mobile; see the second version.".into(),
        note_author,
        false,
        false,
    );
    let versions = vec![
        (first, b.design_commit(first, &[(mockup, MOCKUP_V1)])),
        (
            second,
            b.design_commit(second, &[(flow, FLOW_SVG), (mockup, MOCKUP_V2)]),
        ),
    ];
    let project = b
        .store
        .project(api)
        .map(|p| p.path_with_namespace.clone())
        .unwrap_or_default();
    vec![DesignRepository { project, versions }]
}
