//! The outbound handlers against real HTTP receivers on loopback.

use axum::Router;
use axum::extract::State;
use axum::serve::ListenerExt;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hookd_delivery::handler::{
    AttemptId, HandlerError, HttpSettings, KongSignature, MAX_RESPONSE_BODY, Outbound, Response,
    RetryAfter, signature,
};
use hookd_model::Event;
use hookd_model::hook::{PreviousSecret, WebhookConfig, WebhookCustomConfig};
use hookd_model::outbound::{OutboundPolicy, Restricted};
use hookd_template::{Limits, Renderer, WorkerCommand};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

// ---- the test receiver -------------------------------------------------

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// What the receiver answers.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn ok() -> Self {
        Answer {
            status: 200,
            headers: vec![("x-receiver", "yes".into())],
            body: b"thanks".to_vec(),
        }
    }
}

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
}

struct Receiver {
    addr: SocketAddr,
    shared: Shared,
    connections: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let shared = Shared {
            seen: Arc::default(),
            answer: Arc::new(Mutex::new(answer)),
        };
        let app = Router::new().fallback(record).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            addr,
            shared,
            connections,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen.into_iter().next().unwrap()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn record(
    State(shared): State<Shared>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    shared.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body: body.to_vec(),
    });
    let answer = shared.answer.lock().unwrap().clone();
    let mut response = axum::response::Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    for (name, value) in answer.headers {
        response.headers_mut().append(name, value.parse().unwrap());
    }
    response
}

// ---- fixtures ------------------------------------------------------------

fn loopback_allowed() -> OutboundPolicy {
    OutboundPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()])
}

fn outbound(policy: OutboundPolicy, kong_signature: KongSignature) -> Outbound {
    Outbound::new(HttpSettings {
        timeout: Duration::from_secs(10),
        policy,
        kong_signature,
    })
    .unwrap()
}

/// Template workers built with these tests (see support/template_worker.rs).
fn templates() -> Renderer {
    Renderer::new(
        WorkerCommand {
            program: env!("CARGO_BIN_EXE_hookd-delivery-template-worker").into(),
            args: Vec::new(),
        },
        Limits::default(),
    )
}

fn event(username: &str) -> Event {
    Event::new(
        "crud",
        "consumers",
        json!({"operation": "create", "entity": {"id": "c1", "username": username}, "schema": "consumers"}),
        1_700_000_000_000,
    )
}

const DELIVERY: Uuid = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);
const TIMESTAMP: i64 = 1_700_000_000;

fn attempt(event: &Event) -> AttemptId<'_> {
    AttemptId {
        delivery_id: DELIVERY,
        timestamp_s: TIMESTAMP,
        event,
    }
}

fn webhook(url: String, secret: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        url,
        headers: BTreeMap::from([("X-Custom".to_string(), "custom value".to_string())]),
        secret: secret.map(str::to_string),
        previous_secret: None,
        ssl_verify: false,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn hex_hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

// ---- webhook -------------------------------------------------------------

#[tokio::test]
async fn webhook_posts_kongs_body_and_headers() {
    let receiver = Receiver::start(Answer::ok()).await;
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let event = event("bob");
    let cfg = webhook(receiver.url("/hook?token=abc"), None);

    let response = out.webhook(&cfg, &attempt(&event)).await.unwrap();

    assert_eq!(response.status, 200);
    assert!(response.is_success());
    assert_eq!(response.body, "thanks");
    assert_eq!(response.headers["x-receiver"], "yes");
    assert_eq!(response.retry_after, None);

    let seen = receiver.only();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/hook?token=abc");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-custom"), Some("custom value"));
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({"operation": "create", "entity": {"id": "c1", "username": "bob"}, "schema": "consumers",
               "event": "consumers", "source": "crud"})
    );
    assert_eq!(
        seen.header("webhook-id"),
        Some(DELIVERY.to_string().as_str())
    );
    assert_eq!(seen.header("webhook-timestamp"), Some("1700000000"));
    assert_eq!(seen.header("x-kong-signature"), None);
    assert_eq!(seen.header("webhook-signature"), None);
}

#[tokio::test]
async fn webhook_signatures_verify_independently() {
    for (alg, prefix) in [
        (KongSignature::Sha1, "sha1="),
        (KongSignature::Sha256, "sha256="),
    ] {
        let receiver = Receiver::start(Answer::ok()).await;
        let out = outbound(loopback_allowed(), alg);
        let event = event("bob");
        out.webhook(
            &webhook(receiver.url("/"), Some("hunter2")),
            &attempt(&event),
        )
        .await
        .unwrap();

        let seen = receiver.only();
        let kong = seen.header("x-kong-signature").unwrap();
        let want = match alg {
            KongSignature::Sha1 => hex_hmac::<Hmac<sha1::Sha1>>(b"hunter2", &seen.body),
            KongSignature::Sha256 => hex_hmac::<Hmac<sha2::Sha256>>(b"hunter2", &seen.body),
        };
        assert_eq!(kong, format!("{prefix}{want}"));

        let signed = [
            format!("{DELIVERY}.{TIMESTAMP}.").as_bytes(),
            seen.body.as_slice(),
        ]
        .concat();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hunter2").unwrap();
        mac.update(&signed);
        let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(seen.header("webhook-signature"), Some(want.as_str()));
    }
    // Kong's published vector, through the same function the handler uses.
    assert_eq!(
        signature::kong_signature(KongSignature::Sha1, "hunter2", b"foobar"),
        "sha1=47632029fcc7936dc59ff90b5bb736a44c74ab62"
    );
}

/// `v1,<base64 HMAC-SHA256>` of what the receiver saw, computed here.
fn standard_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{DELIVERY}.{TIMESTAMP}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_live_previous_secret_adds_its_standard_signature_only() {
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let event = event("bob");
    let previous = |expires_at| {
        Some(PreviousSecret {
            secret: "old".into(),
            expires_at,
        })
    };
    // (current, expires_at of "old", webhook-signature's secrets, Kong's).
    let cases = [
        (Some("new"), TIMESTAMP + 1, &["new", "old"][..], Some("new")),
        (Some("new"), TIMESTAMP, &["new"][..], Some("new")),
        (None, TIMESTAMP + 1, &["old"][..], None),
        (None, TIMESTAMP, &[][..], None),
    ];
    for (current, expires_at, standard, kong) in cases {
        let receiver = Receiver::start(Answer::ok()).await;
        let mut cfg = webhook(receiver.url("/"), current);
        cfg.previous_secret = previous(expires_at);
        out.webhook(&cfg, &attempt(&event)).await.unwrap();
        let seen = receiver.only();
        let want: Vec<String> = standard
            .iter()
            .map(|s| standard_hmac(s, &seen.body))
            .collect();
        let case = format!("{current:?} until {expires_at}");
        assert_eq!(
            seen.header("webhook-signature"),
            (!want.is_empty()).then(|| want.join(" ")).as_deref(),
            "{case}"
        );
        let want = kong.map(|k| {
            format!(
                "sha1={}",
                hex_hmac::<Hmac<sha1::Sha1>>(k.as_bytes(), &seen.body)
            )
        });
        assert_eq!(seen.header("x-kong-signature"), want.as_deref(), "{case}");
    }

    // webhook-custom signs the same way.
    let receiver = Receiver::start(Answer::ok()).await;
    let mut cfg = WebhookCustomConfig::new(receiver.url("/c"), "POST");
    cfg.body = Some("hello".into());
    cfg.secret = Some("new".into());
    cfg.previous_secret = previous(TIMESTAMP + 1);
    out.webhook_custom(&cfg, &attempt(&event), &templates())
        .await
        .unwrap();
    let seen = receiver.only();
    let want = format!(
        "{} {}",
        standard_hmac("new", b"hello"),
        standard_hmac("old", b"hello")
    );
    assert_eq!(seen.header("webhook-signature"), Some(want.as_str()));
}

#[tokio::test]
async fn ping_posts_kongs_ping() {
    let receiver = Receiver::start(Answer::ok()).await;
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let cfg = webhook(receiver.url("/ping"), Some("s"));
    let hook = json!({"id": "h1", "handler": "webhook", "config": {"url": cfg.url}});
    let event = event("unused");

    let response = out
        .ping(&cfg, "create", &hook, &attempt(&event))
        .await
        .unwrap();
    assert_eq!(response.status, 200);

    let seen = receiver.only();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-custom"), Some("custom value"));
    assert!(seen.header("x-kong-signature").is_some());
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({"source": "kong:event_hooks", "event": "ping", "operation": "create", "event_hooks": hook})
    );
}

// ---- webhook-custom ------------------------------------------------------

/// Sends the event of `username` once through a webhook-custom hook with
/// `method`, to `path` on a receiver answering 200, configured further by
/// `configure`; returns what the receiver saw.
async fn sent_custom(
    path: &str,
    method: &str,
    username: &str,
    configure: impl FnOnce(&mut WebhookCustomConfig),
) -> Seen {
    let receiver = Receiver::start(Answer::ok()).await;
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let mut cfg = WebhookCustomConfig::new(receiver.url(path), method);
    configure(&mut cfg);
    let event = event(username);
    out.webhook_custom(&cfg, &attempt(&event), &templates())
        .await
        .unwrap();
    receiver.only()
}

/// `seen` is multipart with hookd's boundary and exactly these parts.
fn assert_multipart(seen: &Seen, parts: &[(&str, &str)]) {
    let boundary = format!("hookd-{}", DELIVERY.simple());
    assert_eq!(
        seen.header("content-type").unwrap(),
        format!("multipart/form-data; boundary={boundary}")
    );
    let mut want = String::new();
    for (name, value) in parts {
        want += &format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        );
    }
    want += &format!("--{boundary}--\r\n");
    assert_eq!(seen.text(), want);
}

#[tokio::test]
async fn custom_get_sends_the_payload_as_query_string_and_signs_the_empty_body() {
    let seen = sent_custom("/q?fixed=1", "GET", "bob & alice", |cfg| {
        cfg.payload = Some(map(&[
            ("user", "{{ entity.username }}"),
            ("op", "{{ operation }}"),
        ]));
        cfg.secret = Some("k".into());
    })
    .await;

    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri, "/q?fixed=1&op=create&user=bob+%26+alice");
    assert!(seen.body.is_empty());
    assert_eq!(
        seen.header("x-kong-signature").unwrap(),
        format!("sha1={}", hex_hmac::<Hmac<sha1::Sha1>>(b"k", b""))
    );
}

#[tokio::test]
async fn custom_json_body_escapes_values_as_json_strings() {
    let nasty = r#"b"o\b</script>"#;
    let seen = sent_custom("/j", "POST", nasty, |cfg| {
        cfg.headers = map(&[("Content-Type", "application/json")]);
        cfg.body = Some(
            r#"{"name": "{{ entity.username }}", "text": "Admin account `{{ entity.username }}` {{ operation }}d", "entity": {* entity *}}"#
                .into(),
        );
    })
    .await;

    assert_eq!(seen.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&seen.body).expect("the body is valid JSON");
    assert_eq!(body["name"], nasty);
    assert_eq!(body["text"], format!("Admin account `{nasty}` created"));
    assert_eq!(body["entity"], json!({"id": "c1", "username": nasty}));
}

#[tokio::test]
async fn custom_text_body_is_html_escaped_and_raw_braces_are_not() {
    let seen = sent_custom("/t", "PUT", "<b>&'", |cfg| {
        cfg.headers = map(&[("content-type", "text/plain")]);
        cfg.body = Some("escaped={{ entity.username }} raw={* entity.username *}".into());
    })
    .await;

    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.text(), "escaped=&lt;b&gt;&amp;&#39; raw=<b>&'");
}

#[tokio::test]
async fn custom_payload_as_json() {
    let seen = sent_custom("/p", "POST", r#"q"uo\te"#, |cfg| {
        cfg.headers = map(&[("CONTENT-TYPE", "application/json")]);
        cfg.payload = Some(map(&[
            ("user", "{{ entity.username }}"),
            ("schema", "{{ schema }}"),
        ]));
    })
    .await;

    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body, json!({"user": r#"q"uo\te"#, "schema": "consumers"}));
}

#[tokio::test]
async fn custom_payload_as_form() {
    let seen = sent_custom("/f", "PATCH", "a b&c=d", |cfg| {
        cfg.headers = map(&[("Content-Type", "application/x-www-form-urlencoded")]);
        cfg.payload = Some(map(&[
            ("user", "{{ entity.username }}"),
            ("op", "{{ operation }}"),
        ]));
    })
    .await;

    assert_eq!(seen.method, "PATCH");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        [
            ("op".to_string(), "create".to_string()),
            ("user".to_string(), "a b&c=d".to_string())
        ]
    );
}

#[tokio::test]
async fn custom_payload_as_multipart_gets_a_boundary() {
    let seen = sent_custom("/m", "POST", "bob", |cfg| {
        cfg.headers = map(&[("Content-Type", "multipart/form-data")]);
        cfg.payload = Some(map(&[("user", "{{ entity.username }}")]));
    })
    .await;

    assert_multipart(&seen, &[("user", "bob")]);
}

#[tokio::test]
async fn custom_payload_without_content_type_is_multipart_and_the_header_is_added() {
    let seen = sent_custom("/m", "POST", "bob", |cfg| {
        cfg.payload = Some(map(&[("a", "1"), ("b", "{{ event }}")]));
        cfg.secret = Some("k".into());
    })
    .await;

    assert_multipart(&seen, &[("a", "1"), ("b", "consumers")]);
    // The exact bytes sent are the bytes signed.
    assert_eq!(
        seen.header("x-kong-signature").unwrap(),
        format!("sha1={}", hex_hmac::<Hmac<sha1::Sha1>>(b"k", &seen.body))
    );
}

#[tokio::test]
async fn custom_render_error_fails_before_connecting() {
    let receiver = Receiver::start(Answer::ok()).await;
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let mut cfg = WebhookCustomConfig::new(receiver.url("/"), "POST");
    cfg.body = Some("{{ entity.username + 1 }}".into());
    let event = event("bob");

    let err = out
        .webhook_custom(&cfg, &attempt(&event), &templates())
        .await
        .unwrap_err();

    // What the error says is the unit tests' business; here, that it
    // came before any connection.
    assert!(matches!(&err, HandlerError::Render { .. }), "{err}");
    assert_eq!(receiver.connections(), 0);
}

// ---- answers -------------------------------------------------------------

/// What the webhook handler made of `answer`, and the receiver that gave it.
async fn webhook_answer(answer: Answer) -> (Response, Receiver) {
    let receiver = Receiver::start(answer).await;
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let event = event("bob");
    let response = out
        .webhook(&webhook(receiver.url("/here"), None), &attempt(&event))
        .await
        .unwrap();
    (response, receiver)
}

#[tokio::test]
async fn redirects_are_answers_not_followed() {
    let (response, receiver) = webhook_answer(Answer {
        status: 302,
        headers: vec![("location", "/elsewhere".into())],
        body: Vec::new(),
    })
    .await;

    assert_eq!(response.status, 302);
    assert!(!response.is_success());
    assert_eq!(response.headers["location"], "/elsewhere");
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test]
async fn retry_after_is_parsed_in_both_forms() {
    let date = "Fri, 31 Dec 1999 23:59:59 GMT";
    for (value, want) in [
        ("120", RetryAfter::Seconds(120)),
        (
            date,
            RetryAfter::At(SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799)),
        ),
    ] {
        let (response, _) = webhook_answer(Answer {
            status: 503,
            headers: vec![("retry-after", value.into())],
            body: b"busy".to_vec(),
        })
        .await;
        assert_eq!(response.status, 503);
        assert_eq!(response.retry_after, Some(want));
    }
}

#[tokio::test]
async fn a_large_body_is_cut_at_the_limit() {
    let (response, _) = webhook_answer(Answer {
        status: 200,
        headers: Vec::new(),
        body: vec![b'x'; 2 * MAX_RESPONSE_BODY],
    })
    .await;
    assert_eq!(response.body.len(), MAX_RESPONSE_BODY);
    assert_eq!(response.excerpt().len(), 4096);
}

// ---- failures ------------------------------------------------------------

#[tokio::test]
async fn a_silent_receiver_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accept, read nothing, answer nothing
        }
    });
    let out = Outbound::new(HttpSettings {
        timeout: Duration::from_millis(200),
        policy: loopback_allowed(),
        kong_signature: KongSignature::Sha1,
    })
    .unwrap();
    let event = event("bob");
    let err = out
        .webhook(&webhook(format!("http://{addr}/"), None), &attempt(&event))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let event = event("bob");
    let err = out
        .webhook(&webhook(format!("http://{addr}/"), None), &attempt(&event))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Connect(_)), "{err}");
    assert!(err.to_string().starts_with("could not connect: "), "{err}");
}

#[tokio::test]
async fn loopback_is_refused_without_the_allowlist() {
    let receiver = Receiver::start(Answer::ok()).await;
    let port = receiver.addr.port();
    let out = outbound(OutboundPolicy::default(), KongSignature::Sha1);
    let event = event("bob");
    for ssl_verify in [false, true] {
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
            format!("http://[::1]:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            // Shorthand IPv4 forms, which the URL parser normalises.
            format!("http://127.1:{port}/"),
            format!("http://2130706433:{port}/"),
        ] {
            let mut cfg = webhook(url.clone(), None);
            cfg.ssl_verify = ssl_verify;
            let err = out.webhook(&cfg, &attempt(&event)).await.unwrap_err();
            match &err {
                HandlerError::Refused { addr, reason } => {
                    assert!(
                        addr.is_loopback() || addr.to_string() == "::ffff:127.0.0.1",
                        "{url}: {addr}"
                    );
                    assert_eq!(*reason, Restricted::Loopback, "{url}");
                }
                other => panic!("{url}: expected a refusal, got {other}"),
            }
        }
    }
    let mut cfg = WebhookCustomConfig::new(format!("http://localhost:{port}/"), "POST");
    cfg.payload = Some(map(&[("a", "1")]));
    let err = out
        .webhook_custom(&cfg, &attempt(&event), &templates())
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Refused { .. }), "{err}");
    assert_eq!(receiver.connections(), 0, "nothing may reach the receiver");
}

// ---- TLS -----------------------------------------------------------------

/// A self-signed certificate for localhost and 127.0.0.1 (test only).
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUc7w0JURi8PqanajZsgLChgjZn8YwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNzA5MzA1OFoYDzIxMjYxMTAz
MDkzMDU4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATYVgFL2zSP3OY8ze/iPVz4adJi77U9Q5KHNDzJLu1+Fw+9LFtiZ0xa
KigYQ4+iJWe9zwkOhXFbNkgGduI2X41ho28wbTAdBgNVHQ4EFgQUcEGwBu0i21rW
uD+LTyO/TFCUn1UwHwYDVR0jBBgwFoAUcEGwBu0i21rWuD+LTyO/TFCUn1UwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIhAN4auLH89EigKbCR6oJoeswNHCMM0A9TL+zkz/v9NToEAiAe
MzOmvRweFUCSQ/NcDDoCXnGfG15QxrZmjvJbLGAFMg==
-----END CERTIFICATE-----
";
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLRoKZjTMl4rboZfP
1QREevQVDH2v4ExSJTgJvMysKcmhRANCAATYVgFL2zSP3OY8ze/iPVz4adJi77U9
Q5KHNDzJLu1+Fw+9LFtiZ0xaKigYQ4+iJWe9zwkOhXFbNkgGduI2X41h
-----END PRIVATE KEY-----
";

/// An HTTPS receiver with the self-signed certificate that answers every
/// request 200 and closes.
async fn tls_receiver() -> SocketAddr {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{ServerConfig, crypto};

    let certs = CertificateDer::pem_slice_iter(TEST_CERT.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn ssl_verify_is_honoured() {
    let addr = tls_receiver().await;
    let out = outbound(loopback_allowed(), KongSignature::Sha1);
    let event = event("bob");
    let mut cfg = webhook(format!("https://localhost:{}/", addr.port()), None);

    cfg.ssl_verify = false;
    let response = out.webhook(&cfg, &attempt(&event)).await.unwrap();
    assert_eq!((response.status, response.body.as_str()), (200, "secure"));

    cfg.ssl_verify = true;
    let err = out.webhook(&cfg, &attempt(&event)).await.unwrap_err();
    assert!(matches!(err, HandlerError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
}
