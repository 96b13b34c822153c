//! `conway scale SERVICE N`: sets a service's replicas through
//! `POST /v1/services/{name}/scale`, which the process running the supervisor serves
//! (`conway up`). A control plane alone (`conway server`) has nothing to scale and says so.

use anyhow::anyhow;
use conway_client::{Client, ClientError};

use crate::cli::Output;
use crate::exit::Outcome;

/// `conway scale SERVICE N`.
pub(crate) async fn run(
    server: &str,
    output: Output,
    service: &str,
    replicas: u32,
) -> anyhow::Result<Outcome> {
    let client = Client::new(server)?;
    let scaled = match client.scale(service, replicas).await {
        Ok(scaled) => scaled,
        Err(ClientError::Api { code, .. }) if code == "no_route" => {
            return Err(anyhow!(
                "the control plane at {} runs no supervisor (it is a `conway server` alone), so it cannot scale; scale where the services run, `conway up`",
                client.base_url()
            ));
        }
        Err(error) => return Err(error.into()),
    };
    match output {
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&scaled)?);
        }
        Output::Table if scaled.previous == scaled.replicas => {
            println!(
                "{} already has {} replicas",
                scaled.service, scaled.replicas
            );
        }
        Output::Table => println!(
            "scaled {} from {} to {} replicas",
            scaled.service, scaled.previous, scaled.replicas
        ),
    }
    Ok(Outcome::Success)
}
