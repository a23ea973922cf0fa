//! `hearth import`, the pure part: one abra app env file (`~/.abra/servers/<server>/<domain>.env`)
//! -> the text of one `Deployment` manifest, and the server -> one `Pool`, each value with a
//! comment saying where it came from. Reading the files, the recipe and the live stack is the
//! command's job (`cli/import_cmd.rs`); see docs/abra.md.
//!
//! Rules (what abra itself reads from an app env file):
//! - the recipe is `RECIPE=` (or the older `TYPE=`), optionally `name:version`;
//! - the domain is `DOMAIN=`, else the file name without `.env` (abra's app name);
//! - every other assignment becomes `env:` (secret versions and `COMPOSE_FILE` included);
//! - the recipe's `.env.sample` `SECRET_*_VERSION` lines become `secrets:` (`# length=N` ->
//!   `generate: {length: N}`, `# generate=false` -> `existing`);
//! - the deployment is `adopt: true`: hearth takes the running stack over without a restart.

use crate::diag::{Diagnostic, Pos};
use crate::recipe::hints::SecretHint;
use crate::recipe::parse_env_file;

/// One app env file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// How the file is named in comments and errors.
    pub file: String,
    pub recipe: String,
    /// The `:version` of `RECIPE=`/`TYPE=`, if given.
    pub version: Option<String>,
    /// `RECIPE` or `TYPE`, and its line.
    pub recipe_var: (String, usize),
    pub domain: String,
    /// The line of `DOMAIN=` (None: taken from the file name).
    pub domain_line: Option<usize>,
    /// Every other assignment, in file order (the last value of a name wins), with its line.
    pub env: Vec<(String, String, usize)>,
}

/// Where the version of an imported deployment came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionFrom {
    /// `RECIPE=name:version` in the env file.
    EnvFile,
    /// The live stack's `coop-cloud.<stack>.version` label.
    LiveLabel(String),
    /// Neither: the recipe's newest tag (a guess; the caller warns).
    NewestTag,
}

/// The 1-based line where `name` is last assigned in `text` (0 when not found).
fn line_of(text: &str, name: &str) -> usize {
    let mut found = 0;
    for (i, l) in text.lines().enumerate() {
        let l = l.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
        if let Some(rest) = l.strip_prefix(name)
            && rest.trim_start().starts_with('=')
        {
            found = i + 1;
        }
    }
    found
}

/// Parses an app env file. `file` names it in errors and comments; `stem` is its name without
/// `.env` (the domain when there is no `DOMAIN=`).
pub fn parse_app(file: &str, stem: &str, text: &str) -> Result<App, Diagnostic> {
    let pairs = parse_env_file(text, file)?;
    let mut env: Vec<(String, String, usize)> = Vec::new();
    let mut recipe: Option<(String, String)> = None;
    let mut domain = None;
    for (k, v) in pairs {
        match k.as_str() {
            // RECIPE wins over TYPE whatever the order (abra reads RECIPE first).
            "RECIPE" => recipe = Some((k, v)),
            "TYPE" if recipe.as_ref().is_none_or(|r| r.0 == "TYPE") => recipe = Some((k, v)),
            "TYPE" => {}
            "DOMAIN" => domain = Some(v),
            _ => {
                let line = line_of(text, &k);
                env.retain(|e| e.0 != k);
                env.push((k, v, line));
            }
        }
    }
    env.sort_by_key(|e| e.2);
    let Some((var, value)) = recipe else {
        return Err(Diagnostic::new(
            file,
            Pos { line: 1, col: 1 },
            "RECIPE",
            "no RECIPE= (or TYPE=) line: which recipe does this app run?".to_string(),
        ));
    };
    let line = line_of(text, &var);
    let (name, version) = match value.split_once(':') {
        Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
        None => (value.trim().to_string(), None),
    };
    if name.is_empty() || version.as_ref().is_some_and(|v| v.is_empty()) {
        return Err(Diagnostic::new(
            file,
            Pos { line, col: 1 },
            &var,
            format!("{value:?} is not `recipe` or `recipe:version`"),
        ));
    }
    let domain_line = domain.as_ref().map(|_| line_of(text, "DOMAIN"));
    Ok(App {
        file: file.to_string(),
        recipe: name,
        version,
        recipe_var: (var, line),
        domain: domain.unwrap_or_else(|| stem.to_string()),
        domain_line,
        env,
    })
}

/// A manifest name from a domain or server name: lower case, every other character `-`; a name
/// past the 63 characters `metadata.name` allows is cut and ends in `-` plus 8 hex digits of the
/// SHA-256 of the whole name, so it stays unique and stable.
pub fn manifest_name(s: &str) -> String {
    const MAX: usize = 63;
    let name: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.len() <= MAX {
        return name;
    }
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4]);
    let keep = &name[..MAX - hash.len() - 1];
    format!("{}-{hash}", keep.trim_end_matches('-'))
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The Pool manifest for one abra server.
pub fn pool_yaml(server: &str, server_dir: &str, recipes: &str) -> String {
    format!(
        "# Imported by `hearth import` from abra's server {server} ({server_dir}).\n\
         apiVersion: hearth/v1\n\
         kind: Pool\n\
         metadata:\n  name: {}\n\
         spec:\n  \
         domain: {}  # the server's name; every imported deployment names its own domain\n  \
         recipes: {}  # abra's recipe directory\n",
        manifest_name(server),
        q(server),
        q(recipes),
    )
}

/// The Deployment manifest for one app: `(metadata.name, text)`. `hints` are the recipe's
/// `SECRET_*_VERSION` lines, `sample` names its `.env.sample` (`recipe@version:.env.sample`).
pub fn deployment_yaml(
    app: &App,
    version: &str,
    from: &VersionFrom,
    hints: &[SecretHint],
    sample: &str,
) -> (String, String) {
    let name = manifest_name(&app.domain);
    let at = |line: usize| format!("{}:{line}", app.file);
    let (var, line) = &app.recipe_var;
    let mut out = format!(
        "# Imported by `hearth import` from {}.\napiVersion: hearth/v1\nkind: Deployment\n\
         metadata:\n  name: {name}\nspec:\n",
        app.file
    );
    out.push_str(&format!(
        "  recipe: {}  # {var}= at {}\n",
        q(&app.recipe),
        at(*line)
    ));
    let version_note = match from {
        VersionFrom::EnvFile => format!("{var}= at {}", at(*line)),
        VersionFrom::LiveLabel(stack) => {
            format!("the live stack's coop-cloud.{stack}.version label")
        }
        VersionFrom::NewestTag => {
            "NOT KNOWN: the recipe's newest tag; check what really runs before applying".into()
        }
    };
    out.push_str(&format!("  version: {}  # {version_note}\n", q(version)));
    let domain_note = match app.domain_line {
        Some(l) => format!("DOMAIN= at {}", at(l)),
        None => format!("the name of {}", app.file),
    };
    out.push_str(&format!("  domain: {}  # {domain_note}\n", q(&app.domain)));
    out.push_str(
        "  adopt: true  # take over the stack abra deployed, restarting nothing (docs/abra.md)\n",
    );
    if !app.env.is_empty() {
        out.push_str("  env:\n");
        for (k, v, l) in &app.env {
            out.push_str(&format!("    {k}: {}  # {}\n", q(v), at(*l)));
        }
    }
    if !hints.is_empty() {
        out.push_str("  secrets:\n");
        for h in hints {
            let origin = format!("{} at {sample}:{}", h.var, h.line);
            match h.generate() {
                None => out.push_str(&format!(
                    "    {}: existing  # `# generate=false` on {origin}: made by hand, never \
                     generated\n",
                    h.key
                )),
                Some(g) => {
                    let note = match h.length {
                        Some(n) => format!("`# length={n}` on {origin}"),
                        None => format!(
                            "{origin}, no length hint: hearth's default (abra makes a passphrase)"
                        ),
                    };
                    let charset = match h.charset {
                        Some(_) => format!(", charset: {}", charset_name(g.charset)),
                        None => String::new(),
                    };
                    out.push_str(&format!(
                        "    {}: {{generate: {{length: {}{charset}}}}}  # {note}\n",
                        h.key, g.length
                    ));
                }
            }
        }
    }
    (name, out)
}

fn charset_name(c: crate::manifest::Charset) -> &'static str {
    match c {
        crate::manifest::Charset::Alnum => "alnum",
        crate::manifest::Charset::Hex => "hex",
        crate::manifest::Charset::Safespecial => "safespecial",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::hints::secret_hints;

    const APP: &str = "TYPE=old\nRECIPE=gitea:3.6.0+1.24.2\nDOMAIN=git.example.org\n\
        LETS_ENCRYPT_ENV=production\nCOMPOSE_FILE=\"compose.yml:compose.smtp.yml\"\n\
        SECRET_DB_PASSWORD_VERSION=v2 # bumped\n";

    #[test]
    fn manifest_names_fit_63_characters_and_stay_unique() {
        assert_eq!(manifest_name("Git.Example.org"), "git-example-org");
        let long = format!("{}.example.org", "a-very-long-app-name".repeat(3));
        let n = manifest_name(&long);
        assert!(n.len() <= 63, "{n}");
        assert!(n.starts_with("a-very-long-app-name"), "{n}");
        assert_eq!(manifest_name(&long), n);
        assert_ne!(manifest_name(&format!("{long}.net")), n);
        assert!(crate::manifest::check_label(&n).is_ok(), "{n}");
    }

    #[test]
    fn recipe_version_domain_and_env_with_lines() {
        let app = parse_app("s/git.example.org.env", "git.example.org", APP).unwrap();
        assert_eq!(app.recipe, "gitea");
        assert_eq!(app.version.as_deref(), Some("3.6.0+1.24.2"));
        assert_eq!(app.recipe_var, ("RECIPE".to_string(), 2));
        assert_eq!(
            (app.domain.as_str(), app.domain_line),
            ("git.example.org", Some(3))
        );
        let env: Vec<_> = app
            .env
            .iter()
            .map(|e| (e.0.as_str(), e.1.as_str(), e.2))
            .collect();
        assert_eq!(
            env,
            [
                ("LETS_ENCRYPT_ENV", "production", 4),
                ("COMPOSE_FILE", "compose.yml:compose.smtp.yml", 5),
                ("SECRET_DB_PASSWORD_VERSION", "v2", 6),
            ]
        );
    }

    #[test]
    fn type_without_version_and_domain_from_the_file_name() {
        let app = parse_app("a.env", "a.example.org", "TYPE=static-site\nX=1\n").unwrap();
        assert_eq!((app.recipe.as_str(), app.version), ("static-site", None));
        assert_eq!(app.recipe_var, ("TYPE".to_string(), 1));
        assert_eq!(
            (app.domain.as_str(), app.domain_line),
            ("a.example.org", None)
        );
    }

    #[test]
    fn missing_or_bad_recipe_names_file_and_line() {
        let e = parse_app("s/x.env", "x", "DOMAIN=x\n").unwrap_err();
        assert!(e.to_string().starts_with("s/x.env:1:1: RECIPE:"), "{e}");
        let e = parse_app("s/x.env", "x", "A=1\nRECIPE=gitea:\n").unwrap_err();
        assert!(e.to_string().starts_with("s/x.env:2:1: RECIPE:"), "{e}");
        let e = parse_app("s/x.env", "x", "A=1\nnot a line\n").unwrap_err();
        assert!(e.to_string().starts_with("s/x.env:2:"), "{e}");
    }

    #[test]
    fn manifests_load_and_say_where_values_came_from() {
        let app = parse_app("s/git.example.org.env", "git.example.org", APP).unwrap();
        let hints = secret_hints(
            "SECRET_DB_PASSWORD_VERSION=v1 # length=32\nSECRET_SMTP_VERSION=v1 # generate=false\n\
             SECRET_KEY_VERSION=v1\n",
        );
        let (name, text) = deployment_yaml(
            &app,
            "3.6.0+1.24.2",
            &VersionFrom::EnvFile,
            &hints,
            "gitea@3.6.0+1.24.2:.env.sample",
        );
        assert_eq!(name, "git-example-org");
        assert!(text.contains("version: \"3.6.0+1.24.2\"  # RECIPE= at s/git.example.org.env:2"));
        assert!(text.contains("db_password: {generate: {length: 32}}  # `# length=32` on"));
        assert!(text.contains("smtp: existing  # `# generate=false` on SECRET_SMTP_VERSION"));
        let pool = pool_yaml(
            "srv.example.org",
            "/a/servers/srv.example.org",
            "/a/recipes",
        );
        let loaded =
            crate::manifest::load_str(&format!("{pool}---\n{text}"), std::path::Path::new("m.yml"));
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let d = &loaded.deployments[0];
        assert!(d.spec.adopt);
        assert_eq!(d.spec.domain.as_deref(), Some("git.example.org"));
        assert_eq!(d.spec.env["COMPOSE_FILE"], "compose.yml:compose.smtp.yml");
        assert_eq!(d.spec.env["SECRET_DB_PASSWORD_VERSION"], "v2");
        use crate::manifest::SecretSource;
        assert_eq!(d.spec.secrets["smtp"], SecretSource::Existing);
        match &d.spec.secrets["db_password"] {
            SecretSource::Generate(g) => assert_eq!(g.length, 32),
            other => panic!("{other:?}"),
        }
        match &d.spec.secrets["key"] {
            SecretSource::Generate(g) => assert_eq!(g.length, 32),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            loaded.pool.as_ref().unwrap().metadata.name,
            "srv-example-org"
        );
    }
}
