//! Deploys, apply and chaos kills through the supervisor's own API (the [`Deploy`]
//! trait, [`Supervisor::apply`], [`ChaosJobs`]), against a real control plane in this
//! process and real processes of `conway_test_support::TEST_SERVICE`.

use std::collections::BTreeSet;
use std::time::Duration;

use conway_client::Client;
use conway_core::api::{ChaosKillRequest, DeployRequest, DeployState, InstanceState};
use conway_supervisor::{
    ChaosError, ChaosJobs, Deploy, DeployError, Supervisor, SupervisorOptions,
};
use tokio::time::Instant;

const SERVICE: &str = conway_test_support::TEST_SERVICE;

fn manifest(services: &[(&str, &str)]) -> conway_core::Manifest {
    let toml: String = services
        .iter()
        .map(|(name, extra)| {
            format!(
                "[services.{name}]\nrun = [\"python3\", {SERVICE:?}]\nhealth = {{ tcp = true, interval = \"100ms\" }}\n{extra}\n"
            )
        })
        .collect();
    conway_core::parse(&toml).expect("valid manifest").manifest
}

mod common;

async fn start(manifest: &conway_core::Manifest) -> (Supervisor, Client, tempfile::TempDir) {
    let client = common::control_plane(manifest).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SupervisorOptions::new(dir.path().join("data"));
    options.stop_grace = Duration::from_secs(2);
    let (supervisor, _events) =
        Supervisor::new(manifest, dir.path(), client.clone(), options).expect("supervisor");
    supervisor.start().await;
    tokio::time::timeout(Duration::from_secs(20), supervisor.wait_settled())
        .await
        .expect("settled");
    (supervisor, client, dir)
}

/// Waits (up to 20 s) until `condition` holds.
async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(id, version)` of the healthy instances of `service`, sorted.
async fn healthy(client: &Client, service: &str) -> Vec<(String, String)> {
    let mut instances: Vec<_> = client
        .instances(Some(service), false)
        .await
        .expect("list")
        .into_iter()
        .filter(|i| i.state == InstanceState::Healthy)
        .map(|i| (i.id, i.version.unwrap_or_default()))
        .collect();
    instances.sort();
    instances
}

#[tokio::test]
async fn a_deploy_rolls_every_replica_and_apply_swaps_services() {
    let (supervisor, client, dir) =
        start(&manifest(&[("web", "version = \"1.0\"\nreplicas = 2")])).await;
    let request = DeployRequest {
        version: Some("2.0".into()),
        ..DeployRequest::default()
    };
    let started = supervisor.deploy("web", request.clone()).expect("accepted");
    assert_eq!(started.state, DeployState::Rolling);
    // One deploy at a time.
    assert!(matches!(
        supervisor.deploy("web", request),
        Err(DeployError::Conflict(_))
    ));
    until("the deploy done", async || {
        supervisor.deployment("web").expect("deployment").state == DeployState::Done
    })
    .await;
    let now = healthy(&client, "web").await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        now.iter().all(|(id, v)| v == "2.0" && id != "web-2"),
        "{now:?}"
    );
    assert_eq!(
        supervisor.status().services["web"].version.as_deref(),
        Some("2.0")
    );
    let kinds: Vec<String> = supervisor
        .history()
        .events()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["deploy.started", "deploy.done"]);

    // A manifest without web and with api: web goes, api comes.
    let next = manifest(&[("api", "")]);
    // The registry first, as `conway up`'s apply does: instances need their service.
    client
        .put_service("api", &next.services["api"])
        .await
        .expect("define api");
    let changes = supervisor.apply(&next, dir.path(), &BTreeSet::new());
    assert_eq!(changes.started, ["api"]);
    assert_eq!(changes.removed, ["web"]);
    until("api healthy", async || {
        healthy(&client, "api").await.len() == 1
    })
    .await;
    until("web gone", async || {
        client
            .instances(Some("web"), false)
            .await
            .expect("list")
            .is_empty()
    })
    .await;
    assert!(!supervisor.status().services.contains_key("web"));
    assert!(matches!(
        supervisor.deploy("web", DeployRequest::default()),
        Err(DeployError::Unknown(_))
    ));
    supervisor.shutdown().await;
}

#[tokio::test]
async fn a_chaos_kill_is_a_crash_the_supervisor_repairs() {
    let (supervisor, client, _dir) = start(&manifest(&[("web", "replicas = 2")])).await;
    let jobs = ChaosJobs::new(supervisor.clone());
    let request =
        |instance: Option<&str>, every: Option<u64>, duration: Option<u64>| ChaosKillRequest {
            service: "web".into(),
            instance: instance.map(str::to_owned),
            every: every.map(conway_core::units::Duration::from_millis),
            duration: duration.map(conway_core::units::Duration::from_millis),
        };
    let pid = supervisor.status().services["web"].instances[&1].pid;
    let job = jobs
        .start(request(Some("web-1"), None, None))
        .expect("killed");
    assert_eq!(job.kills, 1);
    let events = supervisor.history().events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "chaos.kill");
    assert_eq!(events[0].instance.as_deref(), Some("web-1"));
    until("web-1 back under a new process", async || {
        let replica = supervisor.status().services["web"].instances[&1].clone();
        replica.pid.is_some() && replica.pid != pid && replica.restarts == 1
    })
    .await;
    until("web-1 healthy again", async || {
        healthy(&client, "web").await.len() == 2
    })
    .await;

    assert!(matches!(
        jobs.start(ChaosKillRequest {
            service: "nope".into(),
            ..request(None, None, None)
        }),
        Err(ChaosError::Unknown(_))
    ));
    assert!(matches!(
        jobs.start(request(Some("web-9"), None, None)),
        Err(ChaosError::NoInstance(_))
    ));
    assert!(matches!(
        jobs.start(request(None, None, Some(1_000))),
        Err(ChaosError::Invalid(_))
    ));
    assert!(matches!(
        jobs.start(request(None, Some(10), None)),
        Err(ChaosError::Invalid(_))
    ));
    assert_eq!(jobs.jobs().len(), 1, "refused requests start no job");
    supervisor.shutdown().await;
}
