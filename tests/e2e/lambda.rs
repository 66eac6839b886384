//! The lambda handler end to end: guests uploaded over REST, chains run on
//! crud events, the sandbox's grants, ceilings and limits, and the audit.

use crate::support::{Options, Server, attempted};
use hookd_testkit::receiver::Receiver;
use hookd_testkit::{eventually, guests};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) async fn upload(server: &Server, name: &str, file: &str) -> (StatusCode, Value) {
    server
        .post_raw(
            &format!("/guests?name={name}"),
            "application/wasm",
            guests::bytes(file),
        )
        .await
}

/// Uploads the guest `file` as a browser form would: multipart, with its
/// name in a field of its own.
pub(crate) async fn upload_form(server: &Server, name: &str, file: &str) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new()
        .text("name", name.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(guests::bytes(file)).file_name(format!("{file}.wasm")),
        );
    let response = server
        .http
        .post(server.url("/guests"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub(crate) async fn uploaded(server: &Server, name: &str, file: &str) -> Value {
    let (status, body) = upload(server, name, file).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

pub(crate) async fn lambda_hook(server: &Server, event: &str, config: Value) -> Value {
    server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": event, "handler": "lambda", "config": config}),
        )
        .await
}

/// POST /event-hooks/{id}/test.
pub(crate) async fn test_hook(server: &Server, hook: &Value, data: Value) -> (StatusCode, Value) {
    server
        .post(
            &format!("/event-hooks/{}/test", hook["id"].as_str().unwrap()),
            &data,
        )
        .await
}

#[tokio::test]
async fn upload_reports_kind_imports_and_capabilities() {
    let server = Server::start().await;
    let bytes = guests::bytes("transform");
    let guest = uploaded(&server, "transform", "transform").await;
    assert_eq!(guest["name"], "transform");
    assert_eq!(guest["kind"], "component");
    assert_eq!(guest["size"], bytes.len());
    assert_eq!(guest["digest"], hex::encode(Sha256::digest(&bytes)));
    assert_eq!(guest["exports"], json!(["handle"]));
    let imports: Vec<&str> = guest["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(imports.contains(&"hookd:lambda/host@0.1.0"), "{imports:?}");
    assert!(
        guest["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("hookd-host"))
    );
    assert!(uuid::Uuid::try_parse(guest["id"].as_str().unwrap()).is_ok());

    // Multipart, as a browser form would send it.
    let (status, upper) = upload_form(&server, "upper", "c-upper").await;
    assert_eq!(status, StatusCode::CREATED, "{upper}");
    assert_eq!(upper["kind"], "command");
    assert!(
        upper["imports"]
            .as_array()
            .unwrap()
            .contains(&json!("wasi_snapshot_preview1::fd_read"))
    );
    assert_eq!(upper["capabilities"], json!(["stdio"]));

    let (_, list) = server.get("/guests").await;
    let names: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["name"])
        .collect();
    assert_eq!(names, [&json!("transform"), &json!("upper")]);
    assert_eq!(
        server.get("/guests/transform").await,
        (StatusCode::OK, guest.clone())
    );
    assert_eq!(
        server
            .get(&format!("/guests/{}", guest["id"].as_str().unwrap()))
            .await
            .1,
        guest
    );
    assert_eq!(server.get("/guests/nope").await.0, StatusCode::NOT_FOUND);
    let download = server
        .http
        .get(server.url("/guests/transform/wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.headers()["content-type"], "application/wasm");
    assert_eq!(download.bytes().await.unwrap().to_vec(), bytes);

    let (status, audit) = server.get("/guests/transform/audit").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(audit["mode"], "sandbox");
    assert!(
        audit["imports"]
            .as_array()
            .unwrap()
            .contains(&json!({"import": "hookd:lambda/host@0.1.0", "capability": "hookd-host"}))
    );
}

#[tokio::test]
async fn uploads_that_are_not_guests_are_refused_with_their_reason() {
    let server =
        Server::start_with(Options::default().env("HOOKD_GUEST_SIZE_LIMIT", "200000")).await;
    let reason = |body: &Value| {
        body["fields"]["file"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (status, body) = server
        .post_raw(
            "/guests?name=junk",
            "application/wasm",
            b"definitely not wasm".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("not WebAssembly"), "{body}");
    let (status, body) = upload(&server, "reactor", "c-reactor").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason(&body).contains("_start"), "{body}");
    let (status, body) = upload(&server, "other", "wrong-world").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reason(&body).contains("handle") && reason(&body).contains("run"),
        "{body}"
    );
    let mut truncated = guests::bytes("transform");
    truncated.truncate(5000);
    let (status, body) = server
        .post_raw("/guests?name=cut", "application/wasm", truncated)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post_raw("/guests", "application/wasm", guests::bytes("noop"))
        .await;
    assert_eq!(
        (status, body["fields"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!({"name": "required field missing"})
        )
    );
    let (status, body) = server
        .post_raw("/guests?name=big", "application/wasm", vec![0u8; 300_000])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // A guest sent as something else is told what to send.
    let (status, body) = server
        .post_raw("/guests?name=typed", "text/plain", guests::bytes("noop"))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("send application/wasm (with ?name=)"),
        "{body}"
    );
    assert_eq!(body["accepted"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(server.get("/guests").await.1["data"], json!([]));
}

#[tokio::test]
async fn a_crud_event_runs_the_chain_and_the_result_is_in_the_delivery() {
    let server = Server::start().await;
    uploaded(&server, "transform", "transform").await;
    uploaded(&server, "upper", "c-upper").await;
    let hook = lambda_hook(
        &server,
        "consumers:create",
        json!({"functions": ["transform", "upper"]}),
    )
    .await;
    server
        .create("/consumers", &json!({"username": "bob"}))
        .await;
    let delivery = server
        .newest_delivery(&hook, "the lambda delivery", |d| d["state"] == "succeeded")
        .await;
    let result = &delivery["attempts"][0]["result"];
    // c-upper wraps its input: the transform guest's output.
    assert_eq!(result["c_guest"], true, "{result}");
    let transformed = &result["data"];
    assert_eq!(transformed["entity"]["username"], "BOB");
    assert_eq!(transformed["transformed_by"], "transform");
    assert_eq!(transformed["chain"], json!(["transform"]));
    assert_eq!(transformed["operation"], "create");
}

#[tokio::test]
async fn the_http_guest_reaches_a_granted_host_and_is_refused_others() {
    let receiver = Receiver::start().await;
    let granted = format!("127.0.0.1:{}", receiver.addr.port());
    let server =
        Server::start_with(Options::loopback().env("HOOKD_SANDBOX_ALLOWED_HOSTS", &granted)).await;
    uploaded(&server, "poster", "http-post").await;
    let allowed = lambda_hook(
        &server,
        "consumers",
        json!({"functions": ["poster"], "capabilities": {"http": [granted]}}),
    )
    .await;
    let data = json!({"target_url": receiver.url("/from-guest"), "n": 1});
    let (status, answer) = test_hook(&server, &allowed, data.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["http_status"], 200);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].uri, "/from-guest");
    assert_eq!(got[0].json(), data);

    let refused = lambda_hook(&server, "consumers", json!({"functions": ["poster"]})).await;
    let (status, answer) = test_hook(&server, &refused, data).await;
    // The guest handles the refusal and returns its own error: answered
    // as the guest's, with its message, not as the server's failure.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["guest_error"]["step"], 1, "{answer}");
    assert_eq!(answer["guest_error"]["function"], "poster", "{answer}");
    assert!(
        answer["guest_error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("http request refused: "),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("function 1 ('poster') of the chain returned an error: "),
        "{answer}"
    );
    assert_eq!(
        receiver.received().len(),
        1,
        "the refused request never left"
    );
    let (status, audit) = server
        .get(&format!(
            "/audit?verdict=denied&hook={}",
            refused["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let record = &audit["data"][0];
    assert_eq!(record["capability"], "http", "{audit}");
    assert_eq!(record["target"], granted);
    assert_eq!(record["verdict"], "denied");
    assert_eq!(record["guest"]["name"], "poster");
    let (_, allowed_audit) = server
        .get(&format!("/audit?hook={}", allowed["id"].as_str().unwrap()))
        .await;
    assert!(
        allowed_audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["verdict"] == "allowed"),
        "{allowed_audit}"
    );
    assert!(!allowed_audit["data"].as_array().unwrap().is_empty());

    let by_capability = |capability: &'static str| {
        let path = format!(
            "/audit?capability={capability}&hook={}",
            refused["id"].as_str().unwrap()
        );
        let server = &server;
        async move { server.get(&path).await }
    };
    let (status, http) = by_capability("http").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(http["data"][0]["target"], granted, "{http}");
    let (_, files) = by_capability("filesystem").await;
    assert_eq!(files["data"], json!([]));
    let (status, bogus) = by_capability("telepathy").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bogus["fields"]["capability"]
            .as_str()
            .unwrap()
            .contains("http, network, filesystem"),
        "{bogus}"
    );
}

#[tokio::test]
async fn hostile_guests_are_stopped_within_their_limits_and_the_server_carries_on() {
    let server = Server::start().await;
    uploaded(&server, "transform", "transform").await;
    let limits = json!({"timeout_ms": 500, "memory": 16_777_216});
    let cases = [
        ("spin", "time limit"),
        ("memory-bomb", "memory"),
        ("recursion", "stack"),
        ("output-flood", "time limit"),
    ];
    for (guest, expected) in cases {
        uploaded(&server, guest, guest).await;
        let hook = lambda_hook(
            &server,
            "consumers",
            json!({"functions": [guest], "limits": limits}),
        )
        .await;
        let (status, answer) = test_hook(&server, &hook, json!({})).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{guest}: {answer}"
        );
        let err = answer["err"].as_str().unwrap().to_lowercase();
        assert!(err.contains(expected), "{guest}: {err}");
        // The server is healthy and the next event runs normally.
        assert_eq!(server.get("/status").await.0, StatusCode::OK);
        let normal = lambda_hook(&server, "consumers", json!({"functions": ["transform"]})).await;
        let (status, answer) =
            test_hook(&server, &normal, json!({"entity": {"username": "ok"}})).await;
        assert_eq!(status, StatusCode::OK, "after {guest}: {answer}");
        assert_eq!(answer["result"]["entity"]["username"], "OK");
    }
    assert!(
        server.logs().contains("hookd::guest"),
        "guest output reached the server log"
    );
}

#[tokio::test]
async fn fuel_limits_need_fuel_metering_and_then_stop_the_guest() {
    let config = json!({"functions": ["spin"], "limits": {"fuel": 1_000_000, "timeout_ms": 5_000}});
    let hook =
        json!({"source": "crud", "event": "consumers", "handler": "lambda", "config": config});

    let server = Server::start().await;
    uploaded(&server, "spin", "spin").await;
    let (status, body) = server.post("/event-hooks", &hook).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["fields"]["config"]["limits"]["fuel"],
        "fuel is not counted on this server (sandbox_fuel_metering = false)"
    );

    let metered =
        Server::start_with(Options::default().env("HOOKD_SANDBOX_FUEL_METERING", "true")).await;
    uploaded(&metered, "spin", "spin").await;
    let hook = metered.create("/event-hooks", &hook).await;
    let (status, answer) = test_hook(&metered, &hook, json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    let err = answer["err"].as_str().unwrap();
    assert!(err.contains("ran out of fuel (1000000)"), "{err}");
}

#[tokio::test]
async fn ungranted_environment_and_files_stay_out_of_reach() {
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_SANDBOX_ENV", "GUEST_TEST_GRANTED")
            .env("GUEST_TEST_GRANTED", "visible")
            .env("GUEST_TEST_SECRET", "hidden"),
    )
    .await;
    uploaded(&server, "snoop", "snoop").await;
    let hook = lambda_hook(
        &server,
        "consumers",
        json!({"functions": ["snoop"], "capabilities": {"env": ["GUEST_TEST_GRANTED"]}}),
    )
    .await;
    let probe = |data: Value| test_hook(&server, &hook, data);
    let (_, answer) = probe(json!({"probe": "env", "name": "GUEST_TEST_GRANTED"})).await;
    assert_eq!(answer["result"]["ok"], true, "{answer}");
    assert_eq!(answer["result"]["value"], "visible");
    let (_, answer) = probe(json!({"probe": "env", "name": "GUEST_TEST_SECRET"})).await;
    assert_eq!(answer["result"]["ok"], false, "{answer}");
    let secret_file = server.scratch().join("secret.txt");
    std::fs::write(&secret_file, "top secret").unwrap();
    let (_, answer) =
        probe(json!({"probe": "file", "path": secret_file.display().to_string()})).await;
    assert_eq!(answer["result"]["ok"], false, "{answer}");
    let (_, answer) = probe(json!({"probe": "file", "path": "/etc/hostname"})).await;
    assert_eq!(answer["result"]["ok"], false, "{answer}");
}

#[tokio::test]
async fn untrusted_wasm_off_refuses_lambda_hooks_and_stops_existing_ones() {
    let mut server = Server::start().await;
    uploaded(&server, "transform", "transform").await;
    let hook = lambda_hook(
        &server,
        "consumers:create",
        json!({"functions": ["transform"]}),
    )
    .await;
    // The same data, with lambda turned off.
    server.restart_with(
        Options::default()
            .env("HOOKD_UNTRUSTED_WASM", "off")
            .env("HOOKD_RETRY_SCHEDULE", "50ms"),
    );
    let (status, body) = server
        .post(
            "/event-hooks",
            &json!({"source": "crud", "handler": "lambda", "config": {"functions": ["transform"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["fields"],
        json!({"handler": "lambda hooks are disabled (untrusted_wasm = off)"})
    );
    server
        .create("/consumers", &json!({"username": "eve"}))
        .await;
    let delivery = server
        .newest_delivery(&hook, "a refused lambda attempt", attempted)
        .await;
    assert!(
        delivery["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("untrusted_wasm = off"),
        "{delivery}"
    );
}

#[tokio::test]
async fn a_hook_asking_beyond_the_ceiling_is_refused_naming_the_capability() {
    let server =
        Server::start_with(Options::default().env("HOOKD_SANDBOX_ALLOWED_HOSTS", "*.example.com"))
            .await;
    uploaded(&server, "poster", "http-post").await;
    let (status, body) = server
        .post("/event-hooks", &json!({"source": "crud", "handler": "lambda", "config": {
            "functions": ["poster", "ghost"],
            "capabilities": {"http": ["api.example.com", "evil.example.net"], "env": ["AWS_SECRET_ACCESS_KEY"],
                             "dirs": [{"host": "/etc", "guest": "/etc"}]},
            "limits": {"memory": 4_294_967_296u64}}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = &body["fields"]["config"];
    assert_eq!(
        fields["capabilities"]["http"]["2"],
        "host 'evil.example.net' is not within the sandbox ceiling (sandbox_allowed_hosts)"
    );
    assert!(
        fields["capabilities"]["http"].get("1").is_none(),
        "within the ceiling: {body}"
    );
    assert!(
        fields["capabilities"]["env"]["1"]
            .as_str()
            .unwrap()
            .contains("sandbox_env")
    );
    assert!(
        fields["capabilities"]["dirs"]["1"]
            .as_str()
            .unwrap()
            .contains("sandbox_dirs")
    );
    assert!(
        fields["limits"]["memory"]
            .as_str()
            .unwrap()
            .contains("exceeds the server maximum")
    );
    assert_eq!(fields["functions"]["2"], "guest 'ghost' does not exist");
    assert_eq!(server.get("/event-hooks").await.1["data"], json!([]));
}

#[tokio::test]
async fn replacing_a_guest_by_name_changes_the_next_event_and_digests_pin() {
    let server = Server::start().await;
    let first = uploaded(&server, "g", "transform").await;
    let by_name = lambda_hook(&server, "consumers", json!({"functions": ["g"]})).await;
    let pinned = lambda_hook(
        &server,
        "consumers",
        json!({"functions": [format!("sha256:{}", first["digest"].as_str().unwrap())]}),
    )
    .await;
    let data = json!({"entity": {"username": "ann"}});
    assert_eq!(
        test_hook(&server, &by_name, data.clone()).await.1["result"]["transformed_by"],
        "transform"
    );
    let second = uploaded(&server, "g", "c-upper").await;
    assert_eq!(second["id"], first["id"], "same guest, new version");
    assert_ne!(second["digest"], first["digest"]);
    let (_, answer) = test_hook(&server, &by_name, data.clone()).await;
    assert_eq!(answer["result"]["c_guest"], true, "{answer}");
    let (_, answer) = test_hook(&server, &pinned, data).await;
    assert_eq!(answer["result"]["transformed_by"], "transform", "{answer}");
    // Both versions are kept, each with the hooks that run it.
    let (status, versions) = server.get("/guests/g/versions").await;
    assert_eq!(status, StatusCode::OK);
    let versions = versions["data"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0]["digest"], second["digest"]);
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[0]["hooks"], json!([by_name["id"]]));
    assert_eq!(versions[1]["digest"], first["digest"]);
    assert_eq!(versions[1]["current"], false);
    assert_eq!(versions[1]["hooks"], json!([pinned["id"]]));
    assert!(versions[1]["uploaded_at"].is_i64());
    // A guest in use cannot be deleted.
    let (status, body) = server.delete("/guests/g").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("guest 'g' is used by event hook")
    );
    for hook in [&by_name, &pinned] {
        server
            .delete(&format!("/event-hooks/{}", hook["id"].as_str().unwrap()))
            .await;
    }
    assert_eq!(server.delete("/guests/g").await.0, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/guests/g").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_restart_does_not_recompile_guests() {
    let mut server = Server::start().await;
    uploaded(&server, "transform", "transform").await;
    let hook = lambda_hook(&server, "consumers", json!({"functions": ["transform"]})).await;
    assert!(
        server.logs().contains("guest compiled"),
        "compiled once at upload"
    );
    server.restart();
    let before = server.logs().matches("guest compiled").count();
    let (status, _) = test_hook(&server, &hook, json!({"entity": {"username": "x"}})).await;
    assert_eq!(status, StatusCode::OK);
    // The server's log reaches the test through a pipe and a reader
    // thread: the line may land a moment after the answer.
    let logs = eventually("the guest loaded from the compiled cache", || async {
        let logs = server.logs();
        logs.contains("guest loaded from the compiled cache")
            .then_some(logs)
    })
    .await;
    assert_eq!(
        logs.matches("guest compiled").count(),
        before,
        "no compile after the restart"
    );
}

#[tokio::test]
async fn the_sandbox_defaults_as_documented() {
    let server = Server::start().await;
    uploaded(&server, "snoop", "snoop").await;
    let hook = lambda_hook(&server, "consumers", json!({"functions": ["snoop"]})).await;
    let (status, caps) = server
        .get(&format!(
            "/event-hooks/{}/capabilities",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{caps}");
    assert_eq!(caps["mode"], "sandbox");
    let grant = &caps["data"][0]["grant"];
    // DESIGN.md: no env, no dirs, no network; 64 MiB, 5 s, unmetered fuel by default.
    assert_eq!(grant["env"], json!([]));
    assert_eq!(grant["dirs"], json!([]));
    assert_eq!(grant["http"], json!([]));
    assert_eq!(
        grant["limits"],
        json!({"memory": 64 * 1024 * 1024, "timeout_ms": 5000, "fuel": null})
    );
    let usable = grant["usable"].as_array().unwrap();
    for denied in ["http", "network", "environment", "filesystem"] {
        assert!(
            !usable.contains(&json!(denied)),
            "{denied} is not usable by default: {grant}"
        );
    }
    assert_eq!(caps["data"][0]["guest"]["name"], "snoop");
    let log = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "handler": "log", "config": {}}),
        )
        .await;
    assert_eq!(
        server
            .get(&format!(
                "/event-hooks/{}/capabilities",
                log["id"].as_str().unwrap()
            ))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

/// Chains `transform` and the example guest `file`, a transform in
/// another language that names itself `name`: skipped when the guest is
/// not built, unless `required` (an environment variable CI sets) says it
/// must be.
async fn another_language_transforms_after_transform(
    file: &str,
    name: &str,
    required: &str,
    toolchain: &str,
) {
    let path = guests::path(file);
    if !path.exists() {
        assert!(
            std::env::var(required).is_err(),
            "{required} is set but {} was not built (guest-examples/build.sh)",
            path.display()
        );
        eprintln!(
            "skipped: {} not built (run guest-examples/build.sh with {toolchain})",
            path.display()
        );
        return;
    }
    let server = Server::start().await;
    let guest = uploaded(&server, name, file).await;
    assert_eq!(guest["kind"], "component");
    uploaded(&server, "transform", "transform").await;
    let hook = lambda_hook(
        &server,
        "consumers",
        json!({"functions": ["transform", name], "limits": {"timeout_ms": 30000}}),
    )
    .await;
    let (status, answer) = test_hook(&server, &hook, json!({"entity": {"username": name}})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["entity"]["username"], name.to_uppercase());
    assert_eq!(answer["result"]["transformed_by"], name);
    assert_eq!(answer["result"]["chain"], json!(["transform", name]));
}

#[tokio::test]
async fn a_python_guest_built_with_componentize_py() {
    another_language_transforms_after_transform(
        "python-transform",
        "python",
        "HOOKD_REQUIRE_PYTHON_GUEST",
        "componentize-py",
    )
    .await;
}

#[tokio::test]
async fn a_javascript_guest_built_with_componentize_js() {
    another_language_transforms_after_transform(
        "js-transform",
        "js",
        "HOOKD_REQUIRE_JS_GUEST",
        "node 20+ and componentize-js",
    )
    .await;
}
