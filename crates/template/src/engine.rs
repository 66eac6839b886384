//! Kong's webhook-custom templates, on minijinja: the engine a worker
//! runs (see [`crate::worker`]); nothing here is bounded in time or memory
//! by itself, the worker process is.
//!
//! Kong's templates are lua-resty-template: `{{ expr }}` prints escaped,
//! `{* expr *}` prints raw. minijinja has the first; the second is
//! translated into `{{ (expr)|raw }}` before compiling (see
//! [`kong_syntax`]). Expressions are Jinja, not Lua: `entity.username` and
//! `entity["username"]` read the same in both, concatenation is `~`.
//!
//! Rules that differ from plain minijinja, each for a reason:
//! - Undefined values print as nothing, and so does any lookup into one
//!   (`{{ old_entity.username }}` on a create event): Kong prints a missing
//!   value as nothing too, and failing the attempt would only retry it until
//!   it is dead, since the event data will never change.
//! - `none` (JSON null) prints as nothing, as Lua's nil does in Kong.
//! - Objects and arrays print as JSON, where Kong printed a useless
//!   `table: 0x…`, so `{* entity *}` puts the entity into a JSON body.
//! - `{{ }}` escapes for where the text goes ([`Escape`]).
//! - A render is bounded by its fuel (instructions) and its output size;
//!   the filters that can make a long string from a short one (`indent`,
//!   `replace`) refuse to make one longer than the output could hold, so
//!   the common bombs fail at once with a clear error. Operators (`~`, `*`,
//!   `+`), `{% set %}` blocks and macros have no such hook: the worker's
//!   memory limit and the pool's deadline bound those.

use minijinja::value::{Kwargs, StringInput, ValueKind};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// How `{{ }}` escapes what it prints. `{* *}` never escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escape {
    /// HTML entities, as lua-resty-template writes them: `& < > " ' /`.
    Html,
    /// The content of a JSON string: a value printed between quotes in a
    /// JSON body keeps the body valid whatever the value holds.
    JsonString,
    /// Nothing: the text is encoded afterwards (payload values).
    None,
}

/// What one render may use inside the engine; time and memory are the
/// worker's and the pool's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineLimits {
    /// Instructions one render may execute.
    pub fuel: u64,
    /// The longest text one template may render to, in bytes; no filter
    /// makes a longer string either.
    pub output: usize,
}

const JSON_STRING: &str = "json-string";

/// Why a template rendered nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong and on which line.
    pub message: String,
    /// Whether it went over a limit (fuel, output size, a filter's cap),
    /// rather than meeting a mistake or data it cannot handle.
    pub over_budget: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The end of every message of the filters' caps ([`too_long`]).
const OVER_OUTPUT_LIMIT: &str = "longer than the output limit";

/// One environment per escape, configured alike, each holding the
/// templates it compiled (see [`Kept`]).
pub struct Engine {
    html: Environment<'static>,
    json_string: Environment<'static>,
    none: Environment<'static>,
    output_limit: usize,
    kept: Kept<Key>,
}

impl Engine {
    pub fn new(limits: EngineLimits) -> Engine {
        Engine {
            html: environment(AutoEscape::Html, limits),
            json_string: environment(AutoEscape::Custom(JSON_STRING), limits),
            none: environment(AutoEscape::None, limits),
            output_limit: limits.output,
            kept: Kept::default(),
        }
    }

    fn environment(&self, escape: Escape) -> &Environment<'static> {
        match escape {
            Escape::Html => &self.html,
            Escape::JsonString => &self.json_string,
            Escape::None => &self.none,
        }
    }

    fn environment_mut(&mut self, escape: Escape) -> &mut Environment<'static> {
        match escape {
            Escape::Html => &mut self.html,
            Escape::JsonString => &mut self.json_string,
            Escape::None => &mut self.none,
        }
    }

    /// How many templates this engine has compiled: rendering one it keeps
    /// compiles nothing.
    pub fn compilations(&self) -> u64 {
        self.kept.compilations
    }

    /// The name under which `source` is compiled for `escape`, compiling
    /// it unless it is kept, and letting the least recently used go when
    /// more are kept than [`Kept`] allows.
    fn compiled(&mut self, source: &str, escape: Escape) -> Result<String, Error> {
        let key = (escape, digest(source));
        if self.kept.touch(&key) {
            return Ok(key.1);
        }
        self.kept.compilations += 1;
        self.environment_mut(escape)
            .add_template_owned(key.1.clone(), kong_syntax(source).into_owned())?;
        for (escape, name) in self.kept.insert(key.clone(), source.len()) {
            self.environment_mut(escape).remove_template(&name);
        }
        Ok(key.1)
    }

    /// Renders `source`; the error says what went wrong and on which line.
    pub fn render(&mut self, source: &str, escape: Escape, ctx: &Value) -> Result<String, Failure> {
        let failure = |message: String, over_budget: bool| Failure {
            message,
            over_budget,
        };
        let template = self
            .compiled(source, escape)
            .and_then(|name| self.environment(escape).get_template(&name))
            .map_err(|e| failure(describe(&e), false))?;
        let mut out = Bounded {
            text: Vec::new(),
            limit: self.output_limit,
            overflowed: false,
        };
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.text).map_err(|e| failure(e.to_string(), false)),
            Err(_) if out.overflowed => Err(failure(
                format!(
                    "the rendered text is longer than {} bytes",
                    self.output_limit
                ),
                true,
            )),
            Err(e) => Err(failure_of(&e)),
        }
    }
}

/// What an error met while rendering or evaluating comes to: over budget
/// when it ran out of fuel or a filter refused to make a string longer
/// than the output limit.
pub(crate) fn failure_of(error: &Error) -> Failure {
    Failure {
        message: describe(error),
        over_budget: error.kind() == ErrorKind::OutOfFuel
            || error
                .detail()
                .is_some_and(|d| d.contains(OVER_OUTPUT_LIMIT)),
    }
}

/// The most templates an engine keeps compiled, and the most bytes of
/// source they may have together: a worker renders the templates of every
/// webhook-custom hook, and its memory (`template_memory`) is for
/// rendering. A template longer than the budget is kept alone.
const KEPT_TEMPLATES: usize = 256;
const KEPT_BYTES: usize = 1024 * 1024;

/// A kept template: the escape of its environment and its name there (the
/// digest of its source, so a template cannot guess another's name to
/// include it).
type Key = (Escape, String);

/// Which compiled templates (or conditions, see [`crate::condition`]) an
/// engine keeps, so that a hook's templates are compiled once per worker
/// rather than at every attempt, and which to let go first.
pub(crate) struct Kept<K> {
    /// Each kept template's source length and when it was last used.
    templates: HashMap<K, (usize, u64)>,
    bytes: usize,
    clock: u64,
    pub(crate) compilations: u64,
}

impl<K> Default for Kept<K> {
    fn default() -> Self {
        Kept {
            templates: HashMap::new(),
            bytes: 0,
            clock: 0,
            compilations: 0,
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash> Kept<K> {
    /// Marks a kept template used; false when it is not kept.
    pub(crate) fn touch(&mut self, key: &K) -> bool {
        self.clock += 1;
        match self.templates.get_mut(key) {
            Some((_, used)) => {
                *used = self.clock;
                true
            }
            None => false,
        }
    }

    /// Keeps a template just compiled; returns those to let go, least
    /// recently used first, until the rest are within the bounds.
    pub(crate) fn insert(&mut self, key: K, len: usize) -> Vec<K> {
        self.templates.insert(key.clone(), (len, self.clock));
        self.bytes += len;
        let mut evicted = Vec::new();
        while self.templates.len() > KEPT_TEMPLATES
            || (self.bytes > KEPT_BYTES && self.templates.len() > 1)
        {
            let oldest = self
                .templates
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            if let Some((len, _)) = self.templates.remove(&oldest) {
                self.bytes -= len;
            }
            evicted.push(oldest);
        }
        evicted
    }
}

/// The hex SHA-256 of a template's source.
pub(crate) fn digest(source: &str) -> String {
    format!("{:x}", Sha256::digest(source.as_bytes()))
}

/// An environment of Kong's rules (see the module's documentation) within
/// `limits`, escaping `{{ }}` by `escape`.
pub(crate) fn environment(escape: AutoEscape, limits: EngineLimits) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Debug info clones the source into every error; the message is enough.
    env.set_debug(false);
    env.set_fuel(Some(limits.fuel));
    env.set_auto_escape_callback(move |_| escape);
    env.set_formatter(format);
    env.add_filter("raw", raw);
    let max = limits.output;
    env.add_filter(
        "indent",
        move |value: StringInput<'_>,
              width: Option<usize>,
              first: Option<bool>,
              blank: Option<bool>,
              kwargs: Kwargs| {
            let lines = value.as_str().split('\n').count();
            let width_asked = width.or(kwargs.peek::<Option<usize>>("width")?);
            let grown = width_asked
                .unwrap_or(4)
                .checked_mul(lines)
                .and_then(|n| n.checked_add(value.as_str().len()));
            if grown.is_none_or(|n| n > max) {
                return Err(too_long("indent", max));
            }
            minijinja::filters::indent(value, width, first, blank, kwargs)
        },
    );
    env.add_filter(
        "replace",
        move |state: &State, value: StringInput<'_>, from: StringInput<'_>, to: StringInput<'_>| {
            let text = value.as_str();
            let (from_text, to_text) = (from.as_str(), to.as_str());
            // An empty pattern matches between every two characters.
            let matches = if from_text.is_empty() {
                text.chars().count() + 1
            } else {
                text.matches(from_text).count()
            };
            let grown = matches
                .checked_mul(to_text.len())
                .and_then(|n| n.checked_add(text.len()));
            if grown.is_none_or(|n| n > max) {
                return Err(too_long("replace", max));
            }
            minijinja::filters::replace(state, value, from, to)
        },
    );
    env
}

fn too_long(filter: &str, max: usize) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{filter} would make a string {OVER_OUTPUT_LIMIT} ({max} bytes)"),
    )
}

/// Where a render writes: refuses to grow past its limit.
struct Bounded {
    text: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("rendered text too long"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compiles `source` without rendering it: a syntax check, cheap and
/// bounded (minijinja's parser limits nesting), so it runs in the server.
pub fn compile(source: &str) -> Result<(), String> {
    let source = kong_syntax(source);
    Environment::new()
        .template_from_str(&source)
        .map(drop)
        .map_err(|e| describe(&e))
}

/// An error's kind, detail and line, without the template name, which the
/// caller reports as a field.
pub(crate) fn describe(err: &Error) -> String {
    let mut message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    if let Some(line) = err.line() {
        let _ = write!(message, " (line {line})");
    }
    message
}

/// The text a value prints as, before escaping.
fn text(value: &Value) -> Result<Cow<'_, str>, Error> {
    if let Some(s) = value.as_str() {
        return Ok(Cow::Borrowed(s));
    }
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => Cow::Borrowed(""),
        // minijinja prints Python's `True`; JSON and Lua say `true`.
        ValueKind::Bool => Cow::Borrowed(if value.is_true() { "true" } else { "false" }),
        ValueKind::Map | ValueKind::Seq => {
            Cow::Owned(serde_json::to_string(value).map_err(|e| {
                Error::new(ErrorKind::BadSerialization, "cannot print as JSON").with_source(e)
            })?)
        }
        _ => Cow::Owned(value.to_string()),
    })
}

fn format(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let text = text(value)?;
    if value.is_safe() {
        return out.write_str(&text).map_err(Error::from);
    }
    match state.auto_escape() {
        AutoEscape::Html => write_html(out, &text),
        AutoEscape::Custom(JSON_STRING) => write_json_string(out, &text),
        _ => out.write_str(&text),
    }
    .map_err(Error::from)
}

/// The filter `{* *}` becomes: the value's text, marked safe.
fn raw(value: Value) -> Result<Value, Error> {
    Ok(Value::from_safe_string(text(&value)?.into_owned()))
}

/// lua-resty-template's entities (minijinja writes `'` and `/` differently).
fn write_html(out: &mut Output, s: &str) -> std::fmt::Result {
    for c in s.chars() {
        match c {
            '&' => out.write_str("&amp;")?,
            '<' => out.write_str("&lt;")?,
            '>' => out.write_str("&gt;")?,
            '"' => out.write_str("&quot;")?,
            '\'' => out.write_str("&#39;")?,
            '/' => out.write_str("&#47;")?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

fn write_json_string(out: &mut Output, s: &str) -> std::fmt::Result {
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c < ' ' => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Translates Kong's `{* expr *}` into `{{ (expr)|raw }}`, and its
/// backslash escapes as lua-resty-template reads them: `\{{ x }}` prints
/// `{{ x }}` (likewise `\{*`, `\{%`, `\{#`), and a doubled backslash
/// prints one backslash before a tag that is evaluated. A tag opener that
/// is never closed is text, its backslash kept.
///
/// Only template text is translated: a `{*` inside a `{{ }}` or `{% %}`
/// tag (in a string literal, say), a comment or a `{% raw %}` block stays
/// as written, and an expression ends at the first `*}` outside a string
/// literal. A `{*` without a closing `*}` is text, as in lua-resty-template.
/// No newline is added or removed, so error lines match the source.
fn kong_syntax(src: &str) -> Cow<'_, str> {
    if !src.contains("{*") && !src.contains("\\{") {
        return Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 16);
    let mut rest = src;
    while let Some(open) = rest.find('{') {
        let (text, tail) = rest.split_at(open);
        match escape_before(text, tail) {
            Some(Escaped::Literal) => {
                // The opener is template text: a raw block prints it as is,
                // whatever the autoescape, and the rest of the tag is text.
                out.push_str(&text[..text.len() - 1]);
                out.push_str("{% raw %}");
                out.push_str(&tail[..2]);
                out.push_str("{% endraw %}");
                rest = &tail[2..];
                continue;
            }
            Some(Escaped::Backslash) => out.push_str(&text[..text.len() - 1]),
            None => out.push_str(text),
        }
        // The delimiters are ASCII: byte offsets below are char boundaries.
        let consumed = match tail.as_bytes().get(1) {
            Some(b'*') => match find_close(&tail[2..], "*}", true) {
                Some(end) => {
                    out.push_str("{{ (");
                    out.push_str(&tail[2..2 + end]);
                    out.push_str(")|raw }}");
                    2 + end + 2
                }
                None => {
                    out.push_str("{*");
                    2
                }
            },
            Some(b'{') => copy_tag(&mut out, tail, "}}", true),
            Some(b'#') => copy_tag(&mut out, tail, "#}", false),
            Some(b'%') => {
                let n = copy_tag(&mut out, tail, "%}", true);
                if tag_name(&tail[..n]) == Some("raw") {
                    let verbatim = end_of_raw_block(&tail[n..]);
                    out.push_str(&tail[n..n + verbatim]);
                    n + verbatim
                } else {
                    n
                }
            }
            _ => {
                out.push('{');
                1
            }
        };
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// What a backslash before a tag opener means.
#[derive(Debug, PartialEq)]
enum Escaped {
    /// `\{{ … }}`: the opener is text.
    Literal,
    /// `\\{{ … }}`: one backslash is text, the tag is evaluated.
    Backslash,
}

/// Reads the backslashes that end `text` before the opener starting `tail`,
/// as lua-resty-template does: only before an opener it knows that is
/// closed later (found plainly, strings not considered).
fn escape_before(text: &str, tail: &str) -> Option<Escaped> {
    if !text.ends_with('\\') {
        return None;
    }
    let close = match tail.as_bytes().get(1)? {
        b'{' => "}}",
        b'*' => "*}",
        b'%' => "%}",
        b'#' => "#}",
        _ => return None,
    };
    if !tail[2..].contains(close) {
        return None;
    }
    if text[..text.len() - 1].ends_with('\\') {
        Some(Escaped::Backslash)
    } else {
        Some(Escaped::Literal)
    }
}

/// Copies a tag opened at the start of `tail` through its `close`, or the
/// rest of the text when it is never closed (minijinja then reports it).
fn copy_tag(out: &mut String, tail: &str, close: &str, strings: bool) -> usize {
    let n = match find_close(&tail[2..], close, strings) {
        Some(end) => 2 + end + close.len(),
        None => tail.len(),
    };
    out.push_str(&tail[..n]);
    n
}

/// Where `close` first appears in `s`, outside string literals when
/// `strings` (Jinja's `'…'` and `"…"` with backslash escapes).
fn find_close(s: &str, close: &str, strings: bool) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quote = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if bytes[i..].starts_with(close.as_bytes()) => return Some(i),
            None if strings && (b == b'"' || b == b'\'') => quote = Some(b),
            None => {}
        }
        i += 1;
    }
    None
}

/// The name of a complete `{% name … %}` tag (whitespace control allowed).
fn tag_name(tag: &str) -> Option<&str> {
    let inner = tag.strip_prefix("{%")?.strip_suffix("%}")?;
    let inner = inner.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
    inner.split_whitespace().next()
}

/// The length of a `{% raw %}` block's content: up to its `{% endraw %}`,
/// or all of `s` when it has none.
fn end_of_raw_block(s: &str) -> usize {
    let mut from = 0;
    while let Some(open) = s[from..].find("{%") {
        let start = from + open;
        let Some(end) = s[start + 2..].find("%}") else {
            break;
        };
        let tag = &s[start..start + 2 + end + 2];
        if tag_name(tag) == Some("endraw") {
            return start;
        }
        from = start + 2;
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: EngineLimits = EngineLimits {
        fuel: 100_000,
        output: 1024 * 1024,
    };

    fn render(source: &str, escape: Escape, ctx: &Value) -> Result<String, String> {
        Engine::new(LIMITS)
            .render(source, escape, ctx)
            .map_err(|f| f.message)
    }

    fn ctx() -> Value {
        Value::from_serialize(
            json!({"operation": "create", "entity": {"id": "1", "username": "bo\"b\\</>&'", "tags": ["a", "b"]}, "rate": 5, "ok": true, "gone": null, "event": "consumers", "source": "crud"}),
        )
    }

    fn html(source: &str) -> String {
        render(source, Escape::Html, &ctx()).unwrap()
    }

    #[test]
    fn kongs_typical_body() {
        let c =
            Value::from_serialize(json!({"operation": "create", "entity": {"username": "bob"}}));
        assert_eq!(
            render(
                "Admin account `{{ entity.username }}` {{ operation }}d",
                Escape::Html,
                &c
            )
            .unwrap(),
            "Admin account `bob` created"
        );
    }

    #[test]
    fn context_has_event_and_source() {
        assert_eq!(html("{{ source }}/{{ event }}"), "crud/consumers");
    }

    #[test]
    fn double_braces_escape_html_as_lua_resty_template() {
        assert_eq!(
            html("{{ entity.username }}"),
            "bo&quot;b\\&lt;&#47;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn star_braces_print_raw() {
        assert_eq!(html("{* entity.username *}"), "bo\"b\\</>&'");
        assert_eq!(html("{*entity.username*}!"), "bo\"b\\</>&'!");
    }

    #[test]
    fn a_backslash_prints_a_tag_as_written() {
        assert_eq!(
            html(r"\{{ entity.username }} {{ source }}"),
            "{{ entity.username }} crud"
        );
        assert_eq!(html(r"a\{* rate *}b"), "a{* rate *}b");
        assert_eq!(
            html(r"\{% if ok %}x\{% endif %}"),
            "{% if ok %}x{% endif %}"
        );
        assert_eq!(html(r"\{# not a comment #}"), "{# not a comment #}");
    }

    #[test]
    fn a_doubled_backslash_prints_one_before_an_evaluated_tag() {
        assert_eq!(html(r"\\{{ rate }}"), r"\5");
        assert_eq!(html(r"\\{* source *}"), r"\crud");
    }

    #[test]
    fn backslashes_elsewhere_are_text() {
        // Not before a closed opener: kept as written.
        assert_eq!(html(r"a\b \{ \{x"), r"a\b \{ \{x");
        assert_eq!(html(r"C:\dir {{ rate }}"), r"C:\dir 5");
        // The literal opener is not escaped for where the text goes.
        assert_eq!(
            render(r#"{"t": "\{{ x }}"}"#, Escape::JsonString, &ctx()).unwrap(),
            r#"{"t": "{{ x }}"}"#
        );
    }

    #[test]
    fn json_string_escaping_keeps_json_valid() {
        let body = render(
            r#"{"name": "{{ entity.username }}", "entity": {* entity *}, "rate": {{ rate }}}"#,
            Escape::JsonString,
            &ctx(),
        )
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["name"], "bo\"b\\</>&'");
        assert_eq!(parsed["entity"]["tags"], json!(["a", "b"]));
        assert_eq!(parsed["rate"], 5);
    }

    #[test]
    fn control_characters_are_json_escaped() {
        let c = Value::from_serialize(json!({"v": "a\nb\u{1}"}));
        assert_eq!(
            render("{{ v }}", Escape::JsonString, &c).unwrap(),
            "a\\nb\\u0001"
        );
    }

    #[test]
    fn undefined_and_null_print_nothing() {
        assert_eq!(
            html("[{{ nope }}][{{ nope.deeper.still }}][{{ gone }}]"),
            "[][][]"
        );
        assert_eq!(html("[{* old_entity.username *}]"), "[]");
    }

    #[test]
    fn scalars_and_collections() {
        assert_eq!(
            render(
                "{{ rate }} {{ ok }} {* not ok *} {{ entity.tags }}",
                Escape::None,
                &ctx()
            )
            .unwrap(),
            "5 true false [\"a\",\"b\"]"
        );
    }

    #[test]
    fn event_data_is_never_parsed_as_a_template() {
        let c = Value::from_serialize(json!({"name": "{{ 7 * 7 }}{* 1 *}"}));
        assert_eq!(
            render("{* name *}", Escape::None, &c).unwrap(),
            "{{ 7 * 7 }}{* 1 *}"
        );
    }

    #[test]
    fn translation_respects_tags_strings_comments_and_raw_blocks() {
        assert_eq!(kong_syntax("a {* x *} b"), "a {{ ( x )|raw }} b");
        assert_eq!(
            kong_syntax(r#"{* "*}" ~ x *}"#),
            r#"{{ ( "*}" ~ x )|raw }}"#
        );
        assert_eq!(kong_syntax(r#"{{ "{* x *}" }}"#), r#"{{ "{* x *}" }}"#);
        assert_eq!(kong_syntax("{# {* x *} #}"), "{# {* x *} #}");
        assert_eq!(
            kong_syntax("{% raw %}{* x *}{% endraw %}{* y *}"),
            "{% raw %}{* x *}{% endraw %}{{ ( y )|raw }}"
        );
        assert_eq!(kong_syntax("{\"glob\": \"{*\"}"), "{\"glob\": \"{*\"}");
        assert_eq!(kong_syntax("no star"), "no star");
        assert_eq!(kong_syntax("é{*é*}é"), "é{{ (é)|raw }}é");
    }

    #[test]
    fn literal_delimiters_render_as_written() {
        assert_eq!(html(r#"{{ "{* x *}" }}"#), "{* x *}");
        assert_eq!(
            html("{% raw %}{{ x }}{* y *}{% endraw %}"),
            "{{ x }}{* y *}"
        );
        assert_eq!(html("{\"glob\": \"{*\"}"), "{\"glob\": \"{*\"}");
    }

    #[test]
    fn errors_name_kind_and_line() {
        assert_eq!(
            compile("a\n{{ entity.username ").unwrap_err(),
            "syntax error: unexpected end of input, expected end of variable block (line 2)"
        );
        assert!(compile("{% if x %}").is_err());
        assert!(compile("{* x *} {{ y }}").is_ok());
        let err = render("{{ \"a\" + 1 }}", Escape::Html, &ctx()).unwrap_err();
        assert!(err.starts_with("invalid operation"), "{err}");
    }

    #[test]
    fn huge_output_is_refused() {
        let err = render(
            "{% for i in range(20) %}{{ \"x\" * 100000 }}{% endfor %}",
            Escape::None,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!("the rendered text is longer than {} bytes", LIMITS.output)
        );
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let err = render(
            "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
            Escape::None,
            &ctx(),
        )
        .unwrap_err();
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn filters_refuse_strings_longer_than_the_output() {
        let mut engine = Engine::new(LIMITS);
        for source in [
            r#"{{ "a\nb"|indent(1000000000000) }}"#,
            "{{ 'abc'|replace('', 'x' * 600000) }}",
        ] {
            let failure = engine.render(source, Escape::None, &ctx()).unwrap_err();
            assert!(failure.over_budget, "{source}: {failure}");
            assert!(
                failure.message.contains("longer than the output limit"),
                "{failure}"
            );
        }
        // Within the limit they are minijinja's own.
        assert_eq!(
            render("{{ 'a\nb'|indent(2) }}", Escape::None, &ctx()).unwrap(),
            "a\n  b"
        );
        assert_eq!(
            render("{{ 'ab'|replace('a', 'c') }}", Escape::None, &ctx()).unwrap(),
            "cb"
        );
    }

    #[test]
    fn only_limits_count_as_over_budget() {
        let mut engine = Engine::new(LIMITS);
        let mut over = |source: &str| {
            engine
                .render(source, Escape::None, &ctx())
                .unwrap_err()
                .over_budget
        };
        assert!(over(
            "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
        ));
        assert!(over("{{ 'x' * 2000000 }}"));
        assert!(!over("{{ 'a' + 1 }}"));
        assert!(!over("{{ oops"));
    }

    #[test]
    fn a_template_rendered_again_is_not_compiled_again() {
        let mut engine = Engine::new(LIMITS);
        let body = "Admin account `{{ entity.username }}` {{ operation }}d";
        for _ in 0..3 {
            assert_eq!(
                engine.render(body, Escape::Html, &ctx()).unwrap(),
                "Admin account `bo&quot;b\\&lt;&#47;&gt;&amp;&#39;` created"
            );
        }
        assert_eq!(engine.compilations(), 1);
        // The same source for another escape is another template.
        engine.render(body, Escape::None, &ctx()).unwrap();
        assert_eq!(engine.compilations(), 2);
        // One that does not compile is not kept, and errs the same each time.
        for _ in 0..2 {
            assert!(engine.render("{{ oops", Escape::Html, &ctx()).is_err());
        }
        assert_eq!(engine.compilations(), 4);
    }

    #[test]
    fn the_least_recently_used_template_goes_first() {
        let mut engine = Engine::new(LIMITS);
        let source = |i: usize| format!("{{{{ rate }}}} {i}");
        for i in 0..KEPT_TEMPLATES {
            engine.render(&source(i), Escape::None, &ctx()).unwrap();
        }
        // 0 is used again, so 1 is now the least recently used.
        engine.render(&source(0), Escape::None, &ctx()).unwrap();
        engine
            .render(&source(KEPT_TEMPLATES), Escape::None, &ctx())
            .unwrap();
        let compiled = engine.compilations();
        assert_eq!(compiled, KEPT_TEMPLATES as u64 + 1);
        engine.render(&source(0), Escape::None, &ctx()).unwrap();
        assert_eq!(engine.compilations(), compiled, "0 was kept");
        assert_eq!(
            engine.render(&source(1), Escape::None, &ctx()).unwrap(),
            "5 1"
        );
        assert_eq!(engine.compilations(), compiled + 1, "1 was let go");
        assert_eq!(engine.html.templates().count(), 0);
        assert_eq!(engine.none.templates().count(), KEPT_TEMPLATES);
    }

    #[test]
    fn kept_sources_stay_within_their_bytes() {
        let mut engine = Engine::new(LIMITS);
        let long = |c: char| c.to_string().repeat(KEPT_BYTES / 2);
        engine.render(&long('a'), Escape::None, &ctx()).unwrap();
        engine.render(&long('b'), Escape::None, &ctx()).unwrap();
        assert_eq!(engine.kept.bytes, KEPT_BYTES);
        engine.render(&long('c'), Escape::None, &ctx()).unwrap();
        assert_eq!(engine.kept.bytes, KEPT_BYTES);
        assert_eq!(engine.none.templates().count(), 2);
        // Longer than the budget: kept alone.
        let longest = format!("{{# {} #}}", "d".repeat(KEPT_BYTES));
        assert_eq!(engine.render(&longest, Escape::None, &ctx()).unwrap(), "");
        assert_eq!(engine.kept.bytes, longest.len());
        assert_eq!(engine.none.templates().count(), 1);
    }
}
