//! OTLP/HTTP without the HTTP server: recognizing the encoding, undoing gzip within the
//! size limit, decoding protobuf or JSON, and the answers the specification asks for.
//!
//! - `200` with an `Export*ServiceResponse` in the request's encoding; its
//!   `partial_success` says how many items were refused and why.
//! - `400` for a body that does not decode, `413` for one over the size limit, `415`
//!   for a content type other than `application/x-protobuf` or `application/json`,
//!   `503` with `Retry-After` when too many requests are in flight. Error bodies are a
//!   `google.rpc.Status` in the request's encoding.
//!
//! JSON follows the OTLP mapping: ids in hex, lowerCamelCase names, enums as numbers,
//! 64-bit integers as strings or numbers; unknown fields are ignored.

pub(crate) mod convert;
pub(crate) mod encode;
pub(crate) mod values;

use std::io::Read;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::metrics::Signal;

pub use convert::UNKNOWN_SERVICE;
pub use encode::{logs_request, span_to_otlp, traces_request};

/// The encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names, ignoring parameters and case.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Self> {
        let media = content_type?.split(';').next()?.trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of the encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// An answer to an OTLP/HTTP request, for the server to send as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The encoded `Export*ServiceResponse` or `google.rpc.Status`.
    pub body: Vec<u8>,
    /// Seconds for a `Retry-After` header (503).
    pub retry_after: Option<u64>,
}

/// `google.rpc.Status`, the body of OTLP error answers.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC's `INVALID_ARGUMENT`.
const INVALID_ARGUMENT: i32 = 3;
/// gRPC's `RESOURCE_EXHAUSTED`.
const RESOURCE_EXHAUSTED: i32 = 8;
/// gRPC's `UNAVAILABLE`.
const UNAVAILABLE: i32 = 14;

impl OtlpResponse {
    /// An error answer: `status` with a `google.rpc.Status` body.
    pub(crate) fn error(encoding: Encoding, status: u16, message: String) -> Self {
        let code = match status {
            413 => RESOURCE_EXHAUSTED,
            503 => UNAVAILABLE,
            _ => INVALID_ARGUMENT,
        };
        let body = match encoding {
            Encoding::Protobuf => prost::Message::encode_to_vec(&RpcStatus { code, message }),
            Encoding::Json => serde_json::json!({ "code": code, "message": message })
                .to_string()
                .into_bytes(),
        };
        Self {
            status,
            content_type: encoding.content_type(),
            body,
            retry_after: (status == 503).then_some(1),
        }
    }

    /// 415: the content type is not one of OTLP's.
    pub fn unsupported_media_type(content_type: Option<&str>) -> Self {
        Self::error(
            Encoding::Json,
            415,
            format!(
                "unsupported content type {:?}: OTLP/HTTP takes application/x-protobuf or application/json",
                content_type.unwrap_or("")
            ),
        )
    }

    /// 413: the body is over the size limit.
    pub fn too_large(encoding: Encoding, limit: usize) -> Self {
        Self::error(
            encoding,
            413,
            format!(
                "the request body is larger than the {limit} bytes allowed; send smaller batches"
            ),
        )
    }

    /// 503: too busy now; retry after a second.
    pub fn busy(encoding: Encoding) -> Self {
        Self::error(
            encoding,
            503,
            "the receiver is busy; retry later".to_owned(),
        )
    }

    /// 200 with the signal's `Export*ServiceResponse`; `partial_success` when items
    /// were refused.
    pub(crate) fn success(
        encoding: Encoding,
        signal: Signal,
        rejected: u64,
        message: Option<String>,
    ) -> Self {
        let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
        let message = message.unwrap_or_default();
        let body = match encoding {
            Encoding::Protobuf => protobuf_response(signal, rejected, message),
            Encoding::Json => {
                let count_field = match signal {
                    Signal::Traces => "rejectedSpans",
                    Signal::Logs => "rejectedLogRecords",
                    Signal::Metrics => "rejectedDataPoints",
                };
                let value = if rejected == 0 && message.is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::json!({
                        "partialSuccess": {
                            count_field: rejected.to_string(),
                            "errorMessage": message,
                        }
                    })
                };
                value.to_string().into_bytes()
            }
        };
        Self {
            status: 200,
            content_type: encoding.content_type(),
            body,
            retry_after: None,
        }
    }
}

fn protobuf_response(signal: Signal, rejected: i64, error_message: String) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
    use prost::Message;
    let partial = rejected != 0 || !error_message.is_empty();
    match signal {
        Signal::Traces => trace::v1::ExportTraceServiceResponse {
            partial_success: partial.then_some(trace::v1::ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
        Signal::Logs => logs::v1::ExportLogsServiceResponse {
            partial_success: partial.then_some(logs::v1::ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
        Signal::Metrics => metrics::v1::ExportMetricsServiceResponse {
            partial_success: partial.then_some(metrics::v1::ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit once inflated.
    TooLarge,
    /// Not what it claims to be.
    Invalid(String),
}

/// Undoes `Content-Encoding: gzip` (the one compression OTLP/HTTP names), reading at
/// most `limit` bytes of the result.
pub(crate) fn inflate(
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, BodyError> {
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(body),
        Some(encoding) if encoding.eq_ignore_ascii_case("identity") => Ok(body),
        Some(encoding) if encoding.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| BodyError::Invalid(format!("the gzip body does not inflate: {e}")))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge);
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(BodyError::Invalid(format!(
            "unsupported content encoding {other:?}: send gzip or no compression"
        ))),
    }
}

/// Decodes an OTLP message in `encoding`.
pub(crate) fn decode<M: prost::Message + DeserializeOwned + Default>(
    encoding: Encoding,
    body: &[u8],
) -> Result<M, String> {
    match encoding {
        Encoding::Protobuf => {
            M::decode(body).map_err(|e| format!("the protobuf body does not decode: {e}"))
        }
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| format!("the JSON body does not decode: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_recognized_with_parameters() {
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type(Some("Application/X-Protobuf")),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::from_content_type(Some("text/plain")), None);
        assert_eq!(Encoding::from_content_type(None), None);
    }

    #[test]
    fn gzip_is_undone_within_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[b'a'; 10_000]).expect("write");
        let gzipped = Bytes::from(encoder.finish().expect("finish"));
        let inflated = inflate(Some("gzip"), gzipped.clone(), 10_000).expect("inflates");
        assert_eq!(inflated.len(), 10_000);
        assert!(matches!(
            inflate(Some("gzip"), gzipped, 9_999),
            Err(BodyError::TooLarge)
        ));
        assert!(matches!(
            inflate(Some("gzip"), Bytes::from_static(b"not gzip"), 100),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            inflate(Some("br"), Bytes::new(), 100),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn a_partial_success_names_the_rejected_count() {
        let json = OtlpResponse::success(Encoding::Json, Signal::Traces, 3, Some("why".into()));
        let value: serde_json::Value = serde_json::from_slice(&json.body).expect("json");
        assert_eq!(value["partialSuccess"]["rejectedSpans"], "3");
        let empty = OtlpResponse::success(Encoding::Json, Signal::Logs, 0, None);
        assert_eq!(empty.body, b"{}");
        let protobuf = OtlpResponse::success(Encoding::Protobuf, Signal::Traces, 3, None);
        let decoded: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse =
            prost::Message::decode(&protobuf.body[..]).expect("decodes");
        assert_eq!(decoded.partial_success.map(|p| p.rejected_spans), Some(3));
    }
}
