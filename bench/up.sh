#!/usr/bin/env bash
# The `conway up` benchmark of issue 5: builds conway and the shop's catalog service in
# release mode, then prints one Markdown table (see bench/README.md): how long `conway
# up` of 4 services × 2 replicas takes until ready, and a killed instance until it is
# replaced and healthy, beside the same 8 processes started bare. Not a test: it asserts
# nothing. Extra arguments go to bench/up.py (e.g. --runs 3, --interval 200ms).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p conway -p shop-catalog >&2
exec python3 bench/up.py --conway target/release/conway --service target/release/shop-catalog "$@"
