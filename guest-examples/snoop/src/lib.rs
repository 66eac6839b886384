//! `snoop`: tries one thing the sandbox may forbid, chosen by `data.probe`, and
//! reports the outcome as data so a refusal is visible to the test:
//! - `"env"`: `std::env::var(data.name)`; `value` is the variable's value.
//! - `"file"`: `std::fs::read_to_string(data.path)`, `value` is the content;
//!   with `data.write == true` it instead writes `data.content` (default
//!   `"written by snoop\n"`) to that path, `value` is `"wrote N bytes"`.
//! - `"http"`: GET `data.url` through `wasi:http/outgoing-handler`; `value` is
//!   the response status as a string (`"200"`), any status counts as `ok`.
//!
//! It always returns `Ok(Some({"probe": <probe>, "ok": true, "value": "..."}))`
//! or `Ok(Some({"probe": <probe>, "ok": false, "error": "..."}))`; errors are
//! ordinary guest-visible errors, e.g. `"environment variable not found"`,
//! `"No such file or directory (os error 44)"`, `"ErrorCode::HttpRequestDenied"`.
//! Only data that is not a JSON object, or an unknown / missing probe or
//! argument, is an `Err`. Used by the sandbox capability tests (env, filesystem
//! preopens read-only / read-write, outbound HTTP allowlist).

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

use serde_json::{json, Map, Value};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct Snoop;

impl Guest for Snoop {
    fn handle(event: Event) -> Result<Option<String>, String> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("snoop: event data is not JSON: {e}"))?;
        let data = data.as_object().ok_or("snoop: event data is not a JSON object")?;
        let probe = str_arg(data, "probe")?;
        let outcome = match probe {
            "env" => std::env::var(str_arg(data, "name")?).map_err(|e| e.to_string()),
            "file" => {
                let path = str_arg(data, "path")?;
                if data.get("write").and_then(Value::as_bool) == Some(true) {
                    let content = data
                        .get("content")
                        .and_then(Value::as_str)
                        .unwrap_or("written by snoop\n");
                    std::fs::write(path, content)
                        .map(|()| format!("wrote {} bytes", content.len()))
                        .map_err(|e| e.to_string())
                } else {
                    std::fs::read_to_string(path).map_err(|e| e.to_string())
                }
            }
            "http" => get(str_arg(data, "url")?).map(|status| status.to_string()),
            other => return Err(format!("snoop: unknown probe {other:?}")),
        };
        let report = match outcome {
            Ok(value) => json!({ "probe": probe, "ok": true, "value": value }),
            Err(error) => json!({ "probe": probe, "ok": false, "error": error }),
        };
        Ok(Some(report.to_string()))
    }
}

/// The string field `key` of the data, or an `Err` naming it.
fn str_arg<'a>(data: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    data.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("snoop: event data has no string {key:?}"))
}

/// GETs `url` and returns the response status; every failure is a message.
fn get(url: &str) -> Result<u16, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("not an http(s) URL: {url:?}"));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };

    let fail = |what: &str| format!("cannot {what}");
    let req = OutgoingRequest::new(Fields::new());
    req.set_method(&Method::Get).map_err(|_| fail("set method"))?;
    req.set_scheme(Some(&scheme)).map_err(|_| fail("set scheme"))?;
    req.set_authority(Some(authority)).map_err(|_| fail("set authority"))?;
    req.set_path_with_query(Some(&path)).map_err(|_| fail("set path"))?;
    let body = req.body().map_err(|_| fail("take the request body"))?;
    let fut = outgoing_handler::handle(req, None).map_err(|code| format!("{code:?}"))?;
    OutgoingBody::finish(body, None).map_err(|code| format!("{code:?}"))?;
    let resp = loop {
        match fut.get() {
            Some(r) => break r,
            None => fut.subscribe().block(),
        }
    };
    match resp {
        Ok(Ok(resp)) => Ok(resp.status()),
        Ok(Err(code)) => Err(format!("{code:?}")),
        Err(()) => Err(fail("read the response")),
    }
}

export!(Snoop);
