//! What the supervisor's tests share: a real control plane in this process.

use std::sync::Arc;

use conway_client::Client;
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;

/// A control plane serving an in-memory registry with `manifest` loaded, on a loopback
/// port; a client of it.
pub(crate) async fn control_plane(manifest: &conway_core::Manifest) -> Client {
    let store = EmbeddedStore::in_memory().await.expect("store");
    let registry = Registry::new(Arc::new(store));
    registry.load_manifest(manifest).await.expect("manifest");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let router = conway_server::router(registry, &conway_server::ServerOptions::default());
    tokio::spawn(conway_server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    Client::new(&url).expect("client")
}
