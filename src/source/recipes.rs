//! [`RecipeRemote`]: recipe repositories from git URLs (a deployment's `source:`), kept as bare
//! repos in a recipes directory so [`crate::recipe::RecipeStore`] reads them like abra's clones.
//! Only tags are fetched (`refs/tags/*`, never moving an existing tag); a missing repo is created
//! atomically; a declared version that is not a known tag triggers a fetch, at most once per
//! `min_refetch` per recipe so a typo does not hammer the remote. The URL is never stored in the
//! repo's config and never appears unredacted in an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::git::{self, Git, GitOptions, SourceError};

/// What [`RecipeRemote::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The tag was known already; nothing was fetched.
    Present,
    /// The repo was missing: created and its tags fetched; the tag is there now.
    Cloned,
    /// The tag was missing: tags fetched; it is there now.
    Fetched,
    /// The tag is still unknown (not on the remote, or fetched too recently to ask again).
    Missing,
}

/// Fetches recipe repos' tags from their git remotes.
#[derive(Debug)]
pub struct RecipeRemote {
    opts: GitOptions,
    min_refetch: Duration,
    last_fetch: Mutex<HashMap<PathBuf, Instant>>,
}

impl RecipeRemote {
    /// A fetcher with `opts` for credentials and timeout; a missing tag is looked for at most
    /// once a minute per recipe.
    pub fn new(opts: GitOptions) -> RecipeRemote {
        RecipeRemote {
            opts,
            min_refetch: Duration::from_secs(60),
            last_fetch: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how soon a recipe whose declared tag was missing may be fetched again.
    pub fn with_min_refetch(mut self, d: Duration) -> RecipeRemote {
        self.min_refetch = d;
        self
    }

    /// Makes tag `version` of `recipe` available in `recipes_dir/<recipe>` from `url`: creates
    /// the repo (bare) when missing, fetches the remote's tags when the tag is unknown. Blocking.
    /// Call [`crate::recipe::RecipeStore::refresh`] afterwards when it returned `Cloned` or
    /// `Fetched` (the store also notices changed refs by itself).
    pub fn ensure(
        &self,
        recipe: &str,
        url: &str,
        version: &str,
        recipes_dir: &Path,
    ) -> Result<Ensured, SourceError> {
        check_recipe_name(recipe).map_err(SourceError::invalid)?;
        check_url(url).map_err(SourceError::invalid)?;
        check_tag(version).map_err(SourceError::invalid)?;
        let repo = recipes_dir.join(recipe);
        let existed = git::is_repo(&repo);
        let tag = format!("refs/tags/{version}");
        if existed && git::resolve_commit(&repo, &self.opts, &tag)?.is_some() {
            return Ok(Ensured::Present);
        }
        if existed && !self.may_fetch(&repo) {
            return Ok(Ensured::Missing);
        }
        if !existed {
            git::ensure_bare(&repo, &self.opts)?;
        }
        self.note_fetch(&repo);
        let fetched = Git::new(Some(&repo), &self.opts).run(&[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            url,
            "refs/tags/*:refs/tags/*",
        ]);
        let have = git::resolve_commit(&repo, &self.opts, &tag)?.is_some();
        match (fetched, have) {
            // A tag that would move is refused (exit 1) while the others were fetched.
            (_, true) if existed => Ok(Ensured::Fetched),
            (_, true) => Ok(Ensured::Cloned),
            (Ok(_), false) => Ok(Ensured::Missing),
            (Err(e), false) => {
                if !existed {
                    // Leave no empty repo behind: the next call will try again.
                    let _ = std::fs::remove_dir_all(&repo);
                }
                Err(e)
            }
        }
    }

    fn may_fetch(&self, repo: &Path) -> bool {
        let last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
        last.get(repo)
            .is_none_or(|t| t.elapsed() >= self.min_refetch)
    }

    fn note_fetch(&self, repo: &Path) {
        let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(repo.to_path_buf(), Instant::now());
    }
}

/// A URL hearth will fetch: `https://`, `http://`, `ssh://`, `git://` or `file://` with a host or
/// path, or scp-like `[user@]host:path`. Never an option, never a `transport::address` (`ext::`).
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let shown = super::redact::redact(url);
    let bad = |why: &str| Err(format!("URL {shown:?} {why}"));
    if url.is_empty() {
        return bad("is empty");
    }
    if url.starts_with('-') {
        return bad("must not start with '-'");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not contain spaces or control characters");
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !["https", "http", "ssh", "git", "file"].contains(&scheme) {
            return bad("has an unsupported scheme; use https, ssh, git, http or file");
        }
        if rest.is_empty() {
            return bad("has nothing after the scheme");
        }
        return Ok(());
    }
    if url.contains("::") {
        return bad("names a git transport helper; use https, ssh, git, http or file");
    }
    // scp-like `[user@]host:path`: the host has no '/' before the ':'.
    match url.split_once(':') {
        Some((host, path)) if !host.is_empty() && !host.contains('/') && !path.is_empty() => Ok(()),
        _ => bad("is not a git URL (scheme://... or host:path)"),
    }
}

/// A recipe name is one path component that is not hidden (as `RecipeStore` requires).
fn check_recipe_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        return Err(format!(
            "recipe name {name:?} must be a single, non-hidden path component"
        ));
    }
    Ok(())
}

/// A version is a tag name: no spaces, control or ref-special characters.
fn check_tag(tag: &str) -> Result<(), String> {
    let bad = tag.is_empty()
        || tag.starts_with(['-', '.', '/'])
        || tag.contains("..")
        || tag.ends_with(".lock")
        || tag
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err(format!("version {tag:?} is not a valid tag name"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "https://git.coopcloud.tech/coop-cloud/gitea.git",
            "ssh://git@host:2222/r.git",
            "git@github.com:coop-cloud/gitea.git",
            "file:///srv/recipes/gitea",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "--upload-pack=touch /tmp/x",
            "ext::sh -c touch% /tmp/x",
            "fd::3",
            "ftp://h/x",
            "https://",
            "/srv/recipes/gitea",
            "relative/path",
            "https://h/x y",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_errors_are_redacted() {
        let e = check_url("https://u:secret@h/x y").expect_err("space");
        assert!(!e.contains("secret") && e.contains("***@h"), "{e}");
    }

    #[test]
    fn names_and_tags() {
        assert!(check_recipe_name("gitea").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a\\b"] {
            assert!(check_recipe_name(bad).is_err(), "{bad}");
        }
        assert!(check_tag("3.6.0+1.24.2-rootless").is_ok());
        for bad in ["", "-x", "a b", "a..b", "x^{}", "a:b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refetch_is_throttled_per_repo() {
        let r = RecipeRemote::new(GitOptions::default()).with_min_refetch(Duration::from_secs(60));
        let a = Path::new("/r/a");
        assert!(r.may_fetch(a));
        r.note_fetch(a);
        assert!(!r.may_fetch(a));
        assert!(r.may_fetch(Path::new("/r/b")));
        let r = r.with_min_refetch(Duration::ZERO);
        assert!(r.may_fetch(a));
    }
}
