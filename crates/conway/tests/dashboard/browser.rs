//! The browser: Debian's chromium driven through its chromedriver, one window size per
//! session, with waits on conditions and screenshots.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conway_test_support::temp_dir;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::{PATIENCE, note};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a port of its choosing, in its own process group so that dropping it
/// also ends the browsers it started.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split("started successfully on port ")
                    .nth(1)
                    .map(|p| p.trim_end_matches('.').to_owned())
            })
            .expect("chromedriver printed its port");
        // Keep draining what it prints, so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A browser window of one size, and where its screenshots go.
pub(crate) struct Browser {
    pub(crate) client: Client,
    base: String,
    width: u32,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn open(driver: &Driver, base: &str, width: u32) -> Self {
        let profile = temp_dir();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--window-size={width},800"),
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a chromium session");
        let shots = target_dir().join("dashboard-screenshots");
        std::fs::create_dir_all(&shots).expect("create the screenshot folder");
        let browser = Self {
            client,
            base: base.to_owned(),
            width,
            shots,
            _profile: profile,
        };
        // The window's frame takes some of its size: grow it until the page gets 800 px.
        let frame = browser
            .eval("return [outerWidth - innerWidth, outerHeight - innerHeight]")
            .await;
        let frame: [u32; 2] = serde_json::from_value(frame).expect("two sizes");
        browser
            .client
            .set_window_size(width + frame[0], 800 + frame[1])
            .await
            .expect("resize the window");
        let inner = browser.eval("return [innerWidth, innerHeight]").await;
        assert_eq!(inner, json!([width, 800]), "the viewport's size");
        browser
    }

    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
    }

    /// Runs `script` until it returns something truthy, and returns that.
    pub(crate) async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.eval(script).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Object(_) => true,
                Value::Bool(true) => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "at {}px, timed out waiting for {what}; the page says: {}",
                self.width,
                self.eval("return document.querySelector('main').innerText")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens `#/hash` and waits for its heading.
    pub(crate) async fn visit(&self, hash: &str, heading: &str) {
        self.client
            .goto(&format!("{}/#/{hash}", self.base))
            .await
            .expect("navigate");
        self.heading(heading).await;
    }

    pub(crate) async fn heading(&self, heading: &str) {
        let script = format!(
            "const h = document.querySelector('main h1'); return h && h.textContent.includes({heading:?})"
        );
        self.until(&format!("the heading {heading:?}"), &script)
            .await;
    }

    pub(crate) async fn click(&self, selector: &str) {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {selector}: {e}"));
    }

    /// The values of `attribute` on every element matching `selector`, sorted.
    pub(crate) async fn attributes(&self, selector: &str, attribute: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({selector:?})].map(e => e.getAttribute({attribute:?})).sort()"
        );
        serde_json::from_value(self.eval(&script).await).expect("strings")
    }

    /// Saves the viewport as `NAME-WIDTHx800.png`, after checking that nothing makes the
    /// page scroll sideways.
    pub(crate) async fn shot(&self, name: &str) {
        let overflow = self
            .eval("return document.documentElement.scrollWidth - innerWidth")
            .await;
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "{name} at {}px is wider than the screen by {overflow}px",
            self.width
        );
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{name}-{}x800.png", self.width));
        std::fs::write(&path, png).expect("write the screenshot");
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// Whether the browser is installed; without it, a skip outside CI and a failure in it.
pub(crate) fn browser_installed() -> bool {
    let installed = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the dashboard's browser test: install chromium and chromium-driver (.ci/run does)"
        );
        note(&format!(
            "SKIPPED dashboard browser test: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install -y chromium chromium-driver)"
        ));
    }
    installed
}
