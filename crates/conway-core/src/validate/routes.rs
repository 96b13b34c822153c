//! Rules for `[[gateway.routes]]`: targets that exist, matches that can be reached, and
//! authentication that can work.

use super::services::{check_faults, unknown_service};
use super::{Report, root};
use crate::manifest::path_has_prefix;
use crate::manifest::{Auth, Manifest, Route};

pub(super) fn check(manifest: &Manifest, report: &mut Report<'_, '_>) {
    if let Some(tls) = &manifest.gateway.tls {
        let path = root().key("gateway").key("tls");
        if tls.certificates.is_empty() {
            report.error(&path.key("certificates"), "give at least one certificate: { cert_file = \"cert.pem\", key_file = \"key.pem\" }");
        }
        if tls.listen == manifest.gateway.listen && tls.listen.port() != 0 {
            report.error(
                &path.key("listen"),
                "the HTTPS listener needs an address of its own, not the gateway's `listen`",
            );
        }
    }
    let routes = &manifest.gateway.routes;
    for (i, route) in routes.iter().enumerate() {
        let path = root().key("gateway").key("routes").index(i);
        if manifest.service(&route.service).is_none() {
            report.error(
                &path.key("service"),
                unknown_service(manifest, &route.service),
            );
        }
        if !route.path.starts_with('/') || route.path.contains(['?', '#', ' ']) {
            report.error(&path.key("path"), format!("invalid path prefix {:?}: it must start with '/' and hold no query, fragment or space", route.path));
        }
        for (m, method) in route.methods.iter().enumerate() {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                report.error(
                    &path.key("methods").index(m),
                    format!("invalid method {method:?}: use upper case, like \"GET\""),
                );
            }
        }
        if let Some(earlier) = routes[..i]
            .iter()
            .position(|earlier| covers(earlier, route))
        {
            let what = if same_match(&routes[earlier], route) {
                "duplicates"
            } else {
                "is shadowed by"
            };
            report.error(
                &path.key("path"),
                format!("this route {what} route #{} ({}): that one matches every request this one would, and routes are tried in order", earlier + 1, routes[earlier].display_name()),
            );
        }
        check_auth(manifest, route, &path, report);
        if route.rate_limit.is_some_and(|limit| limit.burst == Some(0)) {
            report.error(
                &path.key("rate_limit").key("burst"),
                "burst must be at least 1",
            );
        }
        if route.timeout.is_some_and(|t| t.is_zero()) {
            report.error(&path.key("timeout"), "timeout must be longer than zero");
        }
        if let Some(faults) = &route.faults {
            check_faults(faults, &path.key("faults"), report);
        }
    }
}

fn check_auth(
    manifest: &Manifest,
    route: &Route,
    path: &crate::locate::Path,
    report: &mut Report<'_, '_>,
) {
    match route.auth {
        Auth::Jwt if manifest.jwt.is_empty() => {
            report.error(&path.key("auth"), "auth = \"jwt\" needs a token issuer: add a [jwt.NAME] table with issuer, audience and a key");
        }
        Auth::ApiKey if manifest.consumers.is_empty() => {
            report.warning(&path.key("auth"), "auth = \"api-key\" with no [consumers.NAME]: every request on this route will be refused");
        }
        _ => {}
    }
    if route.auth != Auth::Jwt {
        for (key, given) in [
            ("claims", !route.claims.is_empty()),
            ("scopes", !route.scopes.is_empty()),
        ] {
            if given {
                report.error(
                    &path.key(key),
                    format!("`{key}` applies to JWTs: set auth = \"jwt\" on this route"),
                );
            }
        }
    }
}

/// Whether every request `later` matches is matched by `earlier` first.
fn covers(earlier: &Route, later: &Route) -> bool {
    let host = earlier.host.is_none()
        || earlier.host.as_deref().map(str::to_ascii_lowercase)
            == later.host.as_deref().map(str::to_ascii_lowercase);
    let methods = earlier.methods.is_empty()
        || (!later.methods.is_empty() && later.methods.iter().all(|m| earlier.methods.contains(m)));
    let headers = earlier
        .headers
        .iter()
        .all(|(name, value)| later.headers.get(name) == Some(value));
    host && methods && headers && path_has_prefix(&later.path, &earlier.path)
}

fn same_match(a: &Route, b: &Route) -> bool {
    covers(a, b) && covers(b, a)
}
