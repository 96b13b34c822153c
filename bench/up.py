#!/usr/bin/env python3
"""The `conway up` benchmark (bench/README.md): how long a small system takes to come
up, and a killed instance to be replaced, beside the same processes run bare.

Run through bench/up.sh, which builds the binaries first. Not a test: it asserts
nothing and prints one Markdown table.
"""

import argparse
import json
import os
import platform
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SERVICES = ["catalog", "inventory", "payments", "orders"]
REPLICAS = 2
# As in the reference shop: orders waits for the other three.
DEPENDS_ON = {"orders": ["catalog", "inventory", "payments"]}
# What qualifies a number, printed under the table.
NOTES = []
# Never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def now():
    return time.monotonic_ns() / 1e9


def get(url, timeout=2.0):
    """(status, body) of GET url; (0, "") when nothing answers."""
    try:
        with HTTP.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (OSError, urllib.error.URLError):
        return 0, ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manifest(binary, interval, dependencies, services=SERVICES):
    lines = ['[system]\nname = "bench-up"\n\n[gateway]\nlisten = "127.0.0.1:0"\n']
    for name in services:
        lines.append(f"[services.{name}]")
        lines.append(f"run = [{json.dumps(binary)}]")
        lines.append(f"replicas = {REPLICAS}")
        lines.append(f'health = {{ http = "/health", interval = "{interval}" }}')
        if dependencies and name in DEPENDS_ON:
            lines.append(f"depends_on = {json.dumps(DEPENDS_ON[name])}")
        lines.append("")
    return "\n".join(lines)


def children(pid):
    """{CONWAY_INSTANCE: pid} of the live children of pid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid or fields[0] == "Z":
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                for var in f.read().split(b"\0"):
                    if var.startswith(b"CONWAY_INSTANCE="):
                        found[var.split(b"=", 1)[1].decode()] = int(entry)
        except (OSError, IndexError, ValueError):
            continue
    return found


def process_of(instance):
    """What tells one process of an instance from the next: its port, its registration
    time and its metadata (the proxy token's digest, the restart count)."""
    return (instance["port"], instance.get("registered_at_ms"),
            json.dumps(instance.get("metadata"), sort_keys=True))


class Up:
    """One `conway up`: started, timed to its ready line, stopped."""

    def __init__(self, conway, path, folder):
        self.log = open(os.path.join(folder, "up.log"), "w")
        started = now()
        self.process = subprocess.Popen(
            [conway, "up", "-f", path, "--listen", "127.0.0.1:0",
             "--otlp-listen", "127.0.0.1:0", "--stop-grace", "2s",
             "--data-dir", os.path.join(folder, "data")],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            env={**os.environ, "CONWAY_LOG": "warn"}, text=True)
        # The ready line is the first line on stdout.
        waited, _, _ = select.select([self.process.stdout], [], [], 120)
        line = self.process.stdout.readline() if waited else ""
        self.seconds = now() - started
        if not line:
            self.stop()
            raise RuntimeError(f"conway up printed no ready line; see {self.log.name}")
        self.ready = json.loads(line)
        self.api = self.ready["control_plane"]

    def all_healthy(self):
        status, body = get(f"{self.api}/v1/services")
        return status == 200 and all(
            s["instances"] == REPLICAS and s["healthy"] == REPLICAS
            for s in json.loads(body) if s["name"] in SERVICES)

    def healthy(self, service):
        status, body = get(f"{self.api}/v1/services/{service}/instances?healthy=true")
        return json.loads(body) if status == 200 else []

    def replace(self, service):
        """Kills SERVICE-1 with SIGKILL; seconds until it is gone from the healthy
        list, and until a new process of it is healthy beside the other replica."""
        instance = f"{service}-1"
        pid = children(self.process.pid)[instance]
        before = next(process_of(i) for i in self.healthy(service) if i["id"] == instance)
        killed = now()
        os.kill(pid, signal.SIGKILL)
        gone = None
        deadline = killed + 30
        while now() < deadline:
            healthy = self.healthy(service)
            this = [process_of(i) for i in healthy if i["id"] == instance]
            if gone is None and this != [before]:
                gone = now() - killed
            if len(healthy) == REPLICAS and this and this[0] != before:
                return gone, now() - killed
            time.sleep(0.002)
        return gone, None

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Bare:
    """The same processes without Conway: started by hand, polled on /health."""

    def __init__(self, binary, folder):
        self.binary = binary
        self.folder = folder
        self.processes = {}

    def spawn(self, service, index, port):
        data = os.path.join(self.folder, service)
        os.makedirs(data, exist_ok=True)
        env = {**os.environ, "PORT": str(port), "DATA_DIR": data,
               "CONWAY_SERVICE": service, "CONWAY_INSTANCE": f"{service}-{index}"}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        log = open(os.path.join(self.folder, f"{service}-{index}.log"), "a")
        process = subprocess.Popen([self.binary], env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log)
        log.close()
        self.processes[(service, index)] = (process, port)

    def wait_healthy(self, keys):
        waiting = set(keys)
        deadline = now() + 30
        while waiting and now() < deadline:
            for key in list(waiting):
                if get(f"http://127.0.0.1:{self.processes[key][1]}/health", 0.5)[0] == 200:
                    waiting.discard(key)
            if waiting:
                time.sleep(0.002)
        for service, index in waiting:
            process, port = self.processes[(service, index)]
            log = os.path.join(self.folder, f"{service}-{index}.log")
            with open(log) as f:
                last = (f.read().strip().splitlines() or ["(no output)"])[-1]
            NOTES.append(f"bare {service}-{index} on port {port} never answered /health "
                         f"(exit status {process.poll()}): {last}")
        return not waiting

    def start_all(self):
        ports = {(s, i): free_port() for s in SERVICES for i in range(1, REPLICAS + 1)}
        started = now()
        for (service, index), port in ports.items():
            self.spawn(service, index, port)
        ok = self.wait_healthy(ports)
        return now() - started if ok else None

    def replace(self, service):
        """SIGKILL, reap, start again on the same port, poll until healthy."""
        process, port = self.processes[(service, 1)]
        killed = now()
        process.kill()
        process.wait()
        self.spawn(service, 1, port)
        ok = self.wait_healthy([(service, 1)])
        return now() - killed if ok else None

    def stop(self):
        for process, _ in self.processes.values():
            process.kill()
            process.wait()


def summary(samples):
    """'median (min–max)' in milliseconds."""
    good = [s * 1000 for s in samples if s is not None]
    if not good:
        return "—"
    text = f"{statistics.median(good):.0f} ms"
    if len(good) > 1:
        text += f" ({min(good):.0f}–{max(good):.0f})"
    if len(good) < len(samples):
        text += f", {len(samples) - len(good)} timed out"
    return text


def ratio(conway, anchor):
    good_c = [s for s in conway if s is not None]
    good_a = [s for s in anchor if s is not None]
    if not good_c or not good_a:
        return "—"
    return f"{statistics.median(good_c) / statistics.median(good_a):.1f}×"


def median(samples):
    good = [s for s in samples if s is not None]
    return statistics.median(good) if good else float("inf")


def load_average():
    """The 1-minute load average: how busy the machine was."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conway", required=True)
    parser.add_argument("--service", required=True, help="the service binary (shop-catalog)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", default="1s", help="the services' health-check interval")
    args = parser.parse_args()
    binary = os.path.abspath(args.service)
    conway = os.path.abspath(args.conway)

    up_deps, up_flat, up_empty, gone, replaced, not_healthy = [], [], [], [], [], 0
    bare_start, bare_replace = [], []
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="conway-bench-up-") as root:
        for run in range(args.runs):
            # Interleaved, so a slow moment of the machine spreads over every row.
            for kind, samples in (("deps", up_deps), ("flat", up_flat), ("empty", up_empty)):
                dependencies = kind == "deps"
                folder = os.path.join(root, f"up-{run}-{kind}")
                os.makedirs(folder)
                path = os.path.join(folder, "conway.toml")
                with open(path, "w") as f:
                    f.write(manifest(binary, args.interval, dependencies,
                                     [] if kind == "empty" else SERVICES))
                up = Up(conway, path, folder)
                try:
                    samples.append(up.seconds)
                    if not up.all_healthy():
                        not_healthy += 1
                    if dependencies:
                        for service in SERVICES[:3]:
                            g, r = up.replace(service)
                            gone.append(g)
                            replaced.append(r)
                finally:
                    up.stop()
            bare = Bare(binary, os.path.join(root, f"bare-{run}"))
            try:
                bare_start.append(bare.start_all())
                for service in SERVICES[:3]:
                    bare_replace.append(bare.replace(service))
            finally:
                bare.stop()
            print(f"run {run + 1}/{args.runs}: up {summary(up_deps[-1:])}, "
                  f"flat {summary(up_flat[-1:])}, bare {summary(bare_start[-1:])}",
                  file=sys.stderr)

    print(f"`conway up` benchmark — {os.cpu_count()} cores, {cpu_model()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.runs} runs; "
          f"4 services × {REPLICAS} replicas of shop-catalog, health checks every {args.interval}; "
          f"load average {load_before} before, {load_average()} after")
    print()
    print("| row | Conway | anchor: bare processes | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print(f"| 1 `conway up` until ready, orders depends on the other three | {summary(up_deps)} "
          f"| {summary(bare_start)} | {ratio(up_deps, bare_start)} | ≤ 3 s "
          f"| {'yes' if median(up_deps) <= 3 else 'no'} |")
    print(f"| 1b `conway up` until ready, no dependencies | {summary(up_flat)} "
          f"| {summary(bare_start)} | {ratio(up_flat, bare_start)} | — | — |")
    print(f"| 1c `conway up` until ready, no services (its own start) | {summary(up_empty)} "
          f"| — | — | — | — |")
    print(f"| 2 killed instance healthy again | {summary(replaced)} | {summary(bare_replace)} "
          f"| {ratio(replaced, bare_replace)} | ≤ 2 s | {'yes' if median(replaced) <= 2 else 'no'} |")
    print(f"| 2a of which: gone from the healthy list | {summary(gone)} | — | — | — | — |")
    print()
    print(f"Samples: {len(up_deps)} + {len(up_flat)} + {len(up_empty)} starts, {len(replaced)} kills (3 per run, "
          "one per service, so no restart backoff grows).", end="")
    if not_healthy:
        print(f" {not_healthy} ready lines came before every replica was healthy.", end="")
    print()
    for note in NOTES:
        print(f"\n- {note}")


if __name__ == "__main__":
    main()
