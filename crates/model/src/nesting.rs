//! How deep JSON nests: a limit on levels of objects and arrays, enforced
//! while parsing (nothing deeper than the limit is ever built) or checked
//! on a value already built.
//!
//! Depth counts containers: `1` is 0 levels deep, `{"a": 1}` 1, and
//! `{"a": [1]}` 2. serde_json counts the same way when it refuses to read
//! text nested past its recursion limit.

use crate::violation::{PathSeg, Violations};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// A value that nests deeper than allowed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// Where the first container beyond the limit starts: the keys (and
    /// positions) leading to it.
    pub path: Vec<PathSeg>,
    /// Levels of objects and arrays allowed.
    pub limit: usize,
}

impl TooDeep {
    /// What the caller sent wrong, in Kong's shape: the field where the
    /// nesting went past the limit, or the entity as a whole.
    pub fn into_violations(self) -> Violations {
        let mut v = Violations::new();
        v.push(
            self.path,
            format!(
                "nested too deeply: at most {} levels of objects and arrays",
                self.limit
            ),
        );
        v
    }
}

/// Why JSON text was not read.
#[derive(Debug)]
pub enum JsonRefusal {
    /// It is not JSON.
    Syntax(serde_json::Error),
    /// It nests deeper than the limit.
    TooDeep(TooDeep),
}

/// Parses JSON text into a value at most `limit` levels deep. The parse
/// stops at the first container past the limit, before building it, so
/// text nested a million levels deep costs no more than the limit's worth.
pub fn parse_json(text: &[u8], limit: usize) -> Result<Value, JsonRefusal> {
    let walk = Walk {
        limit,
        path: RefCell::new(Vec::new()),
        too_deep: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = Level {
        walk: &walk,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match (parsed, walk.too_deep.into_inner()) {
        (_, Some(path)) => Err(JsonRefusal::TooDeep(TooDeep { path, limit })),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(JsonRefusal::Syntax(e)),
    }
}

/// Checks that a value nests at most `limit` levels deep, naming the first
/// container past the limit. Walks no deeper than one level past it.
pub fn check_depth(value: &Value, limit: usize) -> Result<(), TooDeep> {
    fn walk(value: &Value, room: usize, path: &mut Vec<PathSeg>) -> bool {
        let fits = |seg: PathSeg, member: &Value, path: &mut Vec<PathSeg>| {
            path.push(seg);
            let fits = walk(member, room - 1, path);
            if fits {
                path.pop();
            }
            fits
        };
        match value {
            Value::Array(_) | Value::Object(_) if room == 0 => false,
            Value::Array(items) => items
                .iter()
                .enumerate()
                .all(|(i, item)| fits(PathSeg::Index(i), item, path)),
            Value::Object(members) => members
                .iter()
                .all(|(k, member)| fits(PathSeg::Key(k.clone()), member, path)),
            _ => true,
        }
    }
    let mut path = Vec::new();
    if walk(value, limit, &mut path) {
        Ok(())
    } else {
        Err(TooDeep { path, limit })
    }
}

/// The state of one parse: where it is, and where it went too deep.
struct Walk {
    limit: usize,
    path: RefCell<Vec<PathSeg>>,
    too_deep: RefCell<Option<Vec<PathSeg>>>,
}

/// One value of the parse, `depth` containers below the top.
#[derive(Clone, Copy)]
struct Level<'a> {
    walk: &'a Walk,
    depth: usize,
}

impl Level<'_> {
    /// The level of a container's members, or an error when the container
    /// itself is one level too many.
    fn enter<E: serde::de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.walk.limit {
            *self.walk.too_deep.borrow_mut() = Some(self.walk.path.borrow().clone());
            return Err(E::custom("nested too deeply"));
        }
        Ok(Level {
            walk: self.walk,
            depth: self.depth + 1,
        })
    }

    /// Parses a member at `seg`, keeping the path for the refusal.
    fn member<T>(self, seg: PathSeg, parse: impl FnOnce(Self) -> T) -> T {
        self.walk.path.borrow_mut().push(seg);
        let parsed = parse(self);
        self.walk.path.borrow_mut().pop();
        parsed
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) =
            inner.member(PathSeg::Index(items.len()), |l| seq.next_element_seed(l))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = inner.member(PathSeg::Key(key.clone()), |l| map.next_value_seed(l))?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> String {
        "[".repeat(levels) + &"]".repeat(levels)
    }

    #[test]
    fn values_within_the_limit_parse_as_serde_json_parses_them() {
        let text =
            br#"{"a": [1, -2, 3.5, "x\"]", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(
            parse_json(text, 4).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn the_first_container_past_the_limit_is_named() {
        let Err(JsonRefusal::TooDeep(t)) =
            parse_json(br#"{"ok": 1, "config": {"a": [0, {"b": 1}]}}"#, 3)
        else {
            panic!("expected a refusal");
        };
        assert_eq!(
            t.path,
            vec![
                PathSeg::Key("config".into()),
                PathSeg::Key("a".into()),
                PathSeg::Index(1)
            ]
        );
        assert_eq!(
            t.into_violations().fields(),
            json!({"config": {"a": {"2": "nested too deeply: at most 3 levels of objects and arrays"}}})
        );
    }

    #[test]
    fn depth_beyond_serde_jsons_own_limit_is_refused_as_too_deep() {
        let text = nested(1_000_000);
        let Err(JsonRefusal::TooDeep(t)) = parse_json(text.as_bytes(), 32) else {
            panic!("expected a refusal");
        };
        assert_eq!(t.path.len(), 32);
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        assert!(matches!(
            parse_json(b"{\"a\": }", 32),
            Err(JsonRefusal::Syntax(_))
        ));
        assert!(matches!(
            parse_json(b"{} {}", 32),
            Err(JsonRefusal::Syntax(_))
        ));
    }

    #[test]
    fn check_depth_agrees_with_the_parse() {
        let text = br#"{"ok": [1], "config": {"a": [0, {"b": 1}]}}"#;
        let value: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(check_depth(&value, 4), Ok(()));
        let Err(JsonRefusal::TooDeep(parsed)) = parse_json(text, 3) else {
            panic!("expected a refusal");
        };
        assert_eq!(check_depth(&value, 3), Err(parsed));
        assert!(check_depth(&json!({}), 0).is_err());
        assert_eq!(check_depth(&json!(1), 0), Ok(()));
    }
}
