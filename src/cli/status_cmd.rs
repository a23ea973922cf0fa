//! `hearth status`: reads a running hearth's JSON API (`--url`) and prints the pool as a table
//! (NAME PHASE REASON DESIRED LIVE DOMAIN SINCE), one deployment in detail, or the JSON as is.

use std::fmt::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use std::path::Path;
use std::time::Duration;

use crate::http_client;

use crate::report::api::{self, ApiError, Deployment, DeploymentList};

use super::common::runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusOutput {
    Text,
    Json,
}

pub struct StatusArgs<'a> {
    pub url: &'a str,
    /// CA certificates (PEM) trusted besides the system roots, for an https `url`.
    pub cacert: Option<&'a Path>,
    pub output: StatusOutput,
    pub name: Option<&'a str>,
    /// File of the bearer token the API needs (a hearth listening off loopback).
    pub token_file: Option<&'a std::path::Path>,
}

/// GETs `path` under `url` (`http://` or `https://`, with an optional path prefix), trusting
/// `cacert` besides the system roots; returns (HTTP status, body).
/// GETs `path` under `url` (trusting `cacert` too when given), with `token` as bearer token if
/// given; returns (HTTP status, body).
pub async fn get(
    url: &str,
    path: &str,
    cacert: Option<&Path>,
    token: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let base = http_client::parse_url("--url", url).map_err(|e| e.to_string())?;
    let target = http_client::under(&base, path);
    let client = match cacert {
        Some(_) => http_client::client(cacert).map_err(|e| e.to_string())?,
        None => http_client::shared().map_err(|e| e.to_string())?.clone(),
    };
    let mut req = client
        .get(target.clone())
        .header("Accept", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let a = http_client::get(req, Duration::from_secs(30), 64 << 20)
        .await
        .map_err(|e| format!("cannot reach hearth at {target}: {e}"))?;
    Ok((a.status, a.body))
}

/// Left-aligned columns separated by three spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == n {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}   ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

fn row(d: &Deployment, now: SystemTime) -> Vec<String> {
    vec![
        d.name.clone(),
        or_dash(&d.phase),
        or_dash(&d.reason),
        or_dash(&d.desired_version),
        or_dash(d.live_version.as_deref().unwrap_or("")),
        or_dash(&d.domain),
        or_dash(&api::age(d.since.as_deref(), now)),
    ]
}

const HEADER: [&str; 7] = [
    "NAME", "PHASE", "REASON", "DESIRED", "LIVE", "DOMAIN", "SINCE",
];

/// The pool table.
pub fn pool_text(list: &DeploymentList, now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = list.deployments.iter().map(|d| row(d, now)).collect();
    let mut out = table(&HEADER, &rows);
    if !list.docker_up {
        out.push_str("\nwarning: hearth is not connected to Docker\n");
    }
    for e in &list.manifest_errors {
        let _ = writeln!(out, "manifest error: {e}");
    }
    for d in &list.deployments {
        for c in &d.conditions {
            if c.kind == crate::conflicts::CONDITION && c.status {
                let _ = writeln!(out, "conflict: {}: {}", d.name, c.message);
            }
        }
    }
    out
}

/// One deployment: its row, then message, conditions, services, drift, probes, last error.
pub fn deployment_text(d: &Deployment, now: SystemTime) -> String {
    let mut out = table(&HEADER, &[row(d, now)]);
    if !d.message.is_empty() {
        let _ = writeln!(out, "\n{}", d.message);
    }
    if !d.conditions.is_empty() {
        out.push_str("\nCONDITIONS\n");
        let rows: Vec<Vec<String>> = d
            .conditions
            .iter()
            .map(|c| {
                vec![
                    c.kind.clone(),
                    c.status.to_string(),
                    or_dash(&c.reason),
                    or_dash(&api::age(api::time(c.since).as_deref(), now)),
                    c.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"],
            &rows,
        ));
    }
    if !d.services.is_empty() {
        out.push_str("\nSERVICES\n");
        let rows: Vec<Vec<String>> = d
            .services
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    format!("{}/{}", s.running, s.desired),
                    s.state.clone(),
                    s.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["SERVICE", "RUNNING", "STATE", "MESSAGE"], &rows));
    }
    if !d.drift.is_empty() {
        out.push_str("\nDRIFT\n");
        let rows: Vec<Vec<String>> = d
            .drift
            .iter()
            .map(|x| {
                vec![
                    x.service.clone(),
                    x.field.clone(),
                    x.desired.clone(),
                    x.live.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["SERVICE", "FIELD", "DESIRED", "LIVE"], &rows));
    }
    if !d.probes.is_empty() {
        out.push_str("\nPROBES\n");
        let rows: Vec<Vec<String>> = d
            .probes
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    if p.ok { "ok" } else { "failing" }.into(),
                    p.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["PROBE", "RESULT", "MESSAGE"], &rows));
    }
    if let Some(e) = &d.last_error {
        let _ = writeln!(out, "\nLAST ERROR\n{e}");
    }
    out
}

async fn fetch(args: &StatusArgs<'_>) -> Result<String, String> {
    let path = match args.name {
        Some(n) => format!("/api/v1/deployments/{}", encode_segment(n)),
        None => "/api/v1/deployments".to_string(),
    };
    let token = args
        .token_file
        .map(|p| crate::report::auth::read_token(p, "API token"))
        .transpose()
        .map_err(|e| e.to_string())?;
    let (status, body) = get(args.url, &path, args.cacert, token.as_deref()).await?;
    if status != 200 {
        let why = serde_json::from_slice::<ApiError>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        return Err(format!("{}: HTTP {status}: {why}", args.url));
    }
    let bad = |e: serde_json::Error| format!("{}: unexpected answer: {e}", args.url);
    let now = SystemTime::now();
    Ok(match (args.output, args.name) {
        (StatusOutput::Json, _) => {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(bad)?;
            format!("{}\n", serde_json::to_string_pretty(&v).map_err(bad)?)
        }
        (StatusOutput::Text, Some(_)) => {
            deployment_text(&serde_json::from_slice(&body).map_err(bad)?, now)
        }
        (StatusOutput::Text, None) => pool_text(&serde_json::from_slice(&body).map_err(bad)?, now),
    })
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn run(args: &StatusArgs) -> ExitCode {
    match runtime().block_on(fetch(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["NAME", "PHASE"],
            &[
                vec!["gitea".into(), "Ready".into()],
                vec!["k".into(), "Wedged".into()],
            ],
        );
        assert_eq!(t, "NAME    PHASE\ngitea   Ready\nk       Wedged\n");
    }

    #[test]
    fn pool_text_has_the_columns_and_ages() {
        let d = Deployment {
            name: "gitea".into(),
            recipe: "gitea".into(),
            role: "canonical".into(),
            stack: "s".into(),
            domain: "git.example.org".into(),
            desired_version: "3.6.0".into(),
            live_version: None,
            phase: "Wedged".into(),
            reason: "CrashLoop".into(),
            message: String::new(),
            since: Some("2023-11-14T22:13:20Z".into()),
            conditions: vec![],
            services: vec![],
            drift: vec![],
            probes: vec![],
            last_reconcile: None,
            last_error: None,
            last_ready: None,
        };
        let list = DeploymentList {
            deployments: vec![d],
            docker_up: true,
            synced: true,
            manifest_errors: vec![],
            revision: None,
        };
        let now = humantime::parse_rfc3339("2023-11-14T22:14:20Z").expect("t");
        let text = pool_text(&list, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            HEADER.to_vec()
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "gitea",
                "Wedged",
                "CrashLoop",
                "3.6.0",
                "-",
                "git.example.org",
                "1m"
            ]
        );
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
