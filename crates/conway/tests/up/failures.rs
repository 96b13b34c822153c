//! Bad input: commands that exit at once or do not exist, failing builds, an invalid
//! manifest, a data folder in use.

use crate::support::{PATIENCE, Up, header, in_dir, service};

#[test]
fn a_crash_loop_and_a_missing_command_are_reported_and_the_rest_keeps_running() {
    let manifest = format!(
        "{}{}[services.bad]\nrun = [\"sh\", \"-c\", \"echo starting; echo boom >&2; exit 3\"]\n\n[services.missing]\nrun = [\"no-such-command-for-conway\", \"--port\", \"$PORT\"]\n",
        header(),
        service("good", &[], ""),
    );
    let up = Up::start(&manifest, &[]);
    // Ready although two services never get healthy: they are in crash loops.
    up.wait_healthy("good", &["good-1"]);
    let stderr = up.stderr();
    assert!(stderr.contains("error: bad-1 is in a crash loop: 5 exits within 1m, last exit status: 3; trying again every 30s"), "{stderr}");
    assert!(stderr.contains("\n  bad/bad-1 | boom\n"), "{stderr}");
    assert!(stderr.contains("\n  bad/bad-1 | starting\n"), "{stderr}");
    assert!(
        stderr.contains(
            "missing-1 cannot start: command \"no-such-command-for-conway\" not found in PATH"
        ),
        "{stderr}"
    );
    let rows: Vec<Vec<&str>> = stderr
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.contains(&vec!["bad", "0/1", "-", "crashloop"]),
        "{stderr}"
    );
    assert!(
        rows.contains(&vec!["missing", "0/1", "-", "crashloop"]),
        "{stderr}"
    );
    assert!(
        rows.contains(&vec!["good", "1/1", "-", "running"]),
        "{stderr}"
    );
    // Exited instances are not left registered.
    assert!(up.instances("bad").iter().all(|i| i["state"] != "healthy"));
    assert!(up.instances("missing").is_empty());
}

#[test]
fn a_failing_build_stops_up_with_the_build_output() {
    let manifest = format!(
        "{}[services.a]\nbuild = [\"sh\", \"-c\", \"echo compiling a; echo 'error[E0001]: no such thing' >&2; exit 2\"]\nrun = [\"sh\", \"-c\", \"touch started; exec sleep 30\"]\n",
        header()
    );
    let mut up = Up::launch(&manifest, &[]);
    let status = up.exit(PATIENCE);
    assert_eq!(status.code(), Some(1), "{}", up.stderr());
    let stderr = up.stderr();
    assert!(stderr.contains("build failed: `sh -c"), "{stderr}");
    assert!(stderr.contains("failed (exit status: 2)"), "{stderr}");
    assert!(stderr.contains("compiling a\n"), "{stderr}");
    assert!(stderr.contains("error[E0001]: no such thing\n"), "{stderr}");
    assert!(up.stdout_lines().is_empty(), "no ready line");
    assert!(!in_dir(&up, "started").exists(), "nothing was started");
}

#[test]
fn an_invalid_manifest_is_reported_with_positions() {
    let manifest = "[services.a]\nrun = [\"x\"]\nreplicas = \"two\"\n";
    let mut up = Up::launch(manifest, &[]);
    assert_eq!(up.exit(PATIENCE).code(), Some(1));
    let stderr = up.stderr();
    let file = in_dir(&up, "conway.toml");
    assert!(
        stderr.contains(&format!("{}:3:12: ", file.display())),
        "{stderr}"
    );
}

#[test]
fn a_second_up_on_the_same_data_folder_refuses() {
    let manifest = format!("{}{}", header(), service("a", &[], ""));
    let first = Up::start(&manifest, &[]);
    // The same folder, so the same manifest and data folder.
    let dir = tempfile::Builder::new().tempdir().expect("dir");
    std::fs::copy(
        in_dir(&first, "conway.toml"),
        dir.path().join("conway.toml"),
    )
    .expect("copy");
    let data = in_dir(&first, "data");
    let second = std::process::Command::new(crate::support::CONWAY)
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(dir.path().join("conway.toml"))
        .arg("--data-dir")
        .arg(&data)
        .env("CONWAY_LOG", "warn")
        .output()
        .expect("run the second up");
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "the data folder {} is in use by another `conway up` or `conway server`",
            data.display()
        )),
        "{stderr}"
    );
    assert!(second.stdout.is_empty());
    // The first one is unharmed.
    assert_eq!(first.healthy("a"), ["a-1"]);
}
