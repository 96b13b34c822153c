//! The client itself: a validated base URL, an HTTP connection pool, timeouts, and the
//! one place where requests are sent and answers decoded.

use std::time::Duration;

use conway_core::api::ErrorBody;
use reqwest::{Method, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// A client of one control plane. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    shown: String,
    pub(crate) options: Options,
}

/// Tunables, set through [`ClientBuilder`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) timeout: Duration,
    pub(crate) watch_idle_timeout: Duration,
    pub(crate) max_line_bytes: usize,
}

/// Builds a [`Client`] with other than the default timeouts and limits.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    options: Options,
    token: Option<String>,
}

/// The environment variable holding the control plane's admin token, sent as
/// `authorization: Bearer TOKEN` by clients built with [`Client::new`].
pub const TOKEN_ENV: &str = "CONWAY_ADMIN_TOKEN";

impl Client {
    /// How long an ordinary request may take, connection included.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a watch may stay silent before the client gives up on it; the server
    /// writes a keep-alive line after 10 quiet seconds.
    pub const DEFAULT_WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
    /// The longest watch line the client reads.
    pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

    /// A client of the control plane at `base_url` (`http://127.0.0.1:7700`), with the
    /// default timeouts, sending the admin token from `CONWAY_ADMIN_TOKEN` if it is set.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let builder = Self::builder(base_url);
        match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.is_empty() => builder.token(token),
            _ => builder,
        }
        .build()
    }

    /// A builder for a client of the control plane at `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            options: Options {
                timeout: Self::DEFAULT_TIMEOUT,
                watch_idle_timeout: Self::DEFAULT_WATCH_IDLE_TIMEOUT,
                max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            },
            token: None,
        }
    }

    /// The control plane's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shown
    }

    /// The URL of the API path made of `segments`, each percent-encoded as needed.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends a request with the request timeout and decodes a JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let response = self.send(method, url, body).await?;
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { what, source })
    }

    /// Sends a request with the request timeout; the answer's body is not read.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response, ClientError> {
        let mut request = self.http.request(method, url).timeout(self.options.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        self.check(response).await
    }

    /// Sends a request with no overall timeout (a watch), failing only if the answer's
    /// head takes longer than the request timeout.
    pub(crate) async fn open_stream(&self, url: Url) -> Result<Response, ClientError> {
        let request = self.http.get(url).send();
        let response = tokio::time::timeout(self.options.timeout, request)
            .await
            .map_err(|_| ClientError::Timeout {
                url: self.shown.clone(),
                after: self.options.timeout,
            })?
            .map_err(|e| self.transport(&e))?;
        self.check(response).await
    }

    /// The response if its status is a success, else the API error it carries.
    async fn check(&self, response: Response) -> Result<Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        Err(api_error(status.as_u16(), &bytes))
    }

    pub(crate) fn transport(&self, error: &reqwest::Error) -> ClientError {
        ClientError::transport(&self.shown, error, self.options.timeout)
    }
}

/// The error an error status and its body stand for.
pub(crate) fn api_error(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) if body.error.code == "compacted" => ClientError::Compacted {
            message: body.error.message,
        },
        Ok(body) => ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(200).collect();
            let message = if text.is_empty() {
                format!("the control plane answered HTTP {status}")
            } else {
                text
            };
            ClientError::Api {
                status,
                code: format!("http_{status}"),
                message,
            }
        }
    }
}

impl ClientBuilder {
    /// How long an ordinary request may take, connection included (default 10 s). A
    /// watch has no overall timeout; only the wait for its answer's head is bounded.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// How long a watch may stay silent, keep-alives included, before it fails with
    /// [`ClientError::Timeout`] (default 45 s).
    pub fn watch_idle_timeout(mut self, timeout: Duration) -> Self {
        self.options.watch_idle_timeout = timeout;
        self
    }

    /// The longest watch line read (default 16 MiB).
    pub fn max_line_bytes(mut self, limit: usize) -> Self {
        self.options.max_line_bytes = limit;
        self
    }

    /// Sends `authorization: Bearer TOKEN` with every request (the control plane asks for
    /// it on changes when it listens beyond loopback or runs with `--require-token`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Validates the base URL and builds the client.
    pub fn build(self) -> Result<Client, ClientError> {
        let base = parse_base(&self.base_url)?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ClientError::InvalidUrl {
                    url: self.base_url.clone(),
                    reason: format!("{TOKEN_ENV} holds characters a header cannot carry"),
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // The control plane is reached directly, whatever proxy the environment names.
            .no_proxy()
            .connect_timeout(self.options.timeout)
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: self.base_url.clone(),
                reason: e.to_string(),
            })?;
        let shown = base.as_str().trim_end_matches('/').to_owned();
        Ok(Client {
            http,
            base,
            shown,
            options: self.options,
        })
    }
}

/// `http://HOST[:PORT][/PREFIX]`, nothing else.
fn parse_base(input: &str) -> Result<Url, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: input.to_owned(),
        reason: reason.to_owned(),
    };
    const EXPECTED: &str = "expected http://HOST:PORT, like http://127.0.0.1:7700";
    let url = Url::parse(input.trim()).map_err(|e| invalid(&format!("{e}; {EXPECTED}")))?;
    if url.scheme() != "http" {
        let reason = if url.scheme() == "https" {
            "https is not supported by this build; use http".to_owned()
        } else {
            format!("the scheme is {:?}; {EXPECTED}", url.scheme())
        };
        return Err(invalid(&reason));
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err(invalid(&format!("no host; {EXPECTED}")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_validated() {
        for good in [
            "http://127.0.0.1:7700",
            "http://127.0.0.1:7700/",
            "http://[::1]:80",
            "http://cp.local/conway/",
        ] {
            assert!(Client::new(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("127.0.0.1:7700", "expected http://"),
            ("localhost:7700", "scheme"),
            ("https://127.0.0.1", "https"),
            ("ftp://x", "scheme"),
            ("http://x/?a=b", "query"),
            ("", "expected http://"),
        ] {
            let error = Client::new(bad).expect_err(bad).to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn urls_are_built_from_encoded_segments() {
        let client = Client::new("http://127.0.0.1:7700").expect("valid");
        assert_eq!(client.base_url(), "http://127.0.0.1:7700");
        assert_eq!(
            client.url(&["v1", "services", "a b/c"]).as_str(),
            "http://127.0.0.1:7700/v1/services/a%20b%2Fc"
        );
        let prefixed = Client::new("http://cp.local/conway/").expect("valid");
        assert_eq!(prefixed.base_url(), "http://cp.local/conway");
        assert_eq!(
            prefixed.url(&["v1", "config"]).as_str(),
            "http://cp.local/conway/v1/config"
        );
    }

    #[test]
    fn error_bodies_become_typed_errors() {
        let body = br#"{"error":{"code":"not_found","message":"no service named \"x\""}}"#;
        match api_error(404, body) {
            ClientError::Api {
                status,
                code,
                message,
            } => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (404, "not_found", "no service named \"x\"")
                );
            }
            other => panic!("{other:?}"),
        }
        let gone = br#"{"error":{"code":"compacted","message":"revision 3 is compacted"}}"#;
        assert!(api_error(410, gone).is_compacted());
        match api_error(502, b"<html>bad gateway</html>") {
            ClientError::Api { code, message, .. } => {
                assert_eq!(code, "http_502");
                assert!(message.contains("bad gateway"));
            }
            other => panic!("{other:?}"),
        }
    }
}
