//! Compose YAML text -> positioned tree ([`Node`]), read the way docker/cli reads it.
//!
//! docker/cli (`cli/compose/loader.ParseYAML`) unmarshals with `go.yaml.in/yaml/v3` into `any`.
//! This module reproduces what that yields, with a position on every node:
//! - plain scalars resolve per yaml.v3 `resolve.go`: only `true/True/TRUE`, `false/...` are bools
//!   (`yes`/`no`/`on`/`off` stay strings); `~`, `null`, `Null`, `NULL` and empty are null; integers
//!   go through Go's `strconv.ParseInt(s, 0, 64)` after dropping `_`, so `0440` is octal (288),
//!   `0x1F` is 31, `0b11` is 3, `0o17` is 15, `1_000` is 1000; `08` is not octal and falls to
//!   the float rule (8.0); quoted, literal and folded scalars are always strings;
//! - anchors, aliases and `<<` merge keys (a map or a list of maps; explicit keys win, earlier
//!   maps in the list win), with yaml.v3's "excessive aliasing" limit;
//! - duplicate keys are errors (yaml.v3: "mapping key already defined");
//! - only the first document is read, as `yaml.Unmarshal` does.
//!
//! Deliberate differences, each because docker/cli would fail later anyway or the value is
//! unusable: a mapping with a non-string key (`123:`) is an error here (yaml.v3 makes it a
//! `map[any]any`, which docker/cli then rejects: "top-level object must be a mapping" or a JSON
//! marshalling error in schema validation); timestamps (`2024-01-01`) stay strings; integers
//! between 2^63 and 2^64 become floats.

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use indexmap::IndexMap;

use hearth_diag::{Diagnostic, Pos};

/// One YAML node: its value, the file it came from (index into the loader's file table) and
/// where it starts in that file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub file: u32,
    pub pos: Pos,
}

/// The value of a [`Node`]. Map entries keep the key's position next to the value.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, (Pos, Node)>),
}

impl Node {
    pub fn new(value: NodeValue, file: u32, pos: Pos) -> Self {
        Node { value, file, pos }
    }

    /// The map entries, if this is a map.
    pub fn as_map(&self) -> Option<&IndexMap<String, (Pos, Node)>> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The string, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key`, if this is a map holding it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|(_, n)| n)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    /// Number of nodes in this subtree (this one included).
    pub fn size(&self) -> usize {
        1 + match &self.value {
            NodeValue::Seq(items) => items.iter().map(Node::size).sum(),
            NodeValue::Map(m) => m.values().map(|(_, n)| n.size()).sum(),
            _ => 0,
        }
    }

    /// Scalars rendered as Go's `fmt.Sprint` would (docker/cli stringifies map values that way);
    /// `None` for null and collections.
    pub fn scalar_string(&self) -> Option<String> {
        match &self.value {
            NodeValue::Bool(b) => Some(b.to_string()),
            NodeValue::Int(i) => Some(i.to_string()),
            NodeValue::Float(f) => Some(go_float_string(*f)),
            NodeValue::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

pub use crate::model::scalars::go_float_string;

/// Parse one YAML document as docker/cli would; the tree's nodes get file index 0.
pub fn parse_yaml(text: &str, file_label: &str) -> Result<Node, Diagnostic> {
    parse_yaml_file(text, file_label, 0)
}

/// Parse one YAML document; every node gets `file` as its file index.
pub fn parse_yaml_file(text: &str, file_label: &str, file: u32) -> Result<Node, Diagnostic> {
    Builder::new(file_label, file).run(text)
}

// ---------------------------------------------------------------------------------------------
// Scalar resolution (yaml.v3 resolve.go)

/// What a scalar resolves to, before it becomes a [`NodeValue`].
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// yaml.v3 resolves these to `time.Time`; kept as text here.
    Timestamp(String),
}

impl Scalar {
    fn into_value(self) -> NodeValue {
        match self {
            Scalar::Null => NodeValue::Null,
            Scalar::Bool(b) => NodeValue::Bool(b),
            Scalar::Int(i) => NodeValue::Int(i),
            Scalar::Float(f) => NodeValue::Float(f),
            Scalar::Str(s) | Scalar::Timestamp(s) => NodeValue::Str(s),
        }
    }

    fn tag_name(&self) -> &'static str {
        match self {
            Scalar::Null => "!!null",
            Scalar::Bool(_) => "!!bool",
            Scalar::Int(_) => "!!int",
            Scalar::Float(_) => "!!float",
            Scalar::Str(_) => "!!str",
            Scalar::Timestamp(_) => "!!timestamp",
        }
    }
}

/// Resolve an untagged plain scalar exactly as yaml.v3's `resolve("", s)` does.
pub fn resolve_plain(s: &str) -> Scalar {
    match s {
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if let Some(f) = go_parse_decimal_float(s) {
                return Scalar::Float(f);
            }
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if first.is_ascii_digit() && is_timestamp(s) {
                return Scalar::Timestamp(s.to_string());
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            match go_parse_int(&plain) {
                Some(IntResult::Signed(i)) => return Scalar::Int(i),
                Some(IntResult::Unsigned(u)) => return Scalar::Float(u as f64),
                None => {}
            }
            if yaml_style_float(&plain)
                && let Some(f) = go_parse_decimal_float(&plain)
            {
                return Scalar::Float(f);
            }
            // The explicit 0b/0o fallbacks in resolve.go only matter for values ParseInt
            // already rejected (overflow), which they reject too.
        }
        _ => {}
    }
    Scalar::Str(s.to_string())
}

enum IntResult {
    Signed(i64),
    Unsigned(u64),
}

/// `strconv.ParseInt(s, 0, 64)`, falling back to `strconv.ParseUint(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<IntResult> {
    let (neg, signed, body) = match s.as_bytes().first()? {
        b'+' => (false, true, &s[1..]),
        b'-' => (true, true, &s[1..]),
        _ => (false, false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= 1u64 << 63 {
            return Some(IntResult::Signed((magnitude as i128).wrapping_neg() as i64));
        }
        return None;
    }
    if let Ok(i) = i64::try_from(magnitude) {
        return Some(IntResult::Signed(i));
    }
    // ParseUint takes no sign.
    if signed {
        None
    } else {
        Some(IntResult::Unsigned(magnitude))
    }
}

/// yaml.v3's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for plain decimal syntax: fails on overflow to infinity.
fn go_parse_decimal_float(s: &str) -> Option<f64> {
    if !yaml_style_float(s) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// Roughly yaml.v3's `parseTimestamp`: `YYYY-M-D` optionally followed by a time.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let (Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let num = |p: &str, max: u32| {
        (1..=2).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v))
    };
    if !num(m, 12) || !num(d, 31) {
        return false;
    }
    match time {
        None => true,
        Some(t) => {
            let mut hms = t.splitn(3, ':');
            let (Some(h), Some(mi), Some(sec)) = (hms.next(), hms.next(), hms.next()) else {
                return false;
            };
            let two = |p: &str, max: u32| {
                (1..=2).contains(&p.len())
                    && p.bytes().all(|c| c.is_ascii_digit())
                    && p.parse::<u32>().is_ok_and(|v| v <= max)
            };
            let sec_digits: String = sec.chars().take_while(char::is_ascii_digit).collect();
            two(h, 23) && two(mi, 59) && two(&sec_digits, 59)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tree building from parser events

/// yaml.v3 allows up to 99% of decoded nodes to come from alias expansion below 400k nodes,
/// scaling down to 10% at 4M; beyond that: "document contains excessive aliasing".
fn allowed_alias_ratio(decoded: usize) -> f64 {
    const LOW: usize = 400_000;
    const HIGH: usize = 4_000_000;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

/// Hard cap on nodes held in one tree (aliases included), whatever the ratio says.
const MAX_NODES: usize = 4_000_000;

/// A map key as written: enough to detect duplicates and merge keys.
struct Key {
    /// What the key resolved to (string keys only survive).
    scalar: Scalar,
    /// yaml.v3 compares keys by node kind and raw text for duplicate detection.
    raw: String,
    is_merge: bool,
    pos: Pos,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
    },
}

struct Builder<'a> {
    label: &'a str,
    file: u32,
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    /// Anchors whose node is still being built (an alias to one is recursion).
    open_anchors: Vec<usize>,
    decoded: usize,
    aliased: usize,
}

impl<'a> Builder<'a> {
    fn new(label: &'a str, file: u32) -> Self {
        Builder {
            label,
            file,
            stack: Vec::new(),
            anchors: Default::default(),
            open_anchors: Vec::new(),
            decoded: 0,
            aliased: 0,
        }
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.label, pos, "", msg)
    }

    fn pos(span: &Span) -> Pos {
        Pos {
            line: span.start.line().max(1),
            col: span.start.col() + 1,
        }
    }

    fn run(mut self, text: &str) -> Result<Node, Diagnostic> {
        let options = granit_parser::options! {
            block_scalar_eof_without_line_feed: true,
            bom_inside_document_as_content: true,
            emit_comments: false,
        };
        let mut parser = Parser::new_from_str_with_options(text, options);
        let mut root: Option<Node> = None;
        let mut in_doc = false;
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| {
                let m = e.marker();
                self.err(
                    Pos {
                        line: m.line().max(1),
                        col: m.col() + 1,
                    },
                    e.info(),
                )
            })?;
            let pos = Self::pos(&span);
            match event {
                Event::StreamStart => {}
                Event::StreamEnd => break,
                Event::DocumentStart(..) => in_doc = true,
                Event::DocumentEnd if in_doc => break,
                Event::Alias(id) => {
                    if self.open_anchors.contains(&id) {
                        return Err(self.err(pos, "anchor value contains itself"));
                    }
                    let Some(target) = self.anchors.get(&id) else {
                        return Err(self.err(pos, "unknown anchor referenced"));
                    };
                    let size = target.size();
                    self.aliased += size;
                    self.decoded += size;
                    self.check_aliasing(pos)?;
                    let node = target.clone();
                    if let Some(done) = self.push(node, pos)? {
                        root = Some(done);
                    }
                }
                Event::Scalar(value, style, anchor, tag) => {
                    self.count(pos)?;
                    let key_ctx = self.expecting_key();
                    let scalar = self.scalar(&value, style, tag.as_deref(), pos)?;
                    if key_ctx {
                        let is_merge = style == ScalarStyle::Plain
                            && value == "<<"
                            && tag.as_deref().is_none_or(|t| {
                                tag_name(t).as_deref() == Some("merge")
                                    || (t.handle() == "!" && t.suffix().is_empty())
                            });
                        let key = Key {
                            scalar,
                            raw: value.to_string(),
                            is_merge,
                            pos,
                        };
                        if anchor != 0 {
                            let node = Node::new(key_value_for_anchor(&key.scalar), self.file, pos);
                            self.anchors.insert(anchor, node);
                        }
                        self.set_key(key);
                        continue;
                    }
                    let node = Node::new(scalar.into_value(), self.file, pos);
                    if anchor != 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    if let Some(done) = self.push(node, pos)? {
                        root = Some(done);
                    }
                }
                Event::SequenceStart(_, anchor, _) => {
                    self.count(pos)?;
                    if self.expecting_key() {
                        return Err(self.err(pos, "invalid map key: a sequence"));
                    }
                    if anchor != 0 {
                        self.open_anchors.push(anchor);
                    }
                    self.stack.push(Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                    });
                }
                Event::MappingStart(_, anchor, _) => {
                    self.count(pos)?;
                    if self.expecting_key() {
                        return Err(self.err(pos, "invalid map key: a mapping"));
                    }
                    if anchor != 0 {
                        self.open_anchors.push(anchor);
                    }
                    self.stack.push(Frame::Map {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    });
                }
                Event::SequenceEnd => {
                    let Some(Frame::Seq { pos, anchor, items }) = self.stack.pop() else {
                        return Err(self.err(pos, "internal: unbalanced sequence end"));
                    };
                    let node = Node::new(NodeValue::Seq(items), self.file, pos);
                    if let Some(done) = self.finish(node, anchor, pos)? {
                        root = Some(done);
                    }
                }
                Event::MappingEnd => {
                    let Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) = self.stack.pop()
                    else {
                        return Err(self.err(pos, "internal: unbalanced mapping end"));
                    };
                    let map = self.build_map(entries)?;
                    let node = Node::new(NodeValue::Map(map), self.file, pos);
                    if let Some(done) = self.finish(node, anchor, pos)? {
                        root = Some(done);
                    }
                }
                _ => {}
            }
        }
        Ok(root.unwrap_or(Node::new(NodeValue::Null, self.file, Pos::default())))
    }

    fn count(&mut self, pos: Pos) -> Result<(), Diagnostic> {
        self.decoded += 1;
        self.check_aliasing(pos)
    }

    fn check_aliasing(&self, pos: Pos) -> Result<(), Diagnostic> {
        let ratio_exceeded = self.aliased > 100
            && self.decoded > 1000
            && (self.aliased as f64 / self.decoded as f64) > allowed_alias_ratio(self.decoded);
        if ratio_exceeded || self.decoded > MAX_NODES {
            return Err(self.err(pos, "document contains excessive aliasing"));
        }
        Ok(())
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn set_key(&mut self, k: Key) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Some(k);
        }
    }

    fn finish(&mut self, node: Node, anchor: usize, pos: Pos) -> Result<Option<Node>, Diagnostic> {
        if anchor != 0 {
            self.open_anchors.retain(|&a| a != anchor);
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node, pos)
    }

    /// Attach a finished node to its parent; returns it when it is the document root.
    fn push(&mut self, node: Node, pos: Pos) -> Result<Option<Node>, Diagnostic> {
        match self.stack.last_mut() {
            None => Ok(Some(node)),
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(None)
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => {
                    entries.push((k, node));
                    Ok(None)
                }
                None => {
                    // An alias used as a key: keys must be scalars.
                    match node.value {
                        NodeValue::Seq(_) | NodeValue::Map(_) => {
                            Err(self.err(pos, "invalid map key: a collection"))
                        }
                        v => {
                            let scalar = match v {
                                NodeValue::Null => Scalar::Null,
                                NodeValue::Bool(b) => Scalar::Bool(b),
                                NodeValue::Int(i) => Scalar::Int(i),
                                NodeValue::Float(f) => Scalar::Float(f),
                                NodeValue::Str(s) => Scalar::Str(s),
                                _ => Scalar::Null,
                            };
                            let raw = format!("*{pos:?}");
                            self.set_key(Key {
                                scalar,
                                raw,
                                is_merge: false,
                                pos,
                            });
                            Ok(None)
                        }
                    }
                }
            },
        }
    }

    fn scalar(
        &self,
        value: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Scalar, Diagnostic> {
        let plain = style == ScalarStyle::Plain;
        let Some(tag) = tag else {
            return Ok(if plain {
                resolve_plain(value)
            } else {
                Scalar::Str(value.to_string())
            });
        };
        let Some(name) = tag_name(tag) else {
            // Custom or non-specific (`!`) tags: yaml.v3 keeps the text.
            return Ok(Scalar::Str(value.to_string()));
        };
        let resolved = resolve_plain(value);
        let ok = match name.as_str() {
            "str" | "merge" => return Ok(Scalar::Str(value.to_string())),
            "binary" => return Ok(Scalar::Str(decode_base64(value).unwrap_or_default())),
            "null" => matches!(resolved, Scalar::Null),
            "bool" => matches!(resolved, Scalar::Bool(_)),
            "int" => matches!(resolved, Scalar::Int(_)),
            "float" => match resolved {
                Scalar::Float(_) => true,
                Scalar::Int(i) => return Ok(Scalar::Float(i as f64)),
                _ => false,
            },
            "timestamp" => {
                return Ok(Scalar::Timestamp(value.to_string()));
            }
            // Collection tags on a scalar, or unknown core-namespace names: keep the text.
            _ => return Ok(Scalar::Str(value.to_string())),
        };
        if ok {
            Ok(resolved)
        } else {
            Err(self.err(
                pos,
                format!(
                    "cannot decode {} `{value}` as a !!{name}",
                    resolved.tag_name()
                ),
            ))
        }
    }

    /// Turn collected entries into a map: duplicate check, string keys, then merge keys.
    fn build_map(
        &self,
        entries: Vec<(Key, Node)>,
    ) -> Result<IndexMap<String, (Pos, Node)>, Diagnostic> {
        for (i, (a, _)) in entries.iter().enumerate() {
            if let Some((b, _)) = entries[..i].iter().find(|(b, _)| b.raw == a.raw) {
                return Err(self.err(
                    a.pos,
                    format!(
                        "mapping key {:?} already defined at line {}",
                        a.raw, b.pos.line
                    ),
                ));
            }
        }
        let mut map: IndexMap<String, (Pos, Node)> = IndexMap::new();
        let mut merges: Vec<(Pos, Node)> = Vec::new();
        for (key, value) in entries {
            if key.is_merge {
                merges.push((key.pos, value));
                continue;
            }
            let name = match key.scalar {
                Scalar::Str(s) => s,
                other => {
                    return Err(self.err(
                        key.pos,
                        format!(
                            "mapping key {:?} is not a string ({}); docker stack deploy rejects \
                             non-string keys, quote it",
                            key.raw,
                            other.tag_name()
                        ),
                    ));
                }
            };
            map.insert(name, (key.pos, value));
        }
        for (pos, merge) in merges {
            let sources: Vec<Node> = match merge.value {
                NodeValue::Map(_) => vec![merge],
                NodeValue::Seq(items) if items.iter().all(|n| n.as_map().is_some()) => items,
                _ => {
                    return Err(self.err(
                        pos,
                        "map merge requires map or sequence of maps as the value",
                    ));
                }
            };
            for source in sources {
                if let NodeValue::Map(m) = source.value {
                    for (k, v) in m {
                        map.entry(k).or_insert(v);
                    }
                }
            }
        }
        Ok(map)
    }
}

/// The YAML core-namespace name of a tag (`str`, `int`, `merge`, ...), if it is one.
fn tag_name(tag: &Tag) -> Option<String> {
    tag.suffix_in_namespace("tag:yaml.org,2002:")
        .map(|s| s.into_owned())
}

fn key_value_for_anchor(s: &Scalar) -> NodeValue {
    s.clone().into_value()
}

/// Standard base64 (yaml.v3 `!!binary`); `None` when invalid.
fn decode_base64(s: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        match parse_yaml(text, "t.yml") {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        }
    }

    fn val(text: &str) -> NodeValue {
        parse(&format!("v: {text}\n"))
            .get("v")
            .map(|n| n.value.clone())
            .unwrap_or(NodeValue::Str("missing".into()))
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_v3() {
        assert_eq!(val("0440"), NodeValue::Int(288));
        assert_eq!(val("0x1F"), NodeValue::Int(31));
        assert_eq!(val("-0x1F"), NodeValue::Int(-31));
        assert_eq!(val("0o17"), NodeValue::Int(15));
        assert_eq!(val("0b101"), NodeValue::Int(5));
        assert_eq!(val("1_000"), NodeValue::Int(1000));
        assert_eq!(val("+5"), NodeValue::Int(5));
        assert_eq!(val("08"), NodeValue::Float(8.0));
        assert_eq!(val("1e3"), NodeValue::Float(1000.0));
        assert_eq!(val("1.5"), NodeValue::Float(1.5));
        assert_eq!(val(".5"), NodeValue::Float(0.5));
        assert_eq!(val("1e400"), NodeValue::Str("1e400".into()));
        assert_eq!(val("yes"), NodeValue::Str("yes".into()));
        assert_eq!(val("no"), NodeValue::Str("no".into()));
        assert_eq!(val("on"), NodeValue::Str("on".into()));
        assert_eq!(val("off"), NodeValue::Str("off".into()));
        assert_eq!(val("y"), NodeValue::Str("y".into()));
        assert_eq!(val("True"), NodeValue::Bool(true));
        assert_eq!(val("FALSE"), NodeValue::Bool(false));
        assert_eq!(val("~"), NodeValue::Null);
        assert_eq!(val("null"), NodeValue::Null);
        assert_eq!(val(""), NodeValue::Null);
        assert_eq!(val("0x"), NodeValue::Str("0x".into()));
        assert_eq!(resolve_plain("-"), Scalar::Str("-".into()));
        assert_eq!(resolve_plain("+"), Scalar::Str("+".into()));
        assert_eq!(val("2024-01-02"), NodeValue::Str("2024-01-02".into()));
        assert_eq!(val("3.8"), NodeValue::Float(3.8));
        assert_eq!(val("9223372036854775807"), NodeValue::Int(i64::MAX));
        assert_eq!(val("-9223372036854775808"), NodeValue::Int(i64::MIN));
        assert_eq!(val("1:2"), NodeValue::Str("1:2".into()));
        assert_eq!(val(".inf"), NodeValue::Float(f64::INFINITY));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(val("\"0440\""), NodeValue::Str("0440".into()));
        assert_eq!(val("'true'"), NodeValue::Str("true".into()));
        assert_eq!(val("\"\""), NodeValue::Str("".into()));
        let n = parse("v: |\n  12\n");
        assert_eq!(
            n.get("v").map(|n| &n.value),
            Some(&NodeValue::Str("12\n".into()))
        );
        // libyaml: no line feed added at EOF without a line break
        let n = parse("v: |\n  12");
        assert_eq!(
            n.get("v").map(|n| &n.value),
            Some(&NodeValue::Str("12".into()))
        );
    }

    #[test]
    fn explicit_tags() {
        assert_eq!(val("!!str 0440"), NodeValue::Str("0440".into()));
        assert_eq!(val("!!float 1"), NodeValue::Float(1.0));
        assert_eq!(val("!custom 12"), NodeValue::Str("12".into()));
        assert!(parse_yaml("v: !!int abc\n", "t.yml").is_err());
    }

    #[test]
    fn positions_are_one_based() {
        let n = parse("a:\n  bb: 1\n");
        let (kpos, inner) = &n
            .as_map()
            .map(|m| m["a"].clone())
            .unwrap_or_else(|| panic!());
        assert_eq!(*kpos, Pos { line: 1, col: 1 });
        let (kpos2, v) = inner
            .as_map()
            .map(|m| m["bb"].clone())
            .unwrap_or_else(|| panic!());
        assert_eq!(kpos2, Pos { line: 2, col: 3 });
        assert_eq!(v.pos, Pos { line: 2, col: 7 });
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = parse(
            "x-env: &env\n  A: '1'\n  B: '2'\nx-d: &d\n  mode: replicated\n  replicas: 2\n\
             s:\n  environment:\n    <<: *env\n    B: three\n  deploy:\n    <<: [*d, {replicas: 5, labels: {}}]\n  \
             again: *env\n",
        );
        let s = n.get("s").unwrap_or_else(|| panic!());
        let env = s.get("environment").unwrap_or_else(|| panic!());
        assert_eq!(env.get("A").and_then(Node::as_str), Some("1"));
        assert_eq!(env.get("B").and_then(Node::as_str), Some("three"));
        let keys: Vec<_> = env
            .as_map()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(keys, vec!["B", "A"]);
        let deploy = s.get("deploy").unwrap_or_else(|| panic!());
        // earlier maps in the merge list win
        assert_eq!(
            deploy.get("replicas").map(|n| &n.value),
            Some(&NodeValue::Int(2))
        );
        assert!(deploy.get("labels").is_some());
        assert_eq!(
            s.get("again")
                .and_then(|n| n.get("A"))
                .and_then(Node::as_str),
            Some("1")
        );
    }

    #[test]
    fn merge_of_scalar_is_an_error() {
        let e = parse_yaml("a: &a 1\nb:\n  <<: *a\n", "t.yml");
        assert!(e.is_err_and(|e| e.message.contains("map merge requires")));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_yaml("a: 1\na: 2\n", "f.yml")
            .err()
            .unwrap_or_else(|| panic!());
        assert_eq!(e.pos.line, 2);
        assert!(e.to_string().starts_with("f.yml:2:1: "), "{e}");
        let e = parse_yaml("a: *nope\n", "f.yml")
            .err()
            .unwrap_or_else(|| panic!());
        assert_eq!(e.pos.line, 1);
        let e = parse_yaml("a: [1, 2\n", "f.yml");
        assert!(e.is_err());
        let e = parse_yaml("a: &x\n  b: *x\n", "f.yml");
        assert!(e.is_err());
        let e = parse_yaml("123: x\n", "f.yml")
            .err()
            .unwrap_or_else(|| panic!());
        assert!(e.message.contains("not a string"), "{e}");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            doc.push_str(&format!(
                "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = n;
        }
        let e = parse_yaml(&doc, "f.yml").err().unwrap_or_else(|| panic!());
        assert!(e.message.contains("excessive aliasing"), "{e}");
    }

    #[test]
    fn only_first_document_and_empty() {
        let n = parse("a: 1\n---\nb: 2\n");
        assert!(n.get("b").is_none());
        assert!(parse("").is_null());
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float_string(3.8), "3.8");
        assert_eq!(go_float_string(3.0), "3");
        assert_eq!(go_float_string(1e21), "1e+21");
        assert_eq!(go_float_string(0.00001), "1e-05");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = parse_yaml(&s, "f.yml");
        }

        #[test]
        fn never_panics_yamlish(s in "[-:&*<>\\[\\]{}|'\"#!,? \n0-9ab]{0,120}") {
            let _ = parse_yaml(&s, "f.yml");
        }
    }
}
