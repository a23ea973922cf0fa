//! Redaction of credentials in URLs: `https://user:token@host/x` -> `https://***@host/x`, wherever
//! such a URL appears in a text (our own messages, git's stderr). Every message of this module that
//! may carry a URL goes through [`redact`] before it is returned or logged.

/// Characters that end a URL's authority (`scheme://authority/...`) inside free text.
fn ends_authority(c: char) -> bool {
    matches!(
        c,
        '/' | '?' | '#' | '\'' | '"' | '<' | '>' | '`' | ')' | ']'
    ) || c.is_whitespace()
}

/// `text` with the userinfo of every `scheme://userinfo@host` replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(ends_authority).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A URL without its userinfo (`https://user:token@host/x` -> `https://host/x`), for cache keys.
pub fn strip_userinfo(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let (head, tail) = url.split_at(i + 3);
    let end = tail.find(ends_authority).unwrap_or(tail.len());
    match tail[..end].rfind('@') {
        Some(at) => format!("{head}{}", &tail[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_hidden() {
        assert_eq!(
            redact("https://user:tok3n@git.example.org/ops/pool.git"),
            "https://***@git.example.org/ops/pool.git"
        );
        assert_eq!(redact("http://tok@h"), "http://***@h");
        // The last '@' of the authority separates the host.
        assert_eq!(redact("https://a@b:c@host/x"), "https://***@host/x");
    }

    #[test]
    fn every_url_in_a_text_is_redacted() {
        let text = "fatal: unable to access 'https://u:secret@h1/r.git/': failed; \
                    also https://h2/x and ssh://git:pw@h3:22/r";
        let r = redact(text);
        assert!(!r.contains("secret") && !r.contains("pw@"), "{r}");
        assert!(r.contains("'https://***@h1/r.git/'"), "{r}");
        assert!(r.contains("https://h2/x"), "{r}");
        assert!(r.contains("ssh://***@h3:22/r"), "{r}");
    }

    #[test]
    fn texts_without_userinfo_are_unchanged() {
        for t in [
            "",
            "no url here",
            "git@github.com:coop-cloud/gitea.git",
            "file:///tmp/x/y.git",
            "https://host/path@not-userinfo",
            "a://",
        ] {
            assert_eq!(redact(t), t);
        }
    }

    #[test]
    fn strip_userinfo_keeps_the_rest() {
        assert_eq!(strip_userinfo("https://u:p@h/x.git"), "https://h/x.git");
        assert_eq!(strip_userinfo("https://h/x@y"), "https://h/x@y");
        assert_eq!(strip_userinfo("git@h:x.git"), "git@h:x.git");
    }
}
