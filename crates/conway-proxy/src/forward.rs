//! Forwarding one request to a service: deadline, fault injection, body handling, then
//! tries — each picking an endpoint (avoiding the one that just failed), bounded by its
//! own deadline, classified once, and retried within the service's policy and budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conway_core::manifest::{Faults, Protocol};
use conway_resilience::deadline::Deadline;
use conway_resilience::fault::{FaultInjector, FaultSources};
use conway_resilience::retry::{Attempt, Decision, is_idempotent};
use conway_resilience::{Failure, Outcome};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode, Uri, Version};
use tokio::time::Instant;

use crate::balance::PickRequest;
use crate::body::{ProxyBody, TooLarge};
use crate::error::ProxyError;
use crate::headers::{add_forwarded, is_upgrade, strip_hop_by_hop};
use crate::metrics::ServiceLabels;
use crate::proxy::Proxy;
use crate::table::ServiceState;
use crate::trace::TRACEPARENT;

/// Request bodies up to this size are kept so a retry can send them again.
pub const REPLAY_CAP: u64 = 64 * 1024;
/// How long an endpoint that refused a connection is left out of balancing: nothing
/// listens there, and the registry's health checks will say so soon.
pub const REFUSED_EJECTION: Duration = Duration::from_secs(5);

/// What the caller of [`forward`] knows about the request beyond the request itself.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The service.
    pub service: &'a Arc<ServiceState>,
    /// The path and query to send upstream.
    pub path_and_query: &'a str,
    /// The route's deadline, overriding the service's.
    pub timeout: Option<Duration>,
    /// A version the route pins.
    pub version: Option<&'a str>,
    /// Faults of the route, on top of the service's.
    pub route_faults: Option<&'a Faults>,
    /// The largest body accepted.
    pub max_body: u64,
    /// The client's address.
    pub client: SocketAddr,
    /// The caller's zone, for zone-aware balancing.
    pub zone: Option<&'a str>,
    /// The `traceparent` to send upstream (the request's trace, the proxy's span).
    pub traceparent: &'a HeaderValue,
    /// Whether the client came over TLS (for `x-forwarded-proto`).
    pub tls: bool,
}

/// What the last try reached, for logs and metrics.
#[derive(Debug, Clone, Default)]
pub struct Tried {
    /// The endpoint (instance id) that answered or failed last.
    pub endpoint: Option<String>,
    /// How many tries were made.
    pub tries: u32,
}

/// Sends the request to the service and returns its answer (or the error to answer with).
pub async fn forward(
    proxy: &Proxy,
    mut request: Request<Incoming>,
    target: &Target<'_>,
    tried: &mut Tried,
) -> Result<Response<ProxyBody>, ProxyError> {
    let service = target.service;
    let _inflight = service.inflight.enter();
    let started = Instant::now();
    let timeout = target
        .timeout
        .unwrap_or(service.config.resilience.timeout.get());
    let deadline = Deadline::for_request(started, timeout, request.headers());
    inject_faults(service, target.route_faults, deadline).await?;
    let _admitted = match &service.bulkhead {
        Some(bulkhead) => Some(bulkhead.try_acquire().map_err(|shed| ProxyError::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "overloaded",
            message: format!(
                "{} has too many requests in flight; try again shortly",
                service.name
            ),
            retry_after: Some(shed.retry_after()),
        })?),
        None => None,
    };

    let upgrade = is_upgrade(request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, incoming) = request.into_parts();
    let idempotent = is_idempotent(&parts.method, &parts.headers);
    let declared = declared_length(&parts.headers);
    if declared.is_some_and(|length| length > target.max_body) {
        return Err(ProxyError::BodyTooLarge {
            limit: target.max_body,
        });
    }
    // Kept for any request, idempotent or not: a connect error may be retried whatever
    // the method (nothing was sent), and the body must still be at hand then.
    let wants_replay =
        !upgrade && service.retry.attempts() > 0 && declared.is_some_and(|l| l <= REPLAY_CAP);
    let mut body = if incoming.is_end_stream() {
        Pending::Replayable(Bytes::new())
    } else if wants_replay {
        let limit = declared.unwrap_or(REPLAY_CAP);
        match http_body_util::Limited::new(incoming, limit as usize)
            .collect()
            .await
        {
            Ok(collected) => Pending::Replayable(collected.to_bytes()),
            Err(error) => {
                return Err(ProxyError::BadRequest(format!(
                    "cannot read the request body: {error}"
                )));
            }
        }
    } else {
        Pending::Stream(Some(incoming))
    };

    strip_hop_by_hop(&mut parts.headers, upgrade);
    // HTTP/2 names the host in `:authority`, which has no `Host` header.
    let host = match parts.headers.get(header::HOST) {
        Some(host) => Some(host.clone()),
        None => parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    add_forwarded(&mut parts.headers, target.client, host, target.tls);
    parts
        .headers
        .insert(TRACEPARENT, target.traceparent.clone());
    let http2 = match service.protocol {
        Protocol::Http1 => false,
        Protocol::Http2 => true,
        // gRPC stays HTTP/2; so does h2c a client chose on purpose. HTTP/2 negotiated by
        // TLS (every browser) goes upstream as HTTP/1.1, which every service speaks.
        Protocol::Auto => {
            !upgrade
                && (is_grpc(&parts.headers) || (parts.version == Version::HTTP_2 && !target.tls))
        }
    };
    parts.version = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    // HTTP/1.1 names the target in origin form (`/path?query`) with `Host`, as an
    // instance expects from a client; HTTP/2 needs the scheme and authority.
    let origin_form = if http2 {
        None
    } else {
        let uri: Uri = target.path_and_query.parse().map_err(|_| {
            ProxyError::BadRequest(format!(
                "cannot forward the path {:?}",
                target.path_and_query
            ))
        })?;
        Some(uri)
    };
    // Without retries there is one try: the head moves into it rather than being copied.
    let mut parts = Some(parts);
    // A streamed body cannot be sent twice, so neither can its request.
    let may_retry = service.retry.attempts() > 0 && body.replayable();

    service.retry.on_request();
    let version = target.version.or_else(|| service.pick_version());
    let mut avoid: Option<String> = None;
    loop {
        let now = Instant::now();
        let Some(head) = parts.as_mut() else {
            // Unreachable: without retries the loop ends after the first try.
            return Err(ProxyError::BadRequest(
                "the request cannot be sent again".into(),
            ));
        };
        if !deadline.set_header(now, &mut head.headers) {
            return Err(ProxyError::Timeout {
                service: service.name.to_string(),
                deadline: timeout,
            });
        }
        let permit = match &service.breaker {
            Some(breaker) => Some(breaker.try_acquire().map_err(|open| ProxyError::Refused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "circuit_open",
                message: format!(
                    "the circuit to {} is open after too many failures",
                    service.name
                ),
                retry_after: Some(open.retry_after()),
            })?),
            None => None,
        };
        let mut pick = PickRequest {
            zone: target.zone,
            version,
            avoid: avoid.as_deref(),
            hash_key: None,
        };
        let key = hash_value(service, &head.headers);
        pick.hash_key = key.as_deref();
        let picked = service
            .endpoints
            .pick(&pick)
            .ok_or_else(|| ProxyError::NoEndpoint(service.name.to_string()))?;
        tried.tries += 1;
        tried.endpoint = Some(picked.id().to_owned());
        proxy
            .metrics
            .endpoint_tries(&service.name, picked.endpoint())
            .inc();
        let uri = match &origin_form {
            Some(uri) => uri.clone(),
            None => upstream_uri(picked.addr(), target.path_and_query)?,
        };
        let head = if may_retry {
            head.clone()
        } else {
            parts
                .take()
                .unwrap_or_else(|| unreachable!("checked above"))
        };
        let mut upstream = Request::from_parts(head, body.take(target.max_body));
        *upstream.uri_mut() = uri;
        if !http2 && !upstream.headers().contains_key(header::HOST) {
            // A client that spoke HTTP/2 sent no `Host`: name the instance, as any
            // HTTP/1.1 client would.
            if let Ok(value) = HeaderValue::from_str(&picked.addr().to_string()) {
                upstream.headers_mut().insert(header::HOST, value);
            }
        }
        let per_try = deadline.per_try(now, service.retry.per_try_timeout());
        let sent = proxy.upstreams.send(picked.addr(), http2, upstream);
        let answer = match tokio::time::timeout(per_try, sent).await {
            Ok(Ok(response)) => Answer::Response(response),
            // The client's body outgrew the route's limit: its fault, not the
            // instance's, so no policy counts it.
            Ok(Err(error)) if caused_by_too_large(&error) => {
                return Err(ProxyError::BodyTooLarge {
                    limit: target.max_body,
                });
            }
            Ok(Err(error)) if error.is_connect() => {
                if error.is_refused() {
                    // Nothing listens there: leave it out at once rather than wait for
                    // the health checks or a run of failures.
                    picked
                        .endpoint()
                        .stats()
                        .eject_until(Instant::now() + REFUSED_EJECTION);
                    tracing::info!(service = %service.name, endpoint = picked.id(), "endpoint refused a connection; ejected");
                }
                Answer::Failed(Failure::ConnectError, error_chain(&error))
            }
            Ok(Err(error)) => Answer::Failed(Failure::Reset, error_chain(&error)),
            Err(_) => Answer::Failed(Failure::Timeout, format!("no answer within {per_try:?}")),
        };
        let rtt = picked.picked_at().elapsed();
        let outcome = match &answer {
            Answer::Response(response) => Outcome::from_status(response.status().as_u16()),
            Answer::Failed(failure, _) => Outcome::Failure(*failure),
        };
        if let Some(permit) = permit {
            permit.record(outcome);
        }
        if let Some(outlier) = &service.outlier
            && let Some(ejection) = outlier.record(
                &picked.id().to_owned(),
                outcome,
                service.endpoints.len(),
                Instant::now(),
            )
        {
            picked.endpoint().stats().eject_until(ejection.until);
            tracing::info!(service = %service.name, endpoint = picked.id(), duration = ?ejection.duration, "endpoint ejected");
        }
        let Some(failure) = outcome.failure() else {
            picked.complete(rtt);
            return finish(answer, client_upgrade, service, tried, timeout);
        };
        picked.fail();
        let attempt = Attempt {
            failure,
            idempotent,
            replayable: body.replayable(),
            tries: tried.tries,
            remaining: deadline.remaining(Instant::now()),
        };
        match service.retry.decide(&attempt) {
            Decision::Retry => {
                avoid = tried.endpoint.clone();
                proxy
                    .metrics
                    .retries
                    .get_or_create(&ServiceLabels {
                        service: service.name.to_string(),
                    })
                    .inc();
                tracing::debug!(service = %service.name, endpoint = ?avoid, ?failure, "retrying");
            }
            Decision::Stop(_) => {
                return finish(answer, client_upgrade, service, tried, timeout);
            }
        }
    }
}

/// The answer to give after the last try: the instance's response, or the error its
/// failure stands for.
fn finish(
    answer: Answer,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    service: &ServiceState,
    tried: &Tried,
    timeout: Duration,
) -> Result<Response<ProxyBody>, ProxyError> {
    match answer {
        Answer::Response(response) => Ok(respond(response, client_upgrade)),
        Answer::Failed(kind, detail) => Err(failed(kind, detail, service, tried, timeout)),
    }
}

/// What one try got.
enum Answer {
    /// The instance answered (any status).
    Response(Response<ProxyBody>),
    /// The try failed, with a detail for the error message.
    Failed(Failure, String),
}

/// The request body between tries.
enum Pending {
    /// Buffered (or empty): every try gets a copy.
    Replayable(Bytes),
    /// Streamed: the first try takes it; there is no second.
    Stream(Option<Incoming>),
}

impl Pending {
    fn take(&mut self, limit: u64) -> ProxyBody {
        match self {
            Self::Replayable(bytes) if bytes.is_empty() => ProxyBody::empty(),
            Self::Replayable(bytes) => ProxyBody::full(bytes.clone()),
            Self::Stream(body) => body
                .take()
                .map_or_else(ProxyBody::empty, |body| ProxyBody::limited(body, limit)),
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, Self::Replayable(_))
    }
}

/// The response going back: hop-by-hop headers removed (`traceresponse` is the
/// caller's, [`Proxy::finish`]), and for a protocol switch, the two upgraded connections
/// joined.
fn respond(
    mut response: Response<ProxyBody>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ProxyBody> {
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching && let Some(client_upgrade) = client_upgrade {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(join_upgraded(client_upgrade, upstream_upgrade));
    }
    strip_hop_by_hop(response.headers_mut(), switching);
    response
}

/// Copies bytes both ways between an upgraded client and instance until either closes.
async fn join_upgraded(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (Ok(client), Ok(upstream)) = tokio::join!(client, upstream) else {
        tracing::debug!("a protocol switch was not completed");
        return;
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "upgraded connection ended");
    }
}

/// The error for a failed last try.
fn failed(
    failure: Failure,
    detail: String,
    service: &ServiceState,
    tried: &Tried,
    timeout: Duration,
) -> ProxyError {
    let endpoint = tried.endpoint.clone().unwrap_or_default();
    let service = service.name.to_string();
    match failure {
        Failure::ConnectError => ProxyError::Connect {
            service,
            endpoint,
            detail,
        },
        Failure::Timeout => ProxyError::Timeout {
            service,
            deadline: timeout,
        },
        _ => ProxyError::Reset {
            service,
            endpoint,
            detail,
        },
    }
}

/// Whether a try failed because the request body went past the route's limit.
fn caused_by_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<TooLarge>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// An error and its causes, in one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.is::<TooLarge>() {
            return cause.to_string();
        }
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn upstream_uri(addr: SocketAddr, path_and_query: &str) -> Result<Uri, ProxyError> {
    format!("http://{addr}{path_and_query}")
        .parse()
        .map_err(|_| ProxyError::BadRequest(format!("cannot forward the path {path_and_query:?}")))
}

fn is_grpc(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn declared_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The consistent-hash key of the request, when the service hashes on a header or cookie.
fn hash_value(service: &ServiceState, headers: &hyper::HeaderMap) -> Option<Vec<u8>> {
    match service.endpoints.hash_key()? {
        conway_core::manifest::HashKey::Header(name) => {
            headers.get(name.as_str()).map(|v| v.as_bytes().to_vec())
        }
        conway_core::manifest::HashKey::Cookie(name) => headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_bytes().to_vec()),
    }
}

/// Applies the route's and the service's faults (run-time ones replacing declared
/// ones kind by kind): a delay holds the request (never past its deadline), then an
/// abort answers at once.
async fn inject_faults(
    service: &ServiceState,
    route: Option<&Faults>,
    deadline: Deadline,
) -> Result<(), ProxyError> {
    // The service's own faults are combined once per table; a route's are rare.
    let built;
    let injector = match route {
        None => &service.faults,
        Some(route) => {
            built = FaultInjector::new(FaultSources {
                route: Some(route),
                declared: service.declared_faults.as_ref(),
                runtime: service.runtime_faults.as_ref(),
            });
            &built
        }
    };
    if injector.is_empty() {
        return Ok(());
    }
    let decision = injector.decide(&mut fastrand::Rng::new());
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay.min(deadline.remaining(Instant::now()))).await;
    }
    match decision.abort {
        Some(status) => Err(ProxyError::FaultAbort {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        }),
        None => Ok(()),
    }
}
