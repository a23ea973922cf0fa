//! The `abra.sh` reader: picks `export NAME=value` lines out of a recipe's shell script as data.
//!
//! Nothing is executed. Only lines that start (in column 1) with `export` followed by a blank are
//! read; indented lines (function bodies) and every other line are ignored. A line may hold several
//! assignments (`export A=1 B='two'`); words that are not `NAME=value` (`export -f fn`, `export X`)
//! are skipped, and a `#` word ends the line. Values may be unquoted, `'single'` (literal) or
//! `"double"` quoted (`\"`, `\\`, `\$`, `` \` `` unescaped). An assignment whose value would need
//! the shell (an unescaped `$` or backtick outside single quotes) is skipped, as is a line with an
//! unterminated quote: its value is not knowable without running the script.

use super::envfile::name_len;

/// The statically known `export NAME=value` assignments of an `abra.sh`, in order.
pub fn parse_abra_sh(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("export") else {
            continue;
        };
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        out.extend(parse_words(rest));
    }
    out
}

/// One shell word's value: its text, and whether it needs the shell to evaluate.
struct Word {
    text: String,
    dynamic: bool,
}

fn parse_words(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if s.is_empty() || s.starts_with('#') {
            return out;
        }
        let Some((word, used)) = scan_word(s) else {
            return out; // unterminated quote: ignore the rest of the line
        };
        s = &s[used..];
        let n = name_len(&word.raw);
        if n > 0 && word.raw[n..].starts_with('=') {
            let value = word.value_after(n + 1);
            if !value.dynamic {
                out.push((word.raw[..n].to_string(), value.text));
            }
        }
    }
}

/// A shell word as written (`raw`) plus its pieces, so the value after `NAME=` can be unquoted.
struct RawWord {
    raw: String,
    /// (byte offset in raw where the piece starts, unquoted text, dynamic)
    pieces: Vec<(usize, String, bool)>,
}

impl RawWord {
    /// The unquoted value of the part of the word from byte `from` of `raw` on.
    fn value_after(&self, from: usize) -> Word {
        let mut text = String::new();
        let mut dynamic = false;
        for (start, piece, dyn_) in &self.pieces {
            if *start >= from {
                text.push_str(piece);
                dynamic |= dyn_;
            }
        }
        Word { text, dynamic }
    }
}

/// Scan one word at the start of `s`; returns it and the bytes consumed, or None on an
/// unterminated quote.
fn scan_word(s: &str) -> Option<(RawWord, usize)> {
    let mut pieces = Vec::new();
    let mut chars = s.char_indices().peekable();
    let mut end = s.len();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' | '\t' => {
                end = i;
                break;
            }
            '\'' => {
                let mut text = String::new();
                loop {
                    let (_, c) = chars.next()?;
                    if c == '\'' {
                        break;
                    }
                    text.push(c);
                }
                pieces.push((i, text, false));
            }
            '"' => {
                let mut text = String::new();
                let mut dynamic = false;
                loop {
                    let (_, c) = chars.next()?;
                    match c {
                        '"' => break,
                        '\\' => {
                            let (_, n) = chars.next()?;
                            if !matches!(n, '"' | '\\' | '$' | '`') {
                                text.push('\\');
                            }
                            text.push(n);
                        }
                        '$' | '`' => {
                            dynamic = true;
                            text.push(c);
                        }
                        _ => text.push(c),
                    }
                }
                pieces.push((i, text, dynamic));
            }
            '\\' => {
                let text = chars.next().map(|(_, n)| n.to_string()).unwrap_or_default();
                pieces.push((i, text, false));
            }
            '$' | '`' | '(' | ')' | ';' | '&' | '|' | '<' | '>' => {
                pieces.push((i, c.to_string(), true));
            }
            _ => pieces.push((i, c.to_string(), false)),
        }
    }
    Some((
        RawWord {
            raw: s[..end].to_string(),
            pieces,
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_only_top_level_exports() {
        let text = r#"#!/usr/bin/env bash

export APP_INI_VERSION=v1
export ENTRYPOINT_CONF_VERSION="v2" # bumped for 1.2
export NGINX_CONF_VERSION='v3'
APP_NOT_EXPORTED=1

migrate() {
  export INSIDE_FUNCTION=1
  gitea migrate
}
exportFOO=bar
# export COMMENTED=1
"#;
        assert_eq!(
            parse_abra_sh(text),
            pairs(&[
                ("APP_INI_VERSION", "v1"),
                ("ENTRYPOINT_CONF_VERSION", "v2"),
                ("NGINX_CONF_VERSION", "v3"),
            ])
        );
    }

    #[test]
    fn several_assignments_and_non_assignments_on_a_line() {
        assert_eq!(
            parse_abra_sh("export A=1 B='two words' -f C D=\"x\"y\nexport -f myfunc\n"),
            pairs(&[("A", "1"), ("B", "two words"), ("D", "xy")])
        );
    }

    #[test]
    fn quoting_rules() {
        assert_eq!(
            parse_abra_sh(r##"export A="q\"\\\$x" B='$lit' C=a\ b E="" F="#" G=1 # H=2"##),
            pairs(&[
                ("A", "q\"\\$x"),
                ("B", "$lit"),
                ("C", "a b"),
                ("E", ""),
                ("F", "#"),
                ("G", "1")
            ])
        );
    }

    #[test]
    fn dynamic_values_are_skipped() {
        assert_eq!(
            parse_abra_sh(
                "export A=$HOME\nexport B=\"$(date)\"\nexport C=`id`\nexport D=ok\nexport E='x\n"
            ),
            pairs(&[("D", "ok")])
        );
    }
}
