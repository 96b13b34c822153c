//! The rules of `[[gateway.routes]]`: targets, paths, methods, reachability,
//! authentication and limits.

use super::{assert_error, assert_errors, assert_valid, assert_warnings};

/// A service to route to, then the routes.
const WEB: &str = "[services.web]\nrun = [\"web\"]\n";

#[test]
fn a_route_goes_to_a_declared_service() {
    assert_valid(&format!(
        "{WEB}[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n"
    ));
    assert_error(
        &format!("{WEB}[[gateway.routes]]\npath = \"/\"\nservice = \"wbe\"\n"),
        5,
        11,
        &["unknown service \"wbe\"", "the services are web"],
    );
    assert_error(
        "[[gateway.routes]]\nservice = \"web\"\n",
        2,
        11,
        &["unknown service \"web\"", "no services are declared"],
    );
}

#[test]
fn a_route_path_is_a_clean_prefix() {
    assert_errors(
        &format!(
            "{WEB}[[gateway.routes]]\npath = \"api\"\nservice = \"web\"\n[[gateway.routes]]\npath = \"/b?x=1\"\nservice = \"web\"\n"
        ),
        &[
            (4, 8, &["invalid path prefix \"api\"", "start with '/'"]),
            (7, 8, &["invalid path prefix \"/b?x=1\"", "no query"]),
        ],
    );
}

#[test]
fn methods_are_upper_case() {
    assert_valid(&format!(
        "{WEB}[[gateway.routes]]\nservice = \"web\"\nmethods = [\"GET\", \"HEAD\"]\n"
    ));
    assert_errors(
        &format!(
            "{WEB}[[gateway.routes]]\nservice = \"web\"\nmethods = [\"GET\", \"post\", \"\"]\n"
        ),
        &[
            (5, 19, &["invalid method \"post\"", "upper case"]),
            (5, 27, &["invalid method \"\""]),
        ],
    );
}

#[test]
fn a_route_matching_the_same_requests_as_an_earlier_one_is_a_duplicate() {
    let source = format!(
        "{WEB}[[gateway.routes]]\npath = \"/api\"\nservice = \"web\"\n[[gateway.routes]]\nname = \"again\"\npath = \"/api/\"\nservice = \"web\"\n"
    );
    assert_error(
        &source,
        8,
        8,
        &[
            "this route duplicates route #1 (web:/api)",
            "tried in order",
        ],
    );
}

#[test]
fn a_route_under_a_broader_earlier_one_is_shadowed() {
    let source = format!(
        "{WEB}[[gateway.routes]]\nname = \"all\"\npath = \"/api\"\nservice = \"web\"\n[[gateway.routes]]\npath = \"/api/orders\"\nservice = \"web\"\nmethods = [\"GET\"]\n"
    );
    assert_error(&source, 8, 8, &["this route is shadowed by route #1 (all)"]);
}

#[test]
fn a_narrower_route_before_a_broader_one_is_reachable() {
    assert_valid(&format!(
        "{WEB}[[gateway.routes]]\npath = \"/api/orders\"\nservice = \"web\"\n[[gateway.routes]]\npath = \"/api\"\nservice = \"web\"\n"
    ));
    // `/api/ordersx` is not under `/api/orders`: prefixes match by segment.
    assert_valid(&format!(
        "{WEB}[[gateway.routes]]\npath = \"/api/orders\"\nservice = \"web\"\n[[gateway.routes]]\npath = \"/api/ordersx\"\nservice = \"web\"\n"
    ));
    // An earlier route that matches fewer methods, one host or one header value leaves
    // the rest to the later route.
    for earlier in [
        "methods = [\"GET\"]",
        "host = \"a.example\"",
        "headers = { x-beta = \"1\" }",
    ] {
        assert_valid(&format!(
            "{WEB}[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n{earlier}\n[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n"
        ));
    }
    // Hosts compare without regard to case.
    assert_error(
        &format!(
            "{WEB}[[gateway.routes]]\nhost = \"A.example\"\nservice = \"web\"\n[[gateway.routes]]\nhost = \"a.EXAMPLE\"\nservice = \"web\"\n"
        ),
        6,
        1,
        &["duplicates route #1"],
    );
}

#[test]
fn a_jwt_route_needs_an_issuer() {
    let route = format!("{WEB}[[gateway.routes]]\nservice = \"web\"\nauth = \"jwt\"\n");
    assert_valid(&format!(
        "{route}[jwt.sso]\nissuer = \"https://sso.example\"\naudience = \"shop\"\njwks_file = \"jwks.json\"\n"
    ));
    assert_error(
        &route,
        5,
        8,
        &["auth = \"jwt\" needs a token issuer", "[jwt.NAME]"],
    );
}

#[test]
fn claims_and_scopes_need_jwt() {
    let issuer =
        "[jwt.sso]\nissuer = \"https://sso.example\"\naudience = \"shop\"\nsecret_file = \"k\"\n";
    assert_valid(&format!(
        "{WEB}{issuer}[[gateway.routes]]\nservice = \"web\"\nauth = \"jwt\"\nclaims = {{ role = \"admin\" }}\nscopes = [\"orders:read\"]\n"
    ));
    assert_errors(
        &format!(
            "{WEB}{issuer}[[gateway.routes]]\nservice = \"web\"\nclaims = {{ role = \"admin\" }}\nscopes = [\"orders:read\"]\n"
        ),
        &[
            (9, 10, &["`claims` applies to JWTs", "auth = \"jwt\""]),
            (10, 10, &["`scopes` applies to JWTs"]),
        ],
    );
}

#[test]
fn scopes_on_an_api_key_route_without_consumers_are_an_error_and_a_warning() {
    let source = format!(
        "{WEB}[[gateway.routes]]\nservice = \"web\"\nauth = \"api-key\"\nscopes = [\"x\"]\n"
    );
    assert_error(&source, 6, 10, &["`scopes` applies to JWTs"]);
    let all = match conway_core::parse(&source) {
        Ok(_) => panic!("invalid"),
        Err(diagnostics) => diagnostics,
    };
    let warnings: Vec<_> = all
        .iter()
        .filter(|d| d.severity == conway_core::Severity::Warning)
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(warnings, [(5, 8)]);
}

#[test]
fn an_api_key_route_without_consumers_is_a_warning_only() {
    let source = format!("{WEB}[[gateway.routes]]\nservice = \"web\"\nauth = \"api-key\"\n");
    assert_warnings(
        &source,
        &[(
            5,
            8,
            &["auth = \"api-key\" with no [consumers.NAME]", "refused"],
        )],
    );
    let key = format!("sha256:{}", "a".repeat(64));
    assert_warnings(
        &format!("{source}[consumers.app]\napi_keys = [\"{key}\"]\n"),
        &[],
    );
}

#[test]
fn a_burst_and_a_route_timeout_are_not_zero() {
    let route = format!("{WEB}[[gateway.routes]]\nservice = \"web\"\n");
    assert_valid(&format!(
        "{route}rate_limit = {{ rate = \"5/s\", burst = 1 }}\ntimeout = \"1ms\"\n"
    ));
    assert_errors(
        &format!("{route}rate_limit = {{ rate = \"5/s\", burst = 0 }}\ntimeout = \"0s\"\n"),
        &[
            (5, 38, &["burst must be at least 1"]),
            (6, 11, &["timeout must be longer than zero"]),
        ],
    );
}

#[test]
fn route_faults_follow_the_service_fault_rules() {
    assert_error(
        &format!(
            "{WEB}[[gateway.routes]]\nservice = \"web\"\nfaults = {{ abort = {{ percent = 10, status = 200 }} }}\n"
        ),
        5,
        45,
        &["status must be an HTTP error status"],
    );
}

#[test]
fn https_needs_a_certificate_and_an_address_of_its_own() {
    assert_valid(
        "[gateway.tls]\ncertificates = [{ cert_file = \"cert.pem\", key_file = \"key.pem\", hosts = [\"shop.example\"] }]\n",
    );
    assert_error(
        "[gateway.tls]\ncertificates = []\n",
        2,
        16,
        &["give at least one certificate"],
    );
    assert_error(
        "[gateway]\nlisten = \"127.0.0.1:8443\"\n\n[gateway.tls]\nlisten = \"127.0.0.1:8443\"\ncertificates = [{ cert_file = \"c\", key_file = \"k\" }]\n",
        5,
        10,
        &["needs an address of its own"],
    );
    assert_error(
        "[gateway.tls]\ncertificates = [{ cert_file = \"c\" }]\n",
        2,
        17,
        &["missing field `key_file`"],
    );
}
