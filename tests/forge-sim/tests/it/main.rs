//! forge-sim's integration tests: one binary, each file a module. `cargo test -p forge-sim --test it <file>::`
//! runs one file.

mod support;

mod api;
mod contract;
mod designs;
mod faults;
mod git;
mod graphql;
mod project_import;
mod project_settings;
mod python_gitlab;
mod relation_export;
