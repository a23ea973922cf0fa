//! Recipe-relative paths: the one sanitiser for every path hearth reads out of a recipe, whether it
//! comes from `COMPOSE_FILE` (the recipe store reading a file at a tag) or from a compose file's
//! `secrets.*.file` / `configs.*.file` (rendering). Pure; the rules are the strictest union of
//! what both callers used to check on their own (see docs/architecture.md, "Names and paths").

use std::fmt;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// Starts with `/`.
    Absolute,
    /// Starts with `~` (a home directory is never inside a recipe).
    Home,
    /// Contains a backslash (a Windows separator or an escape trick; never in a recipe's paths).
    Backslash,
    /// Contains NUL or a newline.
    ControlChar,
    /// `..` climbs above the recipe root.
    Escapes,
}

impl PathProblem {
    /// The reason as a short phrase, for messages that name the path themselves.
    pub fn reason(self) -> &'static str {
        match self {
            PathProblem::Absolute => "absolute paths are not allowed",
            PathProblem::Home => "home-relative paths are not allowed",
            PathProblem::Backslash => "backslashes are not allowed in recipe paths",
            PathProblem::ControlChar => "contains NUL or newline",
            PathProblem::Escapes => "escapes the recipe repository",
        }
    }
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// `path` relative to the recipe root, normalised: empty and `.` components dropped, `..`
/// resolved, `/`-separated. The root itself is `""` (callers that need a file refuse it).
pub fn clean(path: &str) -> Result<String, PathProblem> {
    if path.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    if path.starts_with('~') {
        return Err(PathProblem::Home);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    if path.contains(['\0', '\n', '\r']) {
        return Err(PathProblem::ControlChar);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::Escapes);
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(clean("compose.yml").unwrap(), "compose.yml");
        assert_eq!(clean("./a//b/./c.yml").unwrap(), "a/b/c.yml");
        assert_eq!(clean("a/../b").unwrap(), "b");
        assert_eq!(clean("./conf/../nginx.conf").unwrap(), "nginx.conf");
        assert_eq!(clean(".").unwrap(), "");
        assert_eq!(clean("").unwrap(), "");
    }

    /// The cases both former sanitisers refused, plus what only one of them did.
    #[test]
    fn refuses_what_either_caller_refused() {
        assert_eq!(clean("../x"), Err(PathProblem::Escapes));
        assert_eq!(clean("a/../../x"), Err(PathProblem::Escapes));
        assert_eq!(clean("/etc/passwd"), Err(PathProblem::Absolute));
        // Once only rendering refused these ...
        assert_eq!(clean("~/x"), Err(PathProblem::Home));
        assert_eq!(clean("\\x"), Err(PathProblem::Backslash));
        // ... and only the recipe store these.
        assert_eq!(clean("a\nb"), Err(PathProblem::ControlChar));
        assert_eq!(clean("a\0b"), Err(PathProblem::ControlChar));
        // New: a backslash anywhere, a carriage return.
        assert_eq!(clean("a\\..\\..\\x"), Err(PathProblem::Backslash));
        assert_eq!(clean("a\rb"), Err(PathProblem::ControlChar));
    }
}
