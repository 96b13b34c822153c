//! The gateway's access log as an operator reads it: one line per request on stderr,
//! `key=value` text by default, one JSON object a line with `--log-format json`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use conway_test_support::{ControlPlane, temp_dir};
use serde_json::Value;

const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

/// A gateway whose stdout and stderr are read line by line; killed when dropped.
struct Gateway {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Gateway {
    fn start(server: &str, data: &Path, global: &[&str]) -> Self {
        let mut child = Command::new(CONWAY)
            .args(global)
            .args(["gateway", "--server", server, "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("CONWAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the gateway");
        let (lines, stderr) = mpsc::channel();
        let pipe = BufReader::new(child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("the ready line");
        let ready: Value = serde_json::from_str(&ready).expect("a JSON ready line");
        let url = ready["gateway"].as_str().expect("a gateway URL").to_owned();
        Self { child, url, stderr }
    }

    /// The first stderr line that holds `text` (lines come every 100 ms).
    fn line_with(&self, text: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no stderr line with {text:?}"));
            if line.contains(text) {
                return line;
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(url: &str) -> u16 {
    let output = Command::new("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "-m",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&output.stdout).parse().unwrap_or(0)
}

#[test]
fn the_access_log_is_text_by_default_and_json_with_log_format_json() {
    let dir = temp_dir();
    let plane = ControlPlane::start(Path::new(CONWAY), &dir.path().join("plane"), &[]);

    let text = Gateway::start(&plane.url, &dir.path().join("text"), &[]);
    assert_eq!(get(&format!("{}/nowhere/text", text.url)), 404);
    let line = text.line_with("/nowhere/text");
    assert!(
        line.contains(" access ") && line.contains("method=GET") && line.contains("status=404"),
        "{line}"
    );

    let json = Gateway::start(
        &plane.url,
        &dir.path().join("json"),
        &["--log-format", "json"],
    );
    assert_eq!(get(&format!("{}/nowhere/json", json.url)), 404);
    let line = json.line_with("/nowhere/json");
    let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(record["message"], "access", "{line}");
    assert_eq!(record["method"], "GET", "{line}");
    assert_eq!(record["path"], "/nowhere/json", "{line}");
    assert_eq!(record["status"], 404, "{line}");
    assert_eq!(
        record["trace_id"].as_str().map(str::len),
        Some(32),
        "{line}"
    );
}
