//! The mesh role: calls between services. A service reaches another by name through its
//! proxy setting (`http_proxy=http://SERVICE:TOKEN@127.0.0.1:PORT`, absolute-form
//! requests such as `GET http://inventory/reserve`), or through a listener dedicated to
//! one caller and one dependency (`CONWAY_UPSTREAM_<DEPENDENCY>`), which also carries
//! h2c and gRPC. The caller is known without trusting anything it could forge: its
//! proxy token, or the listener it used. Calls outside `depends_on` are recorded
//! (`authorization = "audit"`) or refused with 403 (`"enforce"`).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use conway_core::manifest::MeshAuthorization;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::forward::{Target, forward};
use crate::headers::CALLER;
use crate::metrics::CallLabels;
use crate::proxy::{Exchange, Labels, Proxy};
use crate::router::has_dot_segments;
use crate::server::Handler;
use crate::table::{Caller, Table};

/// The largest request body the mesh forwards.
pub const MAX_BODY: u64 = 10 * 1024 * 1024;

/// How a mesh listener learns the target and the caller.
#[derive(Debug, Clone)]
pub enum MeshMode {
    /// A forward proxy: the target is the request's host, the caller its token.
    Proxy,
    /// One caller's listener for one dependency.
    Upstream {
        /// The calling service.
        caller: Arc<str>,
        /// The service called.
        target: Arc<str>,
    },
}

/// Serves calls between services.
#[derive(Debug)]
pub struct Mesh {
    proxy: Arc<Proxy>,
    mode: MeshMode,
}

impl Mesh {
    /// A mesh listener on the proxy's engine.
    pub fn new(proxy: Arc<Proxy>, mode: MeshMode) -> Self {
        Self { proxy, mode }
    }

    async fn call(
        &self,
        mut request: Request<Incoming>,
        exchange: &Exchange,
        client: SocketAddr,
        labels: &mut Labels,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let table = self.proxy.table.load_full();
        let (caller, target) = match &self.mode {
            MeshMode::Upstream { caller, target } => {
                (Some(Identity::Service(caller.clone())), target.to_string())
            }
            MeshMode::Proxy => {
                if request.method() == Method::CONNECT {
                    return Err(refused(StatusCode::METHOD_NOT_ALLOWED, "connect_unsupported", "CONNECT tunnels (HTTPS through the mesh) are not yet supported; call http://SERVICE/ instead".to_owned()));
                }
                let Some(host) = request.uri().host().map(str::to_ascii_lowercase) else {
                    return Err(ProxyError::BadRequest(
                        "the mesh takes absolute-form requests such as GET http://inventory/reserve, as an HTTP proxy does; set http_proxy to this listener".to_owned(),
                    ));
                };
                (
                    identify(&table, request.headers().get(PROXY_AUTHORIZATION)),
                    host,
                )
            }
        };
        let caller_name = caller.as_ref().map(Identity::service);
        labels.route = Some(format!("mesh:{}", caller_name.unwrap_or("anonymous")).into());
        labels.service = Some(target.as_str().into());
        labels.caller = Some(caller_name.unwrap_or("anonymous").to_owned());
        authorize(&self.proxy, &table, caller_name, &target)?;
        let service = table
            .service(&target)
            .cloned()
            .ok_or_else(|| ProxyError::UnknownService(target.clone()))?;
        let path = request.uri().path();
        if has_dot_segments(path) {
            return Err(ProxyError::BadRequest(format!(
                "the path {path:?} has '.' or '..' segments"
            )));
        }
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let headers = request.headers_mut();
        headers.remove(PROXY_AUTHORIZATION);
        match caller_name.and_then(|name| HeaderValue::from_str(name).ok()) {
            Some(value) => headers.insert(CALLER, value),
            None => headers.remove(CALLER),
        };
        let zone = match &caller {
            Some(Identity::Instance(caller)) => caller.zone.clone(),
            _ => None,
        };
        let target = Target {
            service: &service,
            path_and_query: &path_and_query,
            timeout: None,
            version: None,
            route_faults: None,
            max_body: MAX_BODY,
            client,
            zone: zone.as_deref(),
            traceparent: &exchange.trace_header,
            tls: false,
        };
        forward(&self.proxy, request, &target, &mut labels.tried).await
    }
}

impl Handler for Mesh {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let exchange = Exchange::begin(&self.proxy, &request, client);
        let mut labels = Labels::default();
        let result = self.call(request, &exchange, client, &mut labels).await;
        let mut response = self.proxy.finish(exchange, result, labels);
        if response.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            response.headers_mut().insert(
                PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"conway-mesh\""),
            );
        }
        response
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
enum Identity {
    /// An instance, by its proxy token.
    Instance(Caller),
    /// A service, by the listener it used.
    Service(Arc<str>),
}

impl Identity {
    fn service(&self) -> &str {
        match self {
            Self::Instance(caller) => &caller.service,
            Self::Service(service) => service,
        }
    }
}

/// The caller named by `Proxy-Authorization: Basic base64(SERVICE:TOKEN)`, if the token
/// is one the registry knows for that service.
fn identify(table: &Table, header: Option<&HeaderValue>) -> Option<Identity> {
    let encoded = header?.to_str().ok()?.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let credentials = std::str::from_utf8(&decoded).ok()?;
    let (service, token) = credentials.split_once(':')?;
    let digest = hex(&Sha256::digest(token.as_bytes()));
    let caller = table.callers.get(&digest)?;
    (&*caller.service == service).then(|| Identity::Instance(caller.clone()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies `[mesh] authorization` to a call from `caller` to `target`.
fn authorize(
    proxy: &Proxy,
    table: &Table,
    caller: Option<&str>,
    target: &str,
) -> Result<(), ProxyError> {
    if table.authorization == MeshAuthorization::Off {
        return Ok(());
    }
    let declared = caller.is_some_and(|caller| {
        table
            .dependencies
            .get(caller)
            .is_some_and(|deps| deps.iter().any(|d| d == target))
    });
    if declared {
        return Ok(());
    }
    let caller_name = caller.unwrap_or("anonymous");
    proxy
        .metrics
        .undeclared_calls
        .get_or_create(&CallLabels {
            caller: caller_name.to_owned(),
            callee: target.to_owned(),
        })
        .inc();
    match (table.authorization, caller) {
        (MeshAuthorization::Enforce, None) => Err(refused(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "caller_unknown",
            format!(
                "the mesh does not know who is calling {target:?}: send Proxy-Authorization with the instance's token (the http_proxy setting Conway gives each instance)"
            ),
        )),
        (MeshAuthorization::Enforce, Some(caller)) => Err(refused(
            StatusCode::FORBIDDEN,
            "undeclared_dependency",
            format!("{caller:?} may not call {target:?}: it is not in {caller}'s depends_on"),
        )),
        _ => {
            tracing::warn!(
                caller = caller_name,
                callee = target,
                "undeclared call (mesh authorization is audit)"
            );
            Ok(())
        }
    }
}

fn refused(status: StatusCode, code: &'static str, message: String) -> ProxyError {
    ProxyError::Refused {
        status,
        code,
        message,
        retry_after: None,
    }
}
