//! A guest author's toolkit, end to end: `hookd guests new` writes a
//! project in each language, its own `build.sh` builds it with the real
//! toolchain, and a real server runs what it built in a lambda hook; and
//! the guest contract, `hookd wit` and `GET /wit`.
//!
//! A language whose toolchain is not installed is skipped with a message,
//! unless `HOOKD_REQUIRE_GUEST_TEMPLATES=1` (CI), which makes it a failure.
//! Rust builds take the route `HOOKD_GUEST_ROUTE` says (CI: `debian`) into
//! one target directory shared by every run (`target/guest-templates`), so
//! that std and the SDK's dependencies are built once.

use crate::lambda::{lambda_hook, test_hook};
use crate::support::{Options, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Instant;

/// One build at a time: they share the machine's cores and, for Rust, a
/// target directory.
static BUILDS: Mutex<()> = Mutex::new(());

fn hookd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(args)
        .env_remove("HOOKD_CONFIG")
        .output()
        .expect("running hookd")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo_file(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path),
    )
    .unwrap()
}

/// Whether `program args` runs and succeeds.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why the toolchain of `lang` is not here, if it is not: what each
/// generated build.sh needs.
fn missing_toolchain(lang: &str) -> Option<&'static str> {
    let debian_rust = Path::new("/usr/bin/cargo").exists()
        && Path::new("/usr/lib/rustlib/src/rust/library").is_dir()
        && Path::new("/usr/lib/wasm32-wasi/libc.a").exists();
    let rustup_target = || {
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .is_ok_and(|o| text(&o.stdout).lines().any(|l| l == "wasm32-wasip2"))
    };
    let route = std::env::var("HOOKD_GUEST_ROUTE").unwrap_or_default();
    match lang {
        "rust" => match route.as_str() {
            "debian" => (!debian_rust).then_some(
                "HOOKD_GUEST_ROUTE=debian but Debian's rustc-web, rust-web-src or wasi-libc is missing",
            ),
            "rustup" => (!rustup_target())
                .then_some("HOOKD_GUEST_ROUTE=rustup but rustup has no wasm32-wasip2"),
            _ => (!debian_rust && !rustup_target())
                .then_some("neither rustup's wasm32-wasip2 nor Debian's rustc-web route"),
        },
        "c" => {
            let cc = std::env::var("WASI_CC").unwrap_or_else(|_| "clang".into());
            let found = runs(&cc, &["--version"])
                && (std::env::var_os("WASI_CC").is_some()
                    || Path::new("/usr/lib/wasm32-wasi/libc.a").exists());
            (!found).then_some("no clang with wasi-libc")
        }
        "python" => (!runs("componentize-py", &["--version"])).then_some("no componentize-py"),
        "js" => {
            let found = Command::new("node")
                .args(["-p", "process.versions.node.split('.')[0] >= 20"])
                .output()
                .is_ok_and(|o| text(&o.stdout).trim() == "true")
                && runs("npm", &["--version"]);
            (!found).then_some("no node 20+ with npm")
        }
        other => panic!("no such language {other}"),
    }
}

/// The workspace's target directory (the test binary is in `<it>/debug/deps`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("target/debug/deps")
        .to_path_buf()
}

/// Runs a project's build.sh; answers the path it printed.
fn build(project: &Path, lang: &str) -> PathBuf {
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = Command::new(project.join("build.sh"));
    // What cargo tells this test about hookd's own package is not the
    // guest's business.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO") && key != "CARGO_HOME" {
            cmd.env_remove(&*key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir().join("guest-templates"));
    let started = Instant::now();
    let out = cmd.output().expect("running build.sh");
    assert!(
        out.status.success(),
        "{lang}: build.sh failed:\n{}",
        text(&out.stderr)
    );
    eprintln!(
        "guests new --lang {lang}: build.sh took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let stdout = text(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("build.sh prints the path"))
}

/// `hookd guests new NAME --lang LANG`, built, uploaded to a real server
/// and run by a lambda hook's `/test` on the project's event.json.
async fn a_new_project_runs_in_a_hook(lang: &str, name: &str) {
    if let Some(missing) = missing_toolchain(lang) {
        assert!(
            std::env::var("HOOKD_REQUIRE_GUEST_TEMPLATES").as_deref() != Ok("1"),
            "HOOKD_REQUIRE_GUEST_TEMPLATES=1 but the {lang} toolchain is missing: {missing} (guest-examples/install-toolchain.sh)"
        );
        eprintln!("skipped: the {lang} project was not built: {missing}");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().to_str().unwrap();
    let out = hookd(&["guests", "new", name, "--lang", lang, "--dir", dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let project = parent.path().join(name);
    assert!(text(&out.stdout).contains(&project.display().to_string()));

    let lock = std::fs::read_to_string(project.join("Cargo.lock")).ok();
    let wasm = build(&project, lang);
    assert_eq!(wasm, project.join(format!("{name}.wasm")));
    if let Some(lock) = lock {
        assert_eq!(
            std::fs::read_to_string(project.join("Cargo.lock")).unwrap(),
            lock,
            "cargo took the generated Cargo.lock as it is"
        );
    }

    let server = Server::start().await;
    let (status, guest) = server
        .post_raw(
            &format!("/guests?name={name}"),
            "application/wasm",
            std::fs::read(&wasm).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{guest}");
    let kind = if lang == "c" { "command" } else { "component" };
    assert_eq!(guest["kind"], kind);
    let hook = lambda_hook(
        &server,
        "consumers",
        json!({"functions": [name], "limits": {"timeout_ms": 30000}}),
    )
    .await;
    let event: Value =
        serde_json::from_slice(&std::fs::read(project.join("event.json")).unwrap()).unwrap();
    let (status, answer) = test_hook(&server, &hook, event.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let expected = if lang == "c" {
        json!({"handled_by": name, "data": event})
    } else {
        let mut changed = event;
        changed["handled_by"] = name.into();
        changed
    };
    assert_eq!(answer["result"], expected);
}

#[tokio::test]
async fn a_new_rust_project_runs_in_a_hook() {
    a_new_project_runs_in_a_hook("rust", "hello-rust").await;
}

#[tokio::test]
async fn a_new_c_project_runs_in_a_hook() {
    a_new_project_runs_in_a_hook("c", "hello-c").await;
}

#[tokio::test]
async fn a_new_python_project_runs_in_a_hook() {
    a_new_project_runs_in_a_hook("python", "hello-python").await;
}

#[tokio::test]
async fn a_new_js_project_runs_in_a_hook() {
    a_new_project_runs_in_a_hook("js", "hello-js").await;
}

#[test]
fn a_project_is_never_written_over() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().to_str().unwrap();
    assert!(
        hookd(&["guests", "new", "mine", "--lang", "c", "--dir", dir])
            .status
            .success()
    );
    let source = parent.path().join("mine/mine.c");
    std::fs::write(&source, "/* my work */").unwrap();
    let again = hookd(&["guests", "new", "mine", "--lang", "python", "--dir", dir]);
    assert!(!again.status.success());
    assert_eq!(
        text(&again.stderr),
        format!(
            "hookd: {} exists and is not empty: choose another name, or another parent with --dir\n",
            parent.path().join("mine").display()
        )
    );
    assert_eq!(std::fs::read_to_string(&source).unwrap(), "/* my work */");

    let bad = hookd(&["guests", "new", "My Guest", "--lang", "js", "--dir", dir]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("'My Guest' is not a valid guest name"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test]
async fn the_guest_contract_is_printed_and_served() {
    let wit = repo_file("wit/lambda.wit");
    let printed = hookd(&["wit"]);
    assert!(printed.status.success());
    assert_eq!(printed.stdout, wit, "hookd wit prints wit/lambda.wit");

    let token = "a-bootstrap-token";
    let server = Server::start_with(
        Options::default()
            .env("HOOKD_ENFORCE_RBAC", "true")
            .env("HOOKD_ADMIN_TOKEN", token),
    )
    .await;
    let anonymous = server.http.get(server.url("/wit")).send().await.unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "a read like any other"
    );
    let served = server
        .http
        .get(server.url("/wit"))
        .header("Kong-Admin-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(
        served.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(served.bytes().await.unwrap(), wit);

    let document: Value = server
        .http
        .get(server.url("/openapi.json"))
        .header("Kong-Admin-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document["paths"]["/wit"]["get"]["responses"]["200"]["content"]["text/plain; charset=utf-8"]
            ["schema"],
        json!({"type": "string"})
    );
}
