//! Request bodies as Kong reads them: JSON, or form fields with dotted
//! keys (`config.url=...`, `tags[]=a`, `tags=a&tags=b`), within a size
//! limit and a nesting limit. Nesting is checked while the body is read,
//! so a body is refused before anything deeper than the limit is built.

use crate::AdminState;
use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use hookd_model::nesting::{self, JsonRefusal, TooDeep};
use hookd_model::violation::PathSeg;
use serde_json::{Map, Value};

/// A decoded request body.
#[derive(Debug)]
pub struct KongBody {
    /// The body as a JSON value (an object for form input).
    pub value: Value,
    /// Whether it came from form fields, whose values are all strings.
    pub from_form: bool,
}

impl KongBody {
    /// How the schema reads the body's values.
    pub fn input(&self) -> hookd_model::schema::Input {
        hookd_model::schema::Input {
            from_form: self.from_form,
        }
    }
}

impl FromRequest<AdminState> for KongBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AdminState) -> Result<Self, ApiError> {
        let (limit, depth) = (state.body_limit, state.body_max_depth);
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime == "multipart/form-data" {
            return read_multipart(req, state).await;
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::TooLarge(limit))?;
        match mime.as_str() {
            "" if bytes.iter().all(u8::is_ascii_whitespace) => Ok(KongBody {
                value: Value::Object(Map::new()),
                from_form: false,
            }),
            "" | "application/json" => json_body(&bytes, depth),
            m if m.ends_with("+json") => json_body(&bytes, depth),
            "application/x-www-form-urlencoded" => Ok(KongBody {
                value: urlencoded(&bytes, depth)?,
                from_form: true,
            }),
            other => Err(ApiError::UnsupportedMediaType {
                got: other.to_string(),
                accepted: &[
                    "application/json",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                ],
            }),
        }
    }
}

/// A urlencoded form as one object.
fn urlencoded(bytes: &[u8], max_depth: usize) -> Result<Value, TooDeep> {
    let mut form = Form::new(max_depth);
    for (k, v) in form_urlencoded::parse(bytes) {
        form.add(&k, v.into_owned())?;
    }
    form.finish()
}

fn json_body(bytes: &[u8], depth: usize) -> Result<KongBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(KongBody {
            value: Value::Object(Map::new()),
            from_form: false,
        });
    }
    let value = nesting::parse_json(bytes, depth).map_err(|refusal| match refusal {
        JsonRefusal::Syntax(e) => ApiError::BadRequest(format!("Cannot parse JSON body: {e}")),
        JsonRefusal::TooDeep(too_deep) => too_deep.into(),
    })?;
    Ok(KongBody {
        value,
        from_form: false,
    })
}

async fn read_multipart(req: Request, state: &AdminState) -> Result<KongBody, ApiError> {
    let limit = state.body_limit;
    let req = limit_body(req, limit);
    let mut multipart = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::BadRequest(format!("Cannot parse multipart body: {e}")))?;
    let mut form = Form::new(state.body_max_depth);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let text = field.text().await.map_err(|e| multipart_error(e, limit))?;
        form.add(&name, text)?;
    }
    Ok(KongBody {
        value: form.finish()?,
        from_form: true,
    })
}

/// Caps the body a multipart reader may consume.
pub(crate) fn limit_body(req: Request, limit: usize) -> Request {
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    Request::from_parts(parts, body)
}

pub(crate) fn multipart_error(
    e: axum::extract::multipart::MultipartError,
    limit: usize,
) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(limit)
    } else {
        ApiError::BadRequest(format!("Cannot parse multipart body: {}", e.body_text()))
    }
}

/// Form fields (urlencoded or multipart) gathered into one object, within
/// a nesting limit.
struct Form {
    fields: Map<String, Value>,
    max_depth: usize,
}

impl Form {
    fn new(max_depth: usize) -> Self {
        Form {
            fields: Map::new(),
            max_depth,
        }
    }

    fn add(&mut self, name: &str, value: String) -> Result<(), TooDeep> {
        insert_field(&mut self.fields, name, Value::String(value), self.max_depth)
    }

    /// The object, unless lists made by `[]` or by repeating a field (which
    /// wraps what the field held) took it past the limit: levels that the
    /// names alone do not show.
    fn finish(self) -> Result<Value, TooDeep> {
        let value = Value::Object(self.fields);
        nesting::check_depth(&value, self.max_depth)?;
        Ok(value)
    }
}

/// Places one form field into the object its dotted name describes, or
/// refuses a name of more segments than `max_depth` levels of nesting
/// before building anything: `a.b=1` nests two (`{"a": {"b": "1"}}`).
fn insert_field(
    obj: &mut Map<String, Value>,
    name: &str,
    value: Value,
    max_depth: usize,
) -> Result<(), TooDeep> {
    let (path, append) = match name.strip_suffix("[]") {
        Some(stripped) => (stripped, true),
        None => (name, false),
    };
    // `tags[1]` is `tags.1`: a list position, sorted out by the schema.
    let path = path.replace('[', ".").replace(']', "");
    let mut segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    if segments.len() > max_depth {
        return Err(TooDeep {
            path: segments[..max_depth]
                .iter()
                .map(|s| PathSeg::Key(s.to_string()))
                .collect(),
            limit: max_depth,
        });
    }
    let Some(last) = segments.pop() else {
        return Ok(());
    };
    let mut node = obj;
    for seg in segments {
        let entry = node
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            // A field given both as a value and as a parent: the nested form wins.
            *entry = Value::Object(Map::new());
        }
        node = entry.as_object_mut().expect("just made an object");
    }
    match node.get_mut(last) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None if append => {
            node.insert(last.to_string(), Value::Array(vec![value]));
        }
        None => {
            node.insert(last.to_string(), value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const DEPTH: usize = 32;

    fn form_within(pairs: &[(&str, &str)], depth: usize) -> Result<Value, TooDeep> {
        let mut form = Form::new(depth);
        for (k, v) in pairs {
            form.add(k, v.to_string())?;
        }
        form.finish()
    }

    fn form(pairs: &[(&str, &str)]) -> Value {
        form_within(pairs, DEPTH).unwrap()
    }

    fn too_deep_at(refusal: Result<Value, TooDeep>) -> String {
        let violations = refusal.unwrap_err().into_violations();
        let message = violations.message();
        message
            .strip_prefix("schema violation (")
            .and_then(|m| m.split_once(':'))
            .map(|(path, _)| path.to_string())
            .unwrap_or(message)
    }

    #[test]
    fn a_name_of_ten_thousand_segments_is_refused_before_it_is_built() {
        let name = format!("tags{}", ".a".repeat(10_000));
        let refusal = form_within(&[(&name, "1")], DEPTH).unwrap_err();
        assert_eq!(refusal.path.len(), DEPTH);
        assert_eq!(
            refusal.into_violations().message(),
            format!(
                "schema violation (tags{}: nested too deeply: at most 32 levels of objects and arrays)",
                ".a".repeat(DEPTH - 1)
            )
        );
    }

    #[test]
    fn the_limit_counts_every_level_the_form_makes() {
        // `a.b.c=1` is three levels: the body, a, b.
        assert_eq!(
            form_within(&[("a.b.c", "1")], 3).unwrap(),
            json!({"a": {"b": {"c": "1"}}})
        );
        assert_eq!(too_deep_at(form_within(&[("a.b.c.d", "1")], 3)), "a.b.c");
        // A list is a level too, made by brackets or by repetition.
        assert_eq!(too_deep_at(form_within(&[("a.b.c[]", "1")], 3)), "a.b.c");
        assert_eq!(
            too_deep_at(form_within(&[("a.b.c", "1"), ("a.b.c", "2")], 3)),
            "a.b.c"
        );
        // Repeating a parent wraps what it holds in a list, one level more.
        assert_eq!(
            too_deep_at(form_within(&[("a.b.c", "1"), ("a", "2")], 3)),
            "a.1.b"
        );
    }

    #[test]
    fn json_bodies_are_refused_at_the_first_level_past_the_limit() {
        let body = format!(
            r#"{{"source": "x", "data": {}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let Err(ApiError::Schema(v)) = json_body(body.as_bytes(), DEPTH) else {
            panic!("expected a schema violation");
        };
        assert!(
            v.message().starts_with("schema violation (data.1.1."),
            "{}",
            v.message()
        );
        assert!(
            v.message()
                .ends_with(": nested too deeply: at most 32 levels of objects and arrays)")
        );
        assert!(matches!(
            json_body(b"{\"a\": }", DEPTH),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn dotted_keys_nest() {
        assert_eq!(
            form(&[
                ("source", "crud"),
                ("config.url", "http://x"),
                ("config.headers.X-A", "1")
            ]),
            json!({"source": "crud", "config": {"url": "http://x", "headers": {"X-A": "1"}}})
        );
    }

    #[test]
    fn lists_by_repetition_brackets_or_position() {
        assert_eq!(
            form(&[("tags", "a"), ("tags", "b")]),
            json!({"tags": ["a", "b"]})
        );
        assert_eq!(form(&[("tags[]", "a")]), json!({"tags": ["a"]}));
        assert_eq!(
            form(&[("paths[1]", "/a"), ("paths[2]", "/b")]),
            json!({"paths": {"1": "/a", "2": "/b"}})
        );
    }

    fn encoded(fields: &[(String, String)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
            .into_bytes()
    }

    /// A form field name: dotted segments, bracketed positions, `[]`.
    fn field_name() -> impl Strategy<Value = String> {
        let segment = prop_oneof!["[a-z]{1,3}", "[0-9]", Just(String::new())];
        (
            prop::collection::vec(segment, 0..40),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(segments, bracketed, append)| {
                let mut name = segments.join(if bracketed { "][" } else { "." });
                if append {
                    name.push_str("[]");
                }
                name
            })
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(48, 256, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), depth in 1usize..40) {
            let _ = urlencoded(&bytes, depth);
            let _ = json_body(&bytes, depth);
        }

        /// Whatever a form makes of its fields, nothing accepted nests past
        /// the limit.
        #[test]
        fn accepted_forms_stay_within_the_limit(
            fields in prop::collection::vec((field_name(), "[a-z]{0,2}"), 0..12),
            depth in 1usize..12,
        ) {
            if let Ok(value) = urlencoded(&encoded(&fields), depth) {
                prop_assert!(nesting::check_depth(&value, depth).is_ok());
            }
        }

        /// `a.b.c=v` is `{"a": {"b": {"c": "v"}}}`, and accepted exactly
        /// when it fits.
        #[test]
        fn dotted_names_nest_as_documented(
            segments in prop::collection::vec("[^.\\[\\]]{1,4}", 1..40),
            value in "\\PC{0,8}",
            depth in 1usize..40,
        ) {
            let name = segments.join(".");
            let expected = segments
                .iter()
                .rev()
                .fold(Value::String(value.clone()), |inner, key| json!({ key.as_str(): inner }));
            match urlencoded(&encoded(&[(name, value)]), depth) {
                Ok(parsed) => {
                    prop_assert!(segments.len() <= depth);
                    prop_assert_eq!(parsed, expected);
                }
                Err(too_deep) => {
                    prop_assert!(segments.len() > depth);
                    prop_assert_eq!(too_deep.path.len(), depth);
                }
            }
        }

        /// JSON is accepted exactly when it fits, and then read as serde_json
        /// reads it.
        #[test]
        fn json_is_accepted_exactly_within_the_limit(value in json_value(), depth in 1usize..40) {
            let text = serde_json::to_vec(&value).unwrap();
            let fits = nesting::check_depth(&value, depth).is_ok();
            match json_body(&text, depth) {
                Ok(body) => {
                    prop_assert!(fits);
                    prop_assert_eq!(body.value, value);
                }
                Err(ApiError::Schema(_)) => prop_assert!(!fits),
                Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
            }
        }
    }
}
