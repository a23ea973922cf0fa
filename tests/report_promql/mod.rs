//! Metric names in PromQL expressions, for checking that dashboards and rules query only what
//! hearth exports: string literals, label matchers `{...}`, ranges `[...]`, label lists of
//! `by`/`without`/`on`/`ignoring`/`group_*` and Grafana variables are removed; what is left that
//! looks like an identifier and is neither a function call nor a keyword is a metric name.
#![allow(dead_code)]

use std::collections::BTreeSet;

use hearth::report::metrics::{DEFS, Kind};

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    // Aggregation operators may be followed by `by (...)` instead of their argument.
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Every series name a scrape of hearth can contain (histograms and summaries as `_bucket`,
/// `_sum`, `_count`).
pub fn exported_series_names() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in DEFS {
        match d.kind {
            Kind::Histogram => {
                for s in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{}{s}", d.name));
                }
            }
            Kind::Summary => {
                out.insert(d.name.to_string());
                for s in ["_sum", "_count"] {
                    out.insert(format!("{}{s}", d.name));
                }
            }
            _ => {
                out.insert(d.name.to_string());
            }
        }
    }
    out
}

/// Removes the text between `open` and its matching `close` (inclusive).
fn strip_nested(s: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

fn strip_strings(s: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The metric names an expression selects.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    // Grafana variables: ${name}, $name, $__interval.
    let mut s = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if chars.peek() == Some(&'{') {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
            } else {
                while chars.peek().is_some_and(|d| is_ident(*d)) {
                    chars.next();
                }
            }
            s.push(' ');
        } else {
            s.push(c);
        }
    }
    let s = strip_strings(&s);
    let s = strip_nested(&s, '{', '}');
    let s = strip_nested(&s, '[', ']');
    let chars: Vec<char> = s.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_next_parens = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '(' && skip_next_parens {
            // A label list: skip to the closing parenthesis.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_next_parens = false;
            i += 1;
            continue;
        }
        let starts =
            is_ident_start(c) && (i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '.'));
        if !starts {
            if !c.is_whitespace() {
                skip_next_parens = false;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let call = j < chars.len() && chars[j] == '(';
        let lower = word.to_ascii_lowercase();
        if KEYWORDS.contains(&lower.as_str()) {
            skip_next_parens = matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            );
            continue;
        }
        if !call {
            names.insert(word);
        }
    }
    names
}

#[test]
fn names_are_found_and_labels_are_not() {
    let e = r#"sum by (deployment, le) (rate(hearth_x_bucket{job=~"$job",a="b c"}[5m])) / on (deployment) group_left(recipe) max(hearth_y) or vector(0) + time() - up offset 5m > 0.5"#;
    let got: Vec<String> = metric_names(e).into_iter().collect();
    assert_eq!(got, ["hearth_x_bucket", "hearth_y", "up"]);
    assert!(
        metric_names("histogram_quantile(0.95, sum by (le) (rate(bogus_metric[5m])))")
            .contains("bogus_metric")
    );
}
