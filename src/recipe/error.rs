//! Errors of the recipe store: unknown recipes and versions, unsafe paths, git failures, and bad
//! env files (as located [`Diagnostic`]s).

use std::path::PathBuf;

use crate::diag::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("invalid recipe name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    #[error("recipe {recipe:?} not found: {} is not a git repository", path.display())]
    NoSuchRecipe { recipe: String, path: PathBuf },

    #[error("{}", no_such_version(recipe, version, nearest, latest.as_deref()))]
    NoSuchVersion {
        recipe: String,
        version: String,
        /// Up to 3 existing tags nearest the wanted one by version order, in version order.
        nearest: Vec<String>,
        /// The highest version tag, when the recipe has any.
        latest: Option<String>,
    },

    #[error("recipe {recipe}@{version}: invalid path {path:?}: {reason}")]
    BadPath {
        recipe: String,
        version: String,
        path: String,
        reason: String,
    },

    #[error("recipe {recipe}@{version}: {path} is not a file")]
    NotAFile {
        recipe: String,
        version: String,
        path: String,
    },

    #[error("cannot run git ({}): {source}", args.join(" "))]
    GitSpawn {
        args: Vec<String>,
        #[source]
        source: std::io::Error,
    },

    #[error("`git {}` failed in {}: {stderr}", args.join(" "), repo.display())]
    Git {
        repo: PathBuf,
        args: Vec<String>,
        stderr: String,
    },

    #[error("`git {}` in {}: unexpected output: {detail}", args.join(" "), repo.display())]
    GitOutput {
        repo: PathBuf,
        args: Vec<String>,
        detail: String,
    },

    #[error(transparent)]
    Env(#[from] Diagnostic),
}

fn no_such_version(
    recipe: &str,
    version: &str,
    nearest: &[String],
    latest: Option<&str>,
) -> String {
    let mut s = format!("recipe {recipe} has no version tag {version:?}");
    match latest {
        None => s.push_str(" (it has no version tags at all)"),
        Some(latest) => {
            if !nearest.is_empty() {
                s.push_str("; nearest: ");
                s.push_str(&nearest.join(", "));
            }
            s.push_str("; latest: ");
            s.push_str(latest);
        }
    }
    s
}
