//! The gateway role: outside clients, matched against `[[gateway.routes]]`.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};

use crate::auth::Requirements;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::forward::{Target, forward};
use crate::headers::CONSUMER;
use crate::proxy::{Exchange, Labels, Proxy};
use crate::router::{has_dot_segments, request_host};
use crate::server::Handler;

/// Serves outside clients from the routes in the current table.
#[derive(Debug)]
pub struct Gateway {
    proxy: Arc<Proxy>,
    tls: bool,
}

impl Gateway {
    /// A plain-HTTP gateway listener on the proxy's engine.
    pub fn new(proxy: Arc<Proxy>) -> Self {
        Self { proxy, tls: false }
    }

    /// The HTTPS gateway listener (it sets `x-forwarded-proto: https`).
    pub fn tls(proxy: Arc<Proxy>) -> Self {
        Self { proxy, tls: true }
    }

    /// When plain HTTP must redirect to HTTPS: the 308 to send.
    fn redirect(&self, request: &Request<Incoming>) -> Option<Response<ProxyBody>> {
        if self.tls {
            return None;
        }
        let table = self.proxy.table.load();
        let tls = table.tls.as_ref().filter(|tls| tls.config.redirect_http)?;
        let host = request_host(request.uri(), request.headers()).unwrap_or("localhost");
        let port = self.proxy.https_port.unwrap_or(tls.config.listen.port());
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = if port == 443 {
            format!("https://{host}{path}")
        } else {
            format!("https://{host}:{port}{path}")
        };
        let mut response = Response::new(ProxyBody::empty());
        *response.status_mut() = hyper::StatusCode::PERMANENT_REDIRECT;
        response.headers_mut().insert(
            hyper::header::LOCATION,
            HeaderValue::from_str(&location).ok()?,
        );
        Some(response)
    }

    async fn route(
        &self,
        mut request: Request<Incoming>,
        exchange: &Exchange,
        client: SocketAddr,
        labels: &mut Labels,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // Only the gateway says who the consumer is.
        request.headers_mut().remove(CONSUMER);
        let path = request.uri().path().to_owned();
        let path = path.as_str();
        if has_dot_segments(path) {
            return Err(ProxyError::BadRequest(format!(
                "the path {path:?} has '.' or '..' segments"
            )));
        }
        let table = self.proxy.table.load_full();
        let host = request_host(request.uri(), request.headers());
        let route = table
            .router
            .find(host, path, request.method(), request.headers())
            .ok_or_else(|| ProxyError::NoRoute {
                method: request.method().to_string(),
                path: path.to_owned(),
            })?;
        labels.route = Some(route.name.clone());
        labels.service = Some(route.service.clone());
        labels.metrics = Some(route.metrics(&self.proxy.metrics));
        let requirements = Requirements {
            claims: &route.claims,
            scopes: &route.scopes,
        };
        let consumer = table
            .auth
            .authenticate(route.auth, request.headers(), requirements)?;
        if let Some(limit) = &route.rate_limit {
            let key = consumer
                .as_deref()
                .map_or_else(|| client.ip().to_string(), str::to_owned);
            let allowed = self
                .proxy
                .rate_limits
                .check(&route.name, limit, &key)
                .map_err(|limited| ProxyError::RateLimited {
                    limit: limited.limit,
                    retry_after: limited.retry_after,
                })?;
            labels.rate = Some(allowed);
        }
        if let Some(consumer) = consumer
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            request.headers_mut().insert(CONSUMER, consumer);
        }
        let service = table
            .service(&route.service)
            .cloned()
            .ok_or_else(|| ProxyError::UnknownService(route.service.to_string()))?;
        let mut path_and_query = route.upstream_path(path).to_owned();
        if let Some(query) = request.uri().query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let target = Target {
            service: &service,
            path_and_query: &path_and_query,
            timeout: route.timeout,
            version: route.version.as_deref(),
            route_faults: route.faults.as_ref(),
            max_body: route.max_body,
            client,
            zone: None,
            traceparent: &exchange.trace_header,
            tls: self.tls,
        };
        forward(&self.proxy, request, &target, &mut labels.tried).await
    }
}

impl Handler for Gateway {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let exchange = Exchange::begin(&self.proxy, &request, client);
        let mut labels = Labels::default();
        let result = match self.redirect(&request) {
            Some(redirect) => Ok(redirect),
            None => self.route(request, &exchange, client, &mut labels).await,
        };
        self.proxy.finish(exchange, result, labels)
    }
}
