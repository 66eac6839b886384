//! Forms: a posted form read within bounds, and the hook form, whose
//! fields come from the hook's schema (the same one the Admin API checks
//! against) and whose errors are the API's own, each shown beside its
//! field.

use crate::page::Failure;
use axum::body::Body;
use axum::http::StatusCode;
use hookd_model::hook;
use hookd_model::schema::{Check, Field, Kind};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{Map, Number, Value};

/// Largest form the console reads (an event's test data is the largest
/// thing a form carries).
const FORM_LIMIT: usize = 1 << 20;

/// Most fields a form may have: the hook form has a few dozen.
const MAX_FIELDS: usize = 256;

/// A posted `application/x-www-form-urlencoded` form.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// Reads a form body, refusing one over [`FORM_LIMIT`] bytes or
    /// [`MAX_FIELDS`] fields.
    pub async fn read(body: Body) -> Result<Self, Failure> {
        let too_large = || {
            Failure::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("A form may be at most {FORM_LIMIT} bytes."),
            )
        };
        let bytes = http_body_util::Limited::new(body, FORM_LIMIT)
            .collect()
            .await
            .map_err(|_| too_large())?
            .to_bytes();
        Self::parse(&bytes)
    }

    fn parse(bytes: &[u8]) -> Result<Self, Failure> {
        let mut fields = Vec::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if fields.len() == MAX_FIELDS {
                return Err(Failure::status(
                    StatusCode::BAD_REQUEST,
                    format!("A form may have at most {MAX_FIELDS} fields."),
                ));
            }
            fields.push((name.into_owned(), value.into_owned()));
        }
        Ok(Fields(fields))
    }

    /// The first value of the field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value, or nothing when it is missing.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

/// How a field is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Input {
    /// A line of text.
    Text,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// One of a few words (`options`).
    Select,
    /// Unset, true or false.
    Boolean,
    /// A list of strings, one a line.
    Lines,
    /// Anything else, as JSON.
    Json,
}

/// One field of the hook form.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Widget {
    /// The form field's name: the API's field path, dotted
    /// (`config.url`).
    pub name: String,
    pub input: Input,
    /// The words of a select (after a blank one for the default).
    pub options: Vec<String>,
    /// What the field holds now, as the form shows it.
    pub value: String,
    pub required: bool,
    /// The default the API gives it when it is left blank.
    pub default: Option<String>,
    /// Why the API (or the console) refused what was entered.
    pub error: Option<String>,
}

/// The hook's members the form does not offer: the server sets them.
const NOT_ENTERED: &[&str] = &["id", "created_at", "handler", "config"];

/// The hook form for `handler`, filled from `hook` (an API answer; null
/// for a new hook).
pub(crate) fn hook_widgets(handler: &str, hook: &Value) -> Vec<Widget> {
    let schema = hook::schema(Some(handler));
    let mut widgets = Vec::new();
    for field in &schema.fields {
        if !NOT_ENTERED.contains(&field.name) {
            widgets.push(widget(field.name.to_string(), field, &hook[field.name]));
        }
    }
    for field in hook::config_fields(handler).unwrap_or_default() {
        let name = format!("config.{}", field.name);
        widgets.push(widget(name, &field, &hook["config"][field.name]));
    }
    widgets
}

fn widget(name: String, field: &Field, value: &Value) -> Widget {
    let options: Vec<String> = field
        .checks
        .iter()
        .find_map(|c| match c {
            Check::OneOf(words) => Some(words.iter().map(|w| w.to_string()).collect()),
            _ => None,
        })
        .unwrap_or_default();
    let input = match &field.kind {
        Kind::String | Kind::Uuid if !options.is_empty() => Input::Select,
        Kind::String | Kind::Uuid => Input::Text,
        Kind::Integer => Input::Integer,
        Kind::Number => Input::Number,
        Kind::Boolean => Input::Boolean,
        Kind::Array(element) | Kind::Set(element) if matches!(element.kind, Kind::String) => {
            Input::Lines
        }
        _ => Input::Json,
    };
    Widget {
        name,
        input,
        options,
        value: shown(input, value),
        required: field.required && field.default.is_none(),
        default: field.default.as_ref().map(|d| shown(input, d)),
        error: None,
    }
}

/// A value as its field shows it.
fn shown(input: Input, value: &Value) -> String {
    match (input, value) {
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (Input::Lines, Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("\n"),
        (Input::Json, value) => serde_json::to_string_pretty(value).unwrap_or_default(),
        (_, value) => value.to_string(),
    }
}

/// The widgets as the form was sent, each holding what was entered.
pub(crate) fn fill(widgets: &mut [Widget], fields: &Fields) {
    for w in widgets.iter_mut() {
        w.value = fields.text(&w.name).to_string();
    }
}

/// The hook the form describes, as the Admin API takes it: a blank field
/// is left out (so that its default applies), numbers and booleans are
/// sent as such. A number that does not parse is sent as written, for the
/// API to refuse in its own words; JSON that does not parse is refused
/// here, on its widget.
pub(crate) fn hook_body(handler: &str, widgets: &mut [Widget]) -> Option<Value> {
    let mut body = Map::new();
    body.insert("handler".into(), Value::from(handler));
    let mut config = Map::new();
    let mut valid = true;
    for w in widgets.iter_mut() {
        let text = w.value.trim();
        if text.is_empty() {
            continue;
        }
        let value = match w.input {
            Input::Text | Input::Select => Value::from(text),
            Input::Integer => text.parse::<i64>().map_or(Value::from(text), Value::from),
            Input::Number => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or(Value::from(text), Value::Number),
            Input::Boolean => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::from(other),
            },
            Input::Lines => Value::Array(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            Input::Json => match serde_json::from_str(text) {
                Ok(value) => value,
                Err(e) => {
                    w.error = Some(format!("not valid JSON: {e}"));
                    valid = false;
                    continue;
                }
            },
        };
        match w.name.strip_prefix("config.") {
            Some(name) => config.insert(name.to_string(), value),
            None => body.insert(w.name.clone(), value),
        };
    }
    body.insert("config".into(), Value::Object(config));
    valid.then_some(Value::Object(body))
}

/// Puts the API's field errors (Kong's `fields`, nested as the input is)
/// beside the widgets they are about: an error inside a list or an object
/// goes to the widget that holds it. Returns the errors no widget holds,
/// as `path: message` lines.
pub(crate) fn place_errors(widgets: &mut [Widget], fields: &Value) -> Vec<String> {
    let mut flat = Vec::new();
    flatten(fields, String::new(), &mut flat);
    let mut unplaced = Vec::new();
    for (path, message) in flat {
        let holder = widgets.iter_mut().find(|w| {
            path == w.name
                || path
                    .strip_prefix(&w.name)
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        match holder {
            Some(w) => {
                let text = if path == w.name {
                    message
                } else {
                    format!("{}: {message}", &path[w.name.len() + 1..])
                };
                w.error = Some(match w.error.take() {
                    Some(before) => format!("{before}; {text}"),
                    None => text,
                });
            }
            None if path.is_empty() => unplaced.push(message),
            None => unplaced.push(format!("{path}: {message}")),
        }
    }
    unplaced
}

fn flatten(value: &Value, path: String, out: &mut Vec<(String, String)>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(members) => {
            for (key, v) in members {
                flatten(v, join(key), out);
            }
        }
        Value::Array(items) => {
            for (index, v) in items.iter().enumerate() {
                if !v.is_null() {
                    flatten(v, join(&(index + 1).to_string()), out);
                }
            }
        }
        Value::String(message) => out.push((path, message.clone())),
        Value::Null => {}
        other => out.push((path, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_are_read_within_bounds() {
        let fields = Fields::parse(b"csrf=abc&data=%7B%7D&data=second").unwrap();
        assert_eq!(fields.get("csrf"), Some("abc"));
        assert_eq!(fields.get("data"), Some("{}"));
        assert_eq!(fields.text("missing"), "");
        let many = (0..=MAX_FIELDS)
            .map(|i| format!("f{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(Fields::parse(many.as_bytes()).is_err());
    }

    #[test]
    fn the_webhook_form_comes_from_the_schema() {
        let widgets = hook_widgets("webhook", &Value::Null);
        let names: Vec<&str> = widgets.iter().map(|w| w.name.as_str()).collect();
        assert!(names.contains(&"source"));
        assert!(names.contains(&"config.url"));
        assert!(!names.contains(&"id"));
        let url = widgets.iter().find(|w| w.name == "config.url").unwrap();
        assert!(url.required);
        let on_change = widgets.iter().find(|w| w.name == "on_change").unwrap();
        assert_eq!(on_change.input, Input::Boolean);
    }

    #[test]
    fn a_stored_hook_fills_its_form_and_reads_back_the_same() {
        let stored = json!({
            "source": "crud", "event": "consumers", "on_change": true, "snooze": 5,
            "config": {"url": "http://example.com/", "headers": {"x-a": "1"}}
        });
        let mut widgets = hook_widgets("webhook", &stored);
        let body = hook_body("webhook", &mut widgets).unwrap();
        assert_eq!(body["source"], "crud");
        assert_eq!(body["on_change"], true);
        assert_eq!(body["snooze"], 5);
        assert_eq!(body["config"]["url"], "http://example.com/");
        assert_eq!(body["config"]["headers"], json!({"x-a": "1"}));
        assert!(body.get("condition").is_none());
    }

    #[test]
    fn bad_json_stays_on_its_widget() {
        let mut widgets = hook_widgets("webhook", &Value::Null);
        let headers = widgets
            .iter_mut()
            .find(|w| w.name == "config.headers")
            .unwrap();
        headers.value = "{not json".into();
        assert!(hook_body("webhook", &mut widgets).is_none());
        let headers = widgets.iter().find(|w| w.name == "config.headers").unwrap();
        assert!(
            headers
                .error
                .as_deref()
                .unwrap()
                .starts_with("not valid JSON")
        );
    }

    #[test]
    fn api_errors_land_beside_their_fields() {
        let mut widgets = hook_widgets("lambda", &Value::Null);
        let unplaced = place_errors(
            &mut widgets,
            &json!({
                "config": {"functions": [null, "guest 'x' does not exist"], "url": "unknown field"},
                "source": "unknown source",
                "@entity": ["a whole-hook error"],
            }),
        );
        let error = |name: &str| {
            widgets
                .iter()
                .find(|w| w.name == name)
                .and_then(|w| w.error.clone())
        };
        assert_eq!(error("source").as_deref(), Some("unknown source"));
        assert_eq!(
            error("config.functions").as_deref(),
            Some("2: guest 'x' does not exist")
        );
        assert_eq!(
            unplaced,
            ["@entity.1: a whole-hook error", "config.url: unknown field"]
        );
    }
}
