//! Positions of every node of a YAML document, by dotted field path.
//!
//! A second, schema-free pass over a document that already deserialized: each node is read as a
//! `serde_saphyr::Spanned` so later checks (validation, name collisions) can point at the exact
//! field, e.g. `spec.dependsOn[1]`, instead of only at the document.

use crate::diag::Pos;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeMap;
use std::fmt;

/// A node with its children; scalars have none.
enum Node {
    Leaf,
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Spanned<Node>>()? {
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

/// A serde-saphyr location as a [`Pos`], `line_offset` lines further down (line 0, "unknown",
/// stays 0).
pub fn to_pos(l: &Location, line_offset: usize) -> Pos {
    let line = usize::try_from(l.line()).unwrap_or(0);
    Pos {
        line: if line == 0 {
            0
        } else {
            line.saturating_add(line_offset)
        },
        col: usize::try_from(l.column()).unwrap_or(0),
    }
}

fn record(path: &str, node: &Spanned<Node>, offset: usize, out: &mut BTreeMap<String, Pos>) {
    out.insert(path.to_string(), to_pos(&node.referenced, offset));
    match &node.value {
        Node::Leaf => {}
        Node::Map(entries) => {
            for (k, v) in entries {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                record(&p, v, offset, out);
            }
        }
        Node::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                record(&format!("{path}[{i}]"), v, offset, out);
            }
        }
    }
}

/// Positions of all nodes of the single document in `text` (the root under the empty path),
/// for a document that starts `line_offset` lines into its file. Empty when the text does not
/// parse.
pub fn positions(text: &str, line_offset: usize) -> BTreeMap<String, Pos> {
    let mut out = BTreeMap::new();
    if let Ok(root) = serde_saphyr::from_str::<Spanned<Node>>(text) {
        record("", &root, line_offset, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_nested_paths() {
        let p = positions(
            "metadata: {name: a}\nspec:\n  probes:\n    - tcp:\n        port: 1\n",
            2,
        );
        let at = |k: &str| p.get(k).map(|p| (p.line, p.col));
        assert_eq!(at("metadata.name"), Some((3, 18)));
        assert_eq!(at("spec.probes[0].tcp.port"), Some((7, 15)));
        assert_eq!(at("spec.probes[0]"), Some((6, 7)));
        assert_eq!(at(""), Some((3, 1)));
    }

    #[test]
    fn unparsable_gives_nothing() {
        assert!(positions("a: [", 0).is_empty());
    }
}
