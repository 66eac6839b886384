//! Kong's `webhook-custom` handler: a templated request, as documented on
//! [`Outbound::webhook_custom`].

use super::outbound::{Outbound, Request, append_header, header_value, parse_url};
use super::response::Response;
use super::{AttemptId, Call, Handled, HandlerError, HookHandler};
use crate::Engine;
use futures::future::{BoxFuture, FutureExt};
use hookd_model::hook::WebhookCustomConfig;
use hookd_model::violation::{PathSeg, Violations};
use hookd_template::{Answers, Escape, Failure, PoolError, Renderer, Template};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use uuid::Uuid;

/// The `webhook-custom` handler.
impl HookHandler for WebhookCustomConfig {
    /// Templates that compile and are within their budget without data.
    fn check<'a>(&'a self, engine: &'a Engine) -> BoxFuture<'a, Result<(), Violations>> {
        async move {
            check_templates(self)?;
            check_budget(self, &engine.settings.templates).await
        }
        .boxed()
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Handled> {
        let templates = &call.engine.settings.templates;
        let sent = call
            .engine
            .outbound
            .webhook_custom(self, call.attempt, templates);
        sent.map(Handled::Sent).boxed()
    }
}

impl Outbound {
    /// Kong's webhook-custom: the configured method, URL and headers, and a
    /// body or query string rendered from templates.
    ///
    /// - Templates: each header value when `headers_format`, each payload
    ///   value when `payload_format`, the body when `body_format`. The
    ///   context is the event data with `event` and `source` added. Kong's
    ///   `{{ expr }}` (escaped) and `{* expr *}` (raw) are both understood;
    ///   expressions are minijinja's (Jinja2). A missing value, or any
    ///   lookup into one, prints as nothing, as in Kong; so does JSON null;
    ///   booleans print `true`/`false`; objects and arrays print as JSON.
    /// - A non-empty `body` is sent as the body (with GET too, as Kong does).
    /// - GET: the payload is appended to the URL's query string. Other
    ///   methods, when there is no body: the payload is encoded by the
    ///   Content-Type header: `application/json` (or `application/…+json`)
    ///   as a JSON object, `application/x-www-form-urlencoded` as a form,
    ///   `multipart/form-data` as multipart, with a boundary added to the
    ///   header unless it names one; with no Content-Type, as multipart, and
    ///   the header is added. Kong sends an empty body for any other
    ///   Content-Type; hookd refuses it ([`HandlerError::UnsupportedContentType`],
    ///   and at save time through [`check_templates`] when the header is not
    ///   a template), since the receiver would never see the payload.
    /// - Escaping by `{{ }}`: in a body sent as JSON, as JSON string content,
    ///   so `{"name": "{{ entity.username }}"}` stays valid JSON whatever the
    ///   name holds; in any other body and in header values, as HTML, the
    ///   way Kong's lua-resty-template does; payload values not at all,
    ///   because the encoding that follows escapes them (Kong HTML-escaped
    ///   them too, which put `&quot;` into JSON and form payloads). `{* *}`
    ///   never escapes.
    /// - A rendered header value may not contain a line break.
    /// - With a secret, the exact body bytes sent are signed (the empty body
    ///   when there is none, as for a GET).
    /// - Templates are rendered by `templates`, in worker processes within
    ///   its limits: a template over its time or memory fails this attempt.
    pub async fn webhook_custom(
        &self,
        cfg: &WebhookCustomConfig,
        attempt: &AttemptId<'_>,
        templates: &Renderer,
    ) -> Result<Response, HandlerError> {
        let context = attempt.event.payload();
        let boxed = InWorkers {
            renderer: templates,
            context: &context,
        };
        let request = build(cfg, attempt.delivery_id, &boxed).await?;
        self.send(request, attempt).await
    }
}

/// Save-time checks of a webhook-custom config that its schema cannot
/// make: every template compiles, and a payload can be encoded for a
/// (non-templated) Content-Type. Errors name the field, e.g. `config.body`,
/// `config.payload.<key>`, `config.headers.<name>`.
fn check_templates(cfg: &WebhookCustomConfig) -> Result<(), Violations> {
    let mut violations = Violations::new();
    let mut check = |path: Vec<PathSeg>, source: &str| {
        if let Err(message) = hookd_template::compile(source) {
            violations.push(path, format!("invalid template: {message}"));
        }
    };
    if cfg.payload_format {
        for (key, source) in cfg.payload.iter().flatten() {
            check(field(&["payload", key]), source);
        }
    }
    if cfg.body_format
        && let Some(body) = &cfg.body
    {
        check(field(&["body"]), body);
    }
    if cfg.headers_format {
        for (name, source) in &cfg.headers {
            check(field(&["headers", name]), source);
        }
    }
    let sends_payload = cfg.payload.is_some()
        && !cfg.method.eq_ignore_ascii_case("GET")
        && cfg.body.as_deref().is_none_or(str::is_empty);
    if sends_payload
        && !cfg.headers_format
        && let Some((name, content_type)) = cfg
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        && Encoding::of(Some(content_type)).is_none()
    {
        violations.push(
            field(&["headers", name]),
            format!(
                "cannot encode the payload as {content_type:?}: use application/json, \
                 application/x-www-form-urlencoded or multipart/form-data, or set a body"
            ),
        );
    }
    violations.into_result(())
}

/// Save-time check of what a webhook-custom config's templates cost: they
/// are rendered once, with no event data, in the box. A template that goes
/// over its budget even so would fail every delivery, so it is refused,
/// naming the limit. Only limits refuse: a template that merely errs
/// without data may well render with it. When the box cannot answer (no
/// worker free), the save goes ahead: deliveries are bounded anyway.
async fn check_budget(cfg: &WebhookCustomConfig, renderer: &Renderer) -> Result<(), Violations> {
    let mut fields = Vec::new();
    if cfg.payload_format {
        fields.extend(
            cfg.payload
                .iter()
                .flatten()
                .map(|(key, source)| (field(&["payload", key]), source)),
        );
    }
    if cfg.body_format
        && let Some(body) = &cfg.body
    {
        fields.push((field(&["body"]), body));
    }
    if cfg.headers_format {
        fields.extend(
            cfg.headers
                .iter()
                .map(|(name, source)| (field(&["headers", name]), source)),
        );
    }
    if fields.is_empty() {
        return Ok(());
    }
    let batch = templates(fields.iter().map(|(_, source)| source), Escape::None);
    let mut violations = Violations::new();
    match renderer.render(&batch, &serde_json::json!({})).await {
        Ok(answers) => {
            for ((path, _), answer) in fields.into_iter().zip(answers) {
                if let Err(failure) = answer
                    && failure.over_budget
                {
                    violations.push(
                        path,
                        format!("over its budget without any event data: {failure}"),
                    );
                }
            }
        }
        Err(e @ (PoolError::Timeout { .. } | PoolError::Memory { .. })) => {
            violations.push(
                field(&[]),
                format!("a template is over its budget without any event data: {e}"),
            );
        }
        Err(e) => tracing::warn!(error = %e, "templates saved without a trial render"),
    }
    violations.into_result(())
}

fn field(path: &[&str]) -> Vec<PathSeg> {
    std::iter::once("config")
        .chain(path.iter().copied())
        .map(|key| PathSeg::Key(key.to_string()))
        .collect()
}

/// The request a webhook-custom hook sends. `render` renders a batch of
/// templates with the event's context: header values first, since the
/// body's escape follows the Content-Type they make, then the body and the
/// payload values together. `delivery_id` seeds the multipart boundary, so
/// a retry sends the same bytes.
async fn build<'a>(
    cfg: &'a WebhookCustomConfig,
    delivery_id: Uuid,
    renderer: &impl Render,
) -> Result<Request<'a>, HandlerError> {
    let render = async |batch: Vec<Template>| {
        if batch.is_empty() {
            return Ok(Vec::new().into_iter());
        }
        renderer
            .render(&batch)
            .await
            .map(Vec::into_iter)
            .map_err(HandlerError::Templates)
    };

    let method =
        Method::from_bytes(cfg.method.to_ascii_uppercase().as_bytes()).map_err(|source| {
            HandlerError::InvalidMethod {
                method: cfg.method.clone(),
                source,
            }
        })?;
    let mut url = parse_url(&cfg.url)?;

    let mut headers = HeaderMap::new();
    if cfg.headers_format {
        let mut answers = render(templates(cfg.headers.values(), Escape::Html)).await?;
        for name in cfg.headers.keys() {
            let field = format!("config.headers.{name}");
            let rendered = answer(&mut answers, field.clone())?;
            if rendered.contains(['\r', '\n']) {
                return Err(HandlerError::Render {
                    field,
                    message: "the rendered value contains a line break".into(),
                });
            }
            append_header(&mut headers, name, &rendered)?;
        }
    } else {
        for (name, value) in &cfg.headers {
            append_header(&mut headers, name, value)?;
        }
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());

    let body = cfg.body.as_deref().filter(|b| !b.is_empty());
    let mut batch = Vec::new();
    if let Some(source) = body.filter(|_| cfg.body_format) {
        let escape = match content_type.as_deref().map(media_type) {
            Some(media) if is_json(&media) => Escape::JsonString,
            _ => Escape::Html,
        };
        batch.extend(templates([source], escape));
    }
    let rendered_payload = cfg.payload.as_ref().filter(|_| cfg.payload_format);
    if let Some(payload) = rendered_payload {
        batch.extend(templates(payload.values(), Escape::None));
    }
    let mut answers = render(batch).await?;

    let mut bytes = match body {
        Some(_) if cfg.body_format => answer(&mut answers, "config.body".into())?.into_bytes(),
        Some(source) => source.as_bytes().to_vec(),
        None => Vec::new(),
    };

    if let Some(payload) = &cfg.payload {
        let payload = if rendered_payload.is_some() {
            payload
                .keys()
                .map(|key| {
                    let value = answer(&mut answers, format!("config.payload.{key}"))?;
                    Ok((key.clone(), value))
                })
                .collect::<Result<BTreeMap<_, _>, HandlerError>>()?
        } else {
            payload.clone()
        };
        if method == Method::GET {
            if !payload.is_empty() {
                url.query_pairs_mut().extend_pairs(&payload);
            }
        } else if body.is_none() {
            bytes = encode(&payload, content_type.as_deref(), &mut headers, delivery_id)?;
        }
    }

    Ok(Request {
        method,
        url,
        headers,
        body: bytes,
        secrets: cfg.secrets(),
        ssl_verify: cfg.ssl_verify,
    })
}

/// Renders a batch of templates with one event's context.
trait Render {
    fn render(&self, batch: &[Template])
    -> impl Future<Output = Result<Answers, PoolError>> + Send;
}

/// The server's way: in the template workers.
struct InWorkers<'a> {
    renderer: &'a Renderer,
    context: &'a serde_json::Value,
}

impl Render for InWorkers<'_> {
    fn render(
        &self,
        batch: &[Template],
    ) -> impl Future<Output = Result<Answers, PoolError>> + Send {
        self.renderer.render(batch, self.context)
    }
}

/// Templates of one escape, in the order of `sources`.
fn templates<S: AsRef<str>>(sources: impl IntoIterator<Item = S>, escape: Escape) -> Vec<Template> {
    sources
        .into_iter()
        .map(|source| Template {
            source: source.as_ref().to_string(),
            escape,
        })
        .collect()
}

/// The next answer of a batch, as the text of the template at `field`.
fn answer(
    answers: &mut impl Iterator<Item = Result<String, Failure>>,
    field: String,
) -> Result<String, HandlerError> {
    match answers.next() {
        Some(Ok(text)) => Ok(text),
        Some(Err(failure)) => Err(HandlerError::Render {
            field,
            message: failure.message,
        }),
        None => Err(HandlerError::Render {
            field,
            message: "the template worker gave no answer".into(),
        }),
    }
}

/// How a payload is encoded for a Content-Type.
#[derive(Debug, PartialEq, Eq)]
enum Encoding<'a> {
    Json,
    Form,
    /// With the boundary the Content-Type names, if it names one.
    Multipart(Option<&'a str>),
}

impl<'a> Encoding<'a> {
    /// `None` when the payload cannot be sent as `content_type`; no
    /// Content-Type at all means multipart, as in Kong.
    fn of(content_type: Option<&'a str>) -> Option<Encoding<'a>> {
        let Some(content_type) = content_type else {
            return Some(Encoding::Multipart(None));
        };
        let media = media_type(content_type);
        if is_json(&media) {
            Some(Encoding::Json)
        } else if media == "application/x-www-form-urlencoded" {
            Some(Encoding::Form)
        } else if media == "multipart/form-data" {
            Some(Encoding::Multipart(boundary_param(content_type)))
        } else {
            None
        }
    }
}

/// Encodes the payload, setting or completing Content-Type for multipart.
fn encode(
    payload: &BTreeMap<String, String>,
    content_type: Option<&str>,
    headers: &mut HeaderMap,
    delivery_id: Uuid,
) -> Result<Vec<u8>, HandlerError> {
    let encoding =
        Encoding::of(content_type).ok_or_else(|| HandlerError::UnsupportedContentType {
            content_type: content_type.unwrap_or_default().to_string(),
        })?;
    Ok(match encoding {
        Encoding::Json => serde_json::to_vec(payload).unwrap_or_default(),
        Encoding::Form => url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(payload)
            .finish()
            .into_bytes(),
        Encoding::Multipart(Some(boundary)) => multipart(payload, boundary),
        Encoding::Multipart(None) => {
            let boundary = boundary_for(payload, delivery_id);
            let value = match content_type {
                Some(configured) => format!("{configured}; boundary={boundary}"),
                None => format!("multipart/form-data; boundary={boundary}"),
            };
            headers.insert(CONTENT_TYPE, header_value("Content-Type", &value)?);
            multipart(payload, &boundary)
        }
    })
}

/// The media type of a Content-Type, lower case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn boundary_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"');
        (key.trim().eq_ignore_ascii_case("boundary") && !value.is_empty()).then_some(value)
    })
}

/// A boundary found in no name or value of the payload.
fn boundary_for(payload: &BTreeMap<String, String>, delivery_id: Uuid) -> String {
    let base = format!("hookd-{}", delivery_id.simple());
    let clashes = |b: &str| payload.iter().any(|(k, v)| k.contains(b) || v.contains(b));
    let mut boundary = base.clone();
    let mut n = 0u64;
    while clashes(&boundary) {
        n += 1;
        boundary = format!("{base}-{n}");
    }
    boundary
}

/// `multipart/form-data` (RFC 7578); an empty payload is an empty body, as
/// in Kong.
fn multipart(payload: &BTreeMap<String, String>, boundary: &str) -> Vec<u8> {
    if payload.is_empty() {
        return Vec::new();
    }
    let mut body = String::new();
    for (name, value) in payload {
        // Names are quoted; quotes and line breaks in them are
        // percent-encoded as browsers do.
        let name = name
            .replace('"', "%22")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let _ = write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        );
    }
    let _ = write!(body, "--{boundary}--\r\n");
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_model::Event;
    use hookd_template::{Context, Engine, EngineLimits};
    use serde_json::json;
    use std::sync::Mutex;

    fn config(method: &str) -> WebhookCustomConfig {
        WebhookCustomConfig::new("http://example.com/in?keep=1", method)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn event() -> Event {
        Event::new(
            "crud",
            "consumers",
            json!({"operation": "create", "entity": {"username": "a \"b\" & c"}}),
            0,
        )
    }

    const ID: Uuid = Uuid::from_u128(0xabc);

    /// `build` with the templates rendered in this process: these tests
    /// are about the request, the worker has its own.
    fn build<'a>(
        cfg: &'a WebhookCustomConfig,
        event: &Event,
        delivery_id: Uuid,
    ) -> Result<Request<'a>, HandlerError> {
        let in_process = InProcess {
            engine: Mutex::new(Engine::new(EngineLimits {
                fuel: 100_000,
                output: 1 << 20,
            })),
            context: Context::from_serialize(event.payload()),
        };
        futures::executor::block_on(super::build(cfg, delivery_id, &in_process))
    }

    struct InProcess {
        engine: Mutex<Engine>,
        context: Context,
    }

    impl Render for InProcess {
        fn render(
            &self,
            batch: &[Template],
        ) -> impl Future<Output = Result<Answers, PoolError>> + Send {
            let mut engine = self.engine.lock().unwrap();
            let answers = batch
                .iter()
                .map(|t| engine.render(&t.source, t.escape, &self.context))
                .collect();
            std::future::ready(Ok(answers))
        }
    }

    #[test]
    fn payload_values_are_rendered_unescaped() {
        let mut cfg = config("POST");
        cfg.headers = map(&[("Content-Type", "application/json")]);
        cfg.payload = Some(map(&[
            ("who", "{{ entity.username }}"),
            ("op", "{{ operation }}"),
        ]));
        let req = build(&cfg, &event(), ID).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body, json!({"who": "a \"b\" & c", "op": "create"}));
    }

    #[test]
    fn unformatted_payload_is_sent_literally() {
        let mut cfg = config("POST");
        cfg.headers = map(&[("Content-Type", "application/x-www-form-urlencoded")]);
        cfg.payload = Some(map(&[("t", "{{ operation }}")]));
        cfg.payload_format = false;
        let req = build(&cfg, &event(), ID).unwrap();
        assert_eq!(req.body, b"t=%7B%7B+operation+%7D%7D");
    }

    #[test]
    fn non_empty_body_wins_over_payload() {
        let mut cfg = config("PUT");
        cfg.payload = Some(map(&[("a", "1")]));
        cfg.body = Some("op={{ operation }}".into());
        let req = build(&cfg, &event(), ID).unwrap();
        assert_eq!(req.body, b"op=create");
        assert!(req.headers.get(CONTENT_TYPE).is_none());
        cfg.body = Some(String::new());
        let req = build(&cfg, &event(), ID).unwrap();
        assert!(
            req.headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("multipart/form-data; boundary=")
        );
    }

    #[test]
    fn get_appends_the_payload_to_the_query() {
        let mut cfg = config("get");
        cfg.payload = Some(map(&[("who", "{{ entity.username }}")]));
        let req = build(&cfg, &event(), ID).unwrap();
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.url.as_str(),
            "http://example.com/in?keep=1&who=a+%22b%22+%26+c"
        );
        assert!(req.body.is_empty());
    }

    #[test]
    fn delete_encodes_the_payload_too() {
        let mut cfg = config("DELETE");
        cfg.headers = map(&[("content-type", "application/json; charset=utf-8")]);
        cfg.payload = Some(map(&[("a", "1")]));
        assert_eq!(build(&cfg, &event(), ID).unwrap().body, br#"{"a":"1"}"#);
    }

    #[test]
    fn multipart_keeps_a_configured_boundary_and_completes_a_missing_one() {
        let mut cfg = config("POST");
        cfg.payload = Some(map(&[("a", "1")]));
        cfg.headers = map(&[("Content-Type", "multipart/form-data; boundary=XyZ")]);
        let req = build(&cfg, &event(), ID).unwrap();
        assert_eq!(
            req.headers[CONTENT_TYPE],
            "multipart/form-data; boundary=XyZ"
        );
        assert_eq!(
            req.body,
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n"
        );
        cfg.headers = map(&[("Content-Type", "multipart/form-data")]);
        let req = build(&cfg, &event(), ID).unwrap();
        let boundary = format!("hookd-{}", ID.simple());
        assert_eq!(
            req.headers[CONTENT_TYPE].to_str().unwrap(),
            format!("multipart/form-data; boundary={boundary}")
        );
    }

    #[test]
    fn multipart_boundary_avoids_the_content_and_names_are_quoted() {
        let base = format!("hookd-{}", ID.simple());
        let payload = map(&[("we\"ird\r\nname", &base)]);
        let boundary = boundary_for(&payload, ID);
        assert_eq!(boundary, format!("{base}-1"));
        let body = String::from_utf8(multipart(&payload, &boundary)).unwrap();
        assert!(body.contains("name=\"we%22ird%0D%0Aname\""), "{body}");
        assert!(multipart(&BTreeMap::new(), "b").is_empty());
    }

    #[test]
    fn unsupported_content_type_is_refused() {
        let mut cfg = config("POST");
        cfg.headers = map(&[("Content-Type", "text/plain")]);
        cfg.payload = Some(map(&[("a", "1")]));
        let err = build(&cfg, &event(), ID).unwrap_err();
        assert!(
            matches!(&err, HandlerError::UnsupportedContentType { content_type } if content_type == "text/plain"),
            "{err}"
        );
        let err = check_templates(&cfg).unwrap_err();
        assert!(
            err.fields()["config"]["headers"]["Content-Type"]
                .as_str()
                .unwrap()
                .starts_with("cannot encode the payload as \"text/plain\"")
        );
        // A body makes the payload irrelevant.
        cfg.body = Some("hello".into());
        assert!(build(&cfg, &event(), ID).is_ok());
        assert!(check_templates(&cfg).is_ok());
    }

    #[test]
    fn header_templates_are_html_escaped_and_line_breaks_refused() {
        let mut cfg = config("POST");
        cfg.headers_format = true;
        cfg.headers = map(&[("X-Who", "{{ entity.username }}")]);
        let req = build(&cfg, &event(), ID).unwrap();
        assert_eq!(req.headers["x-who"], "a &quot;b&quot; &amp; c");
        cfg.headers = map(&[("X-Bad", "a{{ \"\\n\" }}b")]);
        let err = build(&cfg, &event(), ID).unwrap_err();
        assert!(
            matches!(&err, HandlerError::Render { field, .. } if field == "config.headers.X-Bad"),
            "{err}"
        );
    }

    #[test]
    fn render_errors_name_the_field() {
        let mut cfg = config("POST");
        cfg.body = Some("{{ \"a\" + 1 }}".into());
        let err = build(&cfg, &event(), ID).unwrap_err();
        assert!(
            matches!(&err, HandlerError::Render { field, .. } if field == "config.body"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("cannot render config.body: invalid operation"),
            "{err}"
        );
    }

    #[test]
    fn check_templates_names_every_broken_field() {
        let mut cfg = config("POST");
        cfg.body = Some("{{ oops".into());
        cfg.payload = Some(map(&[("fine", "{{ ok }}"), ("bad", "{% if %}")]));
        cfg.headers = map(&[("X-T", "{* a *} {{ b")]);
        cfg.headers_format = true;
        let err = check_templates(&cfg).unwrap_err();
        let fields = err.fields();
        assert!(
            fields["config"]["body"]
                .as_str()
                .unwrap()
                .starts_with("invalid template: syntax error")
        );
        assert!(fields["config"]["payload"]["bad"].is_string());
        assert!(fields["config"]["payload"].get("fine").is_none());
        assert!(fields["config"]["headers"]["X-T"].is_string());
        assert_eq!(err.iter().count(), 3);
    }

    #[test]
    fn check_templates_ignores_what_is_not_a_template() {
        let mut cfg = config("POST");
        cfg.body = Some("{{ oops".into());
        cfg.body_format = false;
        cfg.headers = map(&[("X-T", "{{ b")]);
        assert!(check_templates(&cfg).is_ok());
    }
}
