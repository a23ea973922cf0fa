//! The Prometheus alert rules, from one source: `src/report/hearth-rules.yaml.in`, whose
//! `runbook_url`s are `${RUNBOOK_BASE_URL}/<alert>.md`. `hearth rules --runbook-base-url URL`
//! prints them with absolute runbook links (Alertmanager shows them as links, so a relative path
//! is a dead one); the copies in manifests/prometheus/ and the chart are its output with the
//! default base, checked by tests/report_rules.rs.

/// The rules template.
pub const TEMPLATE: &str = include_str!("hearth-rules.yaml.in");

/// Where the runbooks are by default: `docs/runbooks` of the repository named in Cargo.toml.
pub const DEFAULT_RUNBOOK_BASE_URL: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/src/branch/main/docs/runbooks"
);

/// The rules with runbook links under `base` (a trailing `/` is ignored).
pub fn render(base: &str) -> String {
    TEMPLATE.replace("${RUNBOOK_BASE_URL}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runbook_link_is_absolute() {
        let r = render("https://docs.example/runbooks/");
        assert!(!r.contains("${"));
        let links: Vec<&str> = r
            .lines()
            .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
            .collect();
        assert!(!links.is_empty());
        for l in links {
            assert!(l.starts_with("https://docs.example/runbooks/Hearth"), "{l}");
            assert!(l.ends_with(".md"), "{l}");
        }
        assert!(DEFAULT_RUNBOOK_BASE_URL.starts_with("https://"));
    }
}
