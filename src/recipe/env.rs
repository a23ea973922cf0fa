//! Env composition: the variables a deployment's compose files are interpolated with, and the
//! compose file list taken from `COMPOSE_FILE`.
//!
//! Precedence, lowest first: `abra.sh` exports, `.env.sample`, the manifest's `env`, then
//! `STACK_NAME` and `DOMAIN` set by hearth (hearth's always win). A later layer replaces a value but
//! the key keeps the position where it first appeared.

use indexmap::IndexMap;

/// The compose file used when `COMPOSE_FILE` is unset or empty.
pub const DEFAULT_COMPOSE_FILE: &str = "compose.yml";

/// Layer the env sources (see the module doc for precedence).
pub fn compose_env<K, V>(
    abra_sh: &[(String, String)],
    env_sample: &[(String, String)],
    manifest_env: impl IntoIterator<Item = (K, V)>,
    stack_name: &str,
    domain: &str,
) -> IndexMap<String, String>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut env = IndexMap::new();
    for (k, v) in abra_sh.iter().chain(env_sample) {
        env.insert(k.clone(), v.clone());
    }
    for (k, v) in manifest_env {
        env.insert(k.as_ref().to_string(), v.as_ref().to_string());
    }
    env.insert("STACK_NAME".to_string(), stack_name.to_string());
    env.insert("DOMAIN".to_string(), domain.to_string());
    env
}

/// The compose files named by `COMPOSE_FILE` (split on `:`, empties dropped, duplicates removed
/// keeping the first), or `[compose.yml]` when it names none.
pub fn compose_files(env: &IndexMap<String, String>) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for f in env
        .get("COMPOSE_FILE")
        .map_or("", String::as_str)
        .split(':')
    {
        let f = f.trim();
        if !f.is_empty() && !files.iter().any(|g| g == f) {
            files.push(f.to_string());
        }
    }
    if files.is_empty() {
        files.push(DEFAULT_COMPOSE_FILE.to_string());
    }
    files
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
    fn precedence_lowest_first_hearth_wins() {
        let abra = pairs(&[("APP_INI_VERSION", "v1"), ("SHARED", "abra")]);
        let sample = pairs(&[
            ("DOMAIN", "gitea.example.com"),
            ("SHARED", "sample"),
            ("LETS_ENCRYPT_ENV", "production"),
            ("STACK_NAME", "nope"),
        ]);
        let mut manifest = IndexMap::new();
        manifest.insert("LETS_ENCRYPT_ENV".to_string(), "staging".to_string());
        manifest.insert("DOMAIN".to_string(), "manifest.example".to_string());
        manifest.insert("EXTRA".to_string(), "1".to_string());
        let env = compose_env(
            &abra,
            &sample,
            &manifest,
            "git_example_org",
            "git.example.org",
        );
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("APP_INI_VERSION", "v1"),
                ("SHARED", "sample"),
                ("DOMAIN", "git.example.org"),
                ("LETS_ENCRYPT_ENV", "staging"),
                ("STACK_NAME", "git_example_org"),
                ("EXTRA", "1"),
            ]
        );
    }

    #[test]
    fn later_sample_definition_wins() {
        let sample = pairs(&[("COMPOSE_FILE", "a.yml"), ("COMPOSE_FILE", "a.yml:b.yml")]);
        let env = compose_env(&[], &sample, Vec::<(&str, &str)>::new(), "s", "d");
        assert_eq!(env["COMPOSE_FILE"], "a.yml:b.yml");
    }

    #[test]
    fn compose_files_split_dedupe_default() {
        let mut env = IndexMap::new();
        assert_eq!(compose_files(&env), vec!["compose.yml"]);
        env.insert("COMPOSE_FILE".to_string(), "::".to_string());
        assert_eq!(compose_files(&env), vec!["compose.yml"]);
        env.insert(
            "COMPOSE_FILE".to_string(),
            ":compose.yml::compose.mariadb.yml:compose.yml:compose.smtp.yml".to_string(),
        );
        assert_eq!(
            compose_files(&env),
            vec!["compose.yml", "compose.mariadb.yml", "compose.smtp.yml"]
        );
        env.insert("COMPOSE_FILE".to_string(), "compose.x.yml".to_string());
        assert_eq!(compose_files(&env), vec!["compose.x.yml"]);
    }
}
