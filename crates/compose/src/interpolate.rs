//! `${VAR}` interpolation of compose files, exactly as docker/cli's `cli/compose/template` and
//! `cli/compose/interpolation` do it, plus the loader's type-cast table.
//!
//! docker/cli's template is one regular expression, applied left to right without rescanning:
//! - `$$` -> `$`; `$NAME` and `${NAME}` (names `[_a-zA-Z][_a-zA-Z0-9]*`, case-insensitive);
//! - modifiers `:-` (default if unset or empty), `-` (default if unset), `:?` (error if unset or
//!   empty), `?` (error if unset). The modifier text runs to the first `}` (or, unbraced, to the
//!   end of the string or the first `}`), so defaults do not nest: `${A:-${B}}` with A unset
//!   gives the literal `${B}` followed by `}`. `$A-x/y` is `A` with default `x/y`;
//! - anything else after `$` (`${A:+x}`, `$1`, a trailing `$`) is an invalid template.
//!
//! An unset variable without modifier becomes empty (collected as a warning here). A quirk kept
//! for fidelity: docker/cli keeps only the error state of the *last* substitution in a string,
//! so `${A:?need A} ${B}` succeeds when B substitutes fine; such swallowed errors are reported
//! as warnings.
//!
//! After substitution, docker/cli casts values at some paths back to int/float/bool
//! (`interpolateTypeCastMapping` in `loader/interpolate.go`), only when substitution changed
//! the string. [`interpolate_tree`] does both and reports errors with file:line:col.

use crate::yaml::{Node, NodeValue};
use hearth_diag::Diagnostic;

/// A substitution that failed: the variable concerned (empty for a syntax error) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolateError {
    pub variable: String,
    pub message: String,
}

impl std::fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InterpolateError {}

/// The result of substituting one string, with what docker/cli passes over silently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Substituted {
    pub value: String,
    /// Variables referenced without a default that were unset (substituted by "").
    pub unset: Vec<String>,
    /// Errors docker/cli drops because a later substitution in the same string succeeded.
    pub swallowed: Vec<InterpolateError>,
}

/// Substitute variables in `input` as docker/cli's `template.Substitute` does.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    substitute(input, lookup).map(|s| s.value)
}

/// One `$` occurrence, as the docker/cli pattern matches it.
enum Match<'a> {
    Escaped,
    Substitution(&'a str),
    Invalid,
}

fn is_name_start(c: char) -> bool {
    // Go's (?i)[_a-z] also matches U+017F (long s) and U+212A (Kelvin sign) by case folding.
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Length in bytes of `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?` at the start of `s` (0: no match).
fn substitution_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return 0,
    }
    let name_end = s
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(s.len(), |(i, _)| i);
    let rest = &s[name_end..];
    let modifier = if rest.starts_with(":-") || rest.starts_with(":?") {
        2
    } else if rest.starts_with('-') || rest.starts_with('?') {
        1
    } else {
        return name_end;
    };
    let after = name_end + modifier;
    after + s[after..].find('}').unwrap_or(s.len() - after)
}

/// Match the pattern at a `$` starting `s`; returns the match and its byte length.
fn match_dollar(s: &str) -> (Match<'_>, usize) {
    let rest = &s[1..];
    if rest.starts_with('$') {
        return (Match::Escaped, 2);
    }
    let n = substitution_len(rest);
    if n > 0 {
        return (Match::Substitution(&rest[..n]), 1 + n);
    }
    if let Some(inner) = rest.strip_prefix('{') {
        let n = substitution_len(inner);
        if n > 0 && inner[n..].starts_with('}') {
            return (Match::Substitution(&inner[..n]), 3 + n);
        }
    }
    (Match::Invalid, 1)
}

fn partition<'a>(s: &'a str, sep: &str) -> (&'a str, &'a str) {
    s.split_once(sep).unwrap_or((s, ""))
}

/// Substitute, keeping docker/cli's "last substitution's error wins" behaviour.
pub fn substitute(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolateError> {
    let mut out = Substituted::default();
    let mut err: Option<InterpolateError> = None;
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.value.push_str(&rest[..i]);
        let (m, len) = match_dollar(&rest[i..]);
        rest = &rest[i + len..];
        let sub = match m {
            Match::Escaped => {
                out.value.push('$');
                continue;
            }
            Match::Invalid => {
                if let Some(e) = err.take() {
                    out.swallowed.push(e);
                }
                err = Some(InterpolateError {
                    variable: String::new(),
                    message: format!(
                        "invalid interpolation format: {input:?}; you may need to escape any $ \
                         with another $"
                    ),
                });
                continue;
            }
            Match::Substitution(sub) => sub,
        };
        // Every substitution function call resets docker/cli's error variable.
        if let Some(e) = err.take() {
            out.swallowed.push(e);
        }
        if sub.contains(":-") {
            let (name, default) = partition(sub, ":-");
            match lookup(name) {
                Some(v) if !v.is_empty() => out.value.push_str(&v),
                _ => out.value.push_str(default),
            }
        } else if sub.contains('-') {
            let (name, default) = partition(sub, "-");
            match lookup(name) {
                Some(v) => out.value.push_str(&v),
                None => out.value.push_str(default),
            }
        } else if sub.contains(":?") || sub.contains('?') {
            let sep = if sub.contains(":?") { ":?" } else { "?" };
            let (name, message) = partition(sub, sep);
            match lookup(name) {
                Some(v) if sep == "?" || !v.is_empty() => out.value.push_str(&v),
                _ => {
                    err = Some(InterpolateError {
                        variable: name.to_string(),
                        message: format!("required variable {name} is missing a value: {message}"),
                    });
                }
            }
        } else {
            match lookup(sub) {
                Some(v) => out.value.push_str(&v),
                None => {
                    if !out.unset.iter().any(|u| u == sub) {
                        out.unset.push(sub.to_string());
                    }
                }
            }
        }
    }
    out.value.push_str(rest);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

// ---------------------------------------------------------------------------------------------
// Type casts after interpolation (docker/cli loader/interpolate.go)

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// docker/cli's `interpolateTypeCastMapping`: `*` matches any key, `[]` any list item.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

/// docker/cli joins keys with `.` and splits the path on `.` again to match (so keys that
/// contain dots shift the parts, as they do there).
fn cast_for(path: &str) -> Option<Cast> {
    let parts: Vec<&str> = path.split('.').collect();
    CASTS.iter().find_map(|(pattern, cast)| {
        let pat: Vec<&str> = pattern.split('.').collect();
        (pat.len() == parts.len() && pat.iter().zip(&parts).all(|(p, a)| *p == "*" || p == a))
            .then_some(*cast)
    })
}

fn apply_cast(cast: Cast, s: &str) -> Result<NodeValue, String> {
    match cast {
        Cast::Int => s.parse::<i64>().map(NodeValue::Int).map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            format!("strconv.Atoi: parsing {s:?}: {why}")
        }),
        Cast::Float => match s.parse::<f64>() {
            Ok(f) if f.is_finite() || s.to_ascii_lowercase().contains("inf") => {
                Ok(NodeValue::Float(f))
            }
            Ok(_) => Err(format!(
                "strconv.ParseFloat: parsing {s:?}: value out of range"
            )),
            Err(_) => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        },
        Cast::Bool => match s.to_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(NodeValue::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(NodeValue::Bool(false)),
            _ => Err(format!("invalid boolean: {s}")),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Whole-tree interpolation

/// Interpolate every string value (never keys) of one file's tree, then apply docker/cli's
/// type casts. Returns the new tree and warnings (unset variables, swallowed errors), or every
/// error found, each located by file:line:col and dotted path.
pub fn interpolate_tree(
    node: &Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    files: &[String],
) -> Result<(Node, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut walk = Walk {
        lookup,
        files,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let out = walk.node(node, &mut Vec::new(), &mut Vec::new());
    if walk.errors.is_empty() {
        Ok((out, walk.warnings))
    } else {
        Err(walk.errors)
    }
}

struct Walk<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    files: &'a [String],
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// Human path: `services.app.ports[0].target`.
pub fn display_path(parts: &[String]) -> String {
    let mut s = String::new();
    for p in parts {
        if p.starts_with('[') || s.is_empty() {
            s.push_str(p);
        } else {
            s.push('.');
            s.push_str(p);
        }
    }
    s
}

impl Walk<'_> {
    fn diag(&self, node: &Node, shown: &[String], message: String) -> Diagnostic {
        let file = self
            .files
            .get(node.file as usize)
            .cloned()
            .unwrap_or_default();
        Diagnostic::new(file, node.pos, display_path(shown), message)
    }

    /// `matched` is docker/cli's path (list items as `[]`), `shown` the human one.
    fn node(&mut self, node: &Node, matched: &mut Vec<String>, shown: &mut Vec<String>) -> Node {
        let value = match &node.value {
            NodeValue::Str(s) => self.string(node, s, matched, shown),
            NodeValue::Seq(items) => NodeValue::Seq(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        matched.push("[]".into());
                        shown.push(format!("[{i}]"));
                        let n = self.node(item, matched, shown);
                        matched.pop();
                        shown.pop();
                        n
                    })
                    .collect(),
            ),
            NodeValue::Map(m) => NodeValue::Map(
                m.iter()
                    .map(|(k, (kpos, v))| {
                        matched.push(k.clone());
                        shown.push(k.clone());
                        let n = self.node(v, matched, shown);
                        matched.pop();
                        shown.pop();
                        (k.clone(), (*kpos, n))
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        Node::new(value, node.file, node.pos)
    }

    fn string(&mut self, node: &Node, s: &str, matched: &[String], shown: &[String]) -> NodeValue {
        let result = substitute(s, self.lookup);
        let sub = match result {
            Ok(sub) => sub,
            Err(e) => {
                let d = self.diag(node, shown, e.message);
                self.errors.push(d);
                return NodeValue::Str(s.to_string());
            }
        };
        for name in &sub.unset {
            let d = self.diag(
                node,
                shown,
                format!("variable {name} is not set; substituting an empty string"),
            );
            self.warnings.push(d);
        }
        for e in &sub.swallowed {
            let d = self.diag(
                node,
                shown,
                format!(
                    "{} (docker stack deploy ignores this because a later substitution in the \
                     same value succeeded)",
                    e.message
                ),
            );
            self.warnings.push(d);
        }
        if sub.value == s {
            return NodeValue::Str(sub.value);
        }
        match cast_for(&matched.join(".")) {
            None => NodeValue::Str(sub.value),
            Some(cast) => match apply_cast(cast, &sub.value) {
                Ok(v) => v,
                Err(e) => {
                    let d = self.diag(node, shown, format!("failed to cast to expected type: {e}"));
                    self.errors.push(d);
                    NodeValue::Str(sub.value)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_yaml;
    use proptest::prelude::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn sub(s: &str) -> Result<String, InterpolateError> {
        let e = env(&[("A", "a"), ("EMPTY", ""), ("STACK_NAME", "git_example_org")]);
        interpolate(s, &e)
    }

    fn ok(s: &str) -> String {
        sub(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn basic_forms() {
        assert_eq!(ok("$A"), "a");
        assert_eq!(ok("${A}"), "a");
        assert_eq!(ok("x${A}y$A.z"), "xaya.z");
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("$${A}"), "${A}");
        assert_eq!(ok("${UNSET}"), "");
        assert_eq!(
            ok("${STACK_NAME}_db_password_${V:-v1}"),
            "git_example_org_db_password_v1"
        );
    }

    #[test]
    fn defaults_and_required() {
        assert_eq!(ok("${UNSET:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${UNSET-d}"), "d");
        assert_eq!(ok("${A:-d}"), "a");
        assert_eq!(ok("${EMPTY?m}"), "");
        let e = sub("${UNSET:?need it}").err().unwrap_or_else(|| panic!());
        assert_eq!(e.variable, "UNSET");
        assert_eq!(
            e.message,
            "required variable UNSET is missing a value: need it"
        );
        assert!(sub("${EMPTY:?x}").is_err());
        assert!(sub("${UNSET?x}").is_err());
    }

    #[test]
    fn docker_template_quirks() {
        // no nesting: the default stops at the first `}`
        assert_eq!(ok("${UNSET:-${A}}"), "${A}");
        // unbraced modifiers run to the end of the string
        assert_eq!(ok("$UNSET-x/y z"), "x/y z");
        assert_eq!(ok("$A:x"), "a:x");
        // names are case-insensitive in the pattern, lookups are not
        assert_eq!(ok("$a"), "");
        // `:+` does not exist in docker/cli
        assert!(sub("${A:+x}").is_err());
        assert!(sub("cost: 5$").is_err());
        assert!(sub("$1").is_err());
        assert!(sub("${A").is_err());
        // only the last substitution's error state counts
        let e = env(&[("B", "b")]);
        let r = substitute("${X:?need} $B", &e).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.value, " b");
        assert_eq!(r.swallowed.len(), 1);
        assert!(substitute("$B ${X:?need}", &e).is_err());
    }

    #[test]
    fn unset_names_are_collected() {
        let e = env(&[]);
        let r = substitute("$X ${Y} ${X} ${Z:-d}", &e).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.unset, vec!["X".to_string(), "Y".to_string()]);
    }

    fn files() -> Vec<String> {
        vec!["compose.yml".to_string()]
    }

    #[test]
    fn tree_errors_are_located() {
        let text =
            "services:\n  app:\n    image: ${IMAGE:?msg}\n    environment:\n      - A=${A}\n";
        let n = parse_yaml(text, "compose.yml").unwrap_or_else(|e| panic!("{e}"));
        let errs = interpolate_tree(&n, &env(&[]), &files())
            .err()
            .unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "compose.yml:3:12: services.app.image: required variable IMAGE is missing a value: msg"
        );
    }

    #[test]
    fn tree_casts_only_changed_values_at_known_paths() {
        let text = "services:\n  app:\n    deploy:\n      replicas: ${R}\n      labels:\n        n: ${R}\n    \
                    secrets:\n      - source: s\n        mode: ${MODE}\n    read_only: ${RO}\n    tty: \"yes\"\n\
                    networks:\n  proxy:\n    external: ${EXT}\n";
        let n = parse_yaml(text, "compose.yml").unwrap_or_else(|e| panic!("{e}"));
        let lookup = env(&[("R", "3"), ("MODE", "0440"), ("RO", "on"), ("EXT", "true")]);
        let (out, warnings) =
            interpolate_tree(&n, &lookup, &files()).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(warnings.is_empty());
        let app = out
            .get("services")
            .and_then(|s| s.get("app"))
            .unwrap_or_else(|| panic!());
        let deploy = app.get("deploy").unwrap_or_else(|| panic!());
        assert_eq!(
            deploy.get("replicas").map(|n| &n.value),
            Some(&NodeValue::Int(3))
        );
        assert_eq!(
            deploy
                .get("labels")
                .and_then(|l| l.get("n"))
                .map(|n| &n.value),
            Some(&NodeValue::Str("3".into()))
        );
        // Atoi is base 10: an interpolated "0440" is 440, not octal
        let mode = app.get("secrets").and_then(|s| match &s.value {
            NodeValue::Seq(items) => items.first().and_then(|i| i.get("mode")).cloned(),
            _ => None,
        });
        assert_eq!(mode.map(|n| n.value), Some(NodeValue::Int(440)));
        assert_eq!(
            app.get("read_only").map(|n| &n.value),
            Some(&NodeValue::Bool(true))
        );
        // unchanged strings are not cast
        assert_eq!(
            app.get("tty").map(|n| &n.value),
            Some(&NodeValue::Str("yes".into()))
        );
        let ext = out
            .get("networks")
            .and_then(|n| n.get("proxy"))
            .and_then(|p| p.get("external"));
        assert_eq!(ext.map(|n| &n.value), Some(&NodeValue::Bool(true)));
    }

    #[test]
    fn tree_cast_failure_and_warnings() {
        let text = "services:\n  app:\n    deploy:\n      replicas: ${R}\n    image: x${NOPE}\n";
        let n = parse_yaml(text, "compose.yml").unwrap_or_else(|e| panic!("{e}"));
        let errs = interpolate_tree(&n, &env(&[("R", "many")]), &files())
            .err()
            .unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .contains("services.app.deploy.replicas: failed to cast")
        );
        let (_, warnings) =
            interpolate_tree(&n, &env(&[("R", "2")]), &files()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("NOPE"));
    }

    proptest! {
        #[test]
        fn no_dollar_is_unchanged(s in "[^$]{0,64}") {
            let e = env(&[]);
            prop_assert_eq!(interpolate(&s, &e).ok(), Some(s.clone()));
        }

        #[test]
        fn escaping_round_trips(s in ".{0,64}") {
            let escaped = s.replace('$', "$$");
            let e = env(&[]);
            prop_assert_eq!(interpolate(&escaped, &e).ok(), Some(s.clone()));
        }

        #[test]
        fn braced_variable_yields_its_value(name in "[A-Z_][A-Z0-9_]{0,12}", value in ".{0,64}") {
            let e = env(&[(name.as_str(), value.as_str())]);
            prop_assert_eq!(interpolate(&format!("${{{name}}}"), &e).ok(), Some(value.clone()));
        }

        #[test]
        fn never_panics(s in ".{0,64}", t in "[${}:?+_A-Za-z0-9-]{0,32}") {
            let e = env(&[("A", "x")]);
            let _ = interpolate(&s, &e);
            let _ = interpolate(&t, &e);
        }
    }
}
