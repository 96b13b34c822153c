//! The rules of `[consumers.NAME]`, `[jwt.NAME]` and `[telemetry]`.

use super::{assert_error, assert_errors, assert_valid};

#[test]
fn api_keys_are_stored_as_sha256_digests() {
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_valid(&format!(
        "[consumers.app]\napi_keys = [\"sha256:{digest}\"]\n"
    ));
    assert_valid(&format!(
        "[consumers.app]\napi_keys = [\"sha256:{}\"]\n",
        digest.to_uppercase()
    ));
    let short = &digest[..63];
    assert_errors(
        &format!(
            "[consumers.app]\napi_keys = [\"sha256:{digest}\", \"my-secret-key\", \"sha256:{short}\", \"md5:{digest}\"]\n"
        ),
        &[
            (
                2,
                88,
                &[
                    "an API key is stored as its digest",
                    "sha256sum",
                    "never in clear",
                ],
            ),
            (2, 105, &["stored as its digest"]),
            (2, 179, &["stored as its digest"]),
        ],
    );
    assert_error(
        &format!(
            "[consumers.app]\napi_keys = [\"sha256:{}g\"]\n",
            &digest[..63]
        ),
        2,
        13,
        &["stored as its digest"],
    );
}

#[test]
fn a_jwt_issuer_has_exactly_one_key_source() {
    for source in [
        "secret_file = \"hs.key\"",
        "public_key_file = \"rs.pem\"",
        "jwks_file = \"jwks.json\"",
    ] {
        assert_valid(&format!(
            "[jwt.sso]\nissuer = \"https://sso.example\"\naudience = \"shop\"\n{source}\n"
        ));
    }
    assert_error(
        "[jwt.sso]\nissuer = \"https://sso.example\"\naudience = \"shop\"\n",
        1,
        1,
        &["give exactly one of secret_file, public_key_file and jwks_file"],
    );
    assert_error(
        "[jwt]\nsso = { issuer = \"https://sso.example\", audience = \"shop\", secret_file = \"a\", jwks_file = \"b\" }\n",
        2,
        7,
        &["give exactly one of"],
    );
}

#[test]
fn a_jwt_issuer_names_its_issuer_and_audience() {
    assert_errors(
        "[jwt.sso]\nissuer = \"\"\naudience = \"\"\nsecret_file = \"k\"\n",
        &[
            (2, 10, &["issuer must not be empty"]),
            (3, 12, &["audience must not be empty"]),
        ],
    );
}

#[test]
fn the_otlp_endpoint_is_an_http_url() {
    for endpoint in ["http://127.0.0.1:4318", "https://collector.example"] {
        assert_valid(&format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n"));
    }
    for endpoint in [
        "localhost:4318",
        "grpc://collector:4317",
        "http://",
        "http:///v1",
        "http://a b",
    ] {
        assert_error(
            &format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n"),
            2,
            17,
            &[
                &format!("invalid OTLP endpoint {endpoint:?}"),
                "http:// or https://",
            ],
        );
    }
}
