//! The cost of one pick and its completion, for each of Conway's balancers over 3, 30 and
//! 300 endpoints; and, side by side, tower 0.5's `balance::p2c::Balance` over
//! `load::PeakEwma`-wrapped services doing the same (`poll_ready`, `call`, the response)
//! over as many always-ready mock services.
//!
//! `cargo bench -p conway-proxy --bench balance -- --warm-up-time 1 --measurement-time 3`

use std::convert::Infallible;
use std::future::{Future, ready};
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conway_proxy::balance::{
    BalanceOptions, Balancer, Endpoint, EndpointSet, HashKey, PickRequest,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwma};

const SIZES: [usize; 3] = [3, 30, 300];
const RTT: Duration = Duration::from_micros(500);

fn endpoints(n: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| {
            let port = 10_000 + u16::try_from(i).expect("a port");
            Endpoint::new(
                format!("instance-{i}"),
                SocketAddr::from(([127, 0, 0, 1], port)),
            )
        })
        .collect()
}

fn conway(c: &mut Criterion) {
    let hash: HashKey = "header:x-user".parse().expect("a hash key");
    let balancers = [
        ("p2c-ewma", Balancer::P2cEwma),
        ("round-robin", Balancer::RoundRobin),
        ("least-requests", Balancer::LeastRequests),
        ("hash", Balancer::Hash(hash)),
    ];
    let keys: Vec<String> = (0..1024).map(|k| format!("user-{k}")).collect();
    for (name, balancer) in balancers {
        let hashed = matches!(balancer, Balancer::Hash(_));
        let mut group = c.benchmark_group(format!("conway/{name}"));
        for n in SIZES {
            let set = EndpointSet::new(BalanceOptions::new(balancer.clone()), endpoints(n));
            let mut k = 0;
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    k = (k + 1) % keys.len();
                    let mut request = PickRequest::default();
                    if hashed {
                        request = request.hash_key(keys[k].as_bytes());
                    }
                    let picked = set.pick(black_box(&request)).expect("an endpoint");
                    picked.complete(RTT);
                });
            });
        }
        group.finish();
    }
}

fn tower_p2c(c: &mut Criterion) {
    let mut group = c.benchmark_group("tower/p2c-peak-ewma");
    let mut cx = Context::from_waker(Waker::noop());
    for n in SIZES {
        let services: Vec<_> = (0..n)
            .map(|_| {
                let mock = tower::service_fn(|()| ready(Ok::<_, Infallible>(())));
                let decay = Duration::from_secs(10).as_nanos() as f64;
                PeakEwma::new(
                    mock,
                    Duration::from_millis(1),
                    decay,
                    CompleteOnResponse::default(),
                )
            })
            .collect();
        let mut balance = Balance::new(ServiceList::new::<()>(services));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                assert!(matches!(balance.poll_ready(&mut cx), Poll::Ready(Ok(()))));
                let response = pin!(balance.call(()));
                assert!(matches!(response.poll(&mut cx), Poll::Ready(Ok(()))));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, conway, tower_p2c);
criterion_main!(benches);
