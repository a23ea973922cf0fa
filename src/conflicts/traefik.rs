//! Traefik router rules read from service labels: which hosts a service's routers claim.
//!
//! A router is `traefik.http.routers.<name>.rule` (hosts from `Host(...)` and `HostHeader(...)`)
//! or `traefik.tcp.routers.<name>.rule` (hosts from `HostSNI(...)`). Both Traefik v2 syntax
//! (`Host(`a`, `b`)`, several hosts in one matcher) and v3 syntax (`Host(`a`) || Host(`b`)`) are
//! read; strings may be in backticks, double quotes (with `\` escapes) or single quotes. Hosts
//! under a negation (`!Host(...)`) are not claims, nor is the catch-all `HostSNI(`*`)`; regexp
//! matchers (`HostRegexp`, `HostSNIRegexp`) claim no exact host. A service whose
//! `traefik.enable` is `false` claims nothing. Pure; see [`rule_hosts`] for the grammar.

/// A host claimed by one router of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouterHost {
    /// `http` or `tcp`.
    pub protocol: &'static str,
    /// The router's name (the label segment after `routers.`).
    pub router: String,
    /// Lower case, without a trailing dot.
    pub host: String,
}

/// The hosts every router in `labels` claims, sorted, each once. Rules that do not parse claim
/// nothing (Traefik refuses them too).
pub fn router_hosts<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<RouterHost> {
    let mut out = Vec::new();
    let mut enabled = true;
    for (key, value) in labels {
        // Most labels are not Traefik's: skip them without allocating.
        if !key
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("traefik."))
        {
            continue;
        }
        let k = key.to_ascii_lowercase();
        if k == "traefik.enable" {
            enabled = !value.trim().eq_ignore_ascii_case("false");
            continue;
        }
        let Some((protocol, router)) = router_of(&k) else {
            continue;
        };
        let Ok(hosts) = rule_hosts(value) else {
            continue;
        };
        // Take the router name from the original key: same length, original case.
        let start = key.len() - ".rule".len() - router.len();
        let router = key[start..key.len() - ".rule".len()].to_string();
        for host in hosts {
            // An http router claims Host/HostHeader, a tcp router HostSNI (`rule_hosts` keeps
            // both; a matcher of the other kind is a rule Traefik rejects).
            if host.1 == protocol {
                out.push(RouterHost {
                    protocol,
                    router: router.clone(),
                    host: host.0,
                });
            }
        }
    }
    if !enabled {
        return Vec::new();
    }
    out.sort();
    out.dedup();
    out
}

/// `traefik.<http|tcp>.routers.<name>.rule` (lower case) -> (protocol, name).
fn router_of(key: &str) -> Option<(&'static str, &str)> {
    let (protocol, rest) = if let Some(r) = key.strip_prefix("traefik.http.routers.") {
        ("http", r)
    } else if let Some(r) = key.strip_prefix("traefik.tcp.routers.") {
        ("tcp", r)
    } else {
        return None;
    };
    let name = rest.strip_suffix(".rule")?;
    (!name.is_empty() && !name.contains('.')).then_some((protocol, name))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    Or,
    And,
    Not,
}

fn tokens(rule: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = rule.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            ',' => out.push(Token::Comma),
            '!' => out.push(Token::Not),
            '|' | '&' => {
                if chars.next_if(|(_, n)| *n == c).is_none() {
                    return Err(format!("a single {c:?} at {i} (use {c}{c})"));
                }
                out.push(if c == '|' { Token::Or } else { Token::And });
            }
            '`' | '"' | '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string from {i}")),
                        Some((_, q)) if q == c => break,
                        Some((_, '\\')) if c == '"' => match chars.next() {
                            Some((_, e)) => s.push(e),
                            None => return Err(format!("unterminated string from {i}")),
                        },
                        Some((_, x)) => s.push(x),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = String::from(c);
                while let Some((_, n)) =
                    chars.next_if(|(_, n)| n.is_ascii_alphanumeric() || *n == '_')
                {
                    s.push(n);
                }
                out.push(Token::Ident(s));
            }
            other => return Err(format!("unexpected {other:?} at {i}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// (host, protocol) of every matcher not under a negation.
    hosts: Vec<(String, &'static str)>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected {what}, found {t:?}")),
            None => Err(format!("expected {what}, found the end")),
        }
    }

    /// expr := and ('||' and)*
    fn expr(&mut self, negated: bool) -> Result<(), String> {
        self.and(negated)?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            self.and(negated)?;
        }
        Ok(())
    }

    /// and := unary ('&&' unary)*
    fn and(&mut self, negated: bool) -> Result<(), String> {
        self.unary(negated)?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            self.unary(negated)?;
        }
        Ok(())
    }

    /// unary := '!' unary | '(' expr ')' | Matcher '(' [string (',' string)*] ')'
    fn unary(&mut self, negated: bool) -> Result<(), String> {
        match self.next() {
            Some(Token::Not) => self.unary(!negated),
            Some(Token::Open) => {
                self.expr(negated)?;
                self.expect(Token::Close, "`)`")
            }
            Some(Token::Ident(name)) => {
                self.expect(Token::Open, &format!("`(` after {name}"))?;
                let mut args = Vec::new();
                if self.peek() == Some(&Token::Close) {
                    self.at += 1;
                } else {
                    loop {
                        match self.next() {
                            Some(Token::Str(s)) => args.push(s),
                            other => {
                                return Err(format!("{name}: expected a string, found {other:?}"));
                            }
                        }
                        match self.next() {
                            Some(Token::Comma) => {}
                            Some(Token::Close) => break,
                            other => {
                                return Err(format!(
                                    "{name}: expected `,` or `)`, found {other:?}"
                                ));
                            }
                        }
                    }
                }
                let protocol = match name.as_str() {
                    "Host" | "HostHeader" => Some("http"),
                    "HostSNI" => Some("tcp"),
                    _ => None,
                };
                if let (Some(protocol), false) = (protocol, negated) {
                    for a in args {
                        let h = a.trim().trim_end_matches('.').to_ascii_lowercase();
                        if !h.is_empty() && h != "*" {
                            self.hosts.push((h, protocol));
                        }
                    }
                }
                Ok(())
            }
            Some(t) => Err(format!("expected a matcher, `(` or `!`, found {t:?}")),
            None => Err("expected a matcher, found the end".to_string()),
        }
    }
}

/// The hosts a rule claims, with the protocol of their matcher (`Host`/`HostHeader`: `http`,
/// `HostSNI`: `tcp`). Grammar: `expr := and ('||' and)*`, `and := unary ('&&' unary)*`,
/// `unary := '!' unary | '(' expr ')' | Name '(' [string (',' string)*] ')'`. Err says why a rule
/// does not parse.
fn rule_hosts(rule: &str) -> Result<Vec<(String, &'static str)>, String> {
    let mut p = Parser {
        tokens: tokens(rule)?,
        at: 0,
        hosts: Vec::new(),
    };
    p.expr(false)?;
    if let Some(t) = p.peek() {
        return Err(format!("unexpected {t:?} after the rule"));
    }
    Ok(p.hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(rule: &str) -> Vec<String> {
        rule_hosts(rule)
            .unwrap_or_else(|e| panic!("{rule}: {e}"))
            .into_iter()
            .map(|(h, _)| h)
            .collect()
    }

    #[test]
    fn v2_lists_and_v3_alternatives() {
        assert_eq!(hosts("Host(`a.example.org`)"), ["a.example.org"]);
        assert_eq!(
            hosts("Host(`a.example.org`, `www.a.example.org`)"),
            ["a.example.org", "www.a.example.org"]
        );
        assert_eq!(
            hosts("Host(`a.example.org`) || Host(`b.example.org`)"),
            ["a.example.org", "b.example.org"]
        );
        assert_eq!(
            hosts("(Host(`A.Example.org.`) || HostHeader(\"b\")) && PathPrefix(`/api`)"),
            ["a.example.org", "b"]
        );
        assert_eq!(hosts("Host('single.quoted')"), ["single.quoted"]);
        assert_eq!(hosts(r#"Host("esc\"aped")"#), ["esc\"aped"]);
        assert_eq!(hosts("  Host ( `spaced` ) "), ["spaced"]);
    }

    #[test]
    fn negations_regexps_wildcards_and_other_matchers_claim_nothing() {
        assert!(hosts("!Host(`a`)").is_empty());
        assert_eq!(hosts("Host(`a`) && !Host(`b`)"), ["a"]);
        assert!(hosts("!(Host(`a`) || Host(`b`))").is_empty());
        assert_eq!(hosts("!!Host(`a`)"), ["a"]);
        assert!(hosts("HostRegexp(`{sub:[a-z]+}.example.org`)").is_empty());
        assert!(hosts("HostSNI(`*`)").is_empty());
        assert!(hosts("PathPrefix(`/`) && Header(`X-A`, `b`)").is_empty());
        assert!(hosts("Host()").is_empty());
        assert_eq!(
            rule_hosts("HostSNI(`db.example.org`)").unwrap(),
            [("db.example.org".to_string(), "tcp")]
        );
    }

    #[test]
    fn malformed_rules_are_errors() {
        for bad in [
            "Host(`a`",
            "Host(`a`) | Host(`b`)",
            "Host(a)",
            "Host(`a`) Host(`b`)",
            "Host(`a`,)",
            "Host `a`",
            "Host(`a)",
            "",
            "(Host(`a`)",
            "Host(`a`) ||",
        ] {
            assert!(rule_hosts(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn routers_from_labels() {
        let labels = [
            ("traefik.enable", "true"),
            (
                "traefik.http.routers.App.rule",
                "Host(`a.x`) || Host(`b.x`)",
            ),
            ("traefik.http.routers.App.entrypoints", "web-secure"),
            ("traefik.tcp.routers.db.rule", "HostSNI(`db.x`)"),
            // A Host matcher on a tcp router is not a claim (Traefik refuses the rule).
            ("traefik.tcp.routers.odd.rule", "Host(`odd.x`)"),
            ("traefik.http.routers.broken.rule", "Host(`c.x`"),
            ("traefik.http.services.app.loadbalancer.server.port", "80"),
            ("traefik.http.routers.a.b.rule", "Host(`dotted.x`)"),
        ];
        let got = router_hosts(labels);
        let flat: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|r| (r.protocol, r.router.as_str(), r.host.as_str()))
            .collect();
        assert_eq!(
            flat,
            [
                ("http", "App", "a.x"),
                ("http", "App", "b.x"),
                ("tcp", "db", "db.x")
            ]
        );
        let disabled = [
            ("traefik.http.routers.app.rule", "Host(`a.x`)"),
            ("traefik.enable", "false"),
        ];
        assert!(router_hosts(disabled).is_empty());
    }
}
