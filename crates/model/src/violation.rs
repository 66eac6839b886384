//! Validation failures in Kong's error shape.
//!
//! Kong answers every invalid write with
//! `{"code":2,"name":"schema violation","message":"schema violation (config.url: required field missing)","fields":{"config":{"url":"required field missing"}}}`;
//! [`Violations`] collects the failures of one validation and renders both
//! the nested `fields` tree and the flattened `message`.

use serde_json::{Map, Value};
use std::fmt;

/// One step into a JSON document: an object key or a (zero-based) array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// An object member.
    Key(String),
    /// An array element, zero-based.
    Index(usize),
}

/// Where a violation is: a path of fields, or the entity as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path from the entity root; empty for an entity-level check (`@entity`).
    pub path: Vec<PathSeg>,
    /// Kong's wording, e.g. `required field missing`.
    pub message: String,
}

/// Every failure found while validating one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A single failure at a top-level field.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.push(vec![PathSeg::Key(name.to_string())], message);
        v
    }

    /// A single failure of the entity as a whole.
    pub fn entity(message: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.push(Vec::new(), message);
        v
    }

    /// Records a failure at `path`.
    pub fn push(&mut self, path: Vec<PathSeg>, message: impl Into<String>) {
        self.0.push(Violation {
            path,
            message: message.into(),
        });
    }

    /// Moves every failure of `other` under `prefix`.
    pub fn extend_under(&mut self, prefix: &[PathSeg], other: Violations) {
        for v in other.0 {
            let mut path = prefix.to_vec();
            path.extend(v.path);
            self.0.push(Violation {
                path,
                message: v.message,
            });
        }
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The failures, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing failed, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Violations> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Kong's `fields` member: the failures as a tree shaped like the input.
    /// Entity-level failures go under `@entity` as a list.
    pub fn fields(&self) -> Value {
        let mut root = Map::new();
        for v in &self.0 {
            if v.path.is_empty() {
                let list = root
                    .entry("@entity")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = list {
                    items.push(Value::String(v.message.clone()));
                }
                continue;
            }
            insert_at(&mut root, &v.path, &v.message);
        }
        Value::Object(root)
    }

    /// Kong's `message`: `schema violation (a: x)` or
    /// `2 schema violations (a: x; b: y)`.
    pub fn message(&self) -> String {
        let mut parts: Vec<String> = self.0.iter().map(flatten).collect();
        parts.sort();
        match parts.len() {
            1 => format!("schema violation ({})", parts[0]),
            n => format!("{n} schema violations ({})", parts.join("; ")),
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Violations {}

fn flatten(v: &Violation) -> String {
    if v.path.is_empty() {
        return v.message.clone();
    }
    let path: Vec<String> = v
        .path
        .iter()
        .map(|seg| match seg {
            PathSeg::Key(k) => k.clone(),
            PathSeg::Index(i) => (i + 1).to_string(),
        })
        .collect();
    format!("{}: {}", path.join("."), v.message)
}

/// Array elements are keyed by their one-based position, as Kong (Lua) numbers them.
fn seg_key(seg: &PathSeg) -> String {
    match seg {
        PathSeg::Key(k) => k.clone(),
        PathSeg::Index(i) => (i + 1).to_string(),
    }
}

fn insert_at(node: &mut Map<String, Value>, path: &[PathSeg], message: &str) {
    let key = seg_key(&path[0]);
    if path.len() == 1 {
        // The first failure of a field is the one reported, as Kong does.
        node.entry(key)
            .or_insert_with(|| Value::String(message.to_string()));
        return;
    }
    let child = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(child) = child {
        insert_at(child, &path[1..], message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> PathSeg {
        PathSeg::Key(k.to_string())
    }

    #[test]
    fn single_violation_matches_kongs_example() {
        let mut v = Violations::new();
        v.push(vec![key("config"), key("url")], "required field missing");
        assert_eq!(
            v.message(),
            "schema violation (config.url: required field missing)"
        );
        assert_eq!(
            v.fields(),
            json!({"config": {"url": "required field missing"}})
        );
    }

    #[test]
    fn several_violations_are_counted_and_sorted() {
        let mut v = Violations::new();
        v.push(vec![key("source")], "required field missing");
        v.push(vec![key("handler")], "required field missing");
        assert_eq!(
            v.message(),
            "2 schema violations (handler: required field missing; source: required field missing)"
        );
    }

    #[test]
    fn entity_level_and_array_paths() {
        let mut v = Violations::entity("at least one of these fields must be non-empty: 'a', 'b'");
        v.push(
            vec![key("paths"), PathSeg::Index(0)],
            "should start with: /",
        );
        assert_eq!(
            v.fields(),
            json!({"@entity": ["at least one of these fields must be non-empty: 'a', 'b'"],
                   "paths": {"1": "should start with: /"}})
        );
        assert!(v.message().contains("paths.1: should start with: /"));
    }
}
