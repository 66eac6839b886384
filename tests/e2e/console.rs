//! The console at `/console`, in a real browser (Debian's Chromium,
//! headless, through chromedriver) against the real binary: signing in,
//! a hook made through the form (a field error shown in place first), a
//! delivery and its attempts, redelivery, a guest uploaded and audited, a
//! denial in the audit timeline, a read-only admin, and hostile data that
//! must stay text. Screenshots of each page go to
//! `target/console-screenshots/`.

use crate::operations::{BOOT, admin_with_token, rbac, with_rbac};
use crate::per_hook::events_at;
use crate::support::browser::Browser;
use crate::support::{Options, Server, call};
use hookd_testkit::eventually;
use hookd_testkit::receiver::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Opens the console's `page` without a session, signs in through the
/// form with `token`, and lands on `page`.
async fn sign_in_at(browser: &Browser, server: &Server, token: &str, page: &str) {
    browser.goto(&server.url(page)).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.fill("#token", token).await;
    browser.click("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, page, "back where sign-in began");
}

/// Loads `path` again until `css` selects something, and returns the text
/// of the first.
async fn once_shown(browser: &Browser, server: &Server, path: &str, css: &str) -> String {
    eventually(&format!("{css} on {path}"), || async {
        browser.goto(&server.url(path)).await;
        if browser.has(css).await {
            Some(browser.text(css).await)
        } else {
            None
        }
    })
    .await
}

/// Opens the form for a new `handler` hook and fills in its source and
/// event, on crud's consumers.
async fn new_consumers_hook(browser: &Browser, server: &Server, handler: &str) {
    browser
        .goto(&server.url(&format!("/console/hooks/new?handler={handler}")))
        .await;
    browser.fill("#f-source", "crud").await;
    browser.fill("#f-event", "consumers").await;
}

/// The value of the page's CSRF token (the sign-out form's, or any).
async fn csrf_of_page(browser: &Browser) -> String {
    browser
        .find("input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .expect("a csrf value")
}

#[tokio::test]
async fn an_admin_signs_in_makes_a_hook_in_the_form_and_redelivers_its_delivery() {
    let Some(browser) = Browser::start("operator").await else {
        return;
    };
    let server = Server::start_with(with_rbac(Options::loopback())).await;
    let receiver = Receiver::start().await;

    browser.goto(&server.url("/console")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.screenshot("sign-in").await;
    browser.fill("#token", "not-a-token").await;
    browser.click("form.card button[type=submit]").await;
    assert!(browser.text("#sign-in-error").await.contains("not valid"));

    browser.fill("#token", BOOT).await;
    browser.click("form.card button[type=submit]").await;
    assert_eq!(browser.path().await, "/console");
    assert_eq!(browser.text("h1").await, "Overview");
    assert!(browser.text(".who").await.contains("bootstrap"));
    assert!(
        !browser.source().await.contains(BOOT),
        "the token never reaches the page"
    );
    let cookie = browser
        .client
        .get_named_cookie("hookd_console")
        .await
        .unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    browser.screenshot("overview").await;

    // The form, refused by the API for the missing URL: the error stands
    // beside the field.
    new_consumers_hook(&browser, &server, "webhook").await;
    browser.click("form.hook-form button[type=submit]").await;
    let error = browser.text("[data-field='config.url'] .field-error").await;
    assert!(error.contains("required"), "{error}");
    assert_eq!(
        browser
            .find("#f-source")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("crud"),
        "what was entered stays"
    );
    browser.screenshot("hook-form-error").await;

    browser
        .fill("#f-config-url", &receiver.url("/console"))
        .await;
    browser.click("form.hook-form button[type=submit]").await;
    let hook_path = browser.path().await;
    let hook_id = hook_path.trim_start_matches("/console/hooks/").to_string();
    assert!(
        uuid::Uuid::try_parse(&hook_id).is_ok(),
        "{hook_path}: {}",
        browser.text("main").await
    );
    let (status, stored) = call(
        &server,
        Method::GET,
        &format!("/event-hooks/{hook_id}"),
        Some(BOOT),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["config"]["url"], receiver.url("/console"));
    browser.screenshot("hook").await;

    let (status, _) = call(
        &server,
        Method::POST,
        "/consumers",
        Some(BOOT),
        Some(json!({"username": "ann"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let state = once_shown(&browser, &server, &hook_path, "tbody .state-succeeded").await;
    assert_eq!(state, "succeeded");

    browser
        .click("tbody td a[href^='/console/deliveries/']")
        .await;
    assert!(browser.path().await.starts_with("/console/deliveries/"));
    let attempt = browser.text("#attempts tbody tr").await;
    assert!(
        attempt.contains("✓ delivered") && attempt.contains("200"),
        "{attempt}"
    );
    browser.screenshot("delivery").await;

    browser.click("form[action$='/retry'] button").await;
    let delivery_path = browser.path().await;
    eventually("the redelivery's attempt", || async {
        browser.goto(&server.url(&delivery_path)).await;
        let rows = browser
            .client
            .find_all(fantoccini::Locator::Css("#attempts tbody tr"))
            .await
            .unwrap();
        (rows.len() == 2).then_some(())
    })
    .await;
    let received = events_at(&receiver, "/console");
    assert_eq!(received.len(), 2, "the delivery and its redelivery");
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id"),
        "a redelivery is the same delivery"
    );

    // /test from the page.
    browser.goto(&server.url(&hook_path)).await;
    browser.click("form[action$='/test'] button").await;
    assert!(browser.text("#tried").await.contains("succeeded"));

    browser.goto(&server.url("/console/hooks")).await;
    assert!(browser.text("tbody").await.contains("consumers"));
    browser.screenshot("hooks").await;

    // Usable on a phone: nothing wider than the screen but the tables'
    // own scrolling boxes.
    browser.resize(390, 844).await;
    browser.goto(&server.url("/console/hooks")).await;
    let fits = browser
        .script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(fits, Value::Bool(true));
    browser.screenshot("hooks-phone").await;
    // The first thing a keyboard reaches skips to the content.
    let first = browser
        .script("return document.querySelector('a, button, input, select, textarea').className")
        .await;
    assert_eq!(first, "skip");

    browser
        .click("form[action='/console/sign-out'] button")
        .await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.goto(&server.url("/console/hooks")).await;
    assert_eq!(browser.path().await, "/console/sign-in", "signed out");
    browser.close().await;
}

#[tokio::test]
async fn a_guest_uploaded_in_the_browser_is_audited_and_its_denial_reaches_the_timeline() {
    let Some(browser) = Browser::start("auditor").await else {
        return;
    };
    let server = Server::start_with(Options::loopback()).await;

    browser.goto(&server.url("/console")).await;
    assert_eq!(
        browser.path().await,
        "/console",
        "without RBAC, straight in"
    );
    assert!(
        browser
            .text(".banner.warning")
            .await
            .contains("RBAC is off")
    );

    browser.goto(&server.url("/console/guests")).await;
    browser
        .choose_file("#guest-file", &hookd_testkit::guests::path("http-post"))
        .await;
    browser.fill("#guest-name", "poster").await;
    browser.click("form.upload button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/guests/poster");
    let imports = browser.text("#guest-imports").await;
    assert!(imports.contains("wasi:http/outgoing-handler"), "{imports}");
    assert!(imports.contains("http"));
    browser.screenshot("guest").await;

    new_consumers_hook(&browser, &server, "lambda").await;
    browser.fill("#f-config-functions", "poster").await;
    browser.click("form.hook-form button[type=submit]").await;
    let hook_path = browser.path().await;
    assert!(hook_path.starts_with("/console/hooks/"), "{hook_path}");
    let grant = browser.text(".grant").await;
    assert!(grant.contains("poster"), "{grant}");

    browser
        .fill("#test-data", r#"{"target_url": "http://denied.example/"}"#)
        .await;
    browser.click("form[action$='/test'] button").await;
    let tried = browser.text("#tried").await;
    assert!(tried.contains("failed"), "{tried}");

    let row = once_shown(
        &browser,
        &server,
        "/console/audit?verdict=denied",
        "#audit-timeline tbody tr.denied",
    )
    .await;
    assert!(row.contains("denied.example"), "{row}");
    assert!(
        row.contains("✗ denied"),
        "the verdict is in words too: {row}"
    );
    browser.screenshot("audit").await;
    browser.goto(&server.url("/console")).await;
    assert!(browser.text("body").await.contains("denied.example"));
    browser.screenshot("overview-with-denial").await;

    browser.goto(&server.url("/console/sources")).await;
    browser.screenshot("sources").await;
    browser
        .click("a[href='/console/sources/crud/consumers']")
        .await;
    assert!(browser.text("#example").await.contains("consumers"));
    browser.screenshot("event").await;

    browser.goto(&server.url("/console/quarantine")).await;
    assert!(browser.text("main").await.contains("empty"));
    browser.screenshot("quarantine").await;
    browser.close().await;
}

#[tokio::test]
async fn a_read_only_admin_sees_no_change_buttons_and_a_forged_change_is_refused() {
    let Some(browser) = Browser::start("read-only").await else {
        return;
    };
    let server = Server::start_with(rbac()).await;
    let (_, hook) = call(
        &server,
        Method::POST,
        "/event-hooks",
        Some(BOOT),
        Some(json!({"source": "crud", "handler": "log"})),
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let token = admin_with_token(&server, "auditor", "read-only").await;

    sign_in_at(
        &browser,
        &server,
        &token,
        &format!("/console/hooks/{hook_id}"),
    )
    .await;
    assert!(browser.text(".banner").await.contains("read-only"));
    assert!(!browser.has("a[href$='/edit']").await);
    assert!(!browser.has("form[action$='/delete']").await);
    assert!(!browser.has("form[action$='/test']").await);
    browser.screenshot("hook").await;
    browser.goto(&server.url("/console/hooks")).await;
    assert!(!browser.has("a[href^='/console/hooks/new']").await);

    // What the buttons would have sent, with this session's cookie and CSRF
    // token: the Admin API refuses it, and the console says so.
    let csrf = csrf_of_page(&browser).await;
    let session = browser
        .client
        .get_named_cookie("hookd_console")
        .await
        .unwrap();
    let forge = |origin: Option<&str>, csrf: &str| {
        let mut request = server
            .http
            .post(server.url(&format!("/console/hooks/{hook_id}/delete")))
            .header("cookie", format!("hookd_console={}", session.value()))
            .form(&[("csrf", csrf)]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let forged = forge(None, &csrf).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.text().await.unwrap().contains("permissions"));
    assert_eq!(
        forge(None, "stale").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        forge(Some("http://evil.example"), &csrf)
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/event-hooks/{hook_id}"),
        Some(BOOT),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the hook is still there");
    browser.close().await;
}

/// Markup and script in a hook's condition and configuration, a consumer's
/// name (so the event's payload) and a guest's upload name.
const HOSTILE: &str =
    r#"<script>window.__hookd_pwned=1</script><img src=x onerror="window.__hookd_pwned=2">"#;

#[tokio::test]
async fn hostile_data_renders_as_inert_text_on_every_page() {
    let Some(browser) = Browser::start("hostile").await else {
        return;
    };
    let server = Server::start_with(Options::loopback()).await;
    let receiver = Receiver::start().await;
    let condition = format!(
        "entity.username != {}",
        serde_json::to_string(HOSTILE).unwrap()
    );
    let hook = server
        .create(
            "/event-hooks",
            &json!({"source": "crud", "event": "consumers", "handler": "webhook",
                    "condition": condition,
                    "config": {"url": receiver.url("/x"), "headers": {"x-note": HOSTILE}}}),
        )
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    let (status, _) = server
        .post("/consumers", &json!({"username": HOSTILE}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .post(
            "/consumers",
            &json!({"username": "plain", "custom_id": HOSTILE}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let delivery = server
        .newest_delivery(
            &hook,
            "the plain consumer's delivery",
            crate::support::attempted,
        )
        .await;

    // The console's answers forbid script whatever a page holds.
    let answer = server
        .http
        .get(server.url("/console"))
        .send()
        .await
        .unwrap();
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );

    browser.goto(&server.url("/console")).await;
    let pages = [
        "/console".to_string(),
        "/console/hooks".to_string(),
        format!("/console/hooks/{hook_id}"),
        format!("/console/hooks/{hook_id}/edit"),
        format!("/console/deliveries/{}", delivery["id"].as_str().unwrap()),
        "/console/audit".to_string(),
    ];
    for page in &pages {
        browser.goto(&server.url(page)).await;
        let pwned = browser
            .script("return window.__hookd_pwned === undefined")
            .await;
        assert_eq!(pwned, Value::Bool(true), "script ran on {page}");
        assert!(
            browser.client.get_alert_text().await.is_err(),
            "an alert on {page}"
        );
    }
    browser
        .goto(&server.url(&format!("/console/hooks/{hook_id}")))
        .await;
    let shown = browser.text("main").await;
    assert!(
        shown.contains("<script>window.__hookd_pwned=1</script>"),
        "shown as text"
    );
    browser.screenshot("hook").await;
    browser
        .goto(&server.url(&format!(
            "/console/deliveries/{}",
            delivery["id"].as_str().unwrap()
        )))
        .await;
    assert!(browser.text("main").await.contains("onerror="));
    assert!(!browser.has("main img").await, "no element made from data");
    browser.screenshot("delivery").await;

    // A guest name the API refuses comes back in the form as text.
    browser.goto(&server.url("/console/guests")).await;
    browser
        .choose_file("#guest-file", &hookd_testkit::guests::path("noop"))
        .await;
    browser.fill("#guest-name", HOSTILE).await;
    browser.click("form.upload button[type=submit]").await;
    assert!(browser.has("#upload-errors").await);
    let kept = browser
        .find("#guest-name")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some(HOSTILE));
    let pwned = browser
        .script("return window.__hookd_pwned === undefined")
        .await;
    assert_eq!(pwned, Value::Bool(true));
    browser.screenshot("guest-name-refused").await;
    browser.close().await;
}

#[tokio::test]
async fn dead_letters_of_every_hook_are_listed_and_redelivered_from_the_page() {
    let Some(browser) = Browser::start("dead-letters").await else {
        return;
    };
    let server = Server::start_with(Options::loopback().env("HOOKD_RETRY_MAX_ATTEMPTS", "1")).await;
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let failing =
        crate::delivery::webhook(&server, "consumers", json!({"url": receiver.url("/dead")})).await;
    let (status, _) = server.post("/consumers", &json!({"username": "ann"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let dead = server
        .newest_delivery(&failing, "a dead delivery", |d| d["state"] == "dead")
        .await;
    let (status, listed) = server.get("/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["id"], dead["id"], "{listed}");

    browser
        .goto(&server.url(&format!(
            "/console/hooks/{}",
            failing["id"].as_str().unwrap()
        )))
        .await;
    let state = browser.text("#hook-state").await;
    assert!(state.contains("failing, 1 in a row"), "{state}");

    browser.goto(&server.url("/console/dead-letters")).await;
    let row = browser.text("#dead-letters tbody tr").await;
    assert!(row.contains("status 500"), "{row}");
    browser.screenshot("list").await;
    receiver.set_status(200);
    browser.click("#dead-letters form button").await;
    assert_eq!(
        browser.path().await,
        format!("/console/deliveries/{}", dead["id"].as_str().unwrap())
    );
    eventually("the redelivery to succeed", || async {
        let (_, d) = server
            .get(&format!("/deliveries/{}", dead["id"].as_str().unwrap()))
            .await;
        (d["state"] == "succeeded").then_some(())
    })
    .await;
    browser.goto(&server.url("/console/dead-letters")).await;
    assert!(browser.text("main").await.contains("No delivery has died"));
    browser.close().await;
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let server = Server::start_with(Options::default().env("HOOKD_CONSOLE", "false")).await;
    let answer = server
        .http
        .get(server.url("/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"message": "Not found"}),
        "the Admin API's own answer"
    );
    let (status, _) = server.get("/event-hooks").await;
    assert_eq!(status, StatusCode::OK);
}
