//! The footer of every command's `--help`: examples a user can adapt, then what applies to the
//! command (serve's settings, the exit statuses). Every example line that starts with `appliance `
//! is parsed by a test, so none goes stale when a flag changes.

use super::output::EXIT_STATUS_HELP;

/// Tokens never go on a command line (`ps` shows it): the examples take them from the environment.
const READ_TOKENS: &str = "  # once per shell: tokens come from the environment, never from the command line (`ps` shows it)";
const SOURCE_TOKEN: &str = "  read -rs APPLIANCE_SOURCE_TOKEN && export APPLIANCE_SOURCE_TOKEN";
const DESTINATION_TOKEN: &str =
    "  read -rs APPLIANCE_DESTINATION_TOKEN && export APPLIANCE_DESTINATION_TOKEN";

/// A command's examples, one per line, commented.
pub fn examples(command: &str) -> String {
    let lines: &[&str] = match command {
        "serve" => &[
            "# the installed service reads /etc/appliance/appliance.toml; by hand:",
            "appliance serve --listen 127.0.0.1:8080 --data /var/lib/appliance --destination-url https://gitlab.internal --destination-token-file /etc/appliance/destination-token",
            "# terminate TLS itself on every address",
            "appliance serve --listen 0.0.0.0:8443 --tls-cert-file /etc/appliance/tls.crt --tls-key-file /etc/appliance/tls.key",
        ],
        "migrate" => &[
            "# a group with its subgroups and projects, into the existing group `imported`",
            "appliance migrate --source-url https://gitlab.example.com --destination-url https://gitlab.internal --group acme --to imported",
            "# two projects, each on its own, and users mapped by a CSV",
            "appliance migrate --source-url https://gitlab.example.com --destination-url https://gitlab.internal --project acme/api --project acme/web --to imported --user-map users.csv",
            "# load only what an earlier run of the same migration did not",
            "appliance migrate --source-url https://gitlab.example.com --destination-url https://gitlab.internal --group acme --to imported --retry",
        ],
        "check" => &[
            "appliance check --source-url https://gitlab.example.com --destination-url https://gitlab.internal --group acme --to imported --unmapped-csv unmapped.csv",
        ],
        "export" => &[
            "# a group with its projects, signed, in volumes that fit the carrier",
            "appliance export --source-url https://gitlab.example.com --group acme --out acme.bundle --sign-key signing.pem --volume-size 4GiB",
            "# two projects on their own",
            "appliance export --source-url https://gitlab.example.com --project acme/api --project acme/web --out projects.bundle",
        ],
        "verify" => &[
            "appliance verify acme.bundle --trusted-key verifying.pem",
            "# a bundle in volumes is named by its first one",
            "appliance verify acme.bundle.001",
        ],
        "inspect" => &[
            "appliance inspect acme.bundle",
            "appliance inspect acme.bundle --json",
        ],
        "replay" => &[
            "appliance replay acme.bundle --destination-url https://gitlab.internal --to imported --trusted-key verifying.pem",
            "# load what an earlier replay of the same bundle did not",
            "appliance replay acme.bundle --destination-url https://gitlab.internal --to imported --retry",
        ],
        "list" => &["appliance list --data /var/lib/appliance"],
        "status" => &["appliance status 3 --data /var/lib/appliance --json"],
        "report" => &[
            "appliance report 3 --format markdown --out migration-3.md",
            "appliance report 3 --format csv --out migration-3.csv --data /var/lib/appliance",
        ],
        "gc" => &[
            "# what a canceled export left behind, once the service is stopped",
            "appliance gc --data /var/lib/appliance --dry-run",
            "appliance gc --data /var/lib/appliance",
        ],
        "demo" => &["appliance demo", "appliance demo --data demo-data"],
        "appliance" => &[
            "# a real migration between two built-in sample instances",
            "appliance demo",
            "# what a migration would move and what blocks it, then the migration",
            "appliance check --source-url https://gitlab.example.com --destination-url https://gitlab.internal --group acme --to imported",
            "appliance migrate --source-url https://gitlab.example.com --destination-url https://gitlab.internal --group acme --to imported",
            "# offline: export on the source side, carry, verify and replay on the other",
            "appliance export --source-url https://gitlab.example.com --group acme --out acme.bundle",
            "appliance replay acme.bundle --destination-url https://gitlab.internal --to imported",
            "# each command's own examples",
            "appliance migrate --help",
        ],
        _ => &[],
    };
    let mut out = String::from("Examples:\n");
    let (source, destination) = match command {
        "migrate" | "check" | "appliance" => (true, true),
        "export" => (true, false),
        "replay" => (false, true),
        _ => (false, false),
    };
    if source || destination {
        out.push_str(READ_TOKENS);
        out.push('\n');
    }
    for (wanted, line) in [(source, SOURCE_TOKEN), (destination, DESTINATION_TOKEN)] {
        if wanted {
            out.push_str(line);
            out.push('\n');
        }
    }
    for line in lines {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A command's whole `--help` footer.
pub fn after_help(command: &str) -> String {
    let rest = match command {
        "serve" => format!("{}\n\n{EXIT_STATUS_HELP}", super::serve::SETTINGS_HELP),
        "check" => {
            "Exit status 0: nothing blocks the migration; 1: something does (each blocker is \
                    listed with what to change)."
                .to_string()
        }
        "list" | "status" | "report" | "gc" => {
            "Exit status 0: done; 1: refused (the message says why).".to_string()
        }
        _ => EXIT_STATUS_HELP.to_string(),
    };
    format!("{}\n{rest}", examples(command))
}
