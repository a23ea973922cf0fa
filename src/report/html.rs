//! The status page: server-rendered HTML, no JavaScript. `/` shows the pool as a table (phase
//! colour, reason, versions, domain, since); `/deployments/{name}` drills into one deployment
//! (conditions, services, drift, probes, last error). Every value goes through [`escape`].

use std::fmt::Write;
use std::time::SystemTime;

use super::api::{Deployment, DeploymentList};

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a deployment name for a URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The CSS class of a phase (its colour).
pub fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Ready" => "ok",
        "Progressing" | "Pending" => "busy",
        "Degraded" | "Held" => "warn",
        "Wedged" | "AdvanceFailed" | "Invalid" | "Conflict" => "bad",
        "Parked" | "Suspended" => "idle",
        _ => "unknown",
    }
}

/// "3m12s ago" style age of an RFC 3339 time, relative to `now` (empty when unknown).
pub fn age(rfc3339: Option<&str>, now: SystemTime) -> String {
    let a = super::api::age(rfc3339, now);
    if a.is_empty() { a } else { format!("{a} ago") }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem;color:#222;\
overflow-wrap:anywhere}.scroll{overflow-x:auto;max-width:100%}\
.cond{display:inline-block;margin:0 .2rem .2rem 0}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem;display:block;overflow-x:auto;max-width:100%}\
th,td{border-bottom:1px solid #ddd;padding:.35rem .7rem;text-align:left;vertical-align:top}\
th{background:#f4f4f4}#deployments td{white-space:nowrap}\
.phase{font-weight:600;padding:.1rem .5rem;border-radius:.3rem;color:#fff}\
.ok{background:#2e7d32}.busy{background:#1565c0}.warn{background:#ef6c00}\
.bad{background:#c62828}.idle{background:#757575}.unknown{background:#9e9e9e}\
.meta{color:#555}.err{color:#c62828;white-space:pre-wrap}code{font-size:.9em}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

fn phase_badge(phase: &str) -> String {
    let shown = if phase.is_empty() { "Unknown" } else { phase };
    format!(
        "<span class=\"phase {}\">{}</span>",
        phase_class(phase),
        escape(shown)
    )
}

fn since_cell(since: Option<&str>, now: SystemTime) -> String {
    format!(
        "<td title=\"{}\">{}</td>",
        escape(since.unwrap_or("")),
        escape(&age(since, now))
    )
}

/// `/`: the pool.
pub fn pool_page(list: &DeploymentList, now: SystemTime) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>hearth</h1><p class=\"meta\">{} deployment(s) &middot; Docker {} &middot; {} \
         &middot; revision {}</p>",
        list.deployments.len(),
        if list.docker_up {
            "connected"
        } else {
            "unreachable"
        },
        if list.synced {
            "synced"
        } else {
            "first sync pending"
        },
        escape(
            &list
                .revision
                .as_deref()
                .map(|r| r.chars().take(12).collect::<String>())
                .unwrap_or_else(|| "local files".into())
        )
    );
    if !list.manifest_errors.is_empty() {
        b.push_str("<h2>Manifest errors</h2><ul class=\"err\">");
        for e in &list.manifest_errors {
            let _ = write!(b, "<li>{}</li>", escape(e));
        }
        b.push_str("</ul>");
    }
    // Collisions with other stacks do not change a phase, so they are listed apart.
    let conflicts: Vec<(&str, &str)> = list
        .deployments
        .iter()
        .flat_map(|d| {
            d.conditions
                .iter()
                .filter(|c| c.kind == crate::conflicts::CONDITION && c.status)
                .map(|c| (d.name.as_str(), c.message.as_str()))
        })
        .collect();
    if !conflicts.is_empty() {
        b.push_str("<h2>Conflicts</h2><ul id=\"conflicts\" class=\"err\">");
        for (name, message) in conflicts {
            let _ = write!(
                b,
                "<li><a href=\"/deployments/{}\">{}</a>: {}</li>",
                path_segment(name),
                escape(name),
                escape(message)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str(
        "<div class=\"scroll\"><table id=\"deployments\"><thead><tr><th>Name</th><th>Phase</th>\
         <th>Reason</th><th>Conditions</th><th>Desired</th><th>Live</th><th>Domain</th>\
         <th>Since</th></tr></thead><tbody>",
    );
    for d in &list.deployments {
        let _ = write!(
            b,
            "<tr><td><a href=\"deployments/{}\">{}</a></td><td>{}</td>\
             <td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            path_segment(&d.name),
            escape(&d.name),
            phase_badge(&d.phase),
            escape(&d.message),
            escape(&d.reason),
            condition_badges(d),
            escape(&d.desired_version),
            escape(d.live_version.as_deref().unwrap_or("")),
            escape(&d.domain),
            since_cell(d.since.as_deref(), now),
        );
    }
    b.push_str("</tbody></table></div>");
    b.push_str(
        "<p class=\"meta\"><a href=\"metrics\">metrics</a> &middot; \
         <a href=\"api/v1/deployments\">API</a></p>",
    );
    page("hearth", &b)
}

/// The conditions worth a look in the pool table: every true condition but `Ready` (e.g. a
/// `Conflict`), whatever its type, with its reason; the message as the tooltip.
fn condition_badges(d: &Deployment) -> String {
    d.conditions
        .iter()
        .filter(|c| c.status && c.kind != "Ready")
        .map(|c| {
            format!(
                "<span class=\"phase warn cond\" title=\"{}\">{}{}</span>",
                escape(&c.message),
                escape(&c.kind),
                if c.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape(&c.reason))
                }
            )
        })
        .collect()
}

/// `/deployments/{name}`: one deployment.
pub fn deployment_page(d: &Deployment, now: SystemTime) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<p><a href=\"../\">&larr; pool</a></p><h1>{} {}</h1><p>{}: {}</p>\
         <table id=\"summary\"><tbody>",
        escape(&d.name),
        phase_badge(&d.phase),
        escape(&d.reason),
        escape(&d.message)
    );
    let rows: [(&str, String); 10] = [
        ("Recipe", d.recipe.clone()),
        ("Role", d.role.clone()),
        ("Stack", d.stack.clone()),
        ("Domain", d.domain.clone()),
        ("Desired version", d.desired_version.clone()),
        ("Live version", d.live_version.clone().unwrap_or_default()),
        ("Phase since", d.since.clone().unwrap_or_default()),
        (
            "Last reconcile",
            d.last_reconcile.clone().unwrap_or_default(),
        ),
        ("Last ready", d.last_ready.clone().unwrap_or_default()),
        ("Age of phase", age(d.since.as_deref(), now)),
    ];
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v));
    }
    b.push_str("</tbody></table>");
    if let Some(e) = &d.last_error {
        let _ = write!(
            b,
            "<h2>Last error</h2><p id=\"last-error\" class=\"err\">{}</p>",
            escape(e)
        );
    }
    b.push_str(
        "<h2>Conditions</h2><table id=\"conditions\"><thead><tr><th>Type</th><th>Status</th>\
         <th>Reason</th><th>Message</th><th>Since</th></tr></thead><tbody>",
    );
    for c in &d.conditions {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            escape(&c.kind),
            c.status,
            escape(&c.reason),
            escape(&c.message),
            since_cell(super::api::time(c.since).as_deref(), now)
        );
    }
    b.push_str(
        "</tbody></table><h2>Services</h2><table id=\"services\"><thead><tr><th>Service</th>\
         <th>Running</th><th>State</th><th>Message</th></tr></thead><tbody>",
    );
    for s in &d.services {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            s.running,
            s.desired,
            escape(&s.state),
            escape(&s.message)
        );
    }
    b.push_str(
        "</tbody></table><h2>Drift</h2><table id=\"drift\"><thead><tr><th>Service</th>\
         <th>Field</th><th>Desired</th><th>Live</th></tr></thead><tbody>",
    );
    for x in &d.drift {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            escape(&x.service),
            escape(&x.field),
            escape(&x.desired),
            escape(&x.live)
        );
    }
    b.push_str(
        "</tbody></table><h2>Probes</h2><table id=\"probes\"><thead><tr><th>Probe</th>\
         <th>Result</th><th>Message</th></tr></thead><tbody>",
    );
    for p in &d.probes {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.name),
            if p.ok { "ok" } else { "failing" },
            escape(&p.message)
        );
    }
    b.push_str("</tbody></table>");
    page(&format!("hearth: {}", d.name), &b)
}

/// A page saying what was not found.
pub fn not_found_page(what: &str) -> String {
    page(
        "hearth: not found",
        &format!(
            "<p><a href=\"../\">&larr; pool</a></p><h1>Not found</h1><p>{}</p>",
            escape(what)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::api::{Condition, Drift};

    fn dep(name: &str, phase: &str) -> Deployment {
        Deployment {
            name: name.into(),
            recipe: "gitea".into(),
            role: "canonical".into(),
            stack: "git_example_org".into(),
            domain: "git.example.org".into(),
            desired_version: "3.6.0".into(),
            live_version: Some("3.5.3".into()),
            phase: phase.into(),
            reason: "CrashLoop".into(),
            message: "app: exit 2".into(),
            since: Some("2023-11-14T22:13:20Z".into()),
            conditions: vec![],
            services: vec![],
            drift: vec![],
            probes: vec![],
            last_reconcile: None,
            last_error: None,
            last_ready: None,
        }
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn pool_page_escapes_values_and_colours_phases() {
        let mut evil = dep("<script>x</script>", "Wedged");
        evil.domain = "\"><img src=x>".into();
        let list = DeploymentList {
            deployments: vec![dep("gitea", "Ready"), evil],
            docker_up: true,
            synced: true,
            manifest_errors: vec!["pool.yml:1:1: spec: <bad>".into()],
            revision: None,
        };
        let now = humantime::parse_rfc3339("2023-11-14T22:16:32Z").expect("time");
        let html = pool_page(&list, now);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("<span class=\"phase ok\">Ready</span>"));
        assert!(html.contains("<span class=\"phase bad\">Wedged</span>"));
        assert!(html.contains("&lt;bad&gt;"));
        assert!(html.contains("3m12s ago"), "{html}");
        // Relative links: the page works behind a path prefix.
        assert!(html.contains("href=\"deployments/%3Cscript%3Ex%3C%2Fscript%3E\""));
        assert!(!html.contains("href=\"/"), "{html}");
        assert!(html.contains("name=\"viewport\""));
    }

    #[test]
    fn pool_page_lists_conflicts_of_deployments_in_any_phase() {
        let mut ready = dep("blog", "Ready");
        let cond = |status: bool, message: &str| Condition {
            kind: "Conflict".into(),
            status,
            reason: "AliasShadowed".into(),
            message: message.into(),
            since: None,
        };
        ready.conditions = vec![cond(true, "stack \"abra_db\" <db> on proxy")];
        let mut quiet = dep("kc", "Ready");
        quiet.conditions = vec![cond(false, "no other stack")];
        let list = DeploymentList {
            deployments: vec![ready, quiet],
            docker_up: true,
            synced: true,
            manifest_errors: vec![],
            revision: None,
        };
        let html = pool_page(&list, SystemTime::UNIX_EPOCH);
        assert!(html.contains("<ul id=\"conflicts\""), "{html}");
        assert!(
            html.contains("blog</a>: stack &quot;abra_db&quot; &lt;db&gt; on proxy</li>"),
            "{html}"
        );
        assert!(!html.contains("no other stack"), "{html}");
        let none = DeploymentList {
            deployments: vec![dep("kc", "Ready")],
            ..list
        };
        assert!(!pool_page(&none, SystemTime::UNIX_EPOCH).contains("Conflicts"));
    }

    #[test]
    fn deployment_page_shows_conditions_drift_and_error() {
        let mut d = dep("gitea", "Wedged");
        d.conditions = vec![Condition {
            kind: "Ready".into(),
            status: false,
            reason: "CrashLoop".into(),
            message: "exit <2>".into(),
            since: None,
        }];
        d.drift = vec![Drift {
            service: "app".into(),
            field: "env".into(),
            desired: "A=1".into(),
            live: "A=<2>".into(),
        }];
        d.last_error = Some("create service: 409 & co".into());
        let html = deployment_page(&d, SystemTime::now());
        assert!(html.contains("exit &lt;2&gt;"));
        assert!(html.contains("A=&lt;2&gt;"));
        assert!(html.contains("409 &amp; co"));
        assert!(html.contains("<td>3.5.3</td>"));
        assert!(html.contains("href=\"../\""));
    }

    /// Held is a warning colour; any true condition but Ready (a Conflict, say) shows in the
    /// pool table, whatever its type.
    #[test]
    fn held_and_other_conditions_are_visible() {
        let mut d = dep("gitea", "Held");
        d.conditions = vec![
            Condition {
                kind: "Ready".into(),
                status: true,
                reason: "AllReady".into(),
                message: String::new(),
                since: None,
            },
            Condition {
                kind: "Conflict".into(),
                status: true,
                reason: "OwnedByOtherPool".into(),
                message: "stack <x> belongs to pool b".into(),
                since: None,
            },
        ];
        let list = DeploymentList {
            deployments: vec![d],
            docker_up: true,
            synced: true,
            manifest_errors: vec![],
            revision: None,
        };
        let html = pool_page(&list, SystemTime::now());
        assert!(html.contains("<span class=\"phase warn\">Held</span>"));
        assert!(html.contains(
            "<span class=\"phase warn cond\" title=\"stack &lt;x&gt; belongs to pool b\">\
             Conflict: OwnedByOtherPool</span>"
        ));
        assert!(!html.contains(">Ready: AllReady<"));
    }
}
