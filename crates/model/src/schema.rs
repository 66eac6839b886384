//! A small schema language, after Kong's: typed fields with defaults and
//! checks, validated into a normalised JSON object or into [`Violations`]
//! that name every failing field in Kong's words.
//!
//! Every entity (hooks and the gateway entities alike) is described by a
//! [`Schema`]; one validator serves them all.

use crate::violation::{PathSeg, Violations};
use serde_json::{Map, Value};

/// The type of a field, as Kong's schema types.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A JSON string.
    String,
    /// A whole number.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A UUID in its hyphenated text form.
    Uuid,
    /// An ordered list; the element describes each item.
    Array(Box<Field>),
    /// A list without duplicates.
    Set(Box<Field>),
    /// An object with string keys and values of the element's type.
    Map(Box<Field>),
    /// An object with exactly these fields.
    Record(Vec<Field>),
    /// A reference to another entity, `{"id": "<uuid>"}`.
    Foreign(&'static str),
    /// Any JSON object, unchecked (a plugin's `config`).
    Object,
}

/// A check on a value that has the right type.
#[derive(Debug, Clone)]
pub enum Check {
    /// A string that is one of these.
    OneOf(&'static [&'static str]),
    /// An integer that is one of these.
    OneOfInt(&'static [i64]),
    /// A number within these inclusive bounds.
    Between(f64, f64),
    /// A string starting with this prefix.
    StartsWith(&'static str),
    /// A string, list or map with at least this many characters or items.
    LenMin(usize),
    /// Anything else; the `Err` text is the message.
    Custom(fn(&Value) -> Result<(), String>),
}

/// One field of a schema (or, with an empty name, the element of a list).
#[derive(Debug, Clone)]
pub struct Field {
    /// Name of the member in the JSON object.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether a value must be present (after defaults).
    pub required: bool,
    /// Value used when the input leaves the field out.
    pub default: Option<Value>,
    /// Whether no two entities may share a non-null value.
    pub unique: bool,
    /// Checks run after the type check.
    pub checks: Vec<Check>,
    /// The value examples give the field when a placeholder of its type
    /// would not pass its checks (a PEM certificate, an email address).
    pub example: Option<Value>,
}

impl Field {
    /// An optional field of this kind, without default or checks.
    pub fn new(name: &'static str, kind: Kind) -> Self {
        Field {
            name,
            kind,
            required: false,
            default: None,
            unique: false,
            checks: Vec::new(),
            example: None,
        }
    }

    /// The element description of a list or map.
    pub fn element(kind: Kind) -> Self {
        Self::new("", kind)
    }

    /// Marks the field as required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Gives the field a default.
    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    /// Marks the field as unique among entities of its kind.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Adds a check.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Gives the field the value examples show (see [`crate::example`]).
    pub fn example(mut self, value: Value) -> Self {
        self.example = Some(value);
        self
    }
}

/// A check involving several fields of one entity.
#[derive(Debug, Clone)]
pub enum EntityCheck {
    /// At least one of these fields must be non-null and non-empty.
    AtLeastOneOf(&'static [&'static str]),
    /// Anything else; failures are reported as given.
    Custom(fn(&Map<String, Value>) -> Result<(), Violations>),
}

/// The fields of an entity and its cross-field checks.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Fields, in output order.
    pub fields: Vec<Field>,
    /// Checks run when every field is valid.
    pub entity_checks: Vec<EntityCheck>,
}

/// How to read the input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input {
    /// The input came from a form: leaves are strings to be converted to
    /// the declared types, an empty string means null, and a single value
    /// stands for a one-item list.
    pub from_form: bool,
}

impl Schema {
    /// A schema of these fields without entity checks.
    pub fn new(fields: Vec<Field>) -> Self {
        Schema {
            fields,
            entity_checks: Vec::new(),
        }
    }

    /// Adds an entity check.
    pub fn entity_check(mut self, check: EntityCheck) -> Self {
        self.entity_checks.push(check);
        self
    }

    /// The field of that name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Validates a whole entity: unknown fields refused, defaults filled,
    /// required fields checked. Returns every field, null where unset.
    pub fn validate(&self, input: &Value, how: Input) -> Result<Map<String, Value>, Violations> {
        let Some(obj) = input.as_object() else {
            return Err(Violations::entity("expected a record"));
        };
        let mut violations = Violations::new();
        let out = validate_record(&self.fields, obj, how, &[], &mut violations);
        if !violations.is_empty() {
            return Err(violations);
        }
        for check in &self.entity_checks {
            match check {
                EntityCheck::AtLeastOneOf(names) => {
                    if !names.iter().any(|n| out.get(*n).is_some_and(is_set)) {
                        let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
                        violations.push(
                            Vec::new(),
                            format!(
                                "at least one of these fields must be non-empty: {}",
                                list.join(", ")
                            ),
                        );
                    }
                }
                EntityCheck::Custom(f) => {
                    if let Err(v) = f(&out) {
                        violations.extend_under(&[], v);
                    }
                }
            }
        }
        violations.into_result(out)
    }
}

/// Non-null, and not an empty string, list or object.
pub fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn validate_record(
    fields: &[Field],
    obj: &Map<String, Value>,
    how: Input,
    path: &[PathSeg],
    violations: &mut Violations,
) -> Map<String, Value> {
    for key in obj.keys() {
        if !fields.iter().any(|f| f.name == key) {
            violations.push(child(path, PathSeg::Key(key.clone())), "unknown field");
        }
    }
    let mut out = Map::new();
    for field in fields {
        let field_path = child(path, PathSeg::Key(field.name.to_string()));
        let given = obj.get(field.name).cloned().unwrap_or(Value::Null);
        let given = if how.from_form && given == Value::String(String::new()) {
            Value::Null
        } else {
            given
        };
        let value = if given.is_null() && !obj.contains_key(field.name) {
            absent_value(field, how)
        } else {
            given
        };
        let value = if value.is_null() {
            if field.required {
                violations.push(field_path, "required field missing");
            }
            Value::Null
        } else {
            validate_value(field, value, how, &field_path, violations)
        };
        out.insert(field.name.to_string(), value);
    }
    out
}

/// What a field left out of the input becomes: its default; for a record
/// that is not required, the record of its own defaults when it has any.
fn absent_value(field: &Field, how: Input) -> Value {
    if let Some(d) = &field.default {
        return d.clone();
    }
    if let Kind::Record(fields) = &field.kind
        && !field.required
        && has_defaults(fields)
    {
        let mut ignored = Violations::new();
        return Value::Object(validate_record(fields, &Map::new(), how, &[], &mut ignored));
    }
    Value::Null
}

fn has_defaults(fields: &[Field]) -> bool {
    fields.iter().any(|f| {
        f.default.is_some() || matches!(&f.kind, Kind::Record(inner) if has_defaults(inner))
    })
}

fn child(path: &[PathSeg], seg: PathSeg) -> Vec<PathSeg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

fn validate_value(
    field: &Field,
    value: Value,
    how: Input,
    path: &[PathSeg],
    violations: &mut Violations,
) -> Value {
    let value = if how.from_form {
        coerce_form(&field.kind, value)
    } else {
        value
    };
    let before = violations.iter().count();
    let out = match (&field.kind, value) {
        (Kind::String, v @ Value::String(_)) => v,
        (Kind::String, _) => type_error(violations, path, "expected a string"),
        (Kind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n),
        (Kind::Integer, Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            // 5.0 is an integer to Kong (Lua numbers are floats).
            Value::from(n.as_f64().unwrap_or_default() as i64)
        }
        (Kind::Integer, _) => type_error(violations, path, "expected an integer"),
        (Kind::Number, v @ Value::Number(_)) => v,
        (Kind::Number, _) => type_error(violations, path, "expected a number"),
        (Kind::Boolean, v @ Value::Bool(_)) => v,
        (Kind::Boolean, _) => type_error(violations, path, "expected a boolean"),
        (Kind::Uuid, Value::String(s)) => match uuid::Uuid::try_parse(&s) {
            Ok(id) => Value::String(id.hyphenated().to_string()),
            Err(_) => type_error(violations, path, "expected a valid UUID"),
        },
        (Kind::Uuid, _) => type_error(violations, path, "expected a valid UUID"),
        (Kind::Array(elem), Value::Array(items)) => {
            Value::Array(validate_items(elem, items, how, path, violations))
        }
        (Kind::Array(_), _) => type_error(violations, path, "expected an array"),
        (Kind::Set(elem), Value::Array(items)) => {
            let mut items = validate_items(elem, items, how, path, violations);
            let mut seen = Vec::with_capacity(items.len());
            items.retain(|v| {
                if seen.contains(v) {
                    false
                } else {
                    seen.push(v.clone());
                    true
                }
            });
            Value::Array(items)
        }
        (Kind::Set(_), _) => type_error(violations, path, "expected a set"),
        (Kind::Map(elem), Value::Object(entries)) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let p = child(path, PathSeg::Key(k.clone()));
                let v = if v.is_null() {
                    violations.push(p, "required field missing");
                    Value::Null
                } else {
                    validate_value(elem, v, how, &p, violations)
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        (Kind::Map(_), _) => type_error(violations, path, "expected a map"),
        (Kind::Record(fields), Value::Object(obj)) => {
            Value::Object(validate_record(fields, &obj, how, path, violations))
        }
        (Kind::Record(_), _) => type_error(violations, path, "expected a record"),
        (Kind::Foreign(_), Value::Object(obj)) => {
            let key = Field::new("id", Kind::Uuid).required();
            Value::Object(validate_record(&[key], &obj, how, path, violations))
        }
        (Kind::Foreign(_), _) => type_error(violations, path, "expected a record"),
        (Kind::Object, v @ Value::Object(_)) => v,
        (Kind::Object, _) => type_error(violations, path, "expected a record"),
    };
    if violations.iter().count() > before {
        return out;
    }
    for check in &field.checks {
        if let Err(message) = run_check(check, &out) {
            violations.push(path.to_vec(), message);
            break;
        }
    }
    out
}

fn validate_items(
    elem: &Field,
    items: Vec<Value>,
    how: Input,
    path: &[PathSeg],
    violations: &mut Violations,
) -> Vec<Value> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let p = child(path, PathSeg::Index(i));
            if v.is_null() {
                violations.push(p, "required field missing");
                Value::Null
            } else {
                validate_value(elem, v, how, &p, violations)
            }
        })
        .collect()
}

fn type_error(violations: &mut Violations, path: &[PathSeg], message: &str) -> Value {
    violations.push(path.to_vec(), message);
    Value::Null
}

/// Form fields arrive as strings: turn them into the declared type where
/// the text allows it, leaving anything else for the type check to refuse.
fn coerce_form(kind: &Kind, value: Value) -> Value {
    match (kind, value) {
        (Kind::Integer | Kind::Number, Value::String(s)) => {
            if let Ok(i) = s.trim().parse::<i64>() {
                Value::from(i)
            } else if let Some(n) = s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Value::Number(n)
            } else {
                Value::String(s)
            }
        }
        (Kind::Boolean, Value::String(s)) => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(s),
        },
        (Kind::Array(_) | Kind::Set(_), v @ Value::String(_)) => Value::Array(vec![v]),
        // Form lists given as `field[1]=a&field[2]=b` arrive as objects keyed by position.
        (Kind::Array(_) | Kind::Set(_), Value::Object(obj))
            if obj.keys().all(|k| k.parse::<usize>().is_ok()) =>
        {
            let mut entries: Vec<(usize, Value)> = obj
                .into_iter()
                .map(|(k, v)| (k.parse().unwrap_or_default(), v))
                .collect();
            entries.sort_by_key(|(i, _)| *i);
            Value::Array(entries.into_iter().map(|(_, v)| v).collect())
        }
        (_, v) => v,
    }
}

fn run_check(check: &Check, value: &Value) -> Result<(), String> {
    match check {
        Check::OneOf(options) => match value.as_str() {
            Some(s) if options.contains(&s) => Ok(()),
            _ => Err(format!("expected one of: {}", options.join(", "))),
        },
        Check::OneOfInt(options) => match value.as_i64() {
            Some(i) if options.contains(&i) => Ok(()),
            _ => {
                let list: Vec<String> = options.iter().map(|i| i.to_string()).collect();
                Err(format!("expected one of: {}", list.join(", ")))
            }
        },
        Check::Between(lo, hi) => match value.as_f64() {
            Some(n) if n >= *lo && n <= *hi => Ok(()),
            _ => Err(format!("value should be between {lo} and {hi}")),
        },
        Check::StartsWith(prefix) => match value.as_str() {
            Some(s) if s.starts_with(prefix) => Ok(()),
            _ => Err(format!("should start with: {prefix}")),
        },
        Check::LenMin(n) => {
            let len = match value {
                Value::String(s) => s.chars().count(),
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                _ => 0,
            };
            if len >= *n {
                Ok(())
            } else {
                Err(format!("length must be at least {n}"))
            }
        }
        Check::Custom(f) => f(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("name", Kind::String).required(),
            Field::new("port", Kind::Integer)
                .default(json!(80))
                .check(Check::Between(0.0, 65535.0)),
            Field::new("enabled", Kind::Boolean).default(json!(true)),
            Field::new("tags", Kind::Set(Box::new(Field::element(Kind::String)))),
            Field::new(
                "inner",
                Kind::Record(vec![
                    Field::new("mode", Kind::String)
                        .default(json!("a"))
                        .check(Check::OneOf(&["a", "b"])),
                ]),
            ),
        ])
    }

    #[test]
    fn fills_defaults_and_nulls() {
        let out = schema()
            .validate(&json!({"name": "x"}), Input::default())
            .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"name": "x", "port": 80, "enabled": true, "tags": null, "inner": {"mode": "a"}})
        );
    }

    #[test]
    fn names_every_failing_field() {
        let err = schema()
            .validate(
                &json!({"port": "x", "bogus": 1, "inner": {"mode": "c"}, "tags": [1]}),
                Input::default(),
            )
            .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"name": "required field missing", "port": "expected an integer",
                   "bogus": "unknown field", "inner": {"mode": "expected one of: a, b"},
                   "tags": {"1": "expected a string"}})
        );
    }

    #[test]
    fn checks_bounds() {
        let err = schema()
            .validate(&json!({"name": "x", "port": 70000}), Input::default())
            .unwrap_err();
        assert_eq!(
            err.fields(),
            json!({"port": "value should be between 0 and 65535"})
        );
    }

    #[test]
    fn form_strings_are_converted() {
        let out = schema()
            .validate(
                &json!({"name": "x", "port": "8080", "enabled": "false", "tags": "one"}),
                Input { from_form: true },
            )
            .unwrap();
        assert_eq!(out["port"], json!(8080));
        assert_eq!(out["enabled"], json!(false));
        assert_eq!(out["tags"], json!(["one"]));
    }

    #[test]
    fn sets_drop_duplicates() {
        let out = schema()
            .validate(
                &json!({"name": "x", "tags": ["a", "a", "b"]}),
                Input::default(),
            )
            .unwrap();
        assert_eq!(out["tags"], json!(["a", "b"]));
    }

    #[test]
    fn at_least_one_of() {
        let s = Schema::new(vec![
            Field::new("a", Kind::String),
            Field::new("b", Kind::String),
        ])
        .entity_check(EntityCheck::AtLeastOneOf(&["a", "b"]));
        let err = s.validate(&json!({}), Input::default()).unwrap_err();
        assert_eq!(
            err.message(),
            "schema violation (at least one of these fields must be non-empty: 'a', 'b')"
        );
        assert!(s.validate(&json!({"b": "x"}), Input::default()).is_ok());
    }

    #[test]
    fn not_an_object() {
        let err = schema()
            .validate(&json!([1]), Input::default())
            .unwrap_err();
        assert_eq!(err.fields(), json!({"@entity": ["expected a record"]}));
    }
}
