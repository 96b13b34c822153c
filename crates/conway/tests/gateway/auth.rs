//! Authentication and rate limits through the real gateway: API keys, JWTs, the
//! consumer header, and 429s with their headers.

use std::time::{SystemTime, UNIX_EPOCH};

use conway_test_support::temp_dir;
use conway_test_support::upstream::{Reply, server};
use serde_json::{Value, json};

use crate::fixture::{System, external};

/// `sha256:` and the hex digest of `key`, as the manifest stores API keys.
fn digest(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_name_the_consumer_and_rate_limits_answer_429() {
    let upstream = server().named("orders").fallback(Reply::echo()).run();
    let manifest = format!(
        "[[gateway.routes]]\npath = \"/api\"\nservice = \"orders\"\nauth = \"api-key\"\nrate_limit = {{ rate = \"2/m\", burst = 2 }}\n\n\
         [consumers.storefront]\napi_keys = [\"{}\"]\n\n{}",
        digest("front-key"),
        external("orders", &[&upstream], "")
    );
    let system = System::start(&manifest).await;
    let send = |key: Option<&'static str>, consumer: Option<&'static str>| {
        let mut request = system.http.get(system.url("/api/orders"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(consumer) = consumer {
            request = request.header("x-conway-consumer", consumer);
        }
        request.send()
    };
    let missing = send(None, None).await.expect("answer");
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "missing_credentials");
    let wrong = send(Some("front-kez"), None).await.expect("answer");
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        !body.to_string().contains("front-kez"),
        "a refusal never echoes the key"
    );

    let ok = send(Some("front-key"), Some("admin"))
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["ratelimit-limit"], "2");
    assert_eq!(ok.headers()["ratelimit-remaining"], "1");
    let echo: Value = ok.json().await.expect("echo");
    assert_eq!(
        echo["headers"]["x-conway-consumer"], "storefront",
        "the gateway's word, not the client's"
    );
    assert_eq!(
        send(Some("front-key"), None)
            .await
            .expect("answer")
            .status(),
        200
    );
    let limited = send(Some("front-key"), None).await.expect("answer");
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    let body: Value = limited.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        upstream.requests(),
        2,
        "refused requests never reach the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_from_a_configured_issuer_authenticate_their_subject() {
    let keys = temp_dir();
    let secret_file = keys.path().join("sso.key");
    std::fs::write(&secret_file, "a-shared-secret-for-this-test\n").expect("secret");
    let upstream = server().named("orders").fallback(Reply::echo()).run();
    let manifest = format!(
        "[[gateway.routes]]\npath = \"/api\"\nservice = \"orders\"\nauth = \"jwt\"\nscopes = [\"orders\"]\n\n\
         [jwt.sso]\nissuer = \"https://sso.example\"\naudience = \"shop\"\nsecret_file = {:?}\n\n{}",
        secret_file.display().to_string(),
        external("orders", &[&upstream], "")
    );
    let system = System::start(&manifest).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let token = |claims: Value| {
        let key = jsonwebtoken::EncodingKey::from_secret(b"a-shared-secret-for-this-test");
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign")
    };
    let claims = |exp: u64, scope: &str| json!({ "iss": "https://sso.example", "aud": "shop", "sub": "alice", "exp": exp, "scope": scope });
    let call = |token: String| {
        system
            .http
            .get(system.url("/api/orders"))
            .bearer_auth(token)
            .send()
    };

    let ok = call(token(claims(now + 300, "orders")))
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200);
    let echo: Value = ok.json().await.expect("echo");
    assert_eq!(echo["headers"]["x-conway-consumer"], "alice");
    let expired = call(token(claims(now - 3600, "orders")))
        .await
        .expect("answer");
    assert_eq!(expired.status(), 401);
    let body: Value = expired.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "token_expired");
    let unscoped = call(token(claims(now + 300, "catalog")))
        .await
        .expect("answer");
    assert_eq!(unscoped.status(), 403);
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"another-secret");
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims(now + 300, "orders"),
            &key,
        )
        .expect("sign")
    };
    assert_eq!(call(forged).await.expect("answer").status(), 401);
    assert_eq!(
        upstream.requests(),
        1,
        "only the valid token reached the service"
    );
}
