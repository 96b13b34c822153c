#!/usr/bin/env bash
# The autoscale benchmark of issue 5: builds conway in release mode, then prints one
# Markdown table (see bench/README.md): from the start of sustained load on an I/O-bound
# service to a new replica, started by the autoscaler, answering through the gateway,
# beside the Kubernetes HPA's 15 s decision period. Not a test: it asserts nothing.
# Extra arguments go to bench/up_autoscale.py (e.g. --runs 3, --clients 12).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p conway >&2
exec python3 bench/up_autoscale.py --conway target/release/conway "$@"
