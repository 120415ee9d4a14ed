//! The integration tests: one binary, each file a module (one link instead of thirty, and the
//! tests of every file share the two test threads). `cargo test --test it <file>::` runs one file.

mod bundle_common;
mod common;

mod api_bulk_imports;
mod api_corpus;
mod bundle_corpus;
mod bundle_golden;
mod bundle_refusals;
mod bundle_resume;
mod bundle_roundtrip;
mod cli;
mod demo;
mod forge_hardening;
mod forge_tls;
mod group_relations_boards;
mod group_relations_epics;
mod health;
mod history;
mod kill_resume;
mod left_out;
mod live_migration;
mod observability;
mod preflight;
mod project_files;
mod project_migration;
mod project_settings;
mod retry_and_user_map;
mod serve_api;
mod serve_service;
mod serve_tls;
mod store_upgrade;
mod web_ui;
