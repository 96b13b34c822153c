//! Tokens good and bad, against issuers with each kind of key.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conway_core::manifest::{Auth, JwtIssuer};
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::{Authenticator, Requirements};
use crate::error::ProxyError;

fn testdata(file: &str) -> String {
    format!("{}/src/auth/testdata/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn issuer(key: (&str, &str)) -> JwtIssuer {
    let mut issuer = JwtIssuer {
        issuer: "https://sso.example".into(),
        audience: "shop".into(),
        ..JwtIssuer::default()
    };
    let path = Some(testdata(key.1));
    match key.0 {
        "secret" => issuer.secret_file = path,
        _ => issuer.public_key_file = path,
    }
    issuer
}

fn authenticator() -> std::sync::Arc<Authenticator> {
    let issuers = BTreeMap::from([
        ("hs".to_owned(), issuer(("secret", "hs256.secret"))),
        ("rs".to_owned(), issuer(("public", "rsa-public.pem"))),
        ("es".to_owned(), issuer(("public", "ec-public.pem"))),
    ]);
    Authenticator::build(&BTreeMap::new(), &issuers, None)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(extra: Value) -> Value {
    let mut claims =
        json!({ "iss": "https://sso.example", "aud": "shop", "sub": "alice", "exp": now() + 300 });
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    claims
}

fn sign(algorithm: Algorithm, claims: &Value) -> String {
    let key = match algorithm {
        Algorithm::HS256 => EncodingKey::from_secret(
            std::fs::read(testdata("hs256.secret"))
                .unwrap()
                .trim_ascii_end(),
        ),
        Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(&std::fs::read(testdata("rsa-private.pem")).unwrap()).unwrap()
        }
        _ => EncodingKey::from_ec_pem(&std::fs::read(testdata("ec-private.pem")).unwrap()).unwrap(),
    };
    encode(&Header::new(algorithm), claims, &key).unwrap()
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn check(
    token: &str,
    required: &BTreeMap<String, String>,
    scopes: &[String],
) -> Result<Option<std::sync::Arc<str>>, (StatusCode, &'static str)> {
    let headers = bearer(token);
    authenticator()
        .authenticate(
            Auth::Jwt,
            &headers,
            Requirements {
                claims: required,
                scopes,
            },
        )
        .map_err(|error| match error {
            ProxyError::Refused {
                status,
                code,
                message,
                ..
            } => {
                assert!(
                    !message.contains(token),
                    "a refusal must not echo the token"
                );
                (status, code)
            }
            other => panic!("unexpected {other:?}"),
        })
}

fn refused(token: &str) -> (StatusCode, &'static str) {
    check(token, &BTreeMap::new(), &[]).unwrap_err()
}

#[test]
fn valid_tokens_of_each_kind_authenticate_their_subject() {
    for algorithm in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256] {
        let token = sign(algorithm, &claims(json!({})));
        assert_eq!(
            check(&token, &BTreeMap::new(), &[]).unwrap().as_deref(),
            Some("alice"),
            "{algorithm:?}"
        );
    }
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let expired = sign(Algorithm::HS256, &claims(json!({ "exp": now() - 3600 })));
    assert_eq!(
        refused(&expired),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
    let early = sign(Algorithm::HS256, &claims(json!({ "nbf": now() + 3600 })));
    assert_eq!(
        refused(&early),
        (StatusCode::UNAUTHORIZED, "token_not_yet_valid")
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let issuer = sign(
        Algorithm::RS256,
        &claims(json!({ "iss": "https://evil.example" })),
    );
    assert_eq!(
        refused(&issuer),
        (StatusCode::UNAUTHORIZED, "invalid_issuer")
    );
    let audience = sign(Algorithm::RS256, &claims(json!({ "aud": "another-app" })));
    assert_eq!(
        refused(&audience),
        (StatusCode::UNAUTHORIZED, "invalid_audience")
    );
}

#[test]
fn a_tampered_token_is_refused() {
    let token = sign(Algorithm::HS256, &claims(json!({})));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims(json!({ "sub": "mallory" })).to_string());
    assert_eq!(
        refused(&parts.join(".")),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
}

#[test]
fn alg_none_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    assert_eq!(
        refused(&format!("{header}.{payload}.")),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // Key confusion: the attacker signs HS256 with the RSA issuer's public key as secret.
    let public = std::fs::read(testdata("rsa-public.pem")).unwrap();
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(refused(&token).0, StatusCode::UNAUTHORIZED);
}

#[test]
fn malformed_missing_and_oversized_tokens_are_refused() {
    assert_eq!(
        refused("not-a-jwt"),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert_eq!(
        refused(&"a".repeat(super::MAX_TOKEN_BYTES + 1)),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let error = authenticator().authenticate(
        Auth::Jwt,
        &HeaderMap::new(),
        Requirements {
            claims: &BTreeMap::new(),
            scopes: &[],
        },
    );
    assert!(matches!(
        error,
        Err(ProxyError::Refused {
            code: "missing_credentials",
            ..
        })
    ));
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"),
    );
    let error = authenticator().authenticate(
        Auth::Jwt,
        &headers,
        Requirements {
            claims: &BTreeMap::new(),
            scopes: &[],
        },
    );
    assert!(matches!(
        error,
        Err(ProxyError::Refused {
            code: "invalid_token",
            ..
        })
    ));
}

#[test]
fn required_claims_and_scopes_are_enforced_with_403() {
    let token = sign(
        Algorithm::HS256,
        &claims(json!({ "scope": "orders:read orders:write", "tier": "gold" })),
    );
    let gold = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
    let silver = BTreeMap::from([("tier".to_owned(), "silver".to_owned())]);
    assert!(check(&token, &gold, &["orders:write".to_owned()]).is_ok());
    assert_eq!(
        check(&token, &silver, &[]).unwrap_err(),
        (StatusCode::FORBIDDEN, "claim_required")
    );
    assert_eq!(
        check(&token, &gold, &["admin".to_owned()]).unwrap_err(),
        (StatusCode::FORBIDDEN, "scope_required")
    );
}

#[test]
fn a_verified_token_is_served_from_the_cache_with_its_requirements_rechecked() {
    let authenticator = authenticator();
    let token = sign(Algorithm::RS256, &claims(json!({ "scope": "read" })));
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let none = BTreeMap::new();
    let first = authenticator.authenticate(
        Auth::Jwt,
        &headers,
        Requirements {
            claims: &none,
            scopes: &[],
        },
    );
    assert_eq!(first.unwrap().as_deref(), Some("alice"));
    assert_eq!(authenticator.issuers.cache.lock().len(), 1);
    let write = ["write".to_owned()];
    let second = authenticator.authenticate(
        Auth::Jwt,
        &headers,
        Requirements {
            claims: &none,
            scopes: &write,
        },
    );
    assert!(matches!(
        second,
        Err(ProxyError::Refused {
            code: "scope_required",
            ..
        })
    ));
}
