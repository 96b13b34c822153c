#!/usr/bin/env bash
# The proxy benchmark of issue 4 ("Numbers to reach"). One upstream (nginx answering a
# small static body) and, in the same run with the same load generators: a direct
# connection, nginx, HAProxy and the Conway gateway (without and with its access log),
# each proxy pinned to core 1 with one worker while the upstream and the load generators
# share core 0. Then what each gateway feature costs against the plain gateway: API-key
# auth, JWT HS256, JWT RS256, a rate limit that never triggers, each JWT with that rate
# limit (issue 9's "authentication plus rate limiting"), and tracing (spans
# exported to the control plane's OTLP receiver, every trace sampled). Prints the machine, the tools' versions and one Markdown table with the
# ratios, then the failover line (see bench/README.md). Not a test: it asserts nothing.
#
#   bench/proxy.sh           # about 5 minutes after the builds
#   bench/proxy.sh --quick   # short windows, one run each, to try it out (not for reporting)
#
# Run as root with apt, it installs nginx, haproxy and wrk from Debian and oha (the
# constant-rate load generator; wrk2 is not in Debian) with `cargo install`. Every
# process it starts listens on loopback only and is killed when it ends, also on an
# error or Ctrl-C. Progress goes to stderr, the report to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=10      # seconds of each wrk run
RUNS=3           # wrk runs per target (median)
FIXED=10         # seconds of each constant-rate run
RATE=10000       # requests/s of the constant-rate runs
CONNS=64         # client connections of wrk and oha
IDLE_CONNS=1000  # idle keep-alive connections for the memory column
FIXED_RUNS=2     # constant-rate runs per target (the least disturbed one is kept)
NICE=-20         # the priority of everything the benchmark runs (root only; see below)
for arg in "$@"; do
  case "$arg" in
    --quick) DURATION=3 RUNS=1 FIXED=3 FIXED_RUNS=1 ;;
    --no-priority) NICE=0 ;;
    *) echo "usage: bench/proxy.sh [--quick] [--no-priority]" >&2; exit 2 ;;
  esac
done

log() { echo "proxy.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(nproc)" -ge 2 ] || die "needs two cores (the proxy on core 1, the rest on core 0)"

# --- tools -------------------------------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"
need=()
for tool in nginx haproxy wrk; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2
  else
    die "missing ${need[*]} (run as root with apt to install them)"
  fi
fi
if ! command -v oha >/dev/null; then
  log "installing oha (constant-rate load generator) with cargo"
  cargo install oha --locked >&2
fi
for tool in nginx haproxy wrk oha jq curl taskset setsid openssl sha256sum; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

log "building conway and the helper (release)"
cargo build --release -p conway -p conway-bench-proxy >&2
CONWAY=$ROOT/target/release/conway
HELPER=$ROOT/target/release/proxy-bench-helper
TCK=$(getconf CLK_TCK)
# On a machine shared with builds, everything the benchmark runs (the proxies, the
# upstream and the load generators alike) gets a higher priority than the builds, so
# that they disturb the numbers less: nice, and the nice of each session's scheduler
# autogroup (with autogroups, nice alone only ranks tasks within one session).
[ "$(id -u)" = 0 ] || NICE=0
prioritize() { # prioritize PID: the autogroup (session) of PID
  [ "$NICE" = 0 ] || echo "$NICE" >"/proc/$1/autogroup" 2>/dev/null || true
}
session_of() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo "$4"
}
ORIGINAL_AUTOGROUP_NICE=$(awk '{ print $NF }' "/proc/$$/autogroup" 2>/dev/null || echo 0)
prioritize $$
RUN=(nice -n "$NICE")
ulimit -n 65536 2>/dev/null || true  # 1,000 client connections and their upstream side

# --- processes ---------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/conway-bench-proxy.XXXXXX")
GROUPS_STARTED=()  # each server runs in its own process group (setsid), killed as a group
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pgid in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  sleep 0.3
  for pgid in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
  rm -rf "$WORK"
  [ "$NICE" = 0 ] || echo "$ORIGINAL_AUTOGROUP_NICE" >"/proc/$$/autogroup" 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CORE COMMAND...: starts COMMAND on CORE in its own session; sets PID.
start() {
  local name=$1 core=$2
  shift 2
  setsid "${RUN[@]}" taskset -c "$core" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
  PID=$!
  GROUPS_STARTED+=("$PID")
  disown "$PID"  # killed by group at the end; no "Killed" job notices
  # Once the child leads its own session (before, the autogroup is still this shell's).
  local tries=0
  until [ "$(session_of "$PID" 2>/dev/null)" = "$PID" ] || [ "$tries" -ge 100 ]; do
    sleep 0.01
    tries=$((tries + 1))
  done
  prioritize "$PID"
}

# wait_until SECONDS COMMAND...: retries COMMAND every 0.1 s.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

answers_200() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1")" = 200 ]; }

# ready_field NAME FIELD: the field of the JSON ready line NAME printed (waits 30 s).
ready_field() {
  wait_until 30 grep -q '"ready":true' "$WORK/$1.out" \
    || die "$1 printed no ready line: $(tail -5 "$WORK/$1.err")"
  grep -m1 '"ready":true' "$WORK/$1.out" | jq -r ".$2"
}

read -r -a PORTS <<<"$("$HELPER" ports 8)"
UP_PORT=${PORTS[0]} NGINX_PORT=${PORTS[1]} HAPROXY_PORT=${PORTS[2]}
FO_PORTS=("${PORTS[3]}" "${PORTS[4]}" "${PORTS[5]}")

# The upstream: one nginx process, no master, no access log, a 24-byte body.
nginx_upstream() { # nginx_upstream NAME PORT
  mkdir -p "$WORK/$1"
  cat >"$WORK/$1/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path $WORK/$1/body;
  proxy_temp_path $WORK/$1/proxy;
  fastcgi_temp_path $WORK/$1/fastcgi;
  uwsgi_temp_path $WORK/$1/uwsgi;
  scgi_temp_path $WORK/$1/scgi;
  server {
    listen 127.0.0.1:$2 backlog=4096;
    location / { default_type text/plain; return 200 "hello from the upstream\n"; }
  }
}
EOF
  start "$1" 0 nginx -e "$WORK/$1/error.log" -p "$WORK/$1" -c "$WORK/$1/nginx.conf"
}

# --- the system under test ---------------------------------------------------------
log "starting the upstream, nginx, HAProxy and the Conway gateway"
nginx_upstream upstream "$UP_PORT"
UP_PID=$PID
wait_until 10 answers_200 "http://127.0.0.1:$UP_PORT/" || die "the upstream does not answer"

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream up {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
start nginx 1 nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
NGINX_MASTER=$PID

cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 300s
  timeout server 30s
  timeout http-keep-alive 300s
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend up
backend up
  http-reuse always
  server up 127.0.0.1:$UP_PORT
EOF
start haproxy 1 haproxy -db -f "$WORK/haproxy.cfg"
HAPROXY_PID=$PID

# Credentials of the feature rows: an API key (the manifest holds its digest), an HS256
# secret, an RSA key pair; one token per issuer, valid for the run.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
API_KEY=bench-key-$RANDOM$RANDOM
API_KEY_DIGEST=$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/hs.key"
openssl genrsa -out "$WORK/rs.pem" 2048 2>/dev/null
openssl rsa -in "$WORK/rs.pem" -pubout -out "$WORK/rs.pub" 2>/dev/null
jwt() { # jwt ALG ISSUER: a token for subject "bench", audience "bench", valid for 2 h
  local input
  input="$(printf '{"alg":"%s","typ":"JWT"}' "$1" | b64url).$(printf '{"iss":"%s","aud":"bench","sub":"bench","exp":%d}' "$2" $(($(date +%s) + 7200)) | b64url)"
  case "$1" in
    HS256) echo "$input.$(printf %s "$input" | openssl dgst -sha256 -hmac "$(cat "$WORK/hs.key")" -binary | b64url)" ;;
    RS256) echo "$input.$(printf %s "$input" | openssl dgst -sha256 -sign "$WORK/rs.pem" -binary | b64url)" ;;
  esac
}
HS_TOKEN=$(jwt HS256 bench-hs)
RS_TOKEN=$(jwt RS256 bench-rs)

# The plain route last, so that the feature routes (matched first, by prefix) cost it
# nothing but their prefix checks.
cat >"$WORK/conway.toml" <<EOF
[system]
name = "bench"

[[gateway.routes]]
path = "/key"
service = "up"
auth = "api-key"

[[gateway.routes]]
path = "/hs"
service = "up"
auth = "jwt"

[[gateway.routes]]
path = "/rs"
service = "up"
auth = "jwt"

[[gateway.routes]]
path = "/limited"
service = "up"
rate_limit = { rate = "1000000/s", burst = 1000000 }

[[gateway.routes]]
path = "/hs-limited"
service = "up"
auth = "jwt"
rate_limit = { rate = "1000000/s", burst = 1000000 }

[[gateway.routes]]
path = "/rs-limited"
service = "up"
auth = "jwt"
rate_limit = { rate = "1000000/s", burst = 1000000 }

[[gateway.routes]]
path = "/"
service = "up"

[consumers.bench]
api_keys = ["sha256:$API_KEY_DIGEST"]

[jwt.hs]
issuer = "bench-hs"
audience = "bench"
secret_file = "$WORK/hs.key"

[jwt.rs]
issuer = "bench-rs"
audience = "bench"
public_key_file = "$WORK/rs.pub"

[telemetry.sampling]
per_service = "1000000/s"
share = "100%"

[services.up]
addresses = ["127.0.0.1:$UP_PORT"]
health = { tcp = true, interval = "1s" }
EOF
start server 0 "$CONWAY" server -f "$WORK/conway.toml" --listen 127.0.0.1:0 --otlp-listen 127.0.0.1:0 --data-dir "$WORK/cp"
CP=$(ready_field server control_plane)
OTLP=$(ready_field server otlp)
healthy_count() { # healthy_count CP SERVICE
  curl -s -m 2 "$1/v1/services/$2/instances?healthy=true" | jq 'if type == "array" then length else (.instances // []) | length end'
}
has_healthy() { [ "$(healthy_count "$1" "$2")" -ge "$3" ]; }
wait_until 20 has_healthy "$CP" up 1 || die "the control plane does not list the upstream as healthy"

start conway 1 "$CONWAY" gateway --server "$CP" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir "$WORK/gw" --threads 1 --no-access-log
CONWAY_PID=$PID
CONWAY_URL=$(ready_field conway gateway)
start conway_log 1 "$CONWAY" gateway --server "$CP" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir "$WORK/gw-log" --threads 1
CONWAY_LOG_PID=$PID
CONWAY_LOG_URL=$(ready_field conway_log gateway)
# Tracing on: the same gateway exporting a span per request (and the graph's counts) to
# the control plane's OTLP receiver, which keeps every trace (sampling share 100%).
start conway_trace 1 "$CONWAY" gateway --server "$CP" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir "$WORK/gw-trace" --threads 1 --no-access-log --otlp "$OTLP"
CONWAY_TRACE_PID=$PID
CONWAY_TRACE_URL=$(ready_field conway_trace gateway)

wait_until 10 answers_200 "http://127.0.0.1:$NGINX_PORT/" || die "nginx does not answer: $(tail -3 "$WORK/nginx/error.log")"
wait_until 10 answers_200 "http://127.0.0.1:$HAPROXY_PORT/" || die "HAProxy does not answer: $(tail -3 "$WORK/haproxy.err")"
wait_until 10 answers_200 "$CONWAY_URL/" || die "the gateway does not answer: $(tail -3 "$WORK/conway.err")"
wait_until 10 answers_200 "$CONWAY_LOG_URL/" || die "the gateway (access log) does not answer: $(tail -3 "$WORK/conway_log.err")"
wait_until 10 answers_200 "$CONWAY_TRACE_URL/" || die "the gateway (tracing) does not answer: $(tail -3 "$WORK/conway_trace.err")"
# The feature routes answer 200 with their credentials (else the rows would measure
# refusals).
answers_200_with() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' -H "$2" "$1")" = 200 ]; }
wait_until 10 answers_200_with "$CONWAY_URL/key" "x-api-key: $API_KEY" || die "the API-key route refuses the bench key"
wait_until 10 answers_200_with "$CONWAY_URL/hs" "authorization: Bearer $HS_TOKEN" || die "the JWT route refuses the HS256 token: $(curl -s -H "authorization: Bearer $HS_TOKEN" "$CONWAY_URL/hs")"
wait_until 10 answers_200_with "$CONWAY_URL/rs" "authorization: Bearer $RS_TOKEN" || die "the JWT route refuses the RS256 token: $(curl -s -H "authorization: Bearer $RS_TOKEN" "$CONWAY_URL/rs")"
wait_until 10 answers_200 "$CONWAY_URL/limited" || die "the rate-limited route does not answer"
wait_until 10 answers_200_with "$CONWAY_URL/hs-limited" "authorization: Bearer $HS_TOKEN" || die "the HS256 rate-limited route refuses its token"
wait_until 10 answers_200_with "$CONWAY_URL/rs-limited" "authorization: Bearer $RS_TOKEN" || die "the RS256 rate-limited route refuses its token"
NGINX_WORKER=$(pgrep -P "$NGINX_MASTER" | head -1)
[ -n "$NGINX_WORKER" ] || die "no nginx worker process"

FEATURES=(api_key jwt_hs jwt_rs rate_limit jwt_hs_limit jwt_rs_limit tracing)
TARGETS=(direct nginx haproxy conway conway_log "${FEATURES[@]}")
declare -A NAME=([direct]="direct" [nginx]="nginx" [haproxy]="HAProxy" [conway]="Conway" [conway_log]="Conway+access log"
  [api_key]="Conway+API key" [jwt_hs]="Conway+JWT HS256" [jwt_rs]="Conway+JWT RS256"
  [rate_limit]="Conway+rate limit" [jwt_hs_limit]="Conway+HS256+rate limit"
  [jwt_rs_limit]="Conway+RS256+rate limit" [tracing]="Conway+tracing 100%")
declare -A URL=([direct]="http://127.0.0.1:$UP_PORT/" [nginx]="http://127.0.0.1:$NGINX_PORT/"
  [haproxy]="http://127.0.0.1:$HAPROXY_PORT/" [conway]="$CONWAY_URL/" [conway_log]="$CONWAY_LOG_URL/"
  [api_key]="$CONWAY_URL/key" [jwt_hs]="$CONWAY_URL/hs" [jwt_rs]="$CONWAY_URL/rs"
  [rate_limit]="$CONWAY_URL/limited" [jwt_hs_limit]="$CONWAY_URL/hs-limited"
  [jwt_rs_limit]="$CONWAY_URL/rs-limited" [tracing]="$CONWAY_TRACE_URL/")
# The header each target's requests carry, if any.
declare -A HEADER=([api_key]="x-api-key: $API_KEY" [jwt_hs]="authorization: Bearer $HS_TOKEN"
  [jwt_rs]="authorization: Bearer $RS_TOKEN" [jwt_hs_limit]="authorization: Bearer $HS_TOKEN"
  [jwt_rs_limit]="authorization: Bearer $RS_TOKEN")
header_args() { [ -z "${HEADER[$1]:-}" ] || printf '%s\n' -H "${HEADER[$1]}"; }
declare -A ADDR=([direct]="127.0.0.1:$UP_PORT" [nginx]="127.0.0.1:$NGINX_PORT"
  [haproxy]="127.0.0.1:$HAPROXY_PORT" [conway]="${CONWAY_URL#http://}" [conway_log]="${CONWAY_LOG_URL#http://}")
# The process whose CPU and memory count: the one serving (nginx: its worker).
declare -A PROC=([direct]="$UP_PID" [nginx]="$NGINX_WORKER" [haproxy]="$HAPROXY_PID"
  [conway]="$CONWAY_PID" [conway_log]="$CONWAY_LOG_PID" [api_key]="$CONWAY_PID" [jwt_hs]="$CONWAY_PID"
  [jwt_rs]="$CONWAY_PID" [rate_limit]="$CONWAY_PID" [jwt_hs_limit]="$CONWAY_PID"
  [jwt_rs_limit]="$CONWAY_PID" [tracing]="$CONWAY_TRACE_PID")

# --- measuring helpers -------------------------------------------------------------
cpu_ticks() { # utime + stime of a process (all its threads), in clock ticks
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}
core_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
NOTES=()

# --- (d) memory: idle, then with 1,000 idle keep-alive client connections ------------
declare -A RSS_IDLE RSS_CONNS
sleep 1
for t in nginx haproxy conway conway_log; do RSS_IDLE[$t]=$(rss_kib "${PROC[$t]}"); done
for t in nginx haproxy conway conway_log; do
  log "memory with $IDLE_CONNS idle keep-alive connections: ${NAME[$t]}"
  coproc HOLD { exec "${RUN[@]}" taskset -c 0 "$HELPER" hold "${ADDR[$t]}" "$IDLE_CONNS" 60; }
  # Copies of the coprocess's pipes: bash drops HOLD once it has exited.
  exec {hold_out}<&"${HOLD[0]}" {hold_in}>&"${HOLD[1]}"
  read -r -t 60 -u "$hold_out" _ opened _ failed || die "the connection holder did not report"
  sleep 1
  RSS_CONNS[$t]=$(rss_kib "${PROC[$t]}")
  echo >&"$hold_in"
  read -r -t 10 -u "$hold_out" _ alive || alive="?"
  exec {hold_out}<&- {hold_in}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  if [ "$opened" != "$IDLE_CONNS" ] || [ "$alive" != "$IDLE_CONNS" ]; then
    NOTES+=("${NAME[$t]}: of $IDLE_CONNS idle connections, $opened opened ($failed failed), $alive still open after the RSS sample")
  fi
done
sleep 1

# Others' share of each core during a window: the cores' busy time (/proc/stat) less
# what our processes used there (core 0: the upstream and the load generator, a child
# of this shell; core 1: the proxy), so a number a build of someone else disturbed shows.
children_ticks() { # cutime + cstime of this shell: the load generators it waited for
  local stat
  stat=$(<"/proc/$$/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${14} + ${15}))
}
window_begin() { # window_begin TARGET
  W_PID=${PROC[$1]} W_T0=$(date +%s%N) W_B0=$(core_busy 0) W_B1=$(core_busy 1)
  W_C0=$(children_ticks) W_U0=$(cpu_ticks "$UP_PID") W_P0=$(cpu_ticks "$W_PID")
  [ "$1" = direct ] && W_PROXY=0 || W_PROXY=1
}
window_end() { # sets W_TICKS (the target process's ticks), W_OTHERS0, W_OTHERS1 (%)
  local t1 b0 b1 c u p span
  t1=$(date +%s%N) b0=$(core_busy 0) b1=$(core_busy 1) c=$(children_ticks)
  u=$(cpu_ticks "$UP_PID") p=$(cpu_ticks "$W_PID")
  span=$(((t1 - W_T0) * TCK / 1000000000))
  W_TICKS=$((p - W_P0))
  W_BUSY=$((W_TICKS * 100 / span))  # the target process's share of a core
  W_OTHERS0=$(((b0 - W_B0 - (u - W_U0) - (c - W_C0)) * 100 / span))
  W_OTHERS1=$(((b1 - W_B1 - W_PROXY * W_TICKS) * 100 / span))
  [ "$W_OTHERS0" -ge 0 ] || W_OTHERS0=0
  [ "$W_OTHERS1" -ge 0 ] || W_OTHERS1=0
}

# --- (a) throughput: wrk, median of RUNS runs, the targets interleaved --------------
log "warming up"
for t in "${TARGETS[@]}"; do
  mapfile -t hdr < <(header_args "$t")
  "${RUN[@]}" taskset -c 0 wrk -t1 -c"$CONNS" -d1s "${hdr[@]}" "${URL[$t]}" >/dev/null
done
declare -A RPS_RUNS T_COND PER_CORE_RUNS
for run in $(seq "$RUNS"); do
  for t in "${TARGETS[@]}"; do
    load=$(loadavg)
    log "throughput run $run/$RUNS: ${NAME[$t]} (load average $load)"
    window_begin "$t"
    mapfile -t hdr < <(header_args "$t")
    out=$("${RUN[@]}" taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "${URL[$t]}")
    window_end
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    RPS_RUNS[$t]="${RPS_RUNS[$t]:-}${RPS_RUNS[$t]:+ }$rps"
    # Requests per second of the serving process's own CPU time: what one whole core
    # would serve, also when the load generator's core or other work held it back.
    PER_CORE_RUNS[$t]="${PER_CORE_RUNS[$t]:-}${PER_CORE_RUNS[$t]:+ }$((rps * 100 / (W_BUSY > 0 ? W_BUSY : 1)))"
    T_COND[$t]="${T_COND[$t]:-}${T_COND[$t]:+; }$rps (load $load, others $W_OTHERS0%/$W_OTHERS1%, target $W_BUSY% of a core)"
    if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
      NOTES+=("${NAME[$t]} wrk run $run: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ' | paste -sd';')")
    fi
  done
done
declare -A RPS
declare -A PER_CORE
for t in "${TARGETS[@]}"; do
  RPS[$t]=$(tr ' ' '\n' <<<"${RPS_RUNS[$t]}" | median)
  PER_CORE[$t]=$(tr ' ' '\n' <<<"${PER_CORE_RUNS[$t]}" | median)
done

# --- (b, c) CPU per request and latency at a constant rate: oha ---------------------
preempted() { # involuntary context switches of every thread of a process
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^nonvoluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
# fixed_rate TARGET: one oha run; sets F_OK (2xx answers), F_RPS, F_P50, F_P99 (µs),
# F_TICKS (the serving process's CPU ticks over the run), F_PREEMPTED (how often the
# serving process was preempted), W_OTHERS0/1, F_ERRORS.
fixed_rate() {
  local json p0
  p0=$(preempted "${PROC[$1]}")
  window_begin "$1"
  mapfile -t hdr < <(header_args "$1")
  json=$("${RUN[@]}" taskset -c 0 oha -z "${FIXED}s" -q "$RATE" -c "$CONNS" --latency-correction \
    --no-tui --output-format json "${hdr[@]}" "${URL[$1]}")
  window_end
  F_PREEMPTED=$(($(preempted "${PROC[$1]}") - p0))
  F_TICKS=$W_TICKS
  F_OK=$(jq '[.statusCodeDistribution | to_entries[] | select(.key | startswith("2")) | .value] | add // 0' <<<"$json")
  F_RPS=$(jq '.summary.requestsPerSec | floor' <<<"$json")
  F_P50=$(jq '.latencyPercentiles.p50 * 1e6 | round' <<<"$json")
  F_P99=$(jq '.latencyPercentiles.p99 * 1e6 | round' <<<"$json")
  # Requests still in flight when the window closes are aborted by oha: not errors.
  F_ERRORS=$(jq -c '.errorDistribution | with_entries(select(.key | test("deadline") | not))' <<<"$json")
}
us_per_request() { awk -v k="$1" -v h="$TCK" -v n="$2" 'BEGIN { printf "%.1f", k / h * 1e6 / n }'; }
# FIXED_RUNS rounds over the targets, direct first. Per target, the run kept is the one
# in which the serving process was preempted least (other work on its core; a proxy is
# alone on core 1 otherwise); the direct latency subtracted is the lowest of the direct
# runs (so the added latency is, if anything, overstated).
declare -A CPU_US P50 P99 F_COND F_BEST
D50="" D99=""
for round in $(seq "$FIXED_RUNS"); do
  for t in "${TARGETS[@]}"; do
    load=$(loadavg)
    log "constant $RATE req/s for ${FIXED}s, run $round/$FIXED_RUNS: ${NAME[$t]} (load average $load)"
    fixed_rate "$t"
    cpu=$(us_per_request "$F_TICKS" "$F_OK")
    F_COND[$t]="${F_COND[$t]:-}${F_COND[$t]:+; }$F_P50/$F_P99 µs, $cpu µs CPU, preempted $F_PREEMPTED× (load $load, others $W_OTHERS0%/$W_OTHERS1%)"
    [ "$F_RPS" -ge $((RATE * 97 / 100)) ] || NOTES+=("${NAME[$t]} run $round: oha reached only $F_RPS req/s of $RATE")
    [ "$F_ERRORS" = "{}" ] || NOTES+=("${NAME[$t]} run $round at $RATE req/s: oha errors $F_ERRORS")
    if [ "$t" = direct ]; then
      [ -z "$D50" ] || [ "$F_P50" -lt "$D50" ] && D50=$F_P50
      [ -z "$D99" ] || [ "$F_P99" -lt "$D99" ] && D99=$F_P99
      [ -z "${F_BEST[$t]:-}" ] || [ "$F_PREEMPTED" -lt "${F_BEST[$t]}" ] && { F_BEST[$t]=$F_PREEMPTED; UPSTREAM_CPU=$cpu; }
    elif [ -z "${F_BEST[$t]:-}" ] || [ "$F_PREEMPTED" -lt "${F_BEST[$t]}" ]; then
      F_BEST[$t]=$F_PREEMPTED CPU_US[$t]=$cpu P50[$t]=$F_P50 P99[$t]=$F_P99
    fi
  done
done

# --- (e) failover: 3 instances, one killed under 500 req/s --------------------------
log "failover: three instances, one killed under 500 req/s"
for i in 0 1 2; do
  nginx_upstream "fo$i" "${FO_PORTS[$i]}"
  FO_PID[i]=$PID
done
cat >"$WORK/failover.toml" <<EOF
[system]
name = "bench-failover"

[[gateway.routes]]
path = "/"
service = "trio"

[services.trio]
addresses = ["127.0.0.1:${FO_PORTS[0]}", "127.0.0.1:${FO_PORTS[1]}", "127.0.0.1:${FO_PORTS[2]}"]
health = { tcp = true, interval = "1s" }
EOF
start fo_server 0 "$CONWAY" server -f "$WORK/failover.toml" --listen 127.0.0.1:0 --data-dir "$WORK/fo-cp"
FO_CP=$(ready_field fo_server control_plane)
wait_until 20 has_healthy "$FO_CP" trio 3 || die "the control plane does not list three healthy instances"
start fo_gateway 1 "$CONWAY" gateway --server "$FO_CP" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir "$WORK/fo-gw" --threads 1 --no-access-log
FO_URL=$(ready_field fo_gateway gateway)
FO_ADMIN=$(ready_field fo_gateway admin)
wait_until 10 answers_200 "$FO_URL/" || die "the failover gateway does not answer"
DEAD_ID=$(curl -s "$FO_CP/v1/services/trio/instances" \
  | jq -r --argjson port "${FO_PORTS[0]}" '(if type == "array" then . else .instances end)[] | select(.port == $port) | .id')
[ -n "$DEAD_ID" ] || die "cannot find the id of the instance on port ${FO_PORTS[0]}"
FO_SECONDS=10 KILL_AFTER=3
"${RUN[@]}" taskset -c 0 "$HELPER" sample "${FO_ADMIN#http://}" conway_proxy_endpoint_requests $(((FO_SECONDS + 2) * 1000)) 50 >"$WORK/samples.txt" &
SAMPLER=$!
"${RUN[@]}" taskset -c 0 oha -z "${FO_SECONDS}s" -q 500 -c 16 -w --no-tui --output-format json "$FO_URL/" >"$WORK/failover.json" &
OHA=$!
sleep "$KILL_AFTER"
kill -KILL "${FO_PID[0]}"
KILLED_MS=$(date +%s%3N)
wait "$OHA"
wait "$SAMPLER"
FO_TOTAL=$(jq '[.statusCodeDistribution[]] | add // 0' "$WORK/failover.json")
FO_OK=$(jq '[.statusCodeDistribution | to_entries[] | select(.key | startswith("2")) | .value] | add // 0' "$WORK/failover.json")
FO_ERRORS=$(jq '[.errorDistribution[]] | add // 0' "$WORK/failover.json")
FO_FAILED=$((FO_TOTAL - FO_OK + FO_ERRORS))
FO_CODES=$(jq -c '.statusCodeDistribution' "$WORK/failover.json")
# Tries sent to the dead instance: the last sample before the death, the first sample a
# second after it, the last sample; and when its counter last moved.
read -r FO_AT_DEATH FO_AT_1S FO_FINAL FO_LAST_MOVE < <(
  awk -v id="endpoint=\"$DEAD_ID\"" -v k="$KILLED_MS" '
    index($0, id) { t = $1; v = $NF
      if (t <= k) at_death = v
      if (t >= k + 1000 && at_1s == "") at_1s = v
      if (v != prev && prev != "") last_move = t - k
      prev = v; final = v }
    END { print at_death + 0, (at_1s == "" ? "?" : at_1s), final + 0, (last_move == "" ? "none" : last_move) }' \
    "$WORK/samples.txt")

# --- report --------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "—"; else printf "%.2f×", a / b }'; }
added() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%+d µs", v - d }'; }

echo "# Proxy benchmark"
echo
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r)"
if git rev-parse --git-dir >/dev/null 2>&1; then
  rev="commit $(git rev-parse --short HEAD)"
  git diff --quiet HEAD -- crates Cargo.toml || rev="$rev, with local changes to crates/"
else
  rev="not a git checkout"
fi
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $rev"
echo "- tools: $(nginx -v 2>&1 | sed 's/.*: //'), HAProxy $(haproxy -v | head -1 | awk '{ print $3 }'), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), $(oha --version), $("$CONWAY" --version 2>/dev/null || echo conway)"
echo "- method: each proxy on core 1 with one worker (nginx worker_processes 1, HAProxy nbthread 1, conway --threads 1); upstream (nginx, one process, 24-byte body), wrk and oha on core 0; nginx and HAProxy without access logs; all at nice $NICE (scheduler autogroups too) against other work on the machine; wrk -t1 -c$CONNS -d${DURATION}s, median of $RUNS; oha -c$CONNS -q$RATE for ${FIXED}s with latency correction, $FIXED_RUNS runs each, the one whose serving process was preempted least kept; added latency over the lowest direct run"
echo
echo "| | req/s | µs CPU/req at ${RATE} rps | added p50 | added p99 | RSS idle | RSS ${IDLE_CONNS} conns |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '| direct | %.0f | — (upstream: %s) | p50 %d µs | p99 %d µs | — | — |\n' "${RPS[direct]}" "$UPSTREAM_CPU" "$D50" "$D99"
for t in nginx haproxy conway conway_log; do
  printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "${NAME[$t]}" "${RPS[$t]}" "${CPU_US[$t]}" \
    "$(added "${P50[$t]}" "$D50")" "$(added "${P99[$t]}" "$D99")" "$(mib "${RSS_IDLE[$t]}")" "$(mib "${RSS_CONNS[$t]}")"
done
for t in "${FEATURES[@]}"; do
  printf '| %s | %.0f | %s | %s | %s | — | — |\n' "${NAME[$t]}" "${RPS[$t]}" "${CPU_US[$t]}" \
    "$(added "${P50[$t]}" "$D50")" "$(added "${P99[$t]}" "$D99")"
done
echo
for anchor in nginx haproxy; do
  echo "- Conway/${NAME[$anchor]}: req/s $(ratio "${RPS[conway]}" "${RPS[$anchor]}"), CPU/req $(ratio "${CPU_US[conway]}" "${CPU_US[$anchor]}"), added p50 $(ratio $((P50[conway] - D50)) $((P50[$anchor] - D50))), added p99 $(ratio $((P99[conway] - D99)) $((P99[$anchor] - D99))), RSS idle $(ratio "${RSS_IDLE[conway]}" "${RSS_IDLE[$anchor]}"), RSS ${IDLE_CONNS} conns $(ratio "${RSS_CONNS[conway]}" "${RSS_CONNS[$anchor]}")"
done
echo "- req/s per core of the proxy's own CPU in the wrk runs (req/s ÷ its share of core 1, median; the req/s column can be held back by core 0 or other work, this cannot): nginx ${PER_CORE[nginx]}, HAProxy ${PER_CORE[haproxy]}, Conway ${PER_CORE[conway]}, Conway+access log ${PER_CORE[conway_log]}; Conway/nginx $(ratio "${PER_CORE[conway]}" "${PER_CORE[nginx]}"), Conway/HAProxy $(ratio "${PER_CORE[conway]}" "${PER_CORE[haproxy]}")"
echo "- Conway with/without access log: req/s $(ratio "${RPS[conway_log]}" "${RPS[conway]}") (target ≥ 0.90×), per core $(ratio "${PER_CORE[conway_log]}" "${PER_CORE[conway]}"), CPU/req $(ratio "${CPU_US[conway_log]}" "${CPU_US[conway]}")"
delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f µs", a - b }'; }
for t in "${FEATURES[@]}"; do
  echo "- cost of ${NAME[$t]#Conway+} against the plain gateway: req/s $(ratio "${RPS[$t]}" "${RPS[conway]}"), per core $(ratio "${PER_CORE[$t]}" "${PER_CORE[conway]}"), CPU/req $(ratio "${CPU_US[$t]}" "${CPU_US[conway]}") ($(delta "${CPU_US[$t]}" "${CPU_US[conway]}") a request)"
done
after=$([ "$FO_AT_1S" = "?" ] && echo "?" || echo $((FO_FINAL - FO_AT_1S)))
echo "- failover (3 instances, one SIGKILLed ${KILL_AFTER} s into ${FO_SECONDS} s at 500 req/s): $FO_FAILED failed of $FO_TOTAL client requests (answers $FO_CODES, $FO_ERRORS transport errors); tries sent to the dead instance: $((FO_AT_DEATH)) before its death, $((FO_FINAL - FO_AT_DEATH)) after it, $after more than 1 s after it (last one $FO_LAST_MOVE ms after the death; counters sampled every 50 ms)"
echo
echo "Conditions (load: the 1-minute load average at the start of the window; target: the serving process's CPU, near 100% when it is the bottleneck; others: the share of core 0 / core 1 that processes outside this benchmark used during it — at a constant rate they fill the idle time, so \"preempted\", how often the serving process had to wait for them, is the better sign of a disturbed run):"
echo
for t in "${TARGETS[@]}"; do echo "- ${NAME[$t]}: wrk req/s ${T_COND[$t]}; at $RATE req/s p50/p99 ${F_COND[$t]}"; done
echo
echo "RSS: nginx counts its worker (master: $(mib "$(rss_kib "$NGINX_MASTER")")); the others are one process. \"RSS idle\" is before any request; \"RSS ${IDLE_CONNS} conns\" 1 s after the connections were opened, each having carried one request."
for note in "${NOTES[@]}"; do echo "- note: $note"; done
exit 0
