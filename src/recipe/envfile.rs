//! The `.env.sample` parser: `NAME=value` lines in order, with comments, quotes, `export `, and
//! `$NAME`/`${NAME}` expanded against variables defined earlier in the same file.
//!
//! Rules (godotenv-like, as abra reads env files):
//! - blank lines and lines whose first non-blank character is `#` are skipped (in `.env.sample`
//!   most lines are commented-out examples; only uncommented lines count);
//! - an `export ` prefix is tolerated; blanks around `=` are tolerated;
//! - unquoted values end at a `#` preceded by a blank (an inline comment) and are trimmed;
//!   a `#` glued to text (`a#b`) is part of the value;
//! - `"double"` quotes process `\"`, `\\`, `\n`, `\t`, `\r`, `\$` (other escapes stay literal) and
//!   may span lines; `'single'` quotes are literal and may span lines; after the closing quote only
//!   blanks and a `# comment` may follow;
//! - `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME-default}` in unquoted and double-quoted
//!   values expand against the variables defined EARLIER in the file (unknown -> empty), so
//!   `COMPOSE_FILE="$COMPOSE_FILE:compose.x.yml"` appends; a `$` not starting a reference stays;
//! - a redefined name appears again in the result (the caller's map keeps the last value);
//! - the values, expanded, may total at most [`MAX_EXPANDED_BYTES`]: `A=$A$A` doubles `A` per
//!   line, so without a bound a few hundred bytes of input take all memory (a fuzz finding);
//! - any other line is a [`Diagnostic`] naming the file and line.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Pos};

/// The most bytes the values of one env file may expand to, all together.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// An expansion would pass the byte budget.
#[derive(Debug, PartialEq, Eq)]
struct TooLong;

/// Parse the text of an env file. `file` names it in diagnostics (`recipe@version:.env.sample`).
pub fn parse_env_file(text: &str, file: &str) -> Result<Vec<(String, String)>, Diagnostic> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let no_vars: HashMap<String, String> = HashMap::new();
    let mut expanded_total: usize = 0;
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i];
        i += 1;
        let diag = |col: usize, field: &str, msg: String| {
            Diagnostic::new(file, Pos { line: line_no, col }, field, msg)
        };
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let mut off = line.len() - body.len();
        let mut rest = body;
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            let trimmed = after.trim_start();
            off += rest.len() - trimmed.len();
            rest = trimmed;
        }
        let name_len = name_len(rest);
        if name_len == 0 {
            return Err(diag(
                off + 1,
                "",
                format!("expected NAME=value, found {:?}", line.trim()),
            ));
        }
        let name = &rest[..name_len];
        let after_name = rest[name_len..].trim_start_matches([' ', '\t']);
        let Some(after_eq) = after_name.strip_prefix('=') else {
            return Err(diag(
                off + 1,
                name,
                format!("expected '=' after {name} (a NAME=value line)"),
            ));
        };
        let value_text = after_eq.trim_start_matches([' ', '\t']);
        let value_col = line.len() - value_text.len() + 1;

        let budget = MAX_EXPANDED_BYTES - expanded_total;
        let too_long = || {
            diag(
                value_col,
                name,
                format!(
                    "value expands to more than {MAX_EXPANDED_BYTES} bytes (with the values \
                     before it)"
                ),
            )
        };
        let value = match value_text.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // Join following lines until the quote closes. Where it closes does not depend
                // on the variables, so look for it without expanding (re-expanding the value
                // for every joined line costs its expanded size each time).
                let mut joined = value_text[1..].to_string();
                let mut scanned = loop {
                    let scanned = if q == '"' {
                        scan_double(&joined, &no_vars, usize::MAX)
                            .ok()
                            .flatten()
                            .map(|_| scan_double(&joined, &vars, budget))
                    } else {
                        joined
                            .find('\'')
                            .map(|end| Ok(Some((joined[..end].to_string(), end + 1))))
                    };
                    match scanned {
                        Some(Err(TooLong)) => return Err(too_long()),
                        Some(Ok(Some(s))) => break s,
                        _ if i < lines.len() => {
                            joined.push('\n');
                            joined.push_str(lines[i]);
                            i += 1;
                        }
                        _ => {
                            return Err(diag(
                                value_col,
                                name,
                                format!("unterminated {q}quoted{q} value"),
                            ));
                        }
                    }
                };
                let tail = joined[scanned.1..].trim_start();
                if !tail.is_empty() && !tail.starts_with('#') {
                    return Err(diag(
                        value_col,
                        name,
                        format!("unexpected text after the closing quote: {tail:?}"),
                    ));
                }
                std::mem::take(&mut scanned.0)
            }
            // Cut the comment before trimming so `A= # note` is empty but `A=#x` is `#x`.
            _ => expand(strip_inline_comment(after_eq).trim(), &vars, budget)
                .map_err(|TooLong| too_long())?,
        };
        expanded_total += value.len();
        if expanded_total > MAX_EXPANDED_BYTES {
            return Err(too_long());
        }
        vars.insert(name.to_string(), value.clone());
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// Length of a leading variable name `[A-Za-z_][A-Za-z0-9_]*` (0 when there is none).
pub(crate) fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return 0;
    }
    b.iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .unwrap_or(b.len())
}

/// Cut an unquoted value at a `#` that follows a blank.
fn strip_inline_comment(v: &str) -> &str {
    let b = v.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return &v[..i];
        }
    }
    v
}

/// Scan the inside of a double-quoted value (after the opening quote). Returns the processed value
/// and the byte index just past the closing quote, or None if the quote does not close; an error
/// when the value grows past `budget` bytes.
fn scan_double(
    s: &str,
    vars: &HashMap<String, String>,
    budget: usize,
) -> Result<Option<(String, usize)>, TooLong> {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let Some(c) = rest.chars().next() else {
            return Ok(None);
        };
        match c {
            '"' => return Ok(Some((out, i + 1))),
            '\\' => {
                let next = rest[1..].chars().next();
                match next {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('$') => out.push('$'),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return Ok(None),
                }
                i += 1 + next.map_or(0, char::len_utf8);
            }
            '$' => {
                let (text, used) = expand_ref(rest, vars);
                push_within(&mut out, text, budget)?;
                i += used;
            }
            _ => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    Ok(None)
}

/// Append an expansion to `out`, unless that takes `out` past `budget` bytes.
fn push_within(out: &mut String, text: &str, budget: usize) -> Result<(), TooLong> {
    if out.len().saturating_add(text.len()) > budget {
        return Err(TooLong);
    }
    out.push_str(text);
    Ok(())
}

/// Expand every reference in an unquoted value; an error when it grows past `budget` bytes.
fn expand(s: &str, vars: &HashMap<String, String>, budget: usize) -> Result<String, TooLong> {
    let mut out = String::new();
    let mut i = 0;
    while let Some(p) = s[i..].find('$') {
        out.push_str(&s[i..i + p]);
        let (text, used) = expand_ref(&s[i + p..], vars);
        push_within(&mut out, text, budget)?;
        i += p + used;
    }
    out.push_str(&s[i..]);
    Ok(out)
}

/// Expand the reference at the start of `s` (which starts with `$`). Returns the text and the number
/// of bytes consumed; a `$` that starts no valid reference is kept as a literal `$`. The number of
/// bytes consumed does not depend on `vars`.
fn expand_ref<'a>(s: &'a str, vars: &'a HashMap<String, String>) -> (&'a str, usize) {
    let lookup = |n: &str| vars.get(n).map(String::as_str);
    let after = &s[1..];
    let n = name_len(after);
    if n > 0 {
        return (lookup(&after[..n]).unwrap_or_default(), 1 + n);
    }
    if let Some(inner_start) = after.strip_prefix('{')
        && let Some(close) = inner_start.find('}')
    {
        let inner = &inner_start[..close];
        let used = 2 + close + 1;
        let n = name_len(inner);
        if n > 0 {
            let name = &inner[..n];
            let op = &inner[n..];
            let value = lookup(name);
            if op.is_empty() {
                return (value.unwrap_or_default(), used);
            }
            if let Some(default) = op.strip_prefix(":-") {
                let v = value.filter(|v| !v.is_empty());
                return (v.unwrap_or(default), used);
            }
            if let Some(default) = op.strip_prefix('-') {
                return (value.unwrap_or(default), used);
            }
        }
    }
    ("$", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        parse_env_file(text, "r@1.0.0:.env.sample").unwrap()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn skips_comments_and_blank_lines() {
        let got = parse("# a comment\n\n   # indented comment\n#FOO=bar\nA=1\n\t\n");
        assert_eq!(got, pairs(&[("A", "1")]));
    }

    #[test]
    fn drops_inline_comment_after_unquoted_value() {
        let got = parse(
            "A=1 # one\nB=x\t# tab comment\nC=a#b\nD= spaced value   \nE=\nF= # only a comment\nG=#x",
        );
        assert_eq!(
            got,
            pairs(&[
                ("A", "1"),
                ("B", "x"),
                ("C", "a#b"),
                ("D", "spaced value"),
                ("E", ""),
                ("F", ""),
                ("G", "#x")
            ])
        );
    }

    #[test]
    fn tolerates_export_prefix_and_blanks_around_eq() {
        let got = parse("export A=1\nexport\tB=2\nC = 3\nexporter=4");
        assert_eq!(
            got,
            pairs(&[("A", "1"), ("B", "2"), ("C", "3"), ("exporter", "4")])
        );
    }

    #[test]
    fn double_quotes_process_escapes() {
        let got = parse(r#"A="say \"hi\" \\ back\nline # not a comment" # comment"#);
        assert_eq!(
            got,
            pairs(&[("A", "say \"hi\" \\ back\nline # not a comment")])
        );
        let got = parse(r#"B="keep \x and \$HOME""#);
        assert_eq!(got, pairs(&[("B", "keep \\x and $HOME")]));
    }

    #[test]
    fn single_quotes_are_literal() {
        let got = parse("X=1\nA='$X \\n \"q\"' # c");
        assert_eq!(got, pairs(&[("X", "1"), ("A", "$X \\n \"q\"")]));
    }

    #[test]
    fn quoted_values_may_span_lines() {
        let got = parse("A=\"line1\nline2\"\nB='x\ny'\nC=3");
        assert_eq!(
            got,
            pairs(&[("A", "line1\nline2"), ("B", "x\ny"), ("C", "3")])
        );
    }

    #[test]
    fn values_may_contain_equals() {
        let got = parse("A=b=c\nB=\"x=y\"");
        assert_eq!(got, pairs(&[("A", "b=c"), ("B", "x=y")]));
    }

    #[test]
    fn expands_only_earlier_definitions() {
        let got =
            parse("A=$B\nB=2\nE=\nC=${B}x$B-${B:-d}|${Z:-d}|${Z-e}|${E:-f}|${E-g}|\nF=$E.$ ${B");
        assert_eq!(
            got,
            pairs(&[
                ("A", ""),
                ("B", "2"),
                ("E", ""),
                ("C", "2x2-2|d|e|f||"),
                ("F", ".$ ${B"),
            ])
        );
    }

    #[test]
    fn compose_file_appends() {
        let got = parse(
            "COMPOSE_FILE=\"compose.yml\"\n#COMPOSE_FILE=\"$COMPOSE_FILE:compose.smtp.yml\"\nCOMPOSE_FILE=\"$COMPOSE_FILE:compose.mariadb.yml\"\nCOMPOSE_FILE=${COMPOSE_FILE}:compose.x.yml",
        );
        assert_eq!(
            got.last().unwrap(),
            &(
                "COMPOSE_FILE".to_string(),
                "compose.yml:compose.mariadb.yml:compose.x.yml".to_string()
            )
        );
    }

    #[test]
    fn realistic_env_sample() {
        let text = r#"TYPE=gitea

DOMAIN=gitea.example.com

## Domain aliases
#EXTRA_DOMAINS=', `www.gitea.example.com`'
LETS_ENCRYPT_ENV=production # or staging

GITEA_APP_NAME="Git with a cup of tea"
GITEA_DOMAIN=gitea.example.com
GITEA_SSH_PORT=2222
export GITEA_ENABLE_PUSH_CREATE_USER=false

SECRET_INTERNAL_TOKEN_VERSION=v1   # length=105
SECRET_JWT_SECRET_VERSION=v1 # length=43
SECRET_DB_PASSWORD_VERSION=v1

COMPOSE_FILE="compose.yml"
## MariaDB
COMPOSE_FILE="$COMPOSE_FILE:compose.mariadb.yml"
# COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"
#GITEA_DB_TYPE=postgres
GITEA_DB_HOST='mariadb:3306'
"#;
        let got = parse(text);
        assert_eq!(
            got,
            pairs(&[
                ("TYPE", "gitea"),
                ("DOMAIN", "gitea.example.com"),
                ("LETS_ENCRYPT_ENV", "production"),
                ("GITEA_APP_NAME", "Git with a cup of tea"),
                ("GITEA_DOMAIN", "gitea.example.com"),
                ("GITEA_SSH_PORT", "2222"),
                ("GITEA_ENABLE_PUSH_CREATE_USER", "false"),
                ("SECRET_INTERNAL_TOKEN_VERSION", "v1"),
                ("SECRET_JWT_SECRET_VERSION", "v1"),
                ("SECRET_DB_PASSWORD_VERSION", "v1"),
                ("COMPOSE_FILE", "compose.yml"),
                ("COMPOSE_FILE", "compose.yml:compose.mariadb.yml"),
                ("GITEA_DB_HOST", "mariadb:3306"),
            ])
        );
    }

    #[test]
    fn expansion_is_bounded() {
        // Fuzz regression (env_file, seed regress-env-doubling.env): `A=$A$A` doubles A per line,
        // so 40 lines asked for terabytes.
        let bomb = format!("A=xxxxxxxx\n{}", "A=$A$A\n".repeat(40));
        let e = parse_env_file(&bomb, "r@1:.env.sample").unwrap_err();
        // Line k holds 8 * 2^(k-1) bytes; the total passes 1 MiB at line 18.
        assert_eq!((e.pos.line, e.pos.col, e.field.as_str()), (18, 3, "A"));
        assert!(e.message.contains("expands to more than"), "{}", e.message);
        // Many references on one line, and inside double quotes.
        let wide = format!("A={}\nB={}\n", "x".repeat(1000), "$A".repeat(2000));
        assert_eq!(parse_env_file(&wide, "f").unwrap_err().pos.line, 2);
        let quoted = format!("A={}\nB=\"{}\"\n", "x".repeat(1000), "${A}".repeat(2000));
        assert_eq!(parse_env_file(&quoted, "f").unwrap_err().pos.line, 2);
        // Up to the limit is fine.
        let ok = format!("A={}\nB=$A$A\n", "x".repeat(MAX_EXPANDED_BYTES / 4));
        assert_eq!(parse(&ok)[1].1.len(), MAX_EXPANDED_BYTES / 2);
    }

    #[test]
    fn multi_line_double_quotes_expand_once_with_the_right_values() {
        let text = "A=1\nB=\"$A\n${A:-\"}\nx\"\nC=${B}\n";
        let got = parse(text);
        assert_eq!(got[1], ("B".to_string(), "1\n1\nx".to_string()));
        assert_eq!(got[2].1, "1\n1\nx");
    }

    #[test]
    fn crlf_line_endings_and_bom() {
        assert_eq!(
            parse("\u{feff}A=1\r\nB=\"2\"\r\n"),
            pairs(&[("A", "1"), ("B", "2")])
        );
    }

    #[test]
    fn bad_lines_are_located_diagnostics() {
        let e = parse_env_file("A=1\n\nJUST_A_WORD\n", "g@1.0.0:.env.sample").unwrap_err();
        assert_eq!(e.pos.line, 3);
        assert_eq!(e.field, "JUST_A_WORD");
        assert!(
            e.to_string().starts_with("g@1.0.0:.env.sample:3:1: "),
            "{e}"
        );

        let e = parse_env_file("  1A=2", "f").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (1, 3));

        let e = parse_env_file("A: b", "f").unwrap_err();
        assert!(e.message.contains("expected '='"), "{e}");

        let e = parse_env_file("A=\"open\nB=2\n", "f").unwrap_err();
        assert_eq!(e.pos.line, 1);
        assert!(e.message.contains("unterminated"), "{e}");

        let e = parse_env_file("X=1\nA=\"v\" trailing", "f").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("after the closing quote"), "{e}");
    }

    #[test]
    fn diagnostic_line_after_multiline_value_counts_all_lines() {
        let e = parse_env_file("A='x\ny'\nbad line", "f").unwrap_err();
        assert_eq!(e.pos.line, 3);
    }
}
