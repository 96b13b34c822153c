//! Which requests go where: host, path prefix (and its stripping), methods, headers;
//! version pins and splits; the JSON errors when nothing can serve.

use conway_test_support::upstream::server;
use serde_json::Value;

use crate::fixture::{System, count, error_code, external};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_host_prefix_method_and_headers_in_order() {
    let (a, b, c) = (
        server().named("a").run(),
        server().named("b").run(),
        server().named("c").run(),
    );
    let system = System::start(&format!(
        r#"
[[gateway.routes]]
name = "shop-host"
host = "shop.example"
path = "/"
service = "c"

[[gateway.routes]]
name = "canary"
path = "/api"
headers = {{ x-canary = "1" }}
service = "b"

[[gateway.routes]]
name = "writes"
path = "/api"
methods = ["POST", "PUT"]
service = "b"

[[gateway.routes]]
name = "api"
path = "/api/"
strip_prefix = true
service = "a"

{}{}{}"#,
        external("a", &[&a], ""),
        external("b", &[&b], ""),
        external("c", &[&c], ""),
    ))
    .await;
    let http = &system.http;
    let echo = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("an answer");
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("an echo")
    };

    let got = echo(http.get(system.url("/api/orders/7?x=1"))).await;
    assert_eq!(
        (&got["instance"], &got["path"], &got["query"]),
        (&"a".into(), &"/orders/7".into(), &"x=1".into()),
        "the prefix is stripped, the query kept: {got}"
    );
    let got = echo(http.get(system.url("/api"))).await;
    assert_eq!((&got["instance"], &got["path"]), (&"a".into(), &"/".into()));

    let got = echo(http.get(system.url("/api/orders")).header("x-canary", "1")).await;
    assert_eq!(
        (&got["instance"], &got["path"]),
        (&"b".into(), &"/api/orders".into()),
        "a header match, without stripping: {got}"
    );
    let got = echo(http.get(system.url("/api/orders")).header("x-canary", "2")).await;
    assert_eq!(got["instance"], "a", "another header value does not match");

    let got = echo(http.post(system.url("/api/orders")).body("{\"n\":1}")).await;
    assert_eq!(
        (&got["instance"], &got["method"], &got["body"]),
        (&"b".into(), &"POST".into(), &"{\"n\":1}".into())
    );
    let got = echo(http.delete(system.url("/api/orders/7"))).await;
    assert_eq!(
        got["instance"], "a",
        "DELETE is not one of the writes route's"
    );

    let got = echo(
        http.get(system.url("/api/orders"))
            .header("host", "Shop.Example:8080"),
    )
    .await;
    assert_eq!(
        (&got["instance"], &got["path"]),
        (&"c".into(), &"/api/orders".into()),
        "the host route comes first, whatever the case and port: {got}"
    );

    for path in ["/apix", "/elsewhere", "/"] {
        let response = system.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "no_route", "{path}");
    }
    let served = a.requests() + b.requests() + c.requests();
    assert_eq!(served, 7, "unrouted requests reach no instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_pins_a_version_and_the_split_shares_the_rest() {
    let (v1, v2) = (server().named("v1").run(), server().named("v2").run());
    let system = System::start_unchecked(
        r#"
[[gateway.routes]]
name = "pinned"
path = "/pinned"
version = "2.0.0"
service = "catalog"

[[gateway.routes]]
path = "/"
service = "catalog"

[services.catalog]
health = { http = "/health", interval = "100ms" }
split = { "1.0.0" = "80%", "2.0.0" = "20%" }
"#,
    );
    system.register("catalog", &v1, "1.0.0").await;
    system.register("catalog", &v2, "2.0.0").await;
    system.wait_healthy("catalog", 2).await;

    let pinned = system.spread("/pinned", 50, 10).await;
    assert_eq!(
        count(&pinned, "v2"),
        50,
        "a pin is never relaxed: {pinned:?}"
    );

    // 400 draws at 20%: mean 80, standard deviation 8; ±5 deviations.
    let split = system.spread("/", 400, 20).await;
    let (ones, twos) = (count(&split, "v1"), count(&split, "v2"));
    assert_eq!(ones + twos, 400, "every request served: {split:?}");
    assert!((40..=120).contains(&twos), "2.0.0 got {twos} of 400");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_serve_a_route_is_a_503_in_json() {
    let up = server().named("up").run();
    let system = System::start(&format!(
        r#"
[[gateway.routes]]
path = "/empty"
service = "empty"

[[gateway.routes]]
name = "nobody-runs-it"
path = "/future"
version = "9.9.9"
service = "web"

[[gateway.routes]]
path = "/"
service = "web"

[services.empty]
health = {{ http = "/health", interval = "100ms" }}

{}"#,
        external("web", &[&up], "version = \"1.0.0\""),
    ))
    .await;

    for path in ["/empty/x", "/future"] {
        let response = system.get(path).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(
            response.headers().contains_key("retry-after"),
            "{path}: a 503 says when to come back"
        );
        assert_eq!(error_code(response).await, "no_healthy_endpoint", "{path}");
    }
    assert_eq!(up.requests(), 0);
    assert_eq!(system.get("/").await.status(), 200, "the rest still serves");
}
