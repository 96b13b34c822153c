//! What the supervisor runs, read from the manifest: each service with a `run` command,
//! its folder resolved against the manifest's, and the builds to run first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use conway_core::Manifest;
use conway_core::manifest::{Health, Service};

/// One supervised service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// Its name.
    pub name: String,
    /// The command (argv) of one instance, before expansion.
    pub run: Vec<String>,
    /// Where it runs: `workdir` resolved against the manifest's folder.
    pub workdir: PathBuf,
    /// The manifest's extra environment.
    pub env: BTreeMap<String, String>,
    /// The services it calls.
    pub depends_on: Vec<String>,
    /// How many instances to start.
    pub replicas: u32,
    /// How its instances are checked.
    pub health: Health,
    /// The version it runs.
    pub version: Option<String>,
    /// Its zone.
    pub zone: Option<String>,
}

impl ServicePlan {
    /// The plan of `service`, if it has a `run` command.
    pub fn new(name: &str, service: &Service, manifest_dir: &Path) -> Option<Self> {
        let run = service.run.clone().filter(|run| !run.is_empty())?;
        Some(Self {
            name: name.to_owned(),
            run,
            workdir: workdir(service, manifest_dir),
            env: service.env.clone(),
            depends_on: service.depends_on.clone(),
            replicas: service.replicas(),
            health: service.health(),
            version: service.version.clone(),
            zone: service.zone.clone(),
        })
    }
}

/// The plans of every service of `manifest` that has a `run` command. `manifest_dir` is
/// the manifest's folder, which relative `workdir`s start from.
pub fn plans(manifest: &Manifest, manifest_dir: &Path) -> BTreeMap<String, ServicePlan> {
    manifest
        .services
        .iter()
        .filter_map(|(name, service)| {
            ServicePlan::new(name, service, manifest_dir).map(|plan| (name.clone(), plan))
        })
        .collect()
}

/// One build command, run once for every service that declares it in the same folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// The command (argv).
    pub command: Vec<String>,
    /// Where it runs.
    pub workdir: PathBuf,
    /// The services it builds, sorted.
    pub services: Vec<String>,
}

/// The builds to run before starting: identical commands in the same folder once, in
/// the order of the first service (by name) that declares each.
pub fn build_steps(manifest: &Manifest, manifest_dir: &Path) -> Vec<BuildStep> {
    let mut steps: Vec<BuildStep> = Vec::new();
    for (name, service) in &manifest.services {
        let Some(command) = service.build.as_ref().filter(|c| !c.is_empty()) else {
            continue;
        };
        let workdir = workdir(service, manifest_dir);
        match steps
            .iter_mut()
            .find(|s| &s.command == command && s.workdir == workdir)
        {
            Some(step) => step.services.push(name.clone()),
            None => steps.push(BuildStep {
                command: command.clone(),
                workdir,
                services: vec![name.clone()],
            }),
        }
    }
    steps
}

fn workdir(service: &Service, manifest_dir: &Path) -> PathBuf {
    match &service.workdir {
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(toml: &str) -> Manifest {
        conway_core::parse(toml).expect("valid manifest").manifest
    }

    #[test]
    fn plans_only_services_with_run() {
        let m = manifest(
            r#"
[services.orders]
run = ["bin/orders", "--port", "$PORT"]
workdir = "../.."
replicas = 3
version = "1.2.0"
env = { A = "b" }
depends_on = ["billing"]

[services.billing]
address = "127.0.0.1:9300"
"#,
        );
        let plans = plans(&m, Path::new("/srv/shop/deploy"));
        assert_eq!(plans.keys().collect::<Vec<_>>(), ["orders"]);
        let orders = &plans["orders"];
        assert_eq!(orders.run, ["bin/orders", "--port", "$PORT"]);
        assert_eq!(orders.workdir, Path::new("/srv/shop/deploy/../.."));
        assert_eq!(orders.replicas, 3);
        assert_eq!(orders.version.as_deref(), Some("1.2.0"));
        assert_eq!(orders.env["A"], "b");
        assert!(orders.health.tcp, "TCP connect by default");
    }

    #[test]
    fn identical_builds_run_once() {
        let m = manifest(
            r#"
[services.a]
build = ["cargo", "build", "--release"]
run = ["a"]

[services.b]
build = ["cargo", "build", "--release"]
run = ["b"]

[services.c]
build = ["cargo", "build", "--release"]
workdir = "other"
run = ["c"]

[services.d]
build = ["make"]
run = ["d"]

[services.e]
run = ["e"]
"#,
        );
        let steps = build_steps(&m, Path::new("/m"));
        let summary: Vec<_> = steps
            .iter()
            .map(|s| {
                (
                    s.command.join(" "),
                    s.workdir.display().to_string(),
                    s.services.join(","),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("cargo build --release".into(), "/m".into(), "a,b".into()),
                (
                    "cargo build --release".into(),
                    "/m/other".into(),
                    "c".into()
                ),
                ("make".into(), "/m".into(), "d".into()),
            ]
        );
    }
}
