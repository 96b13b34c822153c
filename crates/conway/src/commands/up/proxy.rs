//! The proxy of `up`: one process-wide proxy following the control plane, with the
//! gateway listener (`[gateway] listen`, and `[gateway.tls] listen` for HTTPS), the
//! mesh listener (the instances' `http_proxy`), and one listener per declared
//! dependency of each supervised service (its `CONWAY_UPSTREAM_<DEPENDENCY>`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use conway_core::Manifest;
use conway_proxy::run::{Listen, ProxyOptions, RunningProxy, start};
use conway_supervisor::plan::plans;
use tokio::sync::watch;

use super::until;

/// A loopback port the OS picks.
const ANY_LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The running proxy and where it listens.
pub(super) struct Proxy {
    pub(super) gateway: SocketAddr,
    pub(super) gateway_tls: Option<SocketAddr>,
    pub(super) mesh: SocketAddr,
    pub(super) admin: SocketAddr,
    /// Per service, per dependency, its listener.
    pub(super) upstreams: BTreeMap<String, BTreeMap<String, SocketAddr>>,
    running: RunningProxy,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// Binds every listener and returns once the proxy holds the registry's state.
    pub(super) async fn start(
        manifest: &Manifest,
        manifest_dir: &Path,
        control_plane: &str,
        data_dir: &Path,
        otlp: Option<String>,
    ) -> anyhow::Result<Self> {
        let mut listens = vec![
            Listen::Gateway(manifest.gateway.listen),
            Listen::Mesh(ANY_LOOPBACK),
        ];
        if let Some(tls) = &manifest.gateway.tls {
            listens.push(Listen::GatewayTls(tls.listen));
        }
        let fixed = listens.len();
        let mut pairs = Vec::new();
        for (caller, plan) in plans(manifest, manifest_dir) {
            let mut targets = plan.depends_on.clone();
            targets.sort();
            targets.dedup();
            for target in targets {
                listens.push(Listen::Upstream {
                    listen: ANY_LOOPBACK,
                    caller: caller.clone(),
                    target: target.clone(),
                });
                pairs.push((caller.clone(), target));
            }
        }
        let options = ProxyOptions {
            server: control_plane.to_owned(),
            admin_listen: ANY_LOOPBACK,
            data_dir: Some(data_dir.join("proxy")),
            access_log: None,
            otlp,
        };
        let (stop, stopped) = watch::channel(false);
        let running = start(options, listens, until(stopped))
            .await
            .context("cannot start the gateway and mesh")?;
        let addresses = &running.addresses;
        let mut upstreams: BTreeMap<String, BTreeMap<String, SocketAddr>> = BTreeMap::new();
        for ((caller, target), address) in pairs.into_iter().zip(&addresses[fixed..]) {
            upstreams
                .entry(caller)
                .or_default()
                .insert(target, *address);
        }
        Ok(Self {
            gateway: addresses[0],
            mesh: addresses[1],
            gateway_tls: manifest.gateway.tls.as_ref().map(|_| addresses[2]),
            admin: running.admin,
            upstreams,
            running,
            stop,
        })
    }

    /// The registry revision the proxy's table reflects.
    pub(super) fn revision(&self) -> i64 {
        self.running.table.load().revision
    }

    /// Stops every listener (in-flight requests may finish) and waits for them.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        self.running.wait().await;
    }
}
