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
//! (allowlisted target answers, non-allowlisted target refused). Written with
//! the guest SDK (`../sdk`, crate `hookd-guest`), whose `http::post` does the
//! request.

use hookd_guest::{http, log, Event, Handler, Level, Outcome, Value};

struct HttpPost;

impl Handler for HttpPost {
    fn handle(event: Event) -> Outcome {
        let mut data: Value = event
            .data()
            .map_err(|e| format!("http-post: event data is not JSON: {e}"))?;
        let obj = data
            .as_object_mut()
            .ok_or("http-post: event data is not a JSON object")?;
        let url = obj
            .get("target_url")
            .and_then(Value::as_str)
            .ok_or("http-post: event data has no string \"target_url\"")?
            .to_owned();

        // The data as it came, not re-serialised: the target sees the bytes hookd sent.
        let response = match http::post(&url, "application/json", event.raw_data().as_bytes()) {
            Ok(response) => response,
            Err(e @ http::Error::Refused(_)) => return Err(e.into()),
            Err(e @ http::Error::Request(_)) => return Err(format!("http-post: {e}").into()),
        };
        let status = response.status();
        if !response.is_success() {
            return Err(format!("http-post: POST {url} answered {status}").into());
        }
        log(
            Level::Info,
            &format!("http-post: POST {url} answered {status}"),
        );
        obj.insert("http_status".into(), Value::from(status));
        Ok(Some(data))
    }
}

hookd_guest::export!(HttpPost);
