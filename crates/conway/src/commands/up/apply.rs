//! `POST /v1/apply`: brings the running system to a changed manifest. The manifest is
//! checked first (the same `FILE:LINE:COLUMN` errors as `conway validate`); then new
//! and changed builds run; then the declared state is written to the registry (routes,
//! policies, consumers, issuers and service definitions: the proxies pick them up
//! without a restart); then the supervisor starts new services, rolls changed ones one
//! replica at a time, scales, and drains and stops removed ones, whose definitions then
//! leave the registry.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use conway_core::Manifest;
use conway_core::api::{Applied, DeployState};
use conway_registry::registry::Registry;
use conway_supervisor::build::{BuildError, Builder};
use conway_supervisor::plan::{ServicePlan, build_steps};
use conway_supervisor::{Deploy, Launcher, Supervisor};
use tokio::sync::Mutex;

/// Why an apply changed nothing.
#[derive(Debug)]
pub(super) enum ApplyError {
    /// The manifest has problems: `FILE:LINE:COLUMN: message` lines.
    Invalid(String),
    /// A build failed: the command, and its output's end.
    Build(String),
    /// The registry refused the declared state.
    Registry(String),
}

/// What applies manifests to this `up`: the running manifest, and what changes it.
pub(super) struct Applier {
    pub(super) supervisor: Supervisor,
    pub(super) registry: Registry,
    pub(super) manifest_dir: PathBuf,
    pub(super) launcher: Launcher,
    /// The manifest in force; one apply at a time.
    pub(super) manifest: Mutex<Manifest>,
}

impl Applier {
    pub(super) async fn apply(&self, text: &str, file: &str) -> Result<Applied, ApplyError> {
        let new = match conway_core::parse(text) {
            Ok(loaded) => loaded.manifest,
            Err(diagnostics) => return Err(ApplyError::Invalid(diagnostics.render(file))),
        };
        let mut current = self.manifest.lock().await;
        let rebuilt = self.build(&current, &new).await?;
        let mut applied = Applied::default();
        for (name, service) in &new.services {
            // Replicas are scaled, not updated: compare the rest.
            let before = current.services.get(name).map(|before| {
                let mut before = before.clone();
                before.replicas = service.replicas;
                before
            });
            if let Some(before) = &before
                && before != service
                && process(name, before, &self.manifest_dir)
                    == process(name, service, &self.manifest_dir)
                && before.build == service.build
            {
                applied.updated.push(name.clone());
            }
        }
        let declared = [
            ("routes", current.gateway.routes != new.gateway.routes),
            ("tls", current.gateway.tls != new.gateway.tls),
            ("mesh", current.mesh != new.mesh),
            ("consumers", current.consumers != new.consumers),
            ("jwt", current.jwt != new.jwt),
        ];
        applied.updated.extend(
            declared
                .iter()
                .filter(|(_, changed)| *changed)
                .map(|(what, _)| (*what).to_owned()),
        );
        if current.gateway.listen != new.gateway.listen {
            applied.notes.push(format!(
                "the gateway still listens on {}: a new [gateway] listen takes a restart of `conway up`",
                current.gateway.listen
            ));
        }
        if current.telemetry != new.telemetry {
            applied
                .notes
                .push("[telemetry] changes take a restart of `conway up`".to_owned());
        }
        if new.services.iter().any(|(name, service)| {
            current
                .services
                .get(name)
                .is_some_and(|before| before.depends_on != service.depends_on)
        }) {
            applied.notes.push(
                "new dependencies are reached through the mesh (http_proxy); CONWAY_UPSTREAM_* listeners are bound when `conway up` starts".to_owned(),
            );
        }
        self.registry
            .load_manifest(&new)
            .await
            .map_err(|e| ApplyError::Registry(e.to_string()))?;
        // A split the manifest now declares differently replaces the one a deploy
        // left in force; a canary waiting for its verdict keeps its own.
        for (name, service) in &new.services {
            let Some(before) = current.services.get(name) else {
                continue;
            };
            if before.split == service.split {
                continue;
            }
            let canary = self
                .supervisor
                .deployment(name)
                .is_ok_and(|d| d.state == DeployState::Canary);
            if canary {
                applied.notes.push(format!(
                    "{name}: its canary's split stays until `conway deploy {name} --promote` or `--rollback`"
                ));
            } else if let Err(error) = self.registry.delete_split(name).await {
                tracing::debug!(service = %name, %error, "no run-time split to clear");
            }
        }
        let changes = self.supervisor.apply(&new, &self.manifest_dir, &rebuilt);
        applied.started = changes.started;
        applied.redeployed = changes.redeployed;
        applied.scaled = changes.scaled;
        applied.notes.extend(changes.problems);
        for name in current.services.keys() {
            if !new.services.contains_key(name) {
                if let Err(error) = self.registry.delete_service(name).await {
                    applied
                        .notes
                        .push(format!("{name}: cannot remove its definition: {error}"));
                }
                applied.removed.push(name.clone());
            }
        }
        // Services without `run` that came or went are not the supervisor's.
        for name in new.services.keys() {
            if !current.services.contains_key(name) && !applied.started.contains(name) {
                applied.started.push(name.clone());
            }
        }
        applied.started.sort();
        let summary = summary(&applied);
        self.supervisor
            .history()
            .record("apply", None, None, format!("applied {file}: {summary}"));
        *current = new;
        Ok(applied)
    }

    /// Runs the builds of new services and of services whose build changed; the
    /// services built, which run what was just built.
    async fn build(
        &self,
        current: &Manifest,
        new: &Manifest,
    ) -> Result<BTreeSet<String>, ApplyError> {
        let steps: Vec<_> = build_steps(new, &self.manifest_dir)
            .into_iter()
            .filter(|step| {
                step.services.iter().any(|name| {
                    current
                        .services
                        .get(name)
                        .is_none_or(|before| before.build != new.services[name].build)
                })
            })
            .collect();
        let built: BTreeSet<String> = steps
            .iter()
            .flat_map(|step| step.services.iter().cloned())
            .collect();
        if steps.is_empty() {
            return Ok(built);
        }
        let builder = Builder::new(self.launcher.clone())
            .map_err(|e| ApplyError::Build(format!("cannot start the build: {e}")))?;
        for step in &steps {
            let command = step.command.join(" ");
            match builder.run(step).await {
                Ok(took) => tracing::info!(%command, took = ?took, "built"),
                Err(error) => {
                    let output = match &error {
                        BuildError::Failed { output, .. } => format!("\n{output}"),
                        _ => String::new(),
                    };
                    return Err(ApplyError::Build(format!(
                        "build `{command}` failed: {error}; nothing was changed{output}"
                    )));
                }
            }
        }
        Ok(built)
    }
}

/// What a service's processes are started from: its plan, less what changes no
/// process (replicas are scaled; dependencies change no environment).
fn process(
    name: &str,
    service: &conway_core::manifest::Service,
    dir: &Path,
) -> Option<ServicePlan> {
    ServicePlan::new(name, service, dir).map(|plan| ServicePlan {
        replicas: 0,
        depends_on: Vec::new(),
        ..plan
    })
}

/// `started: a; removed: b` or `nothing changed`.
pub(super) fn summary(applied: &Applied) -> String {
    let parts: Vec<String> = [
        ("started", &applied.started),
        ("removed", &applied.removed),
        ("redeployed", &applied.redeployed),
        ("scaled", &applied.scaled),
        ("updated", &applied.updated),
    ]
    .iter()
    .filter(|(_, names)| !names.is_empty())
    .map(|(what, names)| format!("{what}: {}", names.join(", ")))
    .collect();
    if parts.is_empty() {
        "nothing changed".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_what_changed() {
        assert_eq!(summary(&Applied::default()), "nothing changed");
        let applied = Applied {
            started: vec!["fresh".into()],
            removed: vec!["legacy".into()],
            updated: vec!["steady".into(), "routes".into()],
            ..Applied::default()
        };
        assert_eq!(
            summary(&applied),
            "started: fresh; removed: legacy; updated: steady, routes"
        );
    }
}
