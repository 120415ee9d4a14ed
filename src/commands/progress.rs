//! What a long command says while it runs: entities done, records imported of those counted at the
//! source, the rate over the last half minute, the time left at that rate, failures, what is being
//! worked on and any wait a forge asked for. On a terminal it is a spinner line redrawn in place; when
//! standard error is not a terminal (a journal, a file, CI) the same words are a plain line every
//! ten seconds (`APPLIANCE_PROGRESS_SECONDS`; 0 turns them off), so a log shows the run moving
//! without control characters.

use crate::report::Report;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often a plain progress line is written when standard error is not a terminal, by default.
const LINE_EVERY: Duration = Duration::from_secs(10);
/// The window the rate is measured over.
const WINDOW: Duration = Duration::from_secs(30);

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--quiet`: nothing.
    Hidden,
    /// A spinner redrawn in place, on a terminal.
    Bar,
    /// A plain line this often, when standard error is not a terminal.
    Lines(Duration),
}

impl Mode {
    /// What fits this process's standard error.
    pub fn for_stderr() -> Mode {
        if super::output::quiet() {
            Mode::Hidden
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Mode::Bar
        } else {
            match std::env::var("APPLIANCE_PROGRESS_SECONDS")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                Some(0) => Mode::Hidden,
                Some(secs) => Mode::Lines(Duration::from_secs(secs)),
                None => Mode::Lines(LINE_EVERY),
            }
        }
    }
}

/// The rate of imported records, from samples over the last [`WINDOW`].
#[derive(Default)]
pub struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// Records per second over the window, once it spans at least two seconds.
    pub fn observe(&mut self, now: Instant, imported: u64) -> Option<f64> {
        self.samples.push_back((now, imported));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            self.samples.pop_front();
        }
        let (since, then) = *self.samples.front()?;
        let span = now.duration_since(since).as_secs_f64();
        (span >= 2.0).then(|| imported.saturating_sub(then) as f64 / span)
    }
}

/// One progress line from a report, the measured rate and the forges' current waits.
pub fn line(report: &Report, rate: Option<f64>, waits: &[String]) -> String {
    let running = |s: &str| s == "created" || s == "started";
    let done = report
        .entities
        .iter()
        .filter(|e| !running(&e.status))
        .count();
    let (source, imported) =
        report
            .entities
            .iter()
            .flat_map(|e| &e.stats)
            .fold((0u64, 0u64), |(s, i), r| {
                (
                    s + r.stats.source.max(r.stats.imported),
                    i + r.stats.imported,
                )
            });
    let mut parts = vec![
        format!("{done}/{} entities", report.entities.len()),
        format!("{imported}/{source} records imported"),
    ];
    if let Some(rate) = rate {
        parts.push(format!("{rate:.0}/s"));
        let left = source.saturating_sub(imported);
        if rate >= 0.5 && left > 0 {
            parts.push(format!(
                "~{} left of what is counted so far",
                duration(left as f64 / rate)
            ));
        }
    }
    parts.push(format!("{} failures", report.failure_count()));
    // What is moving now: each running entity's relation in progress.
    let now: Vec<String> = report
        .entities
        .iter()
        .filter(|e| e.status == "started")
        .filter_map(|e| {
            let relation = e.stats.iter().find(|r| r.status == "started")?;
            Some(format!("{} {}", e.source_full_path, relation.relation))
        })
        .collect();
    if !now.is_empty() {
        let shown = now.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
        let more = now.len().saturating_sub(2);
        parts.push(if more > 0 {
            format!("now {shown} and {more} more")
        } else {
            format!("now {shown}")
        });
    }
    parts.extend(waits.iter().cloned());
    parts.join(" · ")
}

/// `45s`, `3m10s`, `2h05m`.
fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RelationStats;
    use crate::report::{EntityReport, RelationReport};

    fn entity(path: &str, status: &str, relations: &[(&str, &str, u64, u64)]) -> EntityReport {
        EntityReport {
            id: 1,
            entity_type: "project".into(),
            source_full_path: path.into(),
            destination_full_path: format!("imported/{path}"),
            status: status.into(),
            stats: relations
                .iter()
                .map(|(name, status, source, imported)| RelationReport {
                    relation: (*name).into(),
                    status: (*status).into(),
                    extracted_via: None,
                    stats: RelationStats {
                        source: *source,
                        fetched: *imported,
                        imported: *imported,
                    },
                    note: None,
                })
                .collect(),
            failures: Vec::new(),
            skipped: Vec::new(),
        }
    }

    fn report(entities: Vec<EntityReport>) -> Report {
        Report {
            id: 1,
            status: "started".into(),
            source_url: "https://src".into(),
            has_failures: false,
            created_at: String::new(),
            updated_at: String::new(),
            entities,
            excluded: Vec::new(),
            this_run: None,
        }
    }

    #[test]
    fn a_line_says_what_is_done_how_fast_what_is_left_and_what_moves() {
        let r = report(vec![
            entity("acme", "finished", &[("labels", "finished", 10, 10)]),
            entity(
                "acme/api",
                "started",
                &[
                    ("issues", "finished", 500, 500),
                    ("merge_requests", "started", 1000, 490),
                ],
            ),
        ]);
        let waits = vec!["rate limited by src.example until 10:00:05 UTC".to_string()];
        assert_eq!(
            line(&r, Some(51.0), &waits),
            "1/2 entities · 1000/1510 records imported · 51/s · ~10s left of what is counted \
             so far · 0 failures · now acme/api merge_requests · rate limited by src.example \
             until 10:00:05 UTC"
        );
        // Before the rate is known, no time left is guessed.
        assert_eq!(
            line(&r, None, &[]),
            "1/2 entities · 1000/1510 records imported · 0 failures · now acme/api merge_requests"
        );
    }

    #[test]
    fn the_rate_is_measured_over_the_last_half_minute() {
        let mut rate = Rate::default();
        let t0 = Instant::now();
        assert_eq!(rate.observe(t0, 0), None);
        assert_eq!(rate.observe(t0 + Duration::from_secs(1), 100), None);
        assert_eq!(rate.observe(t0 + Duration::from_secs(4), 400), Some(100.0));
        // Samples older than the window are dropped: a stall shows as a falling rate.
        assert_eq!(rate.observe(t0 + Duration::from_secs(34), 400), Some(0.0));
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(190.0), "3m10s");
    }
}
