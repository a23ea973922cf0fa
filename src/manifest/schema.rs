//! The JSON Schema of manifests, generated from the types in `types` (schemars), and the field
//! reference `docs/manifest.md` generated from that schema.
//!
//! `hearth schema` prints [`json_schema`]; `hearth schema --markdown` prints [`markdown`]. The
//! committed `docs/manifest.schema.json` and `docs/manifest.md` are these outputs; a test fails
//! when they are stale. The schema is draft-07 (what yaml-language-server understands best); one
//! schema covers both kinds, chosen by `kind`.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use super::fields::Payload;
use super::types::{API_VERSION, DeploymentSpec, Metadata, PoolSpec};

/// Where editors find the schema (the yaml-language-server modeline points here).
pub const SCHEMA_FILE: &str = "docs/manifest.schema.json";

/// Schema stand-in for a duration field (`Duration` parsed from text).
pub struct DurationText;

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with its unit: 200ms, 30s, 10m, 1h30m.",
            "pattern": r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$"
        })
    }
}

impl JsonSchema for Payload {
    fn schema_name() -> Cow<'static, str> {
        "Payload".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Text, or `hex:` followed by hex digits (spaces ignored)."
        })
    }
}

/// A map whose values may be written as any YAML scalar but null (taken as the text written).
pub fn scalar_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]}
    })
}

/// The manifest schema: one document of kind `Pool` or `Deployment`.
pub fn json_schema() -> Value {
    let mut generator = SchemaSettings::draft07().for_deserialize().into_generator();
    let metadata = generator.subschema_for::<Metadata>();
    let pool = generator.subschema_for::<PoolSpec>();
    let deployment = generator.subschema_for::<DeploymentSpec>();
    let mut defs = generator.take_definitions(true);
    for def in defs.values_mut() {
        fix_defaults(def);
    }
    // The only machine-dependent default: written as the manifest would write it.
    defs["PoolSpec"]["properties"]["recipes"]["default"] = json!("~/.abra/recipes");
    let kind_is = |kind: &str, spec: &Schema| {
        json!({
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {"spec": spec}}
        })
    };
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "hearth manifest",
        "description": "One YAML document of a hearth manifest: a Pool or a Deployment \
                        (docs/manifest.md).",
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": "Always hearth/v1."},
            "kind": {
                "enum": ["Pool", "Deployment"],
                "description": "Pool: the one pool a manifest set describes. Deployment: one app \
                                deployment (one Swarm stack)."
            },
            "metadata": metadata,
            "spec": {"type": "object", "description": "The kind's settings."}
        },
        "allOf": [kind_is("Pool", &pool), kind_is("Deployment", &deployment)],
        "definitions": defs,
    })
}

/// Durations serialize as `{secs, nanos}`; a default is shown as the manifest would write it.
fn fix_defaults(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(d) = m.get_mut("default")
                && let (Some(secs), Some(nanos)) = (
                    d.get("secs").and_then(Value::as_u64),
                    d.get("nanos").and_then(Value::as_u64),
                )
            {
                let dur = std::time::Duration::new(secs, nanos as u32);
                *d = json!(humantime::format_duration(dur).to_string());
            }
            m.values_mut().for_each(fix_defaults);
        }
        Value::Array(a) => a.iter_mut().for_each(fix_defaults),
        _ => {}
    }
}

/// [`json_schema`] as the committed file's text (pretty, ending in a newline).
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).expect("a schema serializes");
    s.push('\n');
    s
}

/// One row of the reference: a field at a dotted path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRow {
    pub path: String,
    pub ty: String,
    pub required: bool,
    pub default: Option<String>,
    pub description: String,
    pub example: String,
}

/// Every field of a kind's document, depth first, with type, default, description and example.
pub fn field_rows(kind: &str) -> Vec<FieldRow> {
    let schema = json_schema();
    let defs = schema["definitions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let spec_def = match kind {
        "Pool" => "PoolSpec",
        _ => "DeploymentSpec",
    };
    let mut rows = Vec::new();
    let w = Walker { defs: &defs };
    w.field(
        &mut rows,
        "metadata",
        &schema["properties"]["metadata"],
        true,
    );
    w.field(&mut rows, "spec", &json!({"$ref": format!("#/definitions/{spec_def}"), "description": format!("The {kind}'s settings.")}), true);
    rows
}

struct Walker<'a> {
    defs: &'a Map<String, Value>,
}

impl Walker<'_> {
    /// The definition a `$ref` names.
    fn deref<'s>(&'s self, s: &'s Value) -> (&'s Value, Option<&'s str>) {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/definitions/");
                (self.defs.get(name).unwrap_or(&Value::Null), Some(name))
            }
            None => (s, None),
        }
    }

    /// The schema without an `Option`'s null: `anyOf [X, null]` or `type: [t, "null"]`.
    fn non_null(&self, s: &Value) -> Value {
        // `allOf: [X]` is how draft-07 lets a `$ref` carry a description and default.
        if let Some([one]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            let mut out = one.clone();
            if let (Some(o), Some(outer)) = (out.as_object_mut(), s.as_object()) {
                for (k, v) in outer {
                    if k != "allOf" {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
            return self.non_null(&out);
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            let rest: Vec<&Value> = any.iter().filter(|a| a["type"] != "null").collect();
            if rest.len() == 1 {
                let mut out = rest[0].clone();
                if let (Some(o), Some(outer)) = (out.as_object_mut(), s.as_object()) {
                    for (k, v) in outer {
                        if k != "anyOf" {
                            o.entry(k.clone()).or_insert(v.clone());
                        }
                    }
                }
                return out;
            }
        }
        let mut out = s.clone();
        if let Some(Value::Array(ts)) = out.get_mut("type") {
            ts.retain(|t| t != "null");
            if ts.len() == 1 {
                let t = ts[0].clone();
                out["type"] = t;
            }
        }
        out
    }

    /// The type as the reference writes it.
    fn type_name(&self, s: &Value) -> String {
        let s = self.non_null(s);
        let (d, name) = self.deref(&s);
        if name == Some("Duration") {
            return "duration".into();
        }
        if let Some(vals) = enum_values(d) {
            return format!("one of {}", vals.join(", "));
        }
        if d.get("oneOf").is_some() {
            let keys: Vec<String> = d["oneOf"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["required"][0].as_str().map(|k| format!("`{k}`")))
                .collect();
            return format!("exactly one of {}", keys.join(", "));
        }
        match d["type"].as_str() {
            Some("array") => format!("list of {}", self.type_name(&d["items"])),
            Some("object") if d.get("properties").is_none() => {
                match d.get("additionalProperties") {
                    Some(v) if v.is_object() => format!("map of {}", self.type_name(v)),
                    _ => "map".into(),
                }
            }
            Some("object") => "object".into(),
            Some(t) => t.into(),
            None => match d["type"].as_array() {
                Some(ts) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" or "),
                None => "any".into(),
            },
        }
    }

    fn field(&self, rows: &mut Vec<FieldRow>, path: &str, s: &Value, required: bool) {
        let s = self.non_null(s);
        let (d, _) = self.deref(&s);
        let description = s
            .get("description")
            .or_else(|| d.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let default = s.get("default").filter(|v| !v.is_null()).map(short);
        let example = s
            .get("examples")
            .and_then(|e| e.get(0))
            .map(short)
            .or_else(|| default.clone())
            .or_else(|| enum_values(d).and_then(|v| v.first().cloned()))
            .unwrap_or_else(|| match d["type"].as_str() {
                Some("boolean") => "true".into(),
                _ => String::new(),
            });
        rows.push(FieldRow {
            path: path.to_string(),
            ty: self.type_name(&s),
            required,
            default,
            description,
            example,
        });
        self.children(rows, path, d);
    }

    fn children(&self, rows: &mut Vec<FieldRow>, path: &str, d: &Value) {
        if let Some(props) = d.get("properties").and_then(Value::as_object) {
            let req: Vec<&str> = d["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (k, v) in props {
                self.field(rows, &format!("{path}.{k}"), v, req.contains(&k.as_str()));
            }
        } else if let Some(alts) = d.get("oneOf").and_then(Value::as_array) {
            // An externally tagged enum: `{kind: {...}}` per alternative.
            for alt in alts {
                if let Some(props) = alt.get("properties").and_then(Value::as_object) {
                    for (k, v) in props {
                        let mut v = v.clone();
                        if v.get("description").is_none()
                            && let Some(desc) = alt.get("description")
                        {
                            v["description"] = desc.clone();
                        }
                        self.field(rows, &format!("{path}.{k}"), &v, false);
                    }
                }
            }
        } else if d["type"] == "array" {
            let (item, _) = self.deref(&d["items"]);
            self.children(rows, &format!("{path}[]"), item);
        } else if let Some(v) = d.get("additionalProperties").filter(|v| v.is_object()) {
            let (item, _) = self.deref(v);
            self.children(rows, &format!("{path}.<name>"), item);
        }
    }
}

/// The values of a string enum (`enum`, or `oneOf` of `const`s as schemars writes documented
/// variants).
fn enum_values(d: &Value) -> Option<Vec<String>> {
    if let Some(e) = d.get("enum").and_then(Value::as_array) {
        return Some(e.iter().map(short).collect());
    }
    let alts = d.get("oneOf")?.as_array()?;
    let mut out = Vec::new();
    for a in alts {
        match (a.get("const"), a.get("enum").and_then(Value::as_array)) {
            (Some(c), _) => out.push(short(c)),
            (None, Some(e)) => out.extend(e.iter().map(short)),
            _ => return None,
        }
    }
    Some(out)
}

/// A value as it would be written in YAML flow style (strings unquoted when plain).
fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `docs/manifest.md`: every field of both kinds with type, default, description and example.
pub fn markdown() -> String {
    let mut out = String::from(
        "<!-- Generated by `hearth schema --markdown > docs/manifest.md`; do not edit by hand: \
         change the doc comments in src/manifest/types.rs and regenerate. -->\n\
         # Manifest reference\n\n\
         A manifest set is one or more YAML files, each holding one or more documents separated by \
         `---`. Every document has `apiVersion: hearth/v1`, a `kind` (`Pool` or `Deployment`), \
         `metadata` and `spec`. A set has exactly one `Pool` when it has deployments. Unknown fields \
         are errors, reported with file, line, column and field (`hearth validate`).\n\n\
         The JSON Schema of a document is `docs/manifest.schema.json` (`hearth schema` prints it). \
         Editors with the YAML language server (VS Code's YAML extension, Neovim's yamlls, Helix, \
         ...) complete and check a manifest when its first line is the modeline\n\n\
         ```yaml\n\
         # yaml-language-server: $schema=<path or URL of manifest.schema.json>\n\
         ```\n\n\
         for example `# yaml-language-server: $schema=../../docs/manifest.schema.json` in \
         `manifests/examples/pool.yml` of a checkout of this repository (the path is relative to \
         the manifest), or an `https://` URL of the file in your copy of the repository. \
         hearth itself ignores the comment.\n\n\
         Paths below: `a.b` is field `b` of object `a`, `a[]` an entry of list `a`, `a.<name>` \
         the value of any key of map `a`. Durations are written with their unit: `200ms`, `30s`, \
         `10m`, `1h30m`. The getting-started guide (docs/getting-started.md) explains the pool, \
         roles, domains and states.\n",
    );
    for kind in ["Pool", "Deployment"] {
        out.push_str(&format!(
            "\n## {kind}\n\nA small example:\n\n```yaml\napiVersion: {API_VERSION}\nkind: {kind}\n{}```\n\n\
             | field | type | required / default | description | example |\n\
             |---|---|---|---|---|\n",
            minimal(kind)
        ));
        for r in field_rows(kind) {
            let req = match (&r.default, r.required) {
                (_, true) => "required".to_string(),
                (Some(d), false) => format!("default `{}`", cell(d)),
                (None, false) => "optional".to_string(),
            };
            let example = if r.example.is_empty() {
                String::new()
            } else {
                format!("`{}`", cell(&r.example))
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                r.path,
                cell(&r.ty),
                req,
                cell(&r.description.replace('\n', " ")),
                example
            ));
        }
    }
    out
}

/// The body of a small example document of `kind` (after `apiVersion` and `kind`).
fn minimal(kind: &str) -> &'static str {
    match kind {
        "Pool" => {
            "metadata: {name: prod}\nspec:\n  domain: apps.example.org\n  recipes: ~/.abra/recipes\n  \
             defaults: {progressDeadline: 10m}\n"
        }
        _ => {
            "metadata: {name: gitea}\nspec:\n  recipe: gitea\n  version: 3.6.0+1.24.2-rootless\n  \
             role: canonical\n  env: {DISABLE_REGISTRATION: true}\n  secrets:\n    \
             db_password: {generate: {length: 32}}\n  probes:\n    \
             - http: {service: app, port: 3000, path: /api/healthz}\n"
        }
    }
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_type_a_description_and_an_example() {
        for kind in ["Pool", "Deployment"] {
            let rows = field_rows(kind);
            assert!(rows.len() > 10, "{kind}: {rows:?}");
            for r in &rows {
                assert!(!r.ty.is_empty() && r.ty != "any", "{kind} {}: type", r.path);
                assert!(
                    !r.description.is_empty(),
                    "{kind} {}: no doc comment",
                    r.path
                );
                let container = r.ty == "object" || r.ty.starts_with("exactly one of");
                assert!(
                    container || !r.example.is_empty(),
                    "{kind} {}: no example",
                    r.path
                );
            }
        }
    }

    #[test]
    fn defaults_are_written_as_a_manifest_writes_them() {
        let rows = field_rows("Pool");
        let get = |p: &str| rows.iter().find(|r| r.path == p).expect(p).clone();
        assert_eq!(
            get("spec.defaults.progressDeadline").default.as_deref(),
            Some("10m")
        );
        assert_eq!(
            get("spec.recipes").default.as_deref(),
            Some("~/.abra/recipes")
        );
        assert_eq!(
            get("spec.defaults.concurrency").default.as_deref(),
            Some("4")
        );
        let d = field_rows("Deployment");
        let get = |p: &str| d.iter().find(|r| r.path == p).expect(p).clone();
        assert_eq!(get("spec.role").ty, "one of provider, canonical, plain");
        assert_eq!(get("spec.role").default.as_deref(), Some("plain"));
        assert_eq!(get("spec.pinVolumes").default.as_deref(), Some("true"));
        assert_eq!(get("spec.probes[].http.path").default.as_deref(), Some("/"));
        assert_eq!(get("spec.probes[].tcp.stableFor").ty, "duration");
        assert!(
            get("spec.secrets.<name>.generate.charset")
                .ty
                .starts_with("one of alnum")
        );
    }
}
