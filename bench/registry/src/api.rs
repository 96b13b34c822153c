//! The few requests the benchmark makes, to Conway's API and to etcd's JSON gateway, and
//! a reader of their streamed (newline-delimited JSON) watch responses.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

/// An HTTP/1.1 client that never goes through a proxy.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()?)
}

/// What a registration or a put was acknowledged with, or why not.
async fn expect(response: reqwest::Response, status: u16) -> anyhow::Result<reqwest::Response> {
    if response.status().as_u16() == status {
        return Ok(response);
    }
    let code = response.status();
    let body = response.text().await.unwrap_or_default();
    bail!("expected {status}, got {code}: {body}")
}

/// A registry under test: Conway's control plane or etcd.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Conway's control plane at this base URL.
    Conway(String),
    /// etcd's client URL; keys go under `bench/`.
    Etcd(String),
}

impl Target {
    /// `PUT /v1/services/{name}` (Conway only).
    pub(crate) async fn define_service(
        &self,
        client: &reqwest::Client,
        name: &str,
        body: Value,
    ) -> anyhow::Result<()> {
        let Self::Conway(url) = self else {
            return Ok(());
        };
        let response = client
            .put(format!("{url}/v1/services/{name}"))
            .json(&body)
            .send()
            .await?;
        expect(response, 200).await.map(drop)
    }

    /// Registers instance `id` of `service` (Conway: checked by its registrant, so the
    /// control plane does not probe a port nobody listens on) or puts key `bench/{id}`
    /// with a value of the same size (etcd). Returns once acknowledged.
    pub(crate) async fn register(
        &self,
        client: &reqwest::Client,
        service: &str,
        id: &str,
        ttl: &str,
    ) -> anyhow::Result<()> {
        match self {
            Self::Conway(url) => {
                let response = client
                    .post(format!("{url}/v1/services/{service}/instances"))
                    .json(&json!({
                        "id": id,
                        "address": "127.0.0.1",
                        "port": 9,
                        "ttl": ttl,
                        "checked_by": "registrant",
                    }))
                    .send()
                    .await?;
                expect(response, 201).await.map(drop)
            }
            Self::Etcd(url) => {
                let value = json!({
                    "id": id, "service": service, "address": "127.0.0.1", "port": 9,
                    "ttl": ttl, "checked_by": "registrant", "state": "starting",
                    "registered_at_ms": 0,
                });
                let response = client
                    .post(format!("{url}/v3/kv/put"))
                    .json(&json!({
                        "key": base64(etcd_key(id).as_bytes()),
                        "value": base64(value.to_string().as_bytes()),
                    }))
                    .send()
                    .await?;
                expect(response, 200).await.map(drop)
            }
        }
    }

    /// Opens a watch of every change from now on; returns once the watch is in place
    /// (Conway: the response head; etcd: the `created` message, consumed here).
    pub(crate) async fn watch(&self, client: &reqwest::Client) -> anyhow::Result<LineReader> {
        match self {
            Self::Conway(url) => {
                let response = client.get(format!("{url}/v1/watch")).send().await?;
                Ok(LineReader::new(expect(response, 200).await?))
            }
            Self::Etcd(url) => {
                let response = client
                    .post(format!("{url}/v3/watch"))
                    .json(&json!({"create_request": {
                        "key": base64(b"bench/"),
                        "range_end": base64(b"bench0"),
                    }}))
                    .send()
                    .await?;
                let mut lines = LineReader::new(expect(response, 200).await?);
                let mut created = false;
                lines
                    .for_each(|line, _| {
                        created = serde_json::from_slice::<EtcdMessage>(line)
                            .is_ok_and(|m| m.result.is_some_and(|r| r.created));
                        !created
                    })
                    .await?;
                if !created {
                    bail!("etcd's watch ended before it was created");
                }
                Ok(lines)
            }
        }
    }

    /// The instance ids (Conway) or keys (etcd, as `id`) that one watch line reports
    /// as `op` (`put` or `delete`).
    pub(crate) fn changed(&self, line: &[u8], op: &str, out: &mut Vec<String>) {
        match self {
            Self::Conway(_) => {
                if let Ok(event) = serde_json::from_slice::<ConwayEvent<'_>>(line)
                    && event.kind.as_deref() == Some("instance")
                    && event.op.as_deref() == Some(op)
                    && let Some(key) = event.key
                {
                    out.push(key.into_owned());
                }
            }
            Self::Etcd(_) => {
                let Ok(EtcdMessage {
                    result: Some(result),
                }) = serde_json::from_slice(line)
                else {
                    return;
                };
                let delete = op == "delete";
                out.extend(result.events.into_iter().filter_map(|event| {
                    ((event.kind.as_deref() == Some("DELETE")) == delete)
                        .then(|| event.kv.and_then(|kv| etcd_id(&kv.key)))
                        .flatten()
                }));
            }
        }
    }
}

#[derive(Deserialize)]
struct ConwayEvent<'a> {
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EtcdMessage {
    result: Option<EtcdResult>,
}

#[derive(Deserialize)]
struct EtcdResult {
    #[serde(default)]
    created: bool,
    #[serde(default)]
    events: Vec<EtcdEvent>,
}

#[derive(Deserialize)]
struct EtcdEvent {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    kv: Option<EtcdKv>,
}

#[derive(Deserialize)]
struct EtcdKv {
    key: String,
}

fn etcd_key(id: &str) -> String {
    format!("bench/{id}")
}

/// The id behind an etcd key as the gateway sends it (base64 of `bench/{id}`).
fn etcd_id(key: &str) -> Option<String> {
    let prefix = base64(b"bench/");
    // `bench/` is 6 bytes, a whole number of base64 groups: the id's encoding follows.
    let rest = key.strip_prefix(prefix.as_str())?;
    String::from_utf8(unbase64(rest)?).ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as etcd's gateway takes bytes fields.
pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0_u32, 0_u32);
    for c in text.bytes().take_while(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Reads a streamed response one line at a time, noting when each chunk arrived.
#[derive(Debug)]
pub(crate) struct LineReader {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl LineReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Calls `f(line, arrived)` for each complete line until `f` returns false or the
    /// stream ends. `arrived` is when the chunk holding the line's end was read, before
    /// any parsing.
    pub(crate) async fn for_each(
        &mut self,
        mut f: impl FnMut(&[u8], Instant) -> bool,
    ) -> anyhow::Result<()> {
        loop {
            // Lines left over from the last chunk first.
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if !f(&line[..end], Instant::now()) {
                    return Ok(());
                }
            }
            let Some(chunk) = self.response.chunk().await.context("watch stream")? else {
                return Ok(());
            };
            let arrived = Instant::now();
            self.buf.extend_from_slice(&chunk);
            let mut start = 0;
            let mut go_on = true;
            while go_on && let Some(offset) = self.buf[start..].iter().position(|&b| b == b'\n') {
                go_on = f(&self.buf[start..start + offset], arrived);
                start += offset + 1;
            }
            self.buf.drain(..start);
            if !go_on {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for text in ["", "b", "be", "ben", "bench/p-00042", "bench/"] {
            let encoded = base64(text.as_bytes());
            assert_eq!(unbase64(&encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(base64(b"bench/"), "YmVuY2gv");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn etcd_keys_map_back_to_ids() {
        assert_eq!(
            etcd_id(&base64(b"bench/p-00007")).as_deref(),
            Some("p-00007")
        );
        assert_eq!(etcd_id(&base64(b"other/p-00007")), None);
    }
}
