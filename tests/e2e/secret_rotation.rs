//! Changing a webhook hook's secret without a gap: the replaced secret
//! still signs, beside the new one, for `secret_overlap`. Receivers are
//! checked with the Standard Webhooks reference library (PyPI
//! `standardwebhooks`, run by `standard_webhooks_verify.py` with the Python
//! `HOOKD_TEST_PYTHON` names, `python3` by default); where it is not
//! installed the tests are skipped, unless `HOOKD_REQUIRE_STANDARDWEBHOOKS=1`
//! (CI), which makes that a failure.

use crate::support::{Options, Server};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hookd_testkit::eventually;
use hookd_testkit::receiver::{Received, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The secret before the rotation: the Standard Webhooks example key.
const A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The secret after it.
const B: &str = "whsec_aG9va2Qgcm90YXRpb24gc2VjcmV0IEIh";

const REQUIRED: &str = "HOOKD_REQUIRE_STANDARDWEBHOOKS";

fn python() -> String {
    std::env::var("HOOKD_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn verifier() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/standard_webhooks_verify.py")
}

/// Why the reference library cannot run here, if it cannot; a failure
/// when CI requires it.
fn reference_library_missing() -> Option<String> {
    let import = Command::new(python())
        .args(["-c", "import standardwebhooks"])
        .output();
    let missing = match import {
        Ok(out) if out.status.success() => return None,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        Err(e) => format!("{}: {e}", python()),
    };
    assert!(
        std::env::var(REQUIRED).as_deref() != Ok("1"),
        "{REQUIRED}=1 but the standardwebhooks library is missing: {missing} \
         (pip install standardwebhooks)"
    );
    eprintln!("skipped: the standardwebhooks library is missing: {missing}");
    Some(missing)
}

/// The reference library's verdict on `request` with each secret: `true`
/// when it verifies, else the library's error.
fn verify(request: &Received, secrets: &[&str]) -> Vec<Value> {
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().expect("a text header");
            (name.as_str().to_string(), Value::from(value))
        })
        .collect();
    let input = json!({"secrets": secrets, "headers": headers,
                       "body_base64": STANDARD.encode(&request.body)});
    let mut child = Command::new(python())
        .arg(verifier())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting Python");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        verifier().display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the verifier's JSON")
}

/// Kong's `X-Kong-Signature` of `body` with `secret`'s plain bytes.
fn kong_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A loopback server with `HOOKD_SECRET_OVERLAP` set to `overlap`, and a
/// webhook hook on consumer creations signed with `A`.
async fn signed_hook(overlap: &str) -> (Server, Receiver, String) {
    let server = Server::start_with(Options::loopback().env("HOOKD_SECRET_OVERLAP", overlap)).await;
    let receiver = Receiver::start().await;
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers:create", "handler": "webhook",
                    "config": {"url": receiver.url("/"), "secret": A}}),
        )
        .await;
    assert_eq!(hook["config"]["previous_secret"], Value::Null);
    let path = format!("/event-hooks/{}", hook["id"].as_str().unwrap());
    (server, receiver, path)
}

/// Creates a consumer and returns the event request the receiver got.
async fn consumer_event(server: &Server, receiver: &Receiver, username: &str) -> Received {
    server
        .create("/consumers", &json!({"username": username}))
        .await;
    eventually(&format!("the event of {username}"), || async {
        receiver
            .received()
            .into_iter()
            .find(|r| r.json()["entity"]["username"] == username)
    })
    .await
}

async fn patched(server: &Server, path: &str, body: Value) -> Value {
    let (status, hook) = server.patch(path, &body).await;
    assert_eq!(status, StatusCode::OK, "PATCH {path} {body}: {hook}");
    hook
}

#[tokio::test]
async fn during_the_overlap_both_secrets_verify() {
    if reference_library_missing().is_some() {
        return;
    }
    let (server, receiver, path) = signed_hook("1h").await;
    let before = now_s();
    let hook = patched(&server, &path, json!({"config": {"secret": B}})).await;
    let previous = &hook["config"]["previous_secret"];
    assert_eq!(previous["secret"], A, "{hook}");
    let expires_at = previous["expires_at"].as_i64().unwrap();
    assert!(
        (before + 3600..=now_s() + 3600).contains(&expires_at),
        "an hour from the PATCH: {expires_at}"
    );
    assert_eq!(server.get(&path).await.1, hook, "GET shows it");

    let request = consumer_event(&server, &receiver, "during").await;
    assert_eq!(verify(&request, &[A, B]), [true, true]);
    let signatures = request.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert_eq!(
        request.header("x-kong-signature").unwrap(),
        kong_signature(B, &request.body),
        "Kong's header is on the new secret alone"
    );

    // Writing the same secret again, as `hookd apply` does with PUT, keeps
    // the overlap; a PATCH that names previous_secret sets it.
    let mut whole = hook.clone();
    whole["config"]
        .as_object_mut()
        .unwrap()
        .remove("previous_secret");
    let (status, put) = server.put(&path, &whole).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["config"]["previous_secret"], *previous);
    let hook = patched(&server, &path, json!({"config": {"previous_secret": null}})).await;
    assert_eq!(hook["config"]["previous_secret"], Value::Null);
    let request = consumer_event(&server, &receiver, "ended").await;
    assert_eq!(verify(&request, &[B])[0], true);
    assert_ne!(verify(&request, &[A])[0], true);
}

#[tokio::test]
async fn after_the_overlap_only_the_new_secret_verifies() {
    if reference_library_missing().is_some() {
        return;
    }
    // No overlap: the replaced secret expires as it is replaced.
    let (server, receiver, path) = signed_hook("0s").await;
    let hook = patched(&server, &path, json!({"config": {"secret": B}})).await;
    assert_eq!(hook["config"]["previous_secret"]["secret"], A, "{hook}");

    let request = consumer_event(&server, &receiver, "after").await;
    let verdicts = verify(&request, &[A, B]);
    assert_ne!(verdicts[0], true, "the expired secret no longer signs");
    assert_eq!(verdicts[1], true);
    assert_eq!(
        request.header("x-kong-signature").unwrap(),
        kong_signature(B, &request.body)
    );

    // A previous secret given in the input is kept as given: here one
    // restored with a later expiry signs again.
    let restored = json!({"secret": A, "expires_at": now_s() + 600});
    let hook = patched(
        &server,
        &path,
        json!({"config": {"previous_secret": restored}}),
    )
    .await;
    assert_eq!(hook["config"]["previous_secret"], restored);
    let request = consumer_event(&server, &receiver, "restored").await;
    assert_eq!(verify(&request, &[A, B]), [true, true]);
}

#[tokio::test]
async fn previous_secret_is_refused_in_kongs_shape() {
    let (server, _receiver, path) = signed_hook("1h").await;
    let (status, error) = server
        .patch(
            &path,
            &json!({"config": {"previous_secret": {"secret": A, "expires_at": "soon"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error,
        json!({"code": 2, "name": "schema violation",
               "message": "schema violation (config.previous_secret.expires_at: expected an integer)",
               "fields": {"config": {"previous_secret": {"expires_at": "expected an integer"}}}})
    );
}
