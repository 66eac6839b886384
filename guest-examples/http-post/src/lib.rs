//! `http-post`: POSTs the event data (the `event.data` JSON text, verbatim,
//! `content-type: application/json`) to the URL in the data field
//! `"target_url"` (a full `http://host:port/path` or `https://...` URL) through
//! `wasi:http/outgoing-handler`. On a 2xx answer it returns the data with
//! `"http_status": <code>` added (and logs one info line); on any other status
//! it returns `Err("http-post: POST <url> answered <code>")`; when the host
//! refuses or fails the request (e.g. `ErrorCode::HttpRequestDenied` from the
//! capability allowlist, `ConnectionRefused`) it returns
//! `Err("http request refused: <ErrorCode debug>")`: an ordinary error, never a
//! trap. Data that is not a JSON object or has no string `target_url` is an
//! `Err` too. Used by the lambda handler's outbound-HTTP capability tests
//! (allowlisted target answers, non-allowlisted target refused).

wit_bindgen::generate!({
    world: "lambda",
    path: "../../wit",
});

use hookd::lambda::host::{log, Level};
use serde_json::Value;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// wasi:io `blocking-write-and-flush` accepts at most this many bytes per call.
const MAX_WRITE: usize = 4096;

struct HttpPost;

impl Guest for HttpPost {
    fn handle(event: Event) -> Result<Option<String>, String> {
        let mut data: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("http-post: event data is not JSON: {e}"))?;
        let obj = data
            .as_object_mut()
            .ok_or("http-post: event data is not a JSON object")?;
        let url = obj
            .get("target_url")
            .and_then(Value::as_str)
            .ok_or("http-post: event data has no string \"target_url\"")?
            .to_owned();

        let status = match post(&url, event.data.as_bytes()) {
            Ok(status) => status,
            Err(Failure::Refused(code)) => return Err(format!("http request refused: {code:?}")),
            Err(Failure::Other(msg)) => return Err(format!("http-post: {msg}")),
        };
        if !(200..300).contains(&status) {
            return Err(format!("http-post: POST {url} answered {status}"));
        }
        log(Level::Info, &format!("http-post: POST {url} answered {status}"));
        obj.insert("http_status".into(), Value::from(status));
        serde_json::to_string(&data)
            .map(Some)
            .map_err(|e| format!("http-post: cannot serialise: {e}"))
    }
}

/// Why a request got no status.
enum Failure {
    /// The host answered with a wasi:http error code (denied, connection refused, ...).
    Refused(ErrorCode),
    /// The guest could not build the request.
    Other(String),
}

/// Splits `http(s)://authority/path?query` into its parts; the path defaults to `/`.
fn parse_url(url: &str) -> Result<(Scheme, &str, String), Failure> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(Failure::Other(format!("not an http(s) URL: {url:?}")));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(Failure::Other(format!("URL has no host: {url:?}")));
    }
    let path = match path.chars().next() {
        None => "/".to_owned(),
        Some('?') => format!("/{path}"),
        Some(_) => path.to_owned(),
    };
    Ok((scheme, authority, path))
}

/// POSTs `body` to `url` and returns the response status.
fn post(url: &str, body: &[u8]) -> Result<u16, Failure> {
    let (scheme, authority, path) = parse_url(url)?;
    let other = |what: &str| Failure::Other(format!("cannot {what} for {url:?}"));

    let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .map_err(|_| other("build headers"))?;
    let req = OutgoingRequest::new(headers);
    req.set_method(&Method::Post).map_err(|_| other("set method"))?;
    req.set_scheme(Some(&scheme)).map_err(|_| other("set scheme"))?;
    req.set_authority(Some(authority)).map_err(|_| other("set authority"))?;
    req.set_path_with_query(Some(&path)).map_err(|_| other("set path"))?;

    let out_body = req.body().map_err(|_| other("take the request body"))?;
    // Send first, then stream the body: the host buffers only one chunk of an
    // outgoing body, so writing a large body before `handle` would block forever.
    let fut = outgoing_handler::handle(req, None).map_err(Failure::Refused)?;
    let sent = write_body(&out_body, body);
    let finished = match sent {
        Ok(()) => OutgoingBody::finish(out_body, None),
        Err(_) => Ok(()), // dropping the unfinished body tells the host it is incomplete
    };

    let resp = loop {
        match fut.get() {
            Some(r) => break r,
            None => fut.subscribe().block(),
        }
    };
    // A refusal (e.g. HttpRequestDenied) arrives here; it also closes the
    // body stream, so it takes precedence over a failed write.
    match resp {
        Ok(Ok(resp)) => {
            sent.map_err(|e| Failure::Other(format!("writing the body for {url:?}: {e}")))?;
            finished.map_err(Failure::Refused)?;
            Ok(resp.status())
        }
        Ok(Err(code)) => Err(Failure::Refused(code)),
        Err(()) => Err(other("read the response (already taken)")),
    }
}

/// Writes `body` into the request body stream, at most `MAX_WRITE` bytes per call.
fn write_body(out_body: &OutgoingBody, body: &[u8]) -> Result<(), String> {
    let stream = out_body.write().map_err(|()| "cannot open the body stream".to_owned())?;
    for chunk in body.chunks(MAX_WRITE) {
        stream.blocking_write_and_flush(chunk).map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
    // the stream is dropped here, before the body is finished
}

export!(HttpPost);
