//! Outbound HTTP in one call, through `wasi:http/outgoing-handler`.
//!
//! Only hosts granted to the hook (`config.capabilities.http`) are reached;
//! any other is refused by the host with `ErrorCode::HttpRequestDenied`,
//! which arrives here as [`Error::Refused`]: an ordinary error, never a trap.
//!
//! Built on the `wasip2` crate's bindings rather than `wstd` or `waki`:
//! both write the request body before they look at the response, so when
//! the host refuses a request (which also closes the body stream) they
//! report the failed write and lose the host's `ErrorCode`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Why the host did not answer a request, as `wasi:http` reports it
/// (`HttpRequestDenied`, `ConnectionRefused`, `DestinationIpProhibited`, ...).
pub use wasip2::http::types::ErrorCode;

/// wasi:io `blocking-write-and-flush` accepts at most this many bytes per call.
const MAX_WRITE: usize = 4096;
/// Bytes asked for per read of a response body.
const READ_CHUNK: u64 = 64 * 1024;

/// An answer from the remote host.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The whole response body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The response body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why a request got no [`Response`].
#[derive(Debug)]
pub enum Error {
    /// The host refused or failed the request. Displayed as
    /// `http request refused: ErrorCode::<Variant>`.
    Refused(ErrorCode),
    /// The guest could not make the request (a URL that is not http(s), a
    /// body that would not serialise, a stream that failed).
    Request(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(code) => write!(f, "http request refused: {code:?}"),
            Error::Request(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// POSTs `value` serialised as JSON (`content-type: application/json`).
pub fn post_json<T: Serialize + ?Sized>(url: &str, value: &T) -> Result<Response, Error> {
    let body = serde_json::to_vec(value)
        .map_err(|e| Error::Request(format!("cannot serialise the body for {url:?}: {e}")))?;
    post(url, "application/json", &body)
}

/// POSTs `body` as it is, with the given content type.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Response, Error> {
    send(Method::Post, url, Some(content_type), body)
}

/// GETs `url`.
pub fn get(url: &str) -> Result<Response, Error> {
    send(Method::Get, url, None, &[])
}

/// Splits `http(s)://authority/path?query` into its parts; the path defaults to `/`.
fn parse_url(url: &str) -> Result<(Scheme, &str, String), Error> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(Error::Request(format!("not an http(s) URL: {url:?}")));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(Error::Request(format!("URL has no host: {url:?}")));
    }
    let path = match path.chars().next() {
        None => "/".to_owned(),
        Some('?') => format!("/{path}"),
        Some(_) => path.to_owned(),
    };
    Ok((scheme, authority, path))
}

fn send(
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response, Error> {
    let (scheme, authority, path) = parse_url(url)?;
    let other = |what: &str| Error::Request(format!("cannot {what} for {url:?}"));

    let headers: Vec<(String, Vec<u8>)> = content_type
        .map(|t| ("content-type".to_owned(), t.as_bytes().to_vec()))
        .into_iter()
        .collect();
    let headers = Fields::from_list(&headers).map_err(|_| other("build headers"))?;
    let req = OutgoingRequest::new(headers);
    req.set_method(&method).map_err(|_| other("set method"))?;
    req.set_scheme(Some(&scheme))
        .map_err(|_| other("set scheme"))?;
    req.set_authority(Some(authority))
        .map_err(|_| other("set authority"))?;
    req.set_path_with_query(Some(&path))
        .map_err(|_| other("set path"))?;

    let out_body = req.body().map_err(|_| other("take the request body"))?;
    // Send first, then stream the body: the host buffers only one chunk of an
    // outgoing body, so writing a large body before `handle` would block forever.
    let fut = outgoing_handler::handle(req, None).map_err(Error::Refused)?;
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
            sent.map_err(|e| Error::Request(format!("writing the body for {url:?}: {e}")))?;
            finished.map_err(Error::Refused)?;
            let status = resp.status();
            let body = resp
                .consume()
                .map_err(|()| other("take the response body"))?;
            let body = read_body(body).map_err(|e| match e {
                StreamError::LastOperationFailed(e) => Error::Request(format!(
                    "reading the response of {url:?}: {}",
                    e.to_debug_string()
                )),
                StreamError::Closed => other("read the response body"),
            })?;
            Ok(Response { status, body })
        }
        Ok(Err(code)) => Err(Error::Refused(code)),
        Err(()) => Err(other("read the response (already taken)")),
    }
}

/// Writes `body` into the request body stream, at most `MAX_WRITE` bytes per call.
fn write_body(out_body: &OutgoingBody, body: &[u8]) -> Result<(), String> {
    let stream = out_body
        .write()
        .map_err(|()| "cannot open the body stream".to_owned())?;
    for chunk in body.chunks(MAX_WRITE) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
    // the stream is dropped here, before the body is finished
}

/// Reads a response body to its end.
fn read_body(body: IncomingBody) -> Result<Vec<u8>, StreamError> {
    let mut bytes = Vec::new();
    {
        // The stream is a child of the body: it must be dropped first.
        let stream = body.stream().map_err(|()| StreamError::Closed)?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(e),
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}
