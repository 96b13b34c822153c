//! An instance's environment and command line: the variables ARCHITECTURE.md lists,
//! the manifest's `env`, and `$NAME` / `${NAME}` expansion.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where calls to the control plane, the OTLP receiver and other local addresses go
/// directly, never through the mesh.
pub const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// What one instance's environment is made of.
#[derive(Debug, Clone)]
pub struct InstanceContext<'a> {
    /// Its service.
    pub service: &'a str,
    /// Its id (`orders-1`).
    pub instance: &'a str,
    /// The port it must listen on.
    pub port: u16,
    /// The control plane's URL.
    pub control_plane: &'a str,
    /// The service's data folder, shared by its replicas.
    pub data_dir: PathBuf,
    /// The mesh listener and the instance's proxy token, when a mesh runs.
    pub mesh: Option<(SocketAddr, &'a str)>,
    /// One listener per declared dependency (`CONWAY_UPSTREAM_<DEPENDENCY>`).
    pub upstreams: Option<&'a BTreeMap<String, SocketAddr>>,
    /// The OTLP/HTTP receiver's URL, when one runs.
    pub otlp: Option<&'a str>,
}

/// The instance's variables, then the manifest's `env` (whose values may use the
/// instance's variables: `sqlite://$DATA_DIR/db`). The manifest cannot override an
/// instance variable: the supervisor relies on `PORT` and the others being what it set.
pub fn environment(
    context: &InstanceContext<'_>,
    declared: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        vars.insert(name.to_owned(), value);
    };
    set("PORT", context.port.to_string());
    set("CONWAY_SERVICE", context.service.to_owned());
    set("CONWAY_INSTANCE", context.instance.to_owned());
    set("CONWAY_URL", context.control_plane.to_owned());
    set("DATA_DIR", context.data_dir.display().to_string());
    set("no_proxy", NO_PROXY.to_owned());
    set("NO_PROXY", NO_PROXY.to_owned());
    if let Some((mesh, token)) = context.mesh {
        let proxy = format!("http://{}:{token}@{mesh}", context.service);
        set("http_proxy", proxy.clone());
        set("HTTP_PROXY", proxy);
    }
    for (dependency, listener) in context.upstreams.into_iter().flatten() {
        set(&upstream_variable(dependency), format!("http://{listener}"));
    }
    set("OTEL_SERVICE_NAME", context.service.to_owned());
    if let Some(otlp) = context.otlp {
        set("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.to_owned());
    }
    set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned());
    let own = vars.clone();
    for (name, value) in declared {
        if !own.contains_key(name) {
            vars.insert(name.clone(), expand(value, &own));
        }
    }
    vars
}

/// `CONWAY_UPSTREAM_<DEPENDENCY>`: upper case, `-` as `_`.
pub fn upstream_variable(dependency: &str) -> String {
    let name: String = dependency
        .chars()
        .map(|c| match c {
            '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("CONWAY_UPSTREAM_{name}")
}

/// Expands `$NAME` and `${NAME}` from `vars`, and `$$` to `$`. A name that `vars` does
/// not hold, and a `$` that starts no name, are left as written: an argument meant for
/// a shell (`sh -c 'echo $HOME'`) reaches it intact.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, consumed) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) if is_name(&braced[..end]) => (&braced[..end], end + 2),
                _ => ("", 0),
            },
            None => {
                let end = after
                    .char_indices()
                    .find(|&(i, c)| !is_name_char(c, i == 0))
                    .map_or(after.len(), |(i, _)| i);
                (&after[..end], end)
            }
        };
        match vars.get(name).filter(|_| !name.is_empty()) {
            Some(value) => {
                out.push_str(value);
                rest = &after[consumed..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.char_indices().all(|(i, c)| is_name_char(c, i == 0))
}

/// Whether `c` can stand in a variable name; a digit cannot start one.
fn is_name_char(c: char, first: bool) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_plain_and_braced_names() {
        let v = vars(&[("PORT", "9000"), ("DATA_DIR", "/d"), ("A_1", "x")]);
        assert_eq!(expand("$PORT", &v), "9000");
        assert_eq!(expand("--port=$PORT", &v), "--port=9000");
        assert_eq!(expand("${DATA_DIR}/db", &v), "/d/db");
        assert_eq!(expand("$DATA_DIR/db", &v), "/d/db");
        assert_eq!(expand("${PORT}1", &v), "90001");
        assert_eq!(expand("$A_1-$PORT", &v), "x-9000");
        assert_eq!(expand("$PORT$PORT", &v), "90009000");
    }

    #[test]
    fn leaves_unknown_names_and_stray_dollars_as_written() {
        let v = vars(&[("PORT", "9000")]);
        assert_eq!(expand("$HOME/x", &v), "$HOME/x");
        assert_eq!(expand("${HOME}", &v), "${HOME}");
        assert_eq!(expand("cost: 5$", &v), "cost: 5$");
        assert_eq!(expand("$ PORT", &v), "$ PORT");
        assert_eq!(expand("${PORT", &v), "${PORT");
        assert_eq!(expand("${}", &v), "${}");
        assert_eq!(expand("$1", &v), "$1");
        assert_eq!(expand("$PORTS", &v), "$PORTS", "the longest name is taken");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        let v = vars(&[("PORT", "9000")]);
        assert_eq!(expand("$$PORT", &v), "$PORT");
        assert_eq!(expand("$$$PORT", &v), "$9000");
        assert_eq!(expand("a$$", &v), "a$");
    }

    #[test]
    fn non_ascii_text_passes_through() {
        let v = vars(&[("PORT", "9000")]);
        assert_eq!(expand("héllo $PORT ünï", &v), "héllo 9000 ünï");
        assert_eq!(expand("$é", &v), "$é");
    }

    fn context<'a>(
        upstreams: Option<&'a BTreeMap<String, SocketAddr>>,
        mesh: Option<(SocketAddr, &'a str)>,
    ) -> InstanceContext<'a> {
        InstanceContext {
            service: "orders",
            instance: "orders-2",
            port: 41000,
            control_plane: "http://127.0.0.1:7700",
            data_dir: PathBuf::from("/data/services/orders"),
            mesh,
            upstreams,
            otlp: None,
        }
    }

    #[test]
    fn instance_variables_are_set() {
        let env = environment(&context(None, None), &BTreeMap::new());
        assert_eq!(env["PORT"], "41000");
        assert_eq!(env["CONWAY_SERVICE"], "orders");
        assert_eq!(env["CONWAY_INSTANCE"], "orders-2");
        assert_eq!(env["CONWAY_URL"], "http://127.0.0.1:7700");
        assert_eq!(env["DATA_DIR"], "/data/services/orders");
        assert_eq!(env["no_proxy"], "localhost,127.0.0.1,::1");
        assert_eq!(env["NO_PROXY"], env["no_proxy"]);
        assert_eq!(env["OTEL_SERVICE_NAME"], "orders");
        assert_eq!(env["OTEL_EXPORTER_OTLP_PROTOCOL"], "http/protobuf");
        for absent in ["http_proxy", "HTTP_PROXY", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
            assert!(!env.contains_key(absent), "{absent} without a mesh or OTLP");
        }
        assert!(!env.keys().any(|k| k.starts_with("CONWAY_UPSTREAM_")));
    }

    #[test]
    fn mesh_upstreams_and_otlp_when_given() {
        let upstreams: BTreeMap<String, SocketAddr> = [
            ("inventory".to_owned(), "127.0.0.1:5001".parse().unwrap()),
            (
                "legacy-billing".to_owned(),
                "127.0.0.1:5002".parse().unwrap(),
            ),
        ]
        .into();
        let token = "0123456789abcdef0123456789abcdef";
        let mut ctx = context(
            Some(&upstreams),
            Some(("127.0.0.1:4140".parse().unwrap(), token)),
        );
        ctx.otlp = Some("http://127.0.0.1:4318");
        let env = environment(&ctx, &BTreeMap::new());
        let proxy = format!("http://orders:{token}@127.0.0.1:4140");
        assert_eq!(env["http_proxy"], proxy);
        assert_eq!(env["HTTP_PROXY"], proxy);
        assert_eq!(env["CONWAY_UPSTREAM_INVENTORY"], "http://127.0.0.1:5001");
        assert_eq!(
            env["CONWAY_UPSTREAM_LEGACY_BILLING"],
            "http://127.0.0.1:5002"
        );
        assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://127.0.0.1:4318");
    }

    #[test]
    fn declared_env_is_added_expanded_and_cannot_override() {
        let declared = vars(&[
            ("DATABASE_URL", "sqlite://$DATA_DIR/orders.db"),
            ("PORT", "1"),
            ("GREETING", "hello $NOBODY"),
        ]);
        let env = environment(&context(None, None), &declared);
        assert_eq!(
            env["DATABASE_URL"],
            "sqlite:///data/services/orders/orders.db"
        );
        assert_eq!(env["PORT"], "41000", "the instance's port wins");
        assert_eq!(env["GREETING"], "hello $NOBODY");
    }

    #[test]
    fn upstream_variable_names() {
        assert_eq!(upstream_variable("inventory"), "CONWAY_UPSTREAM_INVENTORY");
        assert_eq!(
            upstream_variable("pricing-grpc2"),
            "CONWAY_UPSTREAM_PRICING_GRPC2"
        );
    }
}
