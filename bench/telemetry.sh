#!/usr/bin/env bash
# The telemetry store benchmark of issue 6: builds the `store-bench` example of
# conway-telemetry in release mode and prints one Markdown table — ingest rate through
# the OTLP receiver's logic (protobuf decode, sampling, store) and straight from
# in-process producers, and trace-by-id latency with a million spans stored — for the
# SQLite file store (WAL) beside the same run on an in-memory SQLite database.
# Not a test: it asserts nothing. Arguments go to the example: --spans N (default
# 1000000), --batch N (spans per request, 1000), --lookups N (2000).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p conway-telemetry --example store-bench >&2
exec target/release/examples/store-bench "$@"
