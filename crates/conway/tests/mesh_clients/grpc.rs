//! gRPC through the mesh: a tonic server is the `greeter` service; a tonic client calls
//! it as `client` would, on `client`'s `CONWAY_UPSTREAM_GREETER` listener (h2c, prior
//! knowledge), and, as an outside client, through the gateway. The messages are derived with prost by hand, so no protoc; the calls go
//! through tonic's own client and server machinery with its prost codec, as generated
//! code would. Unary and server-streaming calls, with their status, message and
//! metadata (headers, and trailers after the messages), must arrive as sent.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use futures_util::future::BoxFuture;
use hyper::http::uri::PathAndQuery;
use tokio::sync::{Semaphore, mpsc};
use tonic::metadata::MetadataMap;
use tonic::server::Grpc;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use crate::system::{PATIENCE, Up, client, external};

#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountdownRequest {
    #[prost(uint32, tag = "1")]
    from: u32,
    /// End with an error status instead of OK.
    #[prost(bool, tag = "2")]
    fail: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tick {
    #[prost(uint32, tag = "1")]
    n: u32,
}

const SAY_HELLO: &str = "/conway.test.Greeter/SayHello";
const COUNTDOWN: &str = "/conway.test.Greeter/Countdown";

/// Status messages with what `grpc-message` must percent-encode: `%`, non-ASCII.
const NAME_REQUIRED: &str = "a name is required (100% of callers send one) — «empty»";
const OUT_OF_TICKS: &str = "out of ticks: 50% left, état épuisé";

type TickStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

/// The `conway.test.Greeter` server, written out as generated code would be. After a
/// countdown's first tick it waits for a permit of `gate`, so a test can tell the
/// ticks stream through rather than arrive all at once at the end.
#[derive(Debug, Clone)]
struct Greeter {
    gate: Arc<Semaphore>,
}

impl tower::Service<hyper::Request<tonic::body::Body>> for Greeter {
    type Response = hyper::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<tonic::body::Body>) -> Self::Future {
        let gate = self.gate.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            Ok(match path.as_str() {
                SAY_HELLO => {
                    Grpc::new(ProstCodec::default())
                        .unary(tower::service_fn(say_hello), request)
                        .await
                }
                COUNTDOWN => {
                    let countdown = tower::service_fn(move |r| countdown(r, gate.clone()));
                    Grpc::new(ProstCodec::default())
                        .server_streaming(countdown, request)
                        .await
                }
                _ => Status::unimplemented(path).into_http(),
            })
        })
    }
}

/// `SayHello`: greets the name, naming the caller the mesh said (`x-conway-caller`);
/// an empty name is `INVALID_ARGUMENT` with an `x-reason`.
async fn say_hello(
    request: tonic::Request<HelloRequest>,
) -> Result<tonic::Response<HelloReply>, Status> {
    let caller = request
        .metadata()
        .get("x-conway-caller")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nobody")
        .to_owned();
    let tag = request.metadata().get("x-request-tag").cloned();
    let name = request.into_inner().name;
    if name.is_empty() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-reason", "empty-name".parse().expect("ASCII"));
        return Err(Status::with_metadata(
            Code::InvalidArgument,
            NAME_REQUIRED,
            metadata,
        ));
    }
    let mut response = tonic::Response::new(HelloReply {
        message: format!("hello {name}, from {caller}"),
    });
    response
        .metadata_mut()
        .insert("x-greeter", "greeter-1".parse().expect("ASCII"));
    if let Some(tag) = tag {
        response.metadata_mut().insert("x-request-tag", tag);
    }
    Ok(response)
}

/// `Countdown`: ticks `from` down to 1, then ends with OK or `RESOURCE_EXHAUSTED`,
/// either way with an `x-ticks-sent` trailer.
async fn countdown(
    request: tonic::Request<CountdownRequest>,
    gate: Arc<Semaphore>,
) -> Result<tonic::Response<TickStream>, Status> {
    let CountdownRequest { from, fail } = request.into_inner();
    let (ticks, received) = mpsc::channel(4);
    tokio::spawn(async move {
        for n in (1..=from).rev() {
            if ticks.send(Ok(Tick { n })).await.is_err() {
                return;
            }
            if n == from {
                match gate.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                }
            }
        }
        let mut trailers = MetadataMap::new();
        trailers.insert("x-ticks-sent", from.into());
        let end = if fail {
            Status::with_metadata(Code::ResourceExhausted, OUT_OF_TICKS, trailers)
        } else {
            Status::with_metadata(Code::Ok, "", trailers)
        };
        let _ = ticks.send(Err(end)).await;
    });
    let stream = futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|item| (item, received))
    });
    Ok(tonic::Response::new(Box::pin(stream) as TickStream))
}

/// Serves the greeter on a free loopback port; its address.
async fn serve(greeter: Greeter) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("bound").to_string();
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
        greeter,
        tonic::transport::server::TcpIncoming::from(listener),
    ));
    address
}

/// A tonic client on `url`: sends once the channel is ready.
struct GreeterClient(tonic::client::Grpc<Channel>);

impl GreeterClient {
    async fn connect(url: &str) -> Self {
        let channel = Channel::from_shared(url.to_owned())
            .expect("a URL")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Self(tonic::client::Grpc::new(channel))
    }

    async fn say_hello(
        &mut self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, Status> {
        self.0.ready().await.expect("the channel is ready");
        self.0
            .unary(
                request,
                PathAndQuery::from_static(SAY_HELLO),
                ProstCodec::default(),
            )
            .await
    }

    async fn countdown(&mut self, from: u32, fail: bool) -> tonic::Streaming<Tick> {
        self.0.ready().await.expect("the channel is ready");
        self.0
            .server_streaming(
                tonic::Request::new(CountdownRequest { from, fail }),
                PathAndQuery::from_static(COUNTDOWN),
                ProstCodec::default(),
            )
            .await
            .expect("the countdown starts")
            .into_inner()
    }
}

/// The next tick, within [`PATIENCE`].
async fn next(ticks: &mut tonic::Streaming<Tick>) -> Result<Option<u32>, Status> {
    tokio::time::timeout(PATIENCE, ticks.message())
        .await
        .expect("the next tick in time")
        .map(|tick| tick.map(|t| t.n))
}

fn hello(name: &str) -> tonic::Request<HelloRequest> {
    let mut request = tonic::Request::new(HelloRequest {
        name: name.to_owned(),
    });
    request
        .metadata_mut()
        .insert("x-request-tag", "tag-42".parse().expect("ASCII"));
    request
}

/// Every call of the greeter through `url`, checking what arrives. `caller` is who the
/// greeter should be told called (`nobody` when no `x-conway-caller` comes).
async fn check_calls(url: &str, gate: &Semaphore, caller: &str) {
    let mut grpc = GreeterClient::connect(url).await;

    // Unary: the reply, its header metadata, and the caller. The first call may come
    // before the proxy has seen greeter healthy.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let reply = loop {
        match grpc.say_hello(hello("ada")).await {
            Ok(reply) => break reply,
            Err(status) if tokio::time::Instant::now() < deadline => {
                eprintln!("not yet: {status:?}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(status) => panic!("SayHello failed: {status:?}"),
        }
    };
    assert_eq!(reply.metadata().get("x-greeter").unwrap(), "greeter-1");
    assert_eq!(reply.metadata().get("x-request-tag").unwrap(), "tag-42");
    assert_eq!(
        reply.into_inner().message,
        format!("hello ada, from {caller}")
    );

    // Unary error (a trailers-only answer): code, message and metadata unchanged.
    let status = grpc.say_hello(hello("")).await.expect_err("an error");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), NAME_REQUIRED);
    assert_eq!(status.metadata().get("x-reason").unwrap(), "empty-name");

    // Server streaming: the first tick arrives while the server still holds the rest
    // (the proxy streams, it does not buffer), then the rest, then the trailers.
    let mut ticks = grpc.countdown(3, false).await;
    assert_eq!(next(&mut ticks).await.expect("a tick"), Some(3));
    gate.add_permits(1);
    assert_eq!(next(&mut ticks).await.expect("a tick"), Some(2));
    assert_eq!(next(&mut ticks).await.expect("a tick"), Some(1));
    assert_eq!(next(&mut ticks).await.expect("the end"), None);
    let trailers = ticks
        .trailers()
        .await
        .expect("trailers")
        .expect("some trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
    assert_eq!(trailers.get("x-ticks-sent").unwrap(), "3");

    // A stream that ends in an error: the ticks, then the status in the trailers.
    let mut ticks = grpc.countdown(2, true).await;
    assert_eq!(next(&mut ticks).await.expect("a tick"), Some(2));
    gate.add_permits(1);
    assert_eq!(next(&mut ticks).await.expect("a tick"), Some(1));
    let status = next(&mut ticks).await.expect_err("the error status");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.message(), OUT_OF_TICKS);
    assert_eq!(status.metadata().get("x-ticks-sent").unwrap(), "2");

    // An unknown method: the server's UNIMPLEMENTED, not a proxy error.
    grpc.0.ready().await.expect("ready");
    let status = grpc
        .0
        .unary::<_, HelloReply, _>(
            hello("ada"),
            PathAndQuery::from_static("/conway.test.Greeter/Nope"),
            ProstCodec::default(),
        )
        .await
        .expect_err("unimplemented");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(status.message(), "/conway.test.Greeter/Nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_keep_their_status_and_trailers_through_the_mesh() {
    let gate = Arc::new(Semaphore::new(0));
    let greeter = serve(Greeter { gate: gate.clone() }).await;
    let up = Up::start(&format!(
        "{}{}",
        client(&["greeter"]),
        external("greeter", &greeter, "")
    ));
    up.wait_healthy("greeter", 1);
    let upstream = up.environment("client")["CONWAY_UPSTREAM_GREETER"]
        .as_str()
        .expect("CONWAY_UPSTREAM_GREETER")
        .to_owned();

    // The listener is client's own, so the greeter is told client called.
    check_calls(&upstream, &gate, "client").await;

    // The proxy counted the calls as client's, to greeter.
    let metrics = up.metrics();
    assert!(
        metrics.lines().any(|line| {
            line.starts_with("conway_proxy_requests_total{")
                && line.contains("service=\"greeter\"")
                && line.contains("client")
        }),
        "no requests of client to greeter in:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_keep_their_status_and_trailers_through_the_gateway() {
    let gate = Arc::new(Semaphore::new(0));
    let greeter = serve(Greeter { gate: gate.clone() }).await;
    let up = Up::start(&format!(
        "[[gateway.routes]]\npath = \"/conway.test.Greeter\"\nservice = \"greeter\"\n\n{}",
        external("greeter", &greeter, "")
    ));
    up.wait_healthy("greeter", 1);

    // From outside there is no calling service: the greeter is told nobody called.
    check_calls(&up.url("gateway"), &gate, "nobody").await;
}
