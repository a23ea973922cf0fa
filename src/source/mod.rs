//! Desired state from git (issue 8): manifests followed on a branch of a git remote, and recipes
//! fetched from git URLs. Everything runs the `git` CLI in hearth's own cache repos (never a
//! checkout); credentials come only from [`GitOptions`] or the environment, and every message is
//! redacted (`https://user:token@host` -> `https://***@host`).
//!
//! - [`GitSource`]: `fetch` a branch into a bare cache, `load` the manifests at a commit, `sync`
//!   both under the last-good rule, `restore` the pinned last good revision at startup;
//! - [`SourceState`] / [`Decision`] / [`next_retry`]: the pure last-good rule and retry backoff;
//! - [`RecipeRemote`]: recipe repos' tags from their git remotes, for [`crate::recipe::RecipeStore`];
//! - [`revision_errors`], [`load_files`]: which manifest problems make a revision bad;
//! - [`redact`]: hiding URL userinfo in any text.

mod git;
mod load;
mod recipes;
mod redact;
mod remote;
mod state;
mod tree;

pub use git::{ALLOWED_PROTOCOLS, GitOptions, SourceError};
pub use load::{load_files, revision_errors};
pub use recipes::{Ensured, RecipeRemote};
pub use redact::{redact, strip_userinfo};
pub use remote::{GitSource, MAX_FILE_BYTES, MAX_FILES, Synced};
pub use state::{Decision, Revision, SHORT_LEN, SourceState, next_retry, short};

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send + 'static>() {}
    fn sync<T: Sync>() {}

    /// The controller runs these on blocking threads and shares the recipe fetcher.
    #[test]
    fn types_cross_threads() {
        send::<GitSource>();
        send::<SourceState>();
        send::<Synced>();
        send::<SourceError>();
        send::<RecipeRemote>();
        sync::<RecipeRemote>();
        sync::<GitSource>();
    }
}
