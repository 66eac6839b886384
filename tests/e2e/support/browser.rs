//! A real browser for the console's tests: Debian's Chromium, headless,
//! driven through its WebDriver (`chromedriver`, package
//! `chromium-driver`). Where neither is installed the console's browser
//! tests are skipped, saying so loudly, unless `HOOKD_REQUIRE_BROWSER=1`
//! (CI), which makes that a failure. Each page a test looks at can be
//! written as a screenshot to `target/console-screenshots/` for a
//! reviewer.

use fantoccini::{Client, ClientBuilder, Locator};
use hookd_testkit::PATIENCE;
use serde_json::{Value, json};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUIRED: &str = "HOOKD_REQUIRE_BROWSER";

/// How long an element may take to appear on a page already loaded.
const ELEMENT_WAIT: Duration = Duration::from_secs(20);

fn program(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Where screenshots go: beside the build, never committed.
fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
}

/// A headless Chromium with its driver, closed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// The test's name, which its screenshots begin with.
    test: String,
}

impl Browser {
    /// A browser for the test `test` at 1280×900, or `None` when there is
    /// none here and CI does not require one.
    pub async fn start(test: &str) -> Option<Browser> {
        let chromium = program("HOOKD_CHROMIUM", "/usr/bin/chromium");
        let driver = program("HOOKD_CHROMEDRIVER", "/usr/bin/chromedriver");
        if !chromium.exists() || !driver.exists() {
            let why = format!(
                "no browser: {} or {} is missing (apt-get install chromium chromium-driver)",
                chromium.display(),
                driver.display()
            );
            if std::env::var(REQUIRED).as_deref() == Ok("1") {
                panic!("{why}, and {REQUIRED}=1");
            }
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group, which Chromium joins, so that a test that
        // fails before closing the session still leaves no browser behind.
        let mut driver = Command::new(&driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > PATIENCE {
                let _ = driver.kill();
                panic!("chromedriver did not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Some(Browser {
            client,
            driver,
            _profile: profile,
            test: test.to_string(),
        })
    }

    /// Opens a URL and waits for the page.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigating");
    }

    /// The element `css` selects, waiting for it to appear; a failure
    /// shows the page that lacks it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(ELEMENT_WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let text = match self.client.find(Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("no element {css} ({e}) on {url:?}, which reads:\n{text}")
            }
        }
    }

    /// Whether the page has an element `css` selects, now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("searching the page")
            .is_empty()
    }

    /// The visible text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .expect("an element's text")
    }

    /// Types into the field `css` selects, after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clearing a field");
        field.send_keys(text).await.expect("typing");
    }

    /// Chooses a file in the file input `css` selects, as a user picking
    /// it (or dropping it there) would.
    pub async fn choose_file(&self, css: &str, path: &std::path::Path) {
        // WebDriver takes only a path without `..` in it.
        let path = std::fs::canonicalize(path).expect("the file exists");
        self.find(css)
            .await
            .send_keys(path.to_str().expect("a UTF-8 path"))
            .await
            .expect("choosing a file");
    }

    /// Clicks what `css` selects (a link, or a button that submits its
    /// form) and waits for the page it leads to: WebDriver's click returns
    /// before the navigation it starts has ended.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.script("window.__hookd_test_old_page = true").await;
        element.click().await.expect("clicking");
        let started = Instant::now();
        loop {
            // A script may fail while the old page unloads: not there yet.
            let arrived = self
                .client
                .execute(
                    "return window.__hookd_test_old_page === undefined \
                     && document.readyState === 'complete'",
                    Vec::new(),
                )
                .await;
            if matches!(arrived, Ok(Value::Bool(true))) {
                return;
            }
            if started.elapsed() > ELEMENT_WAIT {
                panic!("clicking {css} led to no new page");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .path()
            .to_string()
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("the page source")
    }

    /// Runs a script in the page (WebDriver's, not the page's own: the
    /// console's CSP forbids scripts of its own).
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("running a script")
    }

    /// Writes the page as `<test>-<name>.png` for a reviewer.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("the screenshots directory");
        std::fs::write(dir.join(format!("{}-{name}.png", self.test)), png)
            .expect("writing a screenshot");
    }

    /// Resizes the window, e.g. to a phone's width.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resizing the window");
    }

    /// Ends the session, which closes Chromium; the drop stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads its own process group (see `start`): the whole
        // group goes, Chromium with it.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
