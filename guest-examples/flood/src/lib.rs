//! `flood`: a hostile guest that does, in one call, as many times as its data
//! says, each of the things whose records and log lines the server must bound:
//! - `data.requests` GETs of `data.url` (e.g. `http://evil.example/`) through
//!   `wasi:http/outgoing-handler`, each refusal ignored (one audit decision
//!   each: a denial when the host is not granted);
//! - `data.hosts` GETs of `http://h<i>.<data.url's host>/`, i = 0, 1, ...:
//!   that many distinct targets;
//! - `data.logs` calls of the host's `log` (`"flood <i>"`);
//! - `data.stderr` lines on stderr (`"flood <i>"`), and one line of
//!   `data.long_line` bytes.
//!
//! It then returns `{"requests": N, "refused": M}`: how many of its requests
//! the host refused. Missing counts are 0; data that is not a JSON object is
//! an `Err`. Used by the end-to-end tests of guests that cannot flood.

wit_bindgen::generate!({
    world: "lambda",
    path: "../sdk/wit",
});

use hookd::lambda::host::{log, Level};
use serde_json::{json, Value};
use std::io::Write;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};

struct Flood;

impl Guest for Flood {
    fn handle(event: Event) -> Result<Option<String>, String> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("flood: event data is not JSON: {e}"))?;
        let data = data.as_object().ok_or("flood: event data is not a JSON object")?;
        let count = |key: &str| data.get(key).and_then(Value::as_u64).unwrap_or(0);
        let host = data
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| u.strip_prefix("http://"))
            .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| "evil.example".to_owned());

        let mut refused = 0u64;
        for _ in 0..count("requests") {
            refused += u64::from(!get(&host));
        }
        for i in 0..count("hosts") {
            refused += u64::from(!get(&format!("h{i}.{host}")));
        }
        for i in 0..count("logs") {
            log(Level::Info, &format!("flood {i}"));
        }
        let mut err = std::io::stderr();
        for i in 0..count("stderr") {
            let _ = writeln!(err, "flood {i}");
        }
        let long = count("long_line") as usize;
        if long > 0 {
            let _ = writeln!(err, "{}", "y".repeat(long));
        }
        let requests = count("requests") + count("hosts");
        Ok(Some(json!({"requests": requests, "refused": refused}).to_string()))
    }
}

/// GETs `http://<authority>/`; whether the host let it go out (an answer,
/// or a failure past the host's own checks).
fn get(authority: &str) -> bool {
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_method(&Method::Get);
    let _ = req.set_scheme(Some(&Scheme::Http));
    if req.set_authority(Some(authority)).is_err() {
        return false;
    }
    let _ = req.set_path_with_query(Some("/"));
    let Ok(fut) = outgoing_handler::handle(req, None) else {
        return false;
    };
    let answer = loop {
        match fut.get() {
            Some(answer) => break answer,
            None => fut.subscribe().block(),
        }
    };
    !matches!(answer, Ok(Err(ErrorCode::HttpRequestDenied)))
}

export!(Flood);
