//! Authentication at the gateway: API keys (`x-api-key`, stored as SHA-256 digests) and
//! JWTs (`authorization: Bearer`, from the `[jwt.*]` issuers), per route. The consumer a
//! request authenticates as reaches the upstream in `x-conway-consumer`.
//!
//! Every refusal is a 401 (no or bad credentials) or 403 (valid, but not allowed here)
//! with a JSON error that names the problem and never echoes a secret.

mod api_key;
mod jwt;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use conway_core::manifest::{Auth, Consumer, JwtIssuer};
use hyper::HeaderMap;
use hyper::StatusCode;

pub use api_key::ApiKeys;
pub use jwt::{Issuers, MAX_TOKEN_BYTES};

use crate::error::ProxyError;

/// The credentials a route checks, built from the registry's consumers and issuers.
#[derive(Debug, Default)]
pub struct Authenticator {
    api_keys: ApiKeys,
    issuers: Issuers,
    /// What this was built from, to rebuild only on change.
    source: (BTreeMap<String, Consumer>, BTreeMap<String, JwtIssuer>),
}

/// What a route asks of a JWT beyond a valid signature.
#[derive(Debug, Clone, Copy)]
pub struct Requirements<'a> {
    /// Claims that must have these exact values.
    pub claims: &'a BTreeMap<String, String>,
    /// Scopes the `scope` claim must include.
    pub scopes: &'a [String],
}

impl Authenticator {
    /// Builds from the registry's consumers and issuers, reusing `previous` when they
    /// did not change (key files are read only when they may have).
    pub fn build(
        consumers: &BTreeMap<String, Consumer>,
        issuers: &BTreeMap<String, JwtIssuer>,
        previous: Option<&Arc<Authenticator>>,
    ) -> Arc<Self> {
        if let Some(previous) =
            previous.filter(|p| &p.source.0 == consumers && &p.source.1 == issuers)
        {
            return previous.clone();
        }
        Arc::new(Self {
            api_keys: ApiKeys::build(consumers),
            issuers: Issuers::build(issuers),
            source: (consumers.clone(), issuers.clone()),
        })
    }

    /// Checks the request's credentials for a route with `auth`; the consumer, or
    /// `None` on an open route.
    pub fn authenticate(
        &self,
        auth: Auth,
        headers: &HeaderMap,
        requirements: Requirements<'_>,
    ) -> Result<Option<Arc<str>>, ProxyError> {
        match auth {
            Auth::None => Ok(None),
            Auth::ApiKey => {
                let key = headers.get("x-api-key").ok_or_else(|| {
                    unauthorized(
                        "missing_credentials",
                        "this route needs an API key in the x-api-key header",
                    )
                })?;
                self.api_keys
                    .find(key.as_bytes())
                    .map(Some)
                    .ok_or_else(|| unauthorized("invalid_api_key", "the API key is not valid"))
            }
            Auth::Jwt => {
                let value = headers.get(hyper::header::AUTHORIZATION).ok_or_else(|| {
                    unauthorized(
                        "missing_credentials",
                        "this route needs a token: authorization: Bearer TOKEN",
                    )
                })?;
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(str::trim)
                    .ok_or_else(|| {
                        unauthorized(
                            "invalid_token",
                            "the authorization header must be: Bearer TOKEN",
                        )
                    })?;
                self.issuers.verify(token, requirements).map(Some)
            }
        }
    }
}

/// A 401 with a code and a message that reveals nothing secret.
pub(crate) fn unauthorized(code: &'static str, message: &str) -> ProxyError {
    ProxyError::Refused {
        status: StatusCode::UNAUTHORIZED,
        code,
        message: message.to_owned(),
        retry_after: None,
    }
}

/// A 403: authenticated, but the route asks for more.
pub(crate) fn forbidden(code: &'static str, message: String) -> ProxyError {
    ProxyError::Refused {
        status: StatusCode::FORBIDDEN,
        code,
        message,
        retry_after: None,
    }
}
