//! Scaling, as seen from outside the supervisor: what a request may ask and how it is
//! answered. The control plane's `POST /v1/services/{name}/scale` needs exactly the
//! [`Scale`] trait, so it can be served without knowing the supervisor.

/// The most replicas one service may be scaled to.
pub const MAX_REPLICAS: u32 = 256;

/// Why a scale request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// No such service in the manifest.
    #[error("no service named {0:?}")]
    Unknown(String),
    /// The service runs elsewhere.
    #[error(
        "service {0:?} has no `run` command: its instances run elsewhere and are not scaled here"
    )]
    External(String),
    /// More than [`MAX_REPLICAS`].
    #[error("{0} replicas is more than the {MAX_REPLICAS} a service may have")]
    TooMany(u32),
    /// The supervisor is stopping.
    #[error("the supervisor is stopping")]
    Stopping,
}

/// A scale request that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    /// The service.
    pub service: String,
    /// Its replicas now wanted.
    pub replicas: u32,
    /// Its replicas wanted before.
    pub previous: u32,
}

/// Scaling, as the control plane's `POST /v1/services/{name}/scale` needs it, without
/// knowing the supervisor: whoever wires the two implements or passes this.
pub trait Scale: Send + Sync {
    /// Sets `service`'s replicas to `replicas`: new ones start at once; removed ones
    /// (the newest first) are deregistered, then stopped in the background.
    fn scale(&self, service: &str, replicas: u32) -> Result<Scaled, ScaleError>;
}
