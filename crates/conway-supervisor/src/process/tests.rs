use std::time::Duration;

use super::*;

fn sh(script: &str) -> Command {
    let argv = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    Launcher::Direct.command(Path::new("/bin/sh"), &argv)
}

#[tokio::test]
async fn stop_sends_sigterm_to_the_whole_group() {
    let spawner = Spawner::new().unwrap();
    // The shell and a background child, both in the new group.
    let mut child = spawner.spawn(sh("sleep 30 & wait")).await.unwrap();
    let group = Group::new(child.id());
    assert!(group.alive());
    let (status, killed) = group.stop(&mut child, Duration::from_secs(5)).await;
    assert!(!status.unwrap().success());
    assert!(!killed, "SIGTERM was enough");
    assert!(!group.alive(), "the background sleep went too");
}

#[tokio::test]
async fn stop_kills_what_ignores_sigterm_after_the_grace() {
    let spawner = Spawner::new().unwrap();
    let mut child = spawner
        .spawn(sh("trap '' TERM; echo ready; while :; do sleep 0.05; done"))
        .await
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut ready)
        .await
        .unwrap();
    let group = Group::new(child.id());
    let started = Instant::now();
    let (status, killed) = group.stop(&mut child, Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(killed);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status.unwrap()),
        Some(9)
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The loop's `sleep`, killed with the group, may take a moment to go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while group.alive() {
        assert!(Instant::now() < deadline, "the group is still there");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_dropped_group_is_killed() {
    let spawner = Spawner::new().unwrap();
    let mut child = spawner.spawn(sh("sleep 30")).await.unwrap();
    let group = Group::new(child.id());
    drop(group);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("killed at once")
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[tokio::test]
async fn argv0_and_arguments_reach_the_program() {
    let spawner = Spawner::new().unwrap();
    let argv = [
        "my-name".to_owned(),
        "-c".to_owned(),
        "tr '\\0' '|' < /proc/$$/cmdline".to_owned(),
        "zero".to_owned(),
        "arg one".to_owned(),
    ];
    let command = Launcher::Direct.command(Path::new("/bin/sh"), &argv);
    let output = spawner
        .spawn(command)
        .await
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    let cmdline = String::from_utf8_lossy(&output.stdout);
    assert!(cmdline.starts_with("my-name|-c|"), "{cmdline}");
    assert!(cmdline.ends_with("|zero|arg one|"), "{cmdline}");
}

#[test]
fn the_wrapper_command_line() {
    let launcher = Launcher::Wrapper {
        program: "/usr/bin/conway".into(),
        args: vec!["exec-child".into()],
    };
    let command = launcher.command(
        Path::new("/usr/bin/python3"),
        &["python3".into(), "-V".into()],
    );
    let std = command.as_std();
    assert_eq!(std.get_program(), "/usr/bin/conway");
    let args: Vec<_> = std
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let pid = std::process::id().to_string();
    assert_eq!(
        args,
        [
            "exec-child",
            "--parent",
            &pid,
            "--program",
            "/usr/bin/python3",
            "--",
            "python3",
            "-V"
        ]
    );
}

#[tokio::test]
async fn free_ports_are_free_and_listening_is_noticed() {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let port = free_port(ip).unwrap();
    assert_ne!(port, 0);
    let address = std::net::SocketAddr::new(ip, port);
    // Nothing listens: the wait gives up after its limit.
    let started = Instant::now();
    wait_listening(address, Duration::from_millis(100)).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    let _listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let started = Instant::now();
    wait_listening(address, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}
