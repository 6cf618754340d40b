#!/usr/bin/env python3
"""Soak test: a steady ingest load for minutes while the server's RSS is sampled.

Starts `rootcause serve` (release binary) on a fresh SQLite data directory, then POSTs batches of
alerts in Alertmanager's API v2 shape at a fixed rate (default: half of the ~37,000 alerts/s
`bench ingest` measured on SQLite on this machine): each batch fires new alerts on the bundled
Online Boutique's services and resolves the ones it fired `--retain-secs` earlier, so the firing
set stays bounded and memory should too. Every 10 s it prints RSS; at the end it stops the
server and counts the stored occurrences in the database.

Passes (exit 0) when, after the warm-up, RSS stays within +-10 % of its post-warm-up median
(unless --no-rss-gate), no request failed, and every acknowledged occurrence is stored.

    bench/soak.py --binary target/release/rootcause --minutes 10
"""

import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

SERVICES = ["frontend", "cartservice", "checkoutservice", "currencyservice", "emailservice",
            "paymentservice", "productcatalogservice", "recommendationservice", "shippingservice",
            "adservice", "redis-cart"]
NAMES = ["HighErrorRate", "HighLatency", "PodCrashLooping", "CPUThrottlingHigh", "KubePodNotReady"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    """(resident, anonymous, file-backed) MB: the file-backed part is the database file mapped
    by SQLite (`mmap_size`), page cache the kernel can reclaim; the anonymous part is the heap."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0]) / 1024
    nan = float("nan")
    return (fields.get("VmRSS", nan), fields.get("RssAnon", nan),
            fields.get("RssFile", nan) + fields.get("RssShmem", 0.0))


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Worker(threading.Thread):
    """Sends one batch every `period` seconds until `stop`: new alerts, and the resolution of
    those fired `retain` seconds ago."""

    def __init__(self, index, port, batch, period, retain, stop):
        super().__init__(daemon=True)
        self.index, self.port, self.batch, self.period = index, port, batch, period
        self.retain, self.stop = retain, stop
        self.acknowledged = 0   # new occurrences acknowledged
        self.errors = 0
        self.first_error = None
        self.fired = []         # (time sent, [(labels, startsAt)])
        self.counter = 0

    def body(self, now):
        alerts = []
        fresh = []
        for _ in range(self.batch):
            self.counter += 1
            labels = {"alertname": NAMES[self.counter % len(NAMES)],
                      "service": SERVICES[self.counter % len(SERVICES)],
                      "instance": f"w{self.index}-{self.counter}", "severity": "warning"}
            starts = iso(now)
            fresh.append((labels, starts))
            alerts.append({"labels": labels, "startsAt": starts,
                           "endsAt": iso(now + timedelta(minutes=5))})
        while self.fired and self.fired[0][0] <= time.monotonic() - self.retain:
            _, old = self.fired.pop(0)
            for labels, starts in old:
                alerts.append({"labels": labels, "startsAt": starts, "endsAt": iso(now)})
        self.fired.append((time.monotonic(), fresh))
        return json.dumps(alerts)

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        next_at = time.monotonic()
        while not self.stop.is_set():
            body = self.body(datetime.now(timezone.utc))
            try:
                connection.request("POST", "/api/v2/alerts", body,
                                   {"content-type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status == 200:
                    self.acknowledged += self.batch
                else:
                    self.errors += 1
                    self.first_error = self.first_error or f"HTTP {response.status}: {answer[:200]}"
            except Exception as error:  # noqa: BLE001 - counted and reported
                self.errors += 1
                self.first_error = self.first_error or repr(error)
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            next_at += self.period
            time.sleep(max(0.0, next_at - time.monotonic()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default="target/release/rootcause")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=18000, help="alerts per second")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--retain-secs", type=float, default=60)
    parser.add_argument("--warm-up-secs", type=float, default=120)
    parser.add_argument("--no-rss-gate", action="store_true",
                        help="print the RSS verdict but pass on errors and stored alerts alone")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="rc-soak-")
    port = free_port()
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen([args.binary, "serve", "--listen", f"127.0.0.1:{port}",
                               "--data-dir", data, "--log-format", "json"],
                              stdout=log, stderr=log,
                              env={**os.environ, "ROOTCAUSE_LOG_FILTER": "warn"})
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("the server did not become ready")

    period = args.batch * args.workers / args.rate
    stop = threading.Event()
    workers = [Worker(i, port, args.batch, period, args.retain_secs, stop)
               for i in range(args.workers)]
    for w in workers:
        w.start()
    started = time.monotonic()
    samples = []
    print(f"soak: {args.rate:.0f} alerts/s for {args.minutes} min, RSS every 10 s "
          f"(warm-up {args.warm_up_secs:.0f} s)")
    print(f"{'t (s)':>6} {'RSS (MB)':>9} {'anon':>7} {'file':>7} {'acknowledged':>13} {'errors':>7}")
    while time.monotonic() - started < args.minutes * 60:
        time.sleep(10)
        t = time.monotonic() - started
        rss, anon, file = rss_mb(server.pid)
        acked = sum(w.acknowledged for w in workers)
        errors = sum(w.errors for w in workers)
        samples.append((t, rss, anon))
        print(f"{t:6.0f} {rss:9.1f} {anon:7.1f} {file:7.1f} {acked:13d} {errors:7d}", flush=True)
    stop.set()
    for w in workers:
        w.join()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)

    acked = sum(w.acknowledged for w in workers)
    errors = sum(w.errors for w in workers)
    db = sqlite3.connect(os.path.join(data, "rootcause.db"))
    stored = db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
    rate = acked / (args.minutes * 60)
    print(f"sent {acked} alerts at {rate:.0f}/s, {errors} errors"
          + (f" (first: {next(w.first_error for w in workers if w.first_error)})" if errors else ""))
    print(f"stored occurrences: {stored} of {acked} acknowledged")
    verdicts = {}
    for column, what in ((1, "RSS"), (2, "anonymous RSS")):
        after = sorted(sample[column] for sample in samples if sample[0] >= args.warm_up_secs)
        median = after[len(after) // 2] if after else float("nan")
        low, high = (after[0], after[-1]) if after else (float("nan"), float("nan"))
        verdicts[what] = bool(after) and low >= 0.9 * median and high <= 1.1 * median
        print(f"{what} after warm-up: median {median:.1f} MB, min {low:.1f}, max {high:.1f} "
              f"({(low / median - 1) * 100:+.1f} % / {(high / median - 1) * 100:+.1f} %): "
              f"{'flat within +-10 %' if verdicts[what] else 'NOT flat within +-10 %'}")
    flat = verdicts["RSS"]
    ok = (flat or args.no_rss_gate) and errors == 0 and stored >= acked
    print("soak:", "PASS" if ok else "FAIL", f"(data in {data})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
