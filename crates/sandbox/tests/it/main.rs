//! The sandbox against the real guests of `guest-examples/`: what is
//! accepted, what each capability grant lets through, how each hostile
//! guest is stopped, and the compiled cache.

mod reuse;
mod upload;

use hookd_model::Event;
use hookd_model::capability::{AllowedHost, Capabilities, CeilingItems, DirGrant, Limits};
use hookd_model::hook::{InstanceMode, LambdaConfig};
use hookd_model::outbound::OutboundPolicy;
use hookd_sandbox::{
    CapabilityClass, ChainOutcome, Failure, GuestKind, GuestRef, GuestRejected, GuestSource,
    Outcome, Sandbox, SandboxConfig, SourceError, UntrustedWasm, Verdict,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use uuid::Uuid;

use hookd_testkit::guests::{bytes, path as guest_path};

fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::new(config).unwrap()
}

fn lambda(functions: &[&str], capabilities: Capabilities, limits: Limits) -> LambdaConfig {
    LambdaConfig {
        functions: functions.iter().map(|f| f.to_string()).collect(),
        capabilities,
        limits,
        instance: InstanceMode::PerEvent,
    }
}

fn event(data: Value) -> Event {
    Event::new("crud", "consumers:create", data, 0)
}

/// Guests from guest-examples/, by name.
struct Examples;

#[async_trait::async_trait]
impl GuestSource for Examples {
    async fn resolve(&self, function: &str) -> Result<GuestRef, SourceError> {
        let digest = hookd_sandbox::digest(&std::fs::read(guest_path(function))?);
        Ok(GuestRef {
            name: function.to_string(),
            digest,
        })
    }

    async fn bytes(&self, guest: &GuestRef) -> Result<Vec<u8>, SourceError> {
        Ok(std::fs::read(guest_path(&guest.name))?)
    }
}

async fn run(sb: &Sandbox, lambda: &LambdaConfig, data: Value) -> ChainOutcome {
    sb.run_chain(Uuid::nil(), lambda, &event(data), &Examples)
        .await
}

/// Runs one guest once; its data parsed as JSON.
async fn run_one(
    sb: &Sandbox,
    name: &str,
    caps: Capabilities,
    limits: Limits,
    data: Value,
) -> Outcome {
    let guest = sb.prepare(&bytes(name)).unwrap();
    let grant = sb.grant(&lambda(&[name], caps, limits), guest.report());
    run_fresh(sb, &guest, &grant, name, data.to_string()).await
}

/// Runs a prepared guest once, granted nothing, for a crud event whose
/// data is `data` as it stands.
async fn run_ungranted(
    sb: &Sandbox,
    guest: &hookd_sandbox::Guest,
    name: &str,
    data: String,
) -> Outcome {
    let config = lambda(&[name], Capabilities::default(), Limits::default());
    let grant = sb.grant(&config, guest.report());
    run_fresh(sb, guest, &grant, name, data).await
}

/// Runs a prepared guest once on a fresh instance.
async fn run_fresh(
    sb: &Sandbox,
    guest: &hookd_sandbox::Guest,
    grant: &hookd_sandbox::EffectiveGrant,
    name: &str,
    data: String,
) -> Outcome {
    sb.invoke(
        guest,
        grant,
        hookd_sandbox::Invocation {
            hook_id: Uuid::nil(),
            guest_name: name,
            event_id: Uuid::nil(),
            source: "crud",
            event: "consumers:create",
            data,
            instance: hookd_sandbox::Instance::Fresh,
        },
    )
    .await
}

fn json_of(outcome: &Outcome) -> Value {
    match &outcome.result {
        Ok(Some(s)) => serde_json::from_str(s).unwrap(),
        other => panic!("expected data, got {other:?}"),
    }
}

/// A loopback HTTP receiver that counts the TCP connections it accepts.
struct Receiver {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn receiver() -> Receiver {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                            bytes::Bytes::from_static(b"ok"),
                        )))
                    },
                );
                let io = wasmtime_wasi_http::io::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Receiver { addr, accepted }
}

fn loopback_allowed() -> OutboundPolicy {
    OutboundPolicy::allowing(vec!["127.0.0.0/8".parse().unwrap()])
}

fn http_grant(patterns: &[String]) -> Capabilities {
    Capabilities {
        http: patterns.to_vec(),
        ..Capabilities::default()
    }
}

#[test]
fn inspect_accepts_components_and_commands_and_classes_their_imports() {
    let sb = sandbox(SandboxConfig::default());
    let transform = sb.inspect(&bytes("transform")).unwrap();
    assert_eq!(transform.kind, GuestKind::Component);
    assert_eq!(transform.exports, ["handle"]);
    assert!(
        transform
            .imports
            .iter()
            .any(|i| i.starts_with("hookd:lambda/host@"))
    );
    assert!(transform.capabilities.contains(&CapabilityClass::HookdHost));

    let http = sb.inspect(&bytes("http-post")).unwrap();
    assert!(
        http.imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@"))
    );
    assert!(http.capabilities.contains(&CapabilityClass::Http));
    assert!(
        http.capabilities.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates"
    );

    let c = sb.inspect(&bytes("c-upper")).unwrap();
    assert_eq!(c.kind, GuestKind::Command);
    assert!(
        c.imports
            .contains(&"wasi_snapshot_preview1::fd_read".to_string())
    );
    assert!(c.exports.contains(&"_start".to_string()));
    assert!(c.capabilities.contains(&CapabilityClass::Stdio));
    assert_eq!(c.digest, hookd_sandbox::digest(&bytes("c-upper")));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["kind"], "command");
}

#[test]
fn inspect_rejects_each_kind_of_bad_guest_with_its_reason() {
    let sb = sandbox(SandboxConfig {
        max_guest_bytes: 1 << 20,
        ..SandboxConfig::default()
    });
    let reject = |bytes: &[u8]| sb.inspect(bytes).unwrap_err();

    assert!(matches!(
        reject(b"{\"not\": \"wasm\"}"),
        GuestRejected::NotWasm
    ));
    let huge = [b"\0asm\x01\0\0\0".as_slice(), &vec![0; 1 << 20]].concat();
    assert!(matches!(reject(&huge), GuestRejected::TooLarge { max, .. } if max == 1 << 20));
    let invalid = reject(b"\0asm\x01\0\0\0garbage");
    assert!(matches!(
        invalid,
        GuestRejected::Invalid {
            kind: GuestKind::Command,
            ..
        }
    ));
    assert_eq!(
        invalid.to_string(),
        "not a valid WebAssembly command module: failed to parse WebAssembly module: unexpected end-of-file (at offset 0xa)"
    );

    let reactor = reject(&bytes("c-reactor"));
    assert!(matches!(reactor, GuestRejected::NotACommand), "{reactor}");
    assert!(reactor.to_string().contains("no `_start`"));

    let other = reject(&bytes("wrong-world"));
    assert!(matches!(other, GuestRejected::WrongWorld { .. }), "{other}");
    assert!(other.to_string().contains("its exports: run"), "{other}");

    let wrong_type = wat::parse_str(
        r#"(component
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (func (export "handle") (canon lift (core func $i "f"))))"#,
    )
    .unwrap();
    assert!(matches!(
        reject(&wrong_type),
        GuestRejected::WrongSignature { .. }
    ));

    let foreign = wat::parse_str(
        r#"(module (import "env" "secret" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    match reject(&foreign) {
        GuestRejected::UnsupportedImport { name, .. } => assert_eq!(name, "env::secret"),
        other => panic!("{other}"),
    }
    let unknown_wasi = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "sock_teleport" (func))
                   (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let unknown = reject(&unknown_wasi);
    assert!(
        unknown
            .to_string()
            .starts_with("unsupported import `wasi_snapshot_preview1::sock_teleport`")
    );
    match unknown {
        GuestRejected::UnsupportedImport { name, .. } => {
            assert_eq!(name, "wasi_snapshot_preview1::sock_teleport")
        }
        other => panic!("{other}"),
    }
    let no_memory = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    assert!(matches!(reject(&no_memory), GuestRejected::NoMemoryExport));
}

#[tokio::test]
async fn a_chain_passes_each_output_on_and_noop_changes_nothing() {
    let sb = sandbox(SandboxConfig::default());
    let data = json!({"entity": {"username": "alice"}});
    let out = run(
        &sb,
        &lambda(
            &["transform", "noop", "c-upper"],
            Capabilities::default(),
            Limits::default(),
        ),
        data.clone(),
    )
    .await;
    let result: Value = serde_json::from_str(out.result.as_ref().unwrap()).unwrap();
    assert_eq!(result["c_guest"], true);
    assert_eq!(result["data"]["entity"]["username"], "ALICE");
    assert_eq!(result["data"]["chain"], json!(["transform"]));
    assert_eq!(result["upper"]["transformed_by"], "TRANSFORM");
    let changed: Vec<bool> = out.steps.iter().map(|s| s.changed).collect();
    assert_eq!(changed, [true, false, true]);
    assert_eq!(out.steps[0].output.log_lines, 1, "transform logs once");

    let out = run(
        &sb,
        &lambda(&["noop"], Capabilities::default(), Limits::default()),
        data.clone(),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&out.result.unwrap()).unwrap(),
        data
    );
}

#[tokio::test]
async fn the_first_failure_stops_the_chain() {
    let sb = sandbox(SandboxConfig::default());
    // transform refuses data that is not an object; c-upper never runs.
    let out = run(
        &sb,
        &lambda(
            &["noop", "transform", "c-upper"],
            Capabilities::default(),
            Limits::default(),
        ),
        json!([1]),
    )
    .await;
    let failure = out.result.unwrap_err();
    assert_eq!(failure.step, 1);
    assert!(matches!(&failure.failure, Failure::GuestError(m) if m.contains("not a JSON object")));
    assert_eq!(out.steps.len(), 2);

    let missing = run(
        &sb,
        &lambda(
            &["no-such-guest"],
            Capabilities::default(),
            Limits::default(),
        ),
        json!({}),
    )
    .await;
    assert!(matches!(
        missing.result.unwrap_err().failure,
        Failure::Host(_)
    ));
}

#[tokio::test]
async fn a_command_that_exits_nonzero_fails_with_its_stderr() {
    let sb = sandbox(SandboxConfig::default());
    // c-upper refuses empty input.
    let guest = sb.prepare(&bytes("c-upper")).unwrap();
    let out = run_ungranted(&sb, &guest, "c-upper", String::new()).await;
    assert_eq!(
        out.result,
        Err(Failure::GuestError(
            "exited with status 1: c-upper: empty input on stdin".into()
        ))
    );
}

/// A command that counts its runs in memory and prints the count twice:
/// from a byte its data segment sets to '0' and from a byte that starts
/// zeroed. A fresh instance whose memory was reset prints "11" every time.
fn run_counting_command(pages: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write"
                (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") {pages})
            (data (i32.const 1024) "0")
            (func (export "_start")
                ;; the data segment's byte, counted up
                (i32.store8 (i32.const 1024)
                    (i32.add (i32.load8_u (i32.const 1024)) (i32.const 1)))
                ;; a zeroed byte, counted up and printed as a digit
                (i32.store8 (i32.const 2048)
                    (i32.add (i32.load8_u (i32.const 2048)) (i32.const 1)))
                (i32.store8 (i32.const 1025)
                    (i32.add (i32.load8_u (i32.const 2048)) (i32.const 48)))
                ;; one iovec at 0: 2 bytes from 1024
                (i32.store (i32.const 0) (i32.const 1024))
                (i32.store (i32.const 4) (i32.const 2))
                (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    ))
    .unwrap()
}

#[tokio::test]
async fn every_fresh_instance_starts_from_clean_memory_whatever_its_size() {
    let sb = sandbox(SandboxConfig::default());
    // 1 page is reset by clearing it, 17 by scanning for written pages
    // (crates/sandbox/src/engine.rs): both must forget the last run.
    for pages in [1, 17] {
        let guest = sb.prepare(&run_counting_command(pages)).unwrap();
        for run in 0..3 {
            let out = run_ungranted(&sb, &guest, "counting", String::new()).await;
            assert_eq!(
                out.result,
                Ok(Some("11".to_string())),
                "{pages} pages, run {run}"
            );
        }
    }
}

#[tokio::test]
async fn http_to_a_granted_host_goes_through_and_to_another_is_denied_without_a_connection() {
    let target = receiver().await;
    let decoy = receiver().await;
    let granted = format!("127.0.0.1:{}", target.addr.port());
    let sb = sandbox(SandboxConfig {
        ceiling: hookd_sandbox::SandboxCeiling {
            items: CeilingItems {
                allowed_hosts: vec![AllowedHost::parse("127.0.0.1:*").unwrap()],
                ..Default::default()
            },
            outbound: loopback_allowed(),
            ..Default::default()
        },
        ..SandboxConfig::default()
    });
    let caps = http_grant(std::slice::from_ref(&granted));

    let ok = run_one(
        &sb,
        "http-post",
        caps.clone(),
        Limits::default(),
        json!({"target_url": format!("http://{granted}/hook")}),
    )
    .await;
    assert_eq!(json_of(&ok)["http_status"], 200);
    assert_eq!(target.accepted.load(Ordering::SeqCst), 1);
    let seen: Vec<_> = ok
        .audit
        .iter()
        .map(|r| (r.capability, r.target.as_str(), r.verdict))
        .collect();
    assert_eq!(
        seen,
        [
            (CapabilityClass::Http, granted.as_str(), Verdict::Allowed),
            (CapabilityClass::Network, granted.as_str(), Verdict::Allowed),
        ]
    );

    let denied_target = format!("127.0.0.1:{}", decoy.addr.port());
    let denied = run_one(
        &sb,
        "http-post",
        caps,
        Limits::default(),
        json!({"target_url": format!("http://{denied_target}/")}),
    )
    .await;
    assert!(
        matches!(&denied.result, Err(Failure::GuestError(m)) if m.contains("HttpRequestDenied")),
        "{:?}",
        denied.result
    );
    assert_eq!(
        decoy.accepted.load(Ordering::SeqCst),
        0,
        "no TCP connection for a denied request"
    );
    assert_eq!(denied.audit.len(), 1);
    assert_eq!(denied.audit[0].verdict, Verdict::Denied);
    assert_eq!(denied.audit[0].target, denied_target);
    assert_eq!(denied.audit[0].capability, CapabilityClass::Http);
}

#[tokio::test]
async fn a_granted_name_that_resolves_to_a_refused_address_is_refused() {
    let target = receiver().await;
    let granted = format!("localhost:{}", target.addr.port());
    let sb = sandbox(SandboxConfig {
        ceiling: hookd_sandbox::SandboxCeiling {
            items: CeilingItems {
                allowed_hosts: vec![AllowedHost::parse(&granted).unwrap()],
                ..Default::default()
            },
            ..Default::default()
        },
        // No loopback allowlist: the default outbound policy.
        ..SandboxConfig::default()
    });
    let out = run_one(
        &sb,
        "http-post",
        http_grant(std::slice::from_ref(&granted)),
        Limits::default(),
        json!({"target_url": format!("http://{granted}/")}),
    )
    .await;
    assert!(
        matches!(&out.result, Err(Failure::GuestError(m)) if m.contains("DestinationIpProhibited")),
        "{:?}",
        out.result
    );
    assert_eq!(target.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(
        out.audit[0].verdict,
        Verdict::Allowed,
        "the name is granted"
    );
    let refused: Vec<_> = out.audit[1..]
        .iter()
        .filter(|r| r.capability == CapabilityClass::Network)
        .collect();
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|r| r.verdict == Verdict::Denied));
    assert!(refused[0].reason.as_deref().unwrap().contains("loopback"));
}

fn probe(outcome: &Outcome) -> (bool, String) {
    let v = json_of(outcome);
    let ok = v["ok"].as_bool().unwrap();
    let text = if ok { &v["value"] } else { &v["error"] };
    (ok, text.as_str().unwrap().to_string())
}

#[tokio::test]
async fn the_defaults_grant_no_env_no_files_and_no_http() {
    let sb = sandbox(SandboxConfig::default());
    let none = Capabilities::default;
    let env = run_one(
        &sb,
        "snoop",
        none(),
        Limits::default(),
        json!({"probe": "env", "name": "PATH"}),
    )
    .await;
    assert_eq!(
        probe(&env),
        (false, "environment variable not found".into())
    );
    let file = run_one(
        &sb,
        "snoop",
        none(),
        Limits::default(),
        json!({"probe": "file", "path": "/etc/hostname"}),
    )
    .await;
    assert!(!probe(&file).0);
    let http = run_one(
        &sb,
        "snoop",
        none(),
        Limits::default(),
        json!({"probe": "http", "url": "http://127.0.0.1:9/"}),
    )
    .await;
    assert_eq!(probe(&http), (false, "ErrorCode::HttpRequestDenied".into()));
    assert_eq!(http.audit[0].verdict, Verdict::Denied);
}

#[tokio::test]
async fn only_granted_environment_variables_are_visible() {
    let sb = sandbox(SandboxConfig {
        ceiling: hookd_sandbox::SandboxCeiling {
            items: CeilingItems {
                env: vec![
                    "CARGO_MANIFEST_DIR".into(),
                    "GUEST_TEST_UNSET_VARIABLE".into(),
                ],
                ..Default::default()
            },
            ..Default::default()
        },
        ..SandboxConfig::default()
    });
    let caps = Capabilities {
        env: vec![
            "CARGO_MANIFEST_DIR".into(),
            "GUEST_TEST_UNSET_VARIABLE".into(),
        ],
        ..Capabilities::default()
    };
    let read = |name: &str| json!({"probe": "env", "name": name});
    let granted = run_one(
        &sb,
        "snoop",
        caps.clone(),
        Limits::default(),
        read("CARGO_MANIFEST_DIR"),
    )
    .await;
    assert_eq!(probe(&granted), (true, env!("CARGO_MANIFEST_DIR").into()));
    let unset = run_one(
        &sb,
        "snoop",
        caps.clone(),
        Limits::default(),
        read("GUEST_TEST_UNSET_VARIABLE"),
    )
    .await;
    assert!(!probe(&unset).0);
    let other = run_one(&sb, "snoop", caps, Limits::default(), read("PATH")).await;
    assert_eq!(
        probe(&other),
        (false, "environment variable not found".into())
    );
}

#[tokio::test]
async fn preopens_are_read_only_unless_write_is_granted_and_symlinks_cannot_leave_the_ceiling() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("ro")).unwrap();
    std::fs::create_dir(root.path().join("rw")).unwrap();
    std::fs::write(root.path().join("ro/hello.txt"), "hello from host").unwrap();
    std::os::unix::fs::symlink("/etc", root.path().join("ro/etc")).unwrap();
    let host = |p: &str| root.path().join(p).to_string_lossy().into_owned();
    let dir = |p: &str, write| DirGrant {
        host: host(p),
        guest: "/data".into(),
        write,
    };
    let sb = sandbox(SandboxConfig {
        ceiling: hookd_sandbox::SandboxCeiling {
            items: CeilingItems {
                dirs: vec![dir("ro", false), dir("rw", true)],
                ..Default::default()
            },
            ..Default::default()
        },
        ..SandboxConfig::default()
    });
    let grant = |d: DirGrant| Capabilities {
        dirs: vec![d],
        ..Capabilities::default()
    };
    let file = |path: &str, write: bool| json!({"probe": "file", "path": path, "write": write});

    let read = run_one(
        &sb,
        "snoop",
        grant(dir("ro", false)),
        Limits::default(),
        file("/data/hello.txt", false),
    )
    .await;
    assert_eq!(probe(&read), (true, "hello from host".into()));
    let write = run_one(
        &sb,
        "snoop",
        grant(dir("ro", false)),
        Limits::default(),
        file("/data/new.txt", true),
    )
    .await;
    assert!(!probe(&write).0);
    assert!(!root.path().join("ro/new.txt").exists());

    let write = run_one(
        &sb,
        "snoop",
        grant(dir("rw", true)),
        Limits::default(),
        file("/data/new.txt", true),
    )
    .await;
    assert!(probe(&write).0, "{:?}", probe(&write));
    assert_eq!(
        std::fs::read_to_string(root.path().join("rw/new.txt")).unwrap(),
        "written by snoop\n"
    );

    let escape = run_one(
        &sb,
        "snoop",
        grant(dir("ro/etc", false)),
        Limits::default(),
        file("/data/hostname", false),
    )
    .await;
    assert!(!probe(&escape).0);
    assert_eq!(escape.audit.len(), 1);
    assert_eq!(escape.audit[0].capability, CapabilityClass::Filesystem);
    assert_eq!(escape.audit[0].verdict, Verdict::Denied);
}

/// Runs a hostile guest twice (the prepared guest is not poisoned), then
/// `transform` in the same sandbox.
async fn stopped(sb: &Sandbox, name: &str, limits: Limits) -> (Outcome, f64) {
    let started = Instant::now();
    let first = run_one(sb, name, Capabilities::default(), limits, json!({})).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let again = run_one(sb, name, Capabilities::default(), limits, json!({})).await;
    assert_eq!(first.result, again.result);
    let fine = run_one(
        sb,
        "transform",
        Capabilities::default(),
        Limits::default(),
        json!({}),
    )
    .await;
    assert_eq!(json_of(&fine)["transformed_by"], "transform");
    (first, ms)
}

#[tokio::test]
async fn fuel_is_counted_when_metering_is_on() {
    let asks_fuel = Limits {
        fuel: Some(1_000_000),
        ..Limits::default()
    };
    let mut config = SandboxConfig::default();
    config.ceiling.fuel_metering = true;
    let metered = sandbox(config);
    let (spin, _) = stopped(&metered, "spin", asks_fuel).await;
    assert_eq!(spin.result, Err(Failure::FuelExhausted(1_000_000)));

    // Off (the default), a stored hook's fuel is not enforced: the wall
    // time still ends the guest.
    let unmetered = sandbox(SandboxConfig::default());
    let (spin, _) = stopped(
        &unmetered,
        "spin",
        Limits {
            timeout_ms: Some(200),
            ..asks_fuel
        },
    )
    .await;
    assert_eq!(spin.result, Err(Failure::Timeout(200)));
}

#[tokio::test]
async fn hostile_guests_are_stopped_within_their_limits() {
    let sb = sandbox(SandboxConfig::default());
    let limits = |memory, timeout_ms, fuel| Limits {
        memory,
        timeout_ms,
        fuel,
    };

    let (spin, ms) = stopped(&sb, "spin", limits(None, Some(200), None)).await;
    assert_eq!(spin.result, Err(Failure::Timeout(200)));
    assert!(ms < 2_000.0, "{ms} ms");

    let (bomb, _) = stopped(&sb, "memory-bomb", limits(Some(16 << 20), None, None)).await;
    assert_eq!(bomb.result, Err(Failure::MemoryLimit(16 << 20)));

    let (deep, _) = stopped(&sb, "recursion", limits(None, None, None)).await;
    assert_eq!(deep.result, Err(Failure::StackOverflow));

    let (flood, _) = stopped(&sb, "output-flood", limits(None, Some(300), None)).await;
    assert_eq!(flood.result, Err(Failure::Timeout(300)));
    let o = flood.output;
    assert!(
        o.stdout_bytes > hookd_sandbox::MAX_STDIO_BYTES as u64,
        "{o:?}"
    );
    assert_eq!(
        o.stdio_dropped_bytes,
        o.stdout_bytes + o.stderr_bytes - 2 * hookd_sandbox::MAX_STDIO_BYTES as u64
    );
}

/// `transform` is built with a 64 KiB stack instead of Rust's 1 MiB (a
/// smaller memory to reset makes a fresh instance cheaper): event data
/// nested as deeply as serde_json parses at all must still fit, and one
/// level more must be the guest's own error, never a stack overflow.
#[tokio::test]
async fn transform_parses_the_deepest_data_serde_json_accepts_without_overflowing() {
    fn nested(depth: usize) -> Value {
        let mut deep = json!(1);
        for _ in 0..depth {
            deep = json!([deep]);
        }
        json!({"entity": {"username": "a"}, "deep": deep})
    }
    // The guest parses with serde_json's default limit, as the host does.
    let deepest = (1..)
        .take_while(|&d| serde_json::from_str::<Value>(&nested(d).to_string()).is_ok())
        .last()
        .unwrap();
    let sb = sandbox(SandboxConfig::default());
    let transform = |data| {
        run_one(
            &sb,
            "transform",
            Capabilities::default(),
            Limits::default(),
            data,
        )
    };

    let fits = transform(nested(deepest)).await;
    assert_eq!(json_of(&fits)["entity"]["username"], "A");
    let too_deep = transform(nested(deepest + 1)).await;
    match too_deep.result {
        Err(Failure::GuestError(message)) => {
            assert!(message.contains("recursion limit"), "{message}")
        }
        other => panic!("expected the guest's own error, got {other:?}"),
    }
}

#[tokio::test]
async fn output_larger_than_the_bound_is_refused() {
    let sb = sandbox(SandboxConfig {
        max_output_bytes: 64,
        ..SandboxConfig::default()
    });
    let big = json!({"entity": {"username": "x".repeat(100)}});
    let out = run_one(
        &sb,
        "transform",
        Capabilities::default(),
        Limits::default(),
        big.clone(),
    )
    .await;
    assert!(
        matches!(out.result, Err(Failure::OutputTooLarge { max: 64, .. })),
        "{:?}",
        out.result
    );
    let out = run_one(
        &sb,
        "c-upper",
        Capabilities::default(),
        Limits::default(),
        big,
    )
    .await;
    assert!(
        matches!(out.result, Err(Failure::OutputTooLarge { max: 64, .. })),
        "{:?}",
        out.result
    );
}

#[tokio::test]
async fn mode_off_runs_nothing() {
    let sb = sandbox(SandboxConfig {
        mode: UntrustedWasm::Off,
        ..SandboxConfig::default()
    });
    let out = run_one(
        &sb,
        "noop",
        Capabilities::default(),
        Limits::default(),
        json!({}),
    )
    .await;
    let failure = out.result.unwrap_err();
    assert_eq!(failure, Failure::Disabled);
    assert_eq!(
        failure.to_string(),
        "lambda hooks are disabled: untrusted_wasm = off"
    );
    let chain = run(
        &sb,
        &lambda(&["noop"], Capabilities::default(), Limits::default()),
        json!({}),
    )
    .await;
    assert_eq!(chain.result.unwrap_err().failure, Failure::Disabled);
}

#[test]
fn compiled_guests_are_cached_on_disk_across_sandboxes() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    let transform = bytes("transform");
    let digest = hookd_sandbox::digest(&transform);
    let cached = dir.path().join(format!("{digest}.cwasm"));

    let first = sandbox(config());
    first.inspect(&transform).unwrap();
    first.inspect(&transform).unwrap();
    assert_eq!(
        (
            first.counters().compiled,
            first.counters().loaded_from_cache
        ),
        (1, 0)
    );
    assert!(cached.exists());

    let second = sandbox(config());
    let report = second.inspect(&transform).unwrap();
    assert_eq!(
        (
            second.counters().compiled,
            second.counters().loaded_from_cache
        ),
        (0, 1)
    );
    assert_eq!(report.digest, digest);
    assert!(second.prepared(&digest).is_some());

    // A damaged or foreign file is recompiled and replaced.
    std::fs::write(&cached, b"not a compiled guest").unwrap();
    let third = sandbox(config());
    third.inspect(&transform).unwrap();
    assert_eq!(
        (
            third.counters().compiled,
            third.counters().loaded_from_cache
        ),
        (1, 0)
    );
    let fourth = sandbox(config());
    fourth.inspect(&transform).unwrap();
    assert_eq!(fourth.counters().loaded_from_cache, 1);

    let c = bytes("c-upper");
    first.inspect(&c).unwrap();
    let fifth = sandbox(config());
    assert_eq!(fifth.inspect(&c).unwrap().kind, GuestKind::Command);
    assert_eq!(fifth.counters().loaded_from_cache, 1);
}

#[test]
fn the_effective_grant_drops_what_the_guest_cannot_use() {
    let sb = sandbox(SandboxConfig {
        mode: UntrustedWasm::On,
        ..SandboxConfig::default()
    });
    let caps = http_grant(&["api.example.com".into()]);
    let noop = sb.inspect(&bytes("noop")).unwrap();
    let grant = sb.grant(&lambda(&["noop"], caps.clone(), Limits::default()), &noop);
    assert!(grant.items.http.is_empty());
    assert!(
        grant
            .withheld
            .iter()
            .any(|w| w.reason.contains("does not import wasi:http"))
    );
    let http = sb.inspect(&bytes("http-post")).unwrap();
    let grant = sb.grant(&lambda(&["http-post"], caps, Limits::default()), &http);
    assert_eq!(
        grant.items.http,
        [AllowedHost::parse("api.example.com").unwrap()]
    );
    let json = serde_json::to_value(&grant).unwrap();
    assert_eq!(json["http"], json!(["api.example.com"]));
}

#[test]
fn calls_can_run_on_any_worker_thread() {
    fn send<T: Send>(_: &T) {}
    fn shared<T: Send + Sync>(_: &T) {}
    let sb = sandbox(SandboxConfig::default());
    shared(&sb);
    let guest = sb.prepare(&bytes("noop")).unwrap();
    let config = lambda(&["noop"], Capabilities::default(), Limits::default());
    let grant = sb.grant(&config, guest.report());
    let ev = event(json!({}));
    let invoke = sb.invoke(
        &guest,
        &grant,
        hookd_sandbox::Invocation {
            hook_id: Uuid::nil(),
            guest_name: "noop",
            event_id: ev.id,
            source: &ev.source,
            event: &ev.event,
            data: "{}".into(),
            instance: hookd_sandbox::Instance::Reused {
                version: 0,
                step: 0,
            },
        },
    );
    send(&invoke);
    send(&sb.run_chain(Uuid::nil(), &config, &ev, &Examples));
}

#[tokio::test]
async fn a_computing_guest_yields_the_thread_to_other_calls() {
    // One thread: the noop call can only finish first if spin yields.
    let sb = sandbox(SandboxConfig::default());
    let none = Capabilities::default;
    let second = Limits {
        timeout_ms: Some(1_000),
        ..Limits::default()
    };
    let mut spin = std::pin::pin!(run_one(&sb, "spin", none(), second, json!({})));
    tokio::select! {
        biased;
        _ = &mut spin => panic!("the spinning guest held the thread to its deadline"),
        quick = run_one(&sb, "noop", none(), Limits::default(), json!({})) => assert_eq!(quick.result, Ok(None)),
    }
    assert_eq!(spin.await.result, Err(Failure::Timeout(1_000)));
}
