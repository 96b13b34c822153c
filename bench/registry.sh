#!/usr/bin/env bash
# The registry benchmark of issue 3: builds conway and the load generator in release
# mode, then prints one Markdown table (see bench/README.md). Not a test: it asserts
# nothing. Extra arguments go to registry-bench (e.g. --no-etcd, --quick).
#
# etcd is the anchor. When it is missing and we run as root with apt, it is installed
# from Debian (etcd-server, etcd-client); without it the table says "etcd: not installed".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "registry.sh: installing etcd from Debian for the anchor" >&2
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d (if any) keeps the package from starting a system etcd; we start our own.
  { apt-get install -y -qq --no-install-recommends etcd-server etcd-client \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends etcd-server etcd-client; }; } >&2 \
    || echo "registry.sh: could not install etcd; running without the anchor" >&2
fi

cargo build --release --locked -p conway -p conway-bench-registry >&2
exec target/release/registry-bench --conway target/release/conway "$@"
