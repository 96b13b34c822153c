//! JWTs from the `[jwt.*]` issuers: HS256 with a shared secret, RS256 or ES256 with a
//! public key, or the keys of a JWKS file. A token's algorithm must be the one its
//! issuer's key is for — so `alg: none` and HS256 signed with a public key (key
//! confusion) fail — and its issuer, audience, expiry and not-before are checked.
//! Verified tokens are cached by their SHA-256 until they expire.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use conway_core::manifest::JwtIssuer;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Requirements, forbidden, unauthorized};
use crate::error::ProxyError;

/// The largest token accepted.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;
/// The most verified tokens remembered.
const CACHE_CAPACITY: usize = 10_000;

/// One key an issuer signs with.
struct Key {
    algorithm: Algorithm,
    id: Option<String>,
    key: DecodingKey,
}

/// An issuer and its keys.
struct Issuer {
    name: Arc<str>,
    issuer: String,
    audience: String,
    keys: Vec<Key>,
}

/// A token verified earlier.
pub(super) struct Verified {
    consumer: Arc<str>,
    claims: Map<String, Value>,
    expires: u64,
}

/// The issuers, and the tokens they verified.
#[derive(Default)]
pub struct Issuers {
    issuers: Vec<Issuer>,
    pub(super) cache: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuers")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Issuers {
    /// Loads each issuer's key file. An issuer whose key cannot be read is logged and
    /// left without keys: its tokens are refused, the others still work.
    pub fn build(config: &BTreeMap<String, JwtIssuer>) -> Self {
        let issuers = config
            .iter()
            .map(|(name, issuer)| {
                let keys = load_keys(issuer).unwrap_or_else(|error| {
                    tracing::warn!(issuer = %name, %error, "cannot load the issuer's key; its tokens are refused");
                    Vec::new()
                });
                Issuer { name: name.as_str().into(), issuer: issuer.issuer.clone(), audience: issuer.audience.clone(), keys }
            })
            .collect();
        Self {
            issuers,
            cache: Mutex::default(),
        }
    }

    /// Verifies a token and the route's requirements; the consumer is its `sub` (or the
    /// issuer's name when it has none).
    pub fn verify(
        &self,
        token: &str,
        requirements: Requirements<'_>,
    ) -> Result<Arc<str>, ProxyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(unauthorized("invalid_token", "the token is too large"));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now();
        let cached = self
            .cache
            .lock()
            .get(&digest)
            .filter(|v| v.expires + LEEWAY_SECONDS > now)
            .cloned();
        let verified = match cached {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify_signature(token)?);
                self.remember(digest, verified.clone(), now);
                verified
            }
        };
        check_requirements(&verified.claims, requirements)?;
        Ok(verified.consumer.clone())
    }

    fn verify_signature(&self, token: &str) -> Result<Verified, ProxyError> {
        let header = decode_header(token)
            .map_err(|_| unauthorized("invalid_token", "the token is not a well-formed JWT"))?;
        let mut last = unauthorized(
            "invalid_token",
            "no configured issuer accepts tokens signed this way",
        );
        for issuer in &self.issuers {
            let candidates = issuer.keys.iter().filter(|k| {
                k.algorithm == header.alg
                    && (header.kid.is_none() || k.id.is_none() || k.id == header.kid)
            });
            for key in candidates {
                let mut validation = Validation::new(key.algorithm);
                validation.set_issuer(&[&issuer.issuer]);
                validation.set_audience(&[&issuer.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.validate_nbf = true;
                validation.leeway = LEEWAY_SECONDS;
                match decode::<Map<String, Value>>(token, &key.key, &validation) {
                    Ok(data) => {
                        let claims = data.claims;
                        let consumer = claims
                            .get("sub")
                            .and_then(Value::as_str)
                            .map_or_else(|| issuer.name.clone(), Arc::from);
                        let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
                        return Ok(Verified {
                            consumer,
                            claims,
                            expires,
                        });
                    }
                    Err(error) => last = refusal(error.kind()),
                }
            }
        }
        Err(last)
    }

    fn remember(&self, digest: [u8; 32], verified: Arc<Verified>, now: u64) {
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, v| v.expires + LEEWAY_SECONDS > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(digest, verified);
    }
}

/// The refusal for a failed verification: what failed, never the token or a key.
fn refusal(kind: &ErrorKind) -> ProxyError {
    match kind {
        ErrorKind::ExpiredSignature => unauthorized("token_expired", "the token has expired"),
        ErrorKind::ImmatureSignature => {
            unauthorized("token_not_yet_valid", "the token is not valid yet (nbf)")
        }
        ErrorKind::InvalidIssuer => {
            unauthorized("invalid_issuer", "the token's issuer is not accepted here")
        }
        ErrorKind::InvalidAudience => unauthorized(
            "invalid_audience",
            "the token is not meant for this audience",
        ),
        ErrorKind::InvalidSignature => {
            unauthorized("invalid_signature", "the token's signature does not verify")
        }
        ErrorKind::MissingRequiredClaim(claim) => unauthorized(
            "invalid_token",
            &format!("the token has no {claim:?} claim"),
        ),
        _ => unauthorized("invalid_token", "the token is not valid"),
    }
}

fn check_requirements(
    claims: &Map<String, Value>,
    requirements: Requirements<'_>,
) -> Result<(), ProxyError> {
    for (name, wanted) in requirements.claims {
        let matches = match claims.get(name) {
            Some(Value::String(value)) => value == wanted,
            Some(Value::Array(values)) => values.iter().any(|v| v.as_str() == Some(wanted)),
            Some(other @ (Value::Number(_) | Value::Bool(_))) => &other.to_string() == wanted,
            _ => false,
        };
        if !matches {
            return Err(forbidden(
                "claim_required",
                format!("this route needs the claim {name:?} = {wanted:?}"),
            ));
        }
    }
    if !requirements.scopes.is_empty() {
        let granted: Vec<&str> = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(scopes)) => scopes.split_whitespace().collect(),
            Some(Value::Array(scopes)) => scopes.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if let Some(missing) = requirements
            .scopes
            .iter()
            .find(|s| !granted.contains(&s.as_str()))
        {
            return Err(forbidden(
                "scope_required",
                format!("this route needs the scope {missing:?}"),
            ));
        }
    }
    Ok(())
}

fn load_keys(issuer: &JwtIssuer) -> Result<Vec<Key>, String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    if let Some(path) = &issuer.secret_file {
        let secret = read(path)?;
        let secret = secret.trim_ascii_end();
        if secret.is_empty() {
            return Err(format!("{path} is empty"));
        }
        return Ok(vec![Key {
            algorithm: Algorithm::HS256,
            id: None,
            key: DecodingKey::from_secret(secret),
        }]);
    }
    if let Some(path) = &issuer.public_key_file {
        let pem = read(path)?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(vec![Key {
                algorithm: Algorithm::RS256,
                id: None,
                key,
            }]);
        }
        let key = DecodingKey::from_ec_pem(&pem)
            .map_err(|_| format!("{path} holds neither an RSA nor an EC public key (PEM)"))?;
        return Ok(vec![Key {
            algorithm: Algorithm::ES256,
            id: None,
            key,
        }]);
    }
    if let Some(path) = &issuer.jwks_file {
        let set: JwkSet =
            serde_json::from_slice(&read(path)?).map_err(|e| format!("{path}: not a JWKS: {e}"))?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let algorithm = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    _ => return None,
                };
                Some(Key {
                    algorithm,
                    id: jwk.common.key_id.clone(),
                    key: DecodingKey::from_jwk(jwk).ok()?,
                })
            })
            .collect();
        return Ok(keys);
    }
    Err("no secret_file, public_key_file or jwks_file".to_owned())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
