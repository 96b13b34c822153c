//! The dashboard: plain HTML, CSS and JavaScript from `crates/conway-server/ui/`,
//! embedded in the binary, served at `/` (the page) and `/ui/{file}` (its files).
//!
//! Every answer carries an `ETag` (a hash of the file) and `Cache-Control: no-cache`,
//! so a browser keeps its copy and revalidates it: a `304` while the binary is the same,
//! the new file after an upgrade. The page's content security policy allows this origin
//! only, so the dashboard never reaches another host.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($file:literal),* $(,)?) => {
        &[$(Asset { name: $file, body: include_bytes!(concat!("../../ui/", $file)) }),*]
    };
}

/// The page, then every file it loads.
const ASSETS: &[Asset] = assets![
    "index.html",
    "base.css",
    "map.css",
    "service.css",
    "traces.css",
    "logs.css",
    "app.js",
    "api.js",
    "dom.js",
    "format.js",
    "overview.js",
    "map.js",
    "layout.js",
    "service.js",
    "chart.js",
    "traces.js",
    "trace.js",
    "logs.js",
    "chaos.js",
    "actions.js",
    "kills.js",
];

/// Each file's `ETag`, in `ASSETS` order.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hasher = DefaultHasher::new();
            asset.body.hash(&mut hasher);
            HeaderValue::try_from(format!("\"{:016x}\"", hasher.finish()))
                .expect("hex digits in quotes are a valid header value")
        })
        .collect()
});

/// Scripts, styles and data from this origin only; no inline code, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `GET /`: the dashboard's page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /ui/{file}`: one of the page's scripts or style sheets.
pub(super) async fn file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|asset| asset.name == file) {
        Some(index) => serve(index, &headers),
        None => ApiError::not_found(format!("the dashboard has no file {file:?}")).into_response(),
    }
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.name)),
    );
    if asset.name.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    (headers, asset.body).into_response()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name, never fetched.
    const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

    #[test]
    fn every_file_has_a_known_type_and_the_page_loads_only_embedded_files() {
        for asset in ASSETS {
            assert_ne!(
                content_type(asset.name),
                "application/octet-stream",
                "{}",
                asset.name
            );
        }
        let page = std::str::from_utf8(ASSETS[0].body).expect("UTF-8 page");
        for reference in page.split("/ui/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "index.html loads /ui/{name}, which is not embedded"
            );
        }
    }

    #[test]
    fn scripts_import_only_embedded_modules_of_this_origin() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).expect("UTF-8 script");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once("from './")
                    .and_then(|(_, rest)| rest.split('\'').next())
                    .unwrap_or_else(|| panic!("{}: a relative import: {line}", asset.name));
                assert!(
                    ASSETS.iter().any(|a| a.name == target),
                    "{} imports {target}, which is not embedded",
                    asset.name
                );
            }
            let text = text.replace(SVG_NAMESPACE, "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{} names another host",
                asset.name
            );
        }
    }
}
