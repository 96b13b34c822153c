//! The registry verbs: `conway services`, `conway instances [SERVICE]`, `conway routes`,
//! `conway register SERVICE ADDRESS:PORT [--ttl 30s]` and `conway deregister ID`. Each
//! speaks to the control plane through `conway-client`; its errors become exit codes in
//! `crate::exit` (3 when the control plane cannot be reached).

mod endpoint;
mod routes;
mod table;

use conway_client::Client;
use conway_core::api::RegisterInstance;
use conway_core::units::Duration;

pub(crate) use endpoint::Endpoint;

use super::output::{print_json, print_out};
use crate::cli::Output;
use crate::exit::Outcome;

/// `conway services`.
pub(crate) async fn services(server: &str, output: Output) -> anyhow::Result<Outcome> {
    let services = Client::new(server)?.services().await?;
    match output {
        Output::Json => print_json(&services)?,
        Output::Table if services.is_empty() => print_out("no services\n")?,
        Output::Table => print_out(&table::services(&services))?,
    }
    Ok(Outcome::Success)
}

/// `conway instances [SERVICE]`.
pub(crate) async fn instances(
    server: &str,
    output: Output,
    service: Option<&str>,
) -> anyhow::Result<Outcome> {
    let instances = Client::new(server)?.instances(service, false).await?;
    match (output, service) {
        (Output::Json, _) => print_json(&instances)?,
        (Output::Table, Some(service)) if instances.is_empty() => {
            print_out(&format!("no instances of {service}\n"))?
        }
        (Output::Table, None) if instances.is_empty() => print_out("no instances\n")?,
        (Output::Table, _) => print_out(&table::instances(&instances))?,
    }
    Ok(Outcome::Success)
}

/// `conway routes`: the routes in force, in the order the gateway tries them.
pub(crate) async fn routes(server: &str, output: Output) -> anyhow::Result<Outcome> {
    let routes = routes::views(Client::new(server)?.config().await?);
    match output {
        Output::Json => print_json(&routes)?,
        Output::Table if routes.is_empty() => print_out("no routes\n")?,
        Output::Table => print_out(&table::routes(&routes))?,
    }
    Ok(Outcome::Success)
}

/// `conway register SERVICE ADDRESS:PORT [--ttl 30s]`: prints the new instance's id
/// (the instance with `--output json`).
pub(crate) async fn register(
    server: &str,
    output: Output,
    service: &str,
    endpoint: Endpoint,
    ttl: Duration,
) -> anyhow::Result<Outcome> {
    let client = Client::new(server)?;
    let request = RegisterInstance {
        id: None,
        address: endpoint.address,
        port: endpoint.port,
        version: None,
        zone: None,
        metadata: Default::default(),
        ttl: Some(ttl),
        checked_by: Default::default(),
    };
    let instance = client.register(service, &request).await?;
    match output {
        Output::Json => print_json(&instance)?,
        Output::Table => print_out(&format!("{}\n", instance.id))?,
    }
    Ok(Outcome::Success)
}

/// `conway deregister ID`.
pub(crate) async fn deregister(server: &str, output: Output, id: &str) -> anyhow::Result<Outcome> {
    Client::new(server)?.deregister(id).await?;
    match output {
        Output::Json => print_json(&serde_json::json!({ "deregistered": id }))?,
        Output::Table => print_out(&format!("deregistered {id}\n"))?,
    }
    Ok(Outcome::Success)
}
