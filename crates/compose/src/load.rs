//! Loading a recipe's compose files into one merged, interpolated, positioned tree, in the
//! order `docker stack deploy` (docker/cli `loader.Load`) does it, and deserializing the typed
//! model from that tree with errors located at file:line:col.
//!
//! Per file: parse ([`crate::yaml`]), check `version` (3.x or absent; every file must
//! normalise to the same version, as docker/cli demands), reject forbidden service properties,
//! interpolate ([`crate::interpolate`]), bound port-range expansion
//! ([`crate::limits`]), resolve `environment` entries without a value
//! from the env (docker/cli `updateEnvironment`, done per file before merging); then merge the
//! files in order ([`crate::merge`]). Not done here: `env_file:` contents (needs the
//! recipe's files) and docker/cli's JSON-schema validation (the typed model rejects what the
//! schema would).

use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use crate::interpolate::{display_path, interpolate_tree};
use crate::limits::check_port_expansion;
use crate::merge::merge_files;
use crate::model::{DEPRECATED_SERVICE_KEYS, FORBIDDEN_SERVICE_KEYS, UNSUPPORTED_SERVICE_KEYS};
use crate::yaml::{Node, NodeValue, go_float_string, parse_yaml_file};
use hearth_diag::{Diagnostic, Pos};

/// One compose file of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSource {
    /// Path relative to the recipe root, e.g. `compose.mariadb.yml`.
    pub path: String,
    /// Name used in messages, e.g. `gitea@3.6.0:compose.yml`.
    pub label: String,
    pub text: String,
}

/// The merged tree, the file table its nodes' `file` indices point into (labels), and
/// warnings (unset variables, ignored options, swallowed interpolation errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub tree: Node,
    pub files: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

/// The compose schema versions docker/cli ships (`config_schema_v3.0` .. `v3.13`).
const DEFAULT_VERSION: &str = "3.13";

fn supported_version(v: &str) -> bool {
    v.strip_prefix("3.")
        .and_then(|minor| {
            minor
                .parse::<u32>()
                .ok()
                .filter(|_| !minor.starts_with('+'))
        })
        .is_some_and(|m| m <= 13 && (m.to_string() == v[2..]))
}

/// docker/cli `schema.Version`: `fmt.Sprintf("%v", version)`, with "" and "3" meaning 3.13.
fn file_version(tree: &Node) -> String {
    let raw = match tree.get("version").map(|n| &n.value) {
        None => return DEFAULT_VERSION.into(),
        Some(NodeValue::Null) => "<nil>".to_string(),
        Some(NodeValue::Float(f)) => go_float_string(*f),
        Some(v) => Node::new(v.clone(), 0, Pos::default())
            .scalar_string()
            .unwrap_or_else(|| "<collection>".into()),
    };
    match raw.as_str() {
        "" | "3" => DEFAULT_VERSION.into(),
        _ => raw,
    }
}

fn key_pos(tree: &Node, key: &str) -> Pos {
    tree.as_map()
        .and_then(|m| m.get(key))
        .map_or(Pos::default(), |(p, _)| *p)
}

/// Parse, check, interpolate and merge the compose files, in order (later files win).
pub fn load_tree(
    sources: &[ComposeSource],
    env: &IndexMap<String, String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let files: Vec<String> = sources.iter().map(|s| s.label.clone()).collect();
    let lookup = |k: &str| env.get(k).cloned();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut trees = Vec::new();
    let mut first_version: Option<String> = None;
    if sources.is_empty() {
        return Err(vec![Diagnostic::new(
            "",
            Pos::default(),
            "",
            "no compose files specified",
        )]);
    }
    for (i, src) in sources.iter().enumerate() {
        let tree = match parse_yaml_file(&src.text, &src.label, i as u32) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if tree.as_map().is_none() {
            errors.push(Diagnostic::new(
                &src.label,
                tree.pos,
                "",
                "top-level object must be a mapping",
            ));
            continue;
        }
        let version = file_version(&tree);
        let vpos = key_pos(&tree, "version");
        if !supported_version(&version) {
            errors.push(Diagnostic::new(
                &src.label,
                vpos,
                "version",
                format!("unsupported Compose file version: {version}"),
            ));
        }
        match &first_version {
            None => first_version = Some(version),
            Some(first) if *first != version => errors.push(Diagnostic::new(
                &src.label,
                vpos,
                "version",
                format!("version mismatched between two composefiles : {first} and {version}"),
            )),
            Some(_) => {}
        }
        let before = errors.len();
        check_service_properties(&tree, &src.label, &mut errors, &mut warnings);
        if errors.len() > before {
            continue;
        }
        match interpolate_tree(&tree, &lookup, &files) {
            Ok((t, w)) => {
                warnings.extend(w);
                if let Some(e) = check_port_expansion(&t, &src.label) {
                    errors.push(e);
                    continue;
                }
                trees.push(resolve_environment(t, &lookup));
            }
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut trees = trees.into_iter();
    let Some(mut tree) = trees.next() else {
        return Err(errors);
    };
    for overlay in trees {
        tree = merge_files(tree, overlay);
    }
    Ok(Loaded {
        tree,
        files,
        warnings,
    })
}

fn services(tree: &Node) -> impl Iterator<Item = (&String, &Node)> {
    tree.get("services")
        .and_then(Node::as_map)
        .into_iter()
        .flat_map(|m| m.iter().map(|(k, (_, v))| (k, v)))
}

fn check_service_properties(
    tree: &Node,
    label: &str,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    for (name, svc) in services(tree) {
        let Some(m) = svc.as_map() else { continue };
        for (key, (kpos, _)) in m {
            let field = format!("services.{name}.{key}");
            if let Some((_, why)) = FORBIDDEN_SERVICE_KEYS.iter().find(|(k, _)| k == key) {
                errors.push(Diagnostic::new(
                    label,
                    *kpos,
                    field,
                    format!("compose file contains unsupported options: {why}"),
                ));
            } else if key == "restart" {
                // docker/cli lists it as unsupported, yet falls back to it in convert.
                warnings.push(Diagnostic::new(
                    label,
                    *kpos,
                    field,
                    "docker stack deploy calls this unsupported, but uses it as the restart \
                     policy when deploy.restart_policy is absent; prefer deploy.restart_policy",
                ));
            } else if UNSUPPORTED_SERVICE_KEYS.contains(&key.as_str()) {
                warnings.push(Diagnostic::new(
                    label,
                    *kpos,
                    field,
                    "ignored: docker stack deploy does not support this option",
                ));
            } else if let Some((_, why)) = DEPRECATED_SERVICE_KEYS.iter().find(|(k, _)| k == key) {
                warnings.push(Diagnostic::new(
                    label,
                    *kpos,
                    field,
                    format!("ignored (deprecated): {why}"),
                ));
            }
        }
    }
}

/// docker/cli `updateEnvironment`: an entry without a value (`NAME`) or with an empty one
/// (`NAME=`) takes the value from the env when the env has it. List form becomes map form
/// (`NAME` without value -> null).
fn resolve_environment(mut tree: Node, lookup: &dyn Fn(&str) -> Option<String>) -> Node {
    resolve_environment_in(&mut tree, lookup);
    tree
}

fn resolve_environment_in(tree: &mut Node, lookup: &dyn Fn(&str) -> Option<String>) {
    let NodeValue::Map(top) = &mut tree.value else {
        return;
    };
    let Some((_, services)) = top.get_mut("services") else {
        return;
    };
    let NodeValue::Map(services) = &mut services.value else {
        return;
    };
    for (_, (_, svc)) in services.iter_mut() {
        let NodeValue::Map(fields) = &mut svc.value else {
            continue;
        };
        let Some((_, env)) = fields.get_mut("environment") else {
            continue;
        };
        let mut map: IndexMap<String, (Pos, Node)> = match &env.value {
            NodeValue::Map(m) => m.clone(),
            NodeValue::Seq(items) => items
                .iter()
                .map(|it| {
                    let s = it.scalar_string().unwrap_or_default();
                    let (k, v) = match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), NodeValue::Str(v.to_string())),
                        None => (s, NodeValue::Null),
                    };
                    (k, (it.pos, Node::new(v, it.file, it.pos)))
                })
                .collect(),
            _ => continue,
        };
        for (k, (_, v)) in map.iter_mut() {
            let empty = v.is_null() || v.as_str() == Some("");
            if empty && let Some(val) = lookup(k) {
                v.value = NodeValue::Str(val);
            }
        }
        env.value = NodeValue::Map(map);
    }
}

/// The tree as JSON (what the typed model is deserialized from).
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Int(i) => Value::from(*i),
        NodeValue::Float(f) => serde_json::Number::from_f64(*f)
            .map_or_else(|| Value::String(go_float_string(*f)), Value::Number),
        NodeValue::Str(s) => Value::String(s.clone()),
        NodeValue::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeValue::Map(m) => Value::Object(
            m.iter()
                .map(|(k, (_, v))| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// Deserialize the typed model from the merged tree; a failure names file:line:col and the
/// dotted path of the offending value.
pub fn deserialize<T: DeserializeOwned>(loaded: &Loaded) -> Result<T, Diagnostic> {
    let value = to_json(&loaded.tree);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut parts: Vec<String> = Vec::new();
        let mut node = &loaded.tree;
        let mut pos = node.pos;
        let mut file = node.file;
        let mut found = true;
        for seg in err.path().iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Map { key } => {
                    parts.push(key.clone());
                    if found {
                        match node.as_map().and_then(|m| m.get(key)) {
                            Some((_, child)) => node = child,
                            None => found = false,
                        }
                    }
                }
                Segment::Seq { index } => {
                    parts.push(format!("[{index}]"));
                    if found {
                        match &node.value {
                            NodeValue::Seq(items) if *index < items.len() => node = &items[*index],
                            _ => found = false,
                        }
                    }
                }
                Segment::Enum { .. } | Segment::Unknown => {}
            }
            if found {
                pos = node.pos;
                file = node.file;
            }
        }
        let label = loaded.files.get(file as usize).cloned().unwrap_or_default();
        Diagnostic::new(
            label,
            pos,
            display_path(&parts),
            err.into_inner().to_string(),
        )
    })
}

/// Where the value at `path` (map keys, or list indices as numbers) came from: the label of
/// the file that defined it and its position. `["services", "web"]` names the file whose
/// definition of `web` is in the merged tree (the first file that defined it).
pub fn origin_of(loaded: &Loaded, path: &[&str]) -> Option<(String, Pos)> {
    let mut node = &loaded.tree;
    for seg in path {
        node = match &node.value {
            NodeValue::Map(m) => &m.get(*seg)?.1,
            NodeValue::Seq(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some((loaded.files.get(node.file as usize)?.clone(), node.pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &str, text: &str) -> ComposeSource {
        ComposeSource {
            path: path.into(),
            label: format!("gitea@3.6.0:{path}"),
            text: text.into(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const COMPOSE: &str = r#"---
version: "3.8"

services:
  app:
    image: gitea/gitea:1.24.2-rootless
    configs:
      - source: config_yml
        target: /etc/gitea/app.ini
        mode: 0440
    environment: &env
      - GITEA_DOMAIN=${DOMAIN}
      - GITEA_APP_NAME
      - USER_UID=1000
    secrets:
      - internal_token
    networks:
      - proxy
      - internal
    volumes:
      - git:/var/lib/gitea
    deploy:
      update_config:
        failure_action: rollback
        order: start-first
      labels:
        - "traefik.enable=true"
        - "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)"
        - "coop-cloud.${STACK_NAME}.version=3.6.0+1.24.2-rootless"

secrets:
  internal_token:
    external: true
    name: ${STACK_NAME}_internal_token_${SECRET_INTERNAL_TOKEN_VERSION}

configs:
  config_yml:
    name: ${STACK_NAME}_config_${CONFIG_YML_VERSION}
    file: app.ini.tmpl
    template_driver: golang

networks:
  proxy:
    external: true
  internal:

volumes:
  git:
"#;

    const MARIADB: &str = r#"version: "3.8"

x-deploy: &deploy
  restart_policy:
    condition: on-failure
    max_attempts: 3
  update_config:
    parallelism: 1

services:
  app:
    environment:
      - GITEA_DB_TYPE=mysql
      - GITEA_DB_HOST=db:3306
      - USER_UID=
    secrets:
      - db_password
    depends_on:
      - db
  db:
    image: mariadb:11.4
    environment:
      <<: {MYSQL_DATABASE: gitea, MYSQL_USER: root}
      MYSQL_USER: gitea
      MYSQL_PASSWORD_FILE: /run/secrets/db_password
    deploy:
      <<: *deploy
      replicas: ${DB_REPLICAS:-1}
    secrets:
      - source: db_password
        mode: 0440
    networks:
      - internal
    volumes:
      - mariadb:/var/lib/mysql

secrets:
  db_password:
    external: true
    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}

volumes:
  mariadb:
"#;

    fn gitea() -> Loaded {
        let e = env(&[
            ("STACK_NAME", "git_example_org"),
            ("DOMAIN", "git.example.org"),
            ("SECRET_DB_PASSWORD_VERSION", "v1"),
            ("SECRET_INTERNAL_TOKEN_VERSION", "v2"),
            ("CONFIG_YML_VERSION", "v3"),
            ("GITEA_APP_NAME", "Git"),
        ]);
        load_tree(
            &[
                src("compose.yml", COMPOSE),
                src("compose.mariadb.yml", MARIADB),
            ],
            &e,
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn at<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
        let mut n = n;
        for p in path {
            n = match &n.value {
                NodeValue::Seq(items) => &items[p.parse::<usize>().unwrap_or(0)],
                _ => n.get(p).unwrap_or_else(|| panic!("no {p} in {path:?}")),
            };
        }
        n
    }

    #[test]
    fn realistic_recipe_with_overlay() {
        let l = gitea();
        let t = &l.tree;
        assert_eq!(
            at(t, &["services", "app", "configs", "0", "mode"]).value,
            NodeValue::Int(288)
        );
        assert_eq!(
            at(t, &["services", "db", "secrets", "0", "mode"]).value,
            NodeValue::Int(288)
        );
        let env = at(t, &["services", "app", "environment"]);
        assert_eq!(
            env.get("GITEA_DOMAIN").and_then(Node::as_str),
            Some("git.example.org")
        );
        assert_eq!(
            env.get("GITEA_APP_NAME").and_then(Node::as_str),
            Some("Git")
        );
        assert_eq!(
            env.get("GITEA_DB_TYPE").and_then(Node::as_str),
            Some("mysql")
        );
        // an empty overlay value does not replace a non-empty base value (mergo)
        assert_eq!(env.get("USER_UID").and_then(Node::as_str), Some("1000"));
        let db_env = at(t, &["services", "db", "environment"]);
        assert_eq!(
            db_env.get("MYSQL_USER").and_then(Node::as_str),
            Some("gitea")
        );
        assert_eq!(
            db_env.get("MYSQL_DATABASE").and_then(Node::as_str),
            Some("gitea")
        );
        let deploy = at(t, &["services", "db", "deploy"]);
        assert_eq!(
            deploy.get("replicas").map(|n| &n.value),
            Some(&NodeValue::Int(1))
        );
        assert_eq!(
            at(deploy, &["restart_policy", "max_attempts"]).value,
            NodeValue::Int(3)
        );
        let secrets: Vec<_> = match &at(t, &["services", "app", "secrets"]).value {
            NodeValue::Seq(v) => v.iter().filter_map(Node::scalar_string).collect(),
            _ => vec![],
        };
        assert_eq!(secrets, vec!["db_password", "internal_token"]);
        assert_eq!(
            at(t, &["secrets", "db_password", "name"]).as_str(),
            Some("git_example_org_db_password_v1")
        );
        assert_eq!(
            at(t, &["secrets", "internal_token", "name"]).as_str(),
            Some("git_example_org_internal_token_v2")
        );
        let labels: Vec<_> = match &at(t, &["services", "app", "deploy", "labels"]).value {
            NodeValue::Seq(v) => v.iter().filter_map(Node::scalar_string).collect(),
            _ => vec![],
        };
        assert!(labels.contains(
            &"traefik.http.routers.git_example_org.rule=Host(`git.example.org`)".to_string()
        ));
        assert!(at(t, &["volumes"]).get("mariadb").is_some());
        assert!(at(t, &["services", "app", "depends_on"]).pos.line > 0);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        // origins
        let (file, pos) = origin_of(&l, &["services", "db"]).unwrap_or_default();
        assert_eq!(file, "gitea@3.6.0:compose.mariadb.yml");
        assert!(pos.line > 0);
        let (file, _) = origin_of(&l, &["services", "app", "image"]).unwrap_or_default();
        assert_eq!(file, "gitea@3.6.0:compose.yml");
        let (file, pos) = origin_of(&l, &["services", "app", "secrets", "0"]).unwrap_or_default();
        assert_eq!(
            (file.as_str(), pos.line),
            ("gitea@3.6.0:compose.mariadb.yml", 17)
        );
    }

    #[test]
    fn port_ranges_past_the_limit_are_refused_per_file() {
        let big = "services:\n  app:\n    ports: [\"1-65535\", \"1-65535:1-65535/udp\"]\n";
        let errs = load_tree(&[src("compose.yml", big)], &env(&[]))
            .err()
            .unwrap_or_else(|| panic!("loaded"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "services.app.ports");
        // The limit is per file, after interpolation.
        let one = "services:\n  app:\n    ports: [\"${R}\"]\n";
        let e = env(&[("R", "1-65535")]);
        assert!(load_tree(&[src("compose.yml", one)], &e).is_ok());
        let two = [src("compose.yml", one), src("compose.x.yml", one)];
        assert!(load_tree(&two, &e).is_ok());
    }

    #[test]
    fn versions_are_checked() {
        let e = env(&[]);
        let r = load_tree(&[src("a.yml", "version: '2'\nservices: {}\n")], &e);
        assert!(r.is_err_and(|e| e[0].message.contains("unsupported Compose file version: 2")));
        let r = load_tree(
            &[
                src("a.yml", "version: '3.8'\nservices: {}\n"),
                src("b.yml", "services: {}\n"),
            ],
            &e,
        );
        assert!(r.is_err_and(|e| e[0].message.contains("version mismatched")));
        assert!(load_tree(&[src("a.yml", "version: 3\nservices: {}\n")], &e).is_ok());
        assert!(load_tree(&[src("a.yml", "services: {}\n")], &e).is_ok());
        assert!(load_tree(&[src("a.yml", "version: 3.10\nservices: {}\n")], &e).is_ok());
        assert!(load_tree(&[src("a.yml", "- a\n")], &e).is_err());
    }

    #[test]
    fn errors_collected_across_files() {
        let e = env(&[]);
        let r = load_tree(
            &[
                src("a.yml", "services:\n  app:\n    image: ${IMAGE:?set it}\n"),
                src("b.yml", "services:\n  app:\n    extends: x\n"),
                src("c.yml", "a: [\n"),
            ],
            &e,
        );
        let errs = r.err().unwrap_or_default();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "gitea@3.6.0:a.yml:3:12: services.app.image: required variable IMAGE is missing a value: set it"
        );
        assert!(
            errs[1]
                .to_string()
                .starts_with("gitea@3.6.0:b.yml:3:5: services.app.extends")
        );
        assert!(errs[2].to_string().starts_with("gitea@3.6.0:c.yml:"));
    }

    #[test]
    fn unset_variables_and_unsupported_options_warn() {
        let l = load_tree(
            &[src(
                "a.yml",
                "services:\n  app:\n    image: x:${TAG}\n    restart: always\n",
            )],
            &env(&[]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        // `restart` is not ignored: the renderer falls back to it, as docker/cli does.
        let restart = l
            .warnings
            .iter()
            .find(|w| w.field == "services.app.restart")
            .unwrap_or_else(|| panic!("{:?}", l.warnings));
        assert!(
            restart
                .message
                .contains("when deploy.restart_policy is absent"),
            "{restart}"
        );
        let ignored = load_tree(
            &[src(
                "a.yml",
                "services:\n  app:\n    image: x\n    pid: host\n",
            )],
            &env(&[]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            ignored.warnings[0].message.starts_with("ignored:"),
            "{:?}",
            ignored.warnings
        );
    }

    #[test]
    fn environment_entries_take_values_from_env() {
        let l = load_tree(
            &[src(
                "a.yml",
                "services:\n  app:\n    environment: [A, B=, C=c, D]\n",
            )],
            &env(&[("A", "a"), ("B", "b"), ("C", "x")]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let envn = at(&l.tree, &["services", "app", "environment"]);
        assert_eq!(envn.get("A").and_then(Node::as_str), Some("a"));
        assert_eq!(envn.get("B").and_then(Node::as_str), Some("b"));
        assert_eq!(envn.get("C").and_then(Node::as_str), Some("c"));
        assert!(envn.get("D").is_some_and(Node::is_null));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[allow(dead_code)]
        version: Option<String>,
        services: IndexMap<String, Svc>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Svc {
        image: Option<String>,
        deploy: Option<Deploy>,
        #[allow(dead_code)]
        ports: Option<Vec<serde_json::Value>>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Deploy {
        replicas: Option<u64>,
    }

    #[test]
    fn deserialize_maps_errors_to_positions() {
        let base =
            "version: '3.8'\nservices:\n  app:\n    image: a\n    deploy:\n      replicas: ${R}\n";
        let over = "version: '3.8'\nservices:\n  app:\n    deploy:\n      replicas: many\n";
        let l = load_tree(&[src("compose.yml", base)], &env(&[("R", "2")]))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let f: File = deserialize(&l).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            f.services["app"].deploy.as_ref().and_then(|d| d.replicas),
            Some(2)
        );
        assert_eq!(f.services["app"].image.as_deref(), Some("a"));

        let l = load_tree(
            &[src("compose.yml", base), src("compose.x.yml", over)],
            &env(&[("R", "2")]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let e = deserialize::<File>(&l)
            .err()
            .unwrap_or_else(|| panic!("should fail"));
        assert_eq!(e.file.to_string_lossy(), "gitea@3.6.0:compose.x.yml");
        assert_eq!(e.pos, Pos { line: 5, col: 17 });
        assert_eq!(e.field, "services.app.deploy.replicas");
        assert!(e.message.contains("invalid type"), "{e}");

        let l = load_tree(
            &[src(
                "compose.yml",
                "services:\n  app:\n    ports: [1]\n    imag: x\n",
            )],
            &env(&[]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let e = deserialize::<File>(&l)
            .err()
            .unwrap_or_else(|| panic!("should fail"));
        assert!(e.message.contains("unknown field `imag`"), "{e}");
        assert_eq!(e.pos.line, 4, "{e}");
    }
}
