//! `hearth import`: reads abra's app env files of one server, the recipes they name and (when a
//! daemon answers) the live stacks' version labels, and writes one Pool and one Deployment per
//! app (texts built by [`crate::import`]). Idempotent: an identical file is left alone, a
//! different one is only replaced with `--force`. Nothing is written when any app has a problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::diag::{Diagnostic, Pos};
use crate::import::{self, VersionFrom};
use crate::recipe::RecipeStore;
use crate::recipe::hints::secret_hints;
use crate::swarm::Client;
use crate::swarm::label_filter;

use super::common::runtime;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// abra's directory (servers/ and recipes/); default `ABRA_DIR`, else `~/.abra`.
    #[arg(long, env = "ABRA_DIR")]
    pub abra_dir: Option<PathBuf>,
    /// The server whose apps to import (`<abra-dir>/servers/<server>`).
    #[arg(long)]
    pub server: String,
    /// Only these apps (their domain, the env file's name without `.env`); default all.
    #[arg(long = "app")]
    pub apps: Vec<String>,
    /// Where to write `pool.yml` and one `<name>.yml` per app.
    #[arg(long)]
    pub output_dir: PathBuf,
    /// Print what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace files that exist with other content.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &ImportArgs, host: Option<&str>) -> ExitCode {
    let abra = args.abra_dir.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".abra")
    });
    // The Pool names the recipes directory: absolute, whatever directory hearth later runs in.
    let abra = std::path::absolute(&abra).unwrap_or(abra);
    let server_dir = abra.join("servers").join(&args.server);
    let recipes = abra.join("recipes");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&server_dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "env") && p.is_file())
            .collect(),
        Err(e) => {
            eprintln!(
                "{}: cannot read abra's server directory: {e}",
                server_dir.display()
            );
            return ExitCode::from(1);
        }
    };
    files.sort();
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut failed = false;
    for a in &args.apps {
        if !files.iter().any(|f| stem(f) == *a) {
            eprintln!("{}: no app file {a}.env", server_dir.display());
            failed = true;
        }
    }
    if !args.apps.is_empty() {
        files.retain(|f| args.apps.contains(&stem(f)));
    }

    let store = RecipeStore::new(&recipes);
    let rt = runtime();
    let client = rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(5), Client::connect(host)).await {
            Ok(Ok(c)) => Some(c),
            _ => None,
        }
    });
    if client.is_none() {
        eprintln!("warning: no Docker daemon answers: versions are not read from the live stacks");
    }

    let mut outputs: Vec<(PathBuf, String)> = vec![(
        args.output_dir.join("pool.yml"),
        import::pool_yaml(
            &args.server,
            &server_dir.display().to_string(),
            &recipes.display().to_string(),
        ),
    )];
    for f in &files {
        let label = f.display().to_string();
        match import_app(&rt, client.as_ref(), &store, f, &stem(f)) {
            Ok((name, text)) => {
                let path = args.output_dir.join(format!("{name}.yml"));
                if outputs.iter().any(|o| o.0 == path) {
                    eprintln!("{label}: another app also imports as {}", path.display());
                    failed = true;
                }
                outputs.push((path, text));
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    // Decide every file first: nothing is written unless all can be.
    let mut writes = Vec::new();
    for (path, text) in &outputs {
        match std::fs::read_to_string(path) {
            Ok(old) if old == *text => eprintln!("{}: unchanged", path.display()),
            Ok(_) if !args.force => {
                eprintln!(
                    "{}: exists with other content; give --force to replace it",
                    path.display()
                );
                failed = true;
            }
            _ => writes.push((path, text)),
        }
    }
    if failed {
        eprintln!("nothing written");
        return ExitCode::from(1);
    }
    if args.dry_run {
        for (path, text) in writes {
            println!("# --- {} ---\n{text}", path.display());
        }
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::create_dir_all(&args.output_dir) {
        eprintln!("{}: {e}", args.output_dir.display());
        return ExitCode::from(1);
    }
    for (path, text) in writes {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("{}: written", path.display());
    }
    ExitCode::SUCCESS
}

/// One app: its Deployment's name and text, or a diagnostic naming the file and line.
fn import_app(
    rt: &tokio::runtime::Runtime,
    client: Option<&Client>,
    store: &RecipeStore,
    file: &Path,
    stem: &str,
) -> Result<(String, String), Diagnostic> {
    let label = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::new(&label, Pos::default(), "", format!("cannot read: {e}")))?;
    let app = import::parse_app(&label, stem, &text)?;
    let (var, line) = app.recipe_var.clone();
    let at = Pos { line, col: 1 };
    if !store.has_recipe(&app.recipe) {
        return Err(Diagnostic::new(
            &label,
            at,
            &var,
            format!(
                "recipe {:?} is not in the recipes directory {} (fetch it with `abra recipe \
                 fetch {}`)",
                app.recipe,
                store.dir().display(),
                app.recipe
            ),
        ));
    }
    let recipe_err =
        |e: crate::recipe::RecipeError| Diagnostic::new(&label, at, &var, e.to_string());
    // abra's stack name (and hearth's for an adopted deployment): `.` -> `_`, cut at 45.
    let stack = crate::manifest::names::abra_stack_name(&app.domain);
    let (version, from) = match &app.version {
        Some(v) => (v.clone(), VersionFrom::EnvFile),
        None => match client.and_then(|c| rt.block_on(live_version(c, &stack))) {
            Some(v) => (v, VersionFrom::LiveLabel(stack.clone())),
            None => {
                let latest = store.latest(&app.recipe).map_err(recipe_err)?;
                let Some(v) = latest else {
                    return Err(Diagnostic::new(
                        &label,
                        at,
                        &var,
                        format!("recipe {:?} has no version tags", app.recipe),
                    ));
                };
                eprintln!(
                    "warning: {label}: no version in {var}= and no live stack {stack}: using the \
                     recipe's newest tag {v}; check it"
                );
                (v.to_string(), VersionFrom::NewestTag)
            }
        },
    };
    let recipe = store.open(&app.recipe, &version).map_err(recipe_err)?;
    let sample = recipe
        .read_string(".env.sample")
        .map_err(recipe_err)?
        .unwrap_or_default();
    let hints = secret_hints(&sample);
    Ok(import::deployment_yaml(
        &app,
        &version,
        &from,
        &hints,
        &recipe.label(".env.sample"),
    ))
}

/// The `coop-cloud.<stack>.version` label of the live stack's services, if any has it.
async fn live_version(client: &Client, stack: &str) -> Option<String> {
    let ns = format!("{}={stack}", crate::render::LABEL_NAMESPACE);
    let services = client
        .list_services(Some(label_filter(&[ns.as_str()])))
        .await
        .ok()?;
    let key = crate::render::version_label(stack);
    services
        .iter()
        .filter_map(|s| s.spec.as_ref()?.labels.as_ref()?.get(&key).cloned())
        .find(|v| !v.is_empty())
}
