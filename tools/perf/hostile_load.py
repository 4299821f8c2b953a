#!/usr/bin/env python3
"""Hostile HTTP load against a running flownexus, with the server's RSS
watched during the load and for a while after it.

What it answers: how much memory the server takes under hostile traffic
(large bodies up to the body limit and past it, bad JSON, deep nesting,
long paths, many distinct endpoint names and resource types, every route of
/api/openapi.json with and without a token, many concurrent connections),
and whether it gives that memory back once the load stops.

Usage (Python 3 standard library only):

    FLOWNEXUS_DATA_DIR=/tmp/fx FLOWNEXUS_ADMIN_PASSWORD=secret-password \\
        target/release/flownexus &
    TOKEN=$(FLOWNEXUS_DATA_DIR=/tmp/fx target/release/flownexus token create \\
        --name load --scope api)
    tools/perf/hostile_load.py --url http://127.0.0.1:3000 --token "$TOKEN" \\
        --pid $(pgrep -n flownexus) --requests 8000 --after 60

It prints the RSS (VmRSS of /proc/<pid>/status) before the load, its peak
during the load, and at the end of every 10 s after the load; then one
line `rss_mb baseline=.. peak=.. after=..` to compare runs. The statuses
seen are printed too: a 5xx is a finding of its own.

Keep --concurrency at or below the server's http_max_connections_per_ip
(64 by default), or the connections above it are refused at accept.
"""
import argparse
import http.client
import json
import random
import string
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


class Watcher(threading.Thread):
    """Samples the server's RSS every 100 ms and keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(0.1)


ALPHABET = string.ascii_letters + string.digits + "-_.:"


def rand_text(rng, n):
    if n <= 64:
        return "".join(rng.choice(ALPHABET) for _ in range(n))
    # Long values: random bytes as hex, quick to make in bulk.
    return rng.randbytes((n + 1) // 2).hex()[:n]


def single_body(rng, endpoint, object_id, resource_id):
    kind = rng.choice(["FLOAT", "INTEGER", "STRING", "BOOLEAN"])
    value = {
        "FLOAT": lambda: str(rng.uniform(-1e6, 1e6)),
        "INTEGER": lambda: str(rng.randint(-(2**40), 2**40)),
        "STRING": lambda: rand_text(rng, rng.randint(1, 200)),
        "BOOLEAN": lambda: rng.choice(["true", "false"]),
    }[kind]()
    return {
        "ep": endpoint,
        "obj_id": object_id,
        "val": {"kind": "singleResource", "id": resource_id, "type": kind, "value": value},
    }


def composite_body(rng, endpoint, target_bytes):
    """A composite report of about `target_bytes`: many instances of many
    resources, long string values."""
    resources = []
    size = 0
    rid = 0
    while size < target_bytes:
        value = rand_text(rng, rng.randint(50, 2000))
        resources.append({"kind": "singleResource", "id": rid, "type": "STRING", "value": value})
        size += len(value) + 60
        rid += 1
    instances = [
        {"kind": "instance", "id": i, "resources": resources[i::8]} for i in range(8)
    ]
    object_id = rng.randint(20000, 20100)
    return {"ep": endpoint, "val": {f"/{object_id}": {"instances": instances}}}


def bad_json(rng, max_body):
    choices = [
        lambda: b"{",
        lambda: b'{"ep": "x", "obj_id": "three"}',
        lambda: b"[" * 100_000,
        lambda: b'{"a":' * 50_000,
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))),
        lambda: b'"' + b"x" * (max_body - 10) + b'"',
        lambda: b'{"ep":"' + b"\\u0000" * 1000 + b'"}',
        lambda: json.dumps({"ep": "e", "val": {"kind": "singleResource", "id": 1, "type": "FLOAT", "value": "nan"}}).encode(),
        lambda: b"x" * (max_body + 1024),  # past the body limit
        lambda: json.dumps([{"k": i} for i in range(max_body // 10)]).encode()[: max_body - 1],
    ]
    return rng.choice(choices)()


def fill_path(rng, template):
    def param(_m):
        return urllib.parse.quote(
            rng.choice(
                [
                    str(rng.randint(-5, 10**12)),
                    rand_text(rng, rng.randint(1, 64)),
                    "a" * rng.choice([256, 4096]),
                    "%00",
                    "..",
                ]
            ),
            safe="",
        )

    import re

    return re.sub(r"\{[^}]+\}", param, template)


class Client:
    """One keep-alive connection per worker thread."""

    local = threading.local()

    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.host = parsed.hostname
        self.port = parsed.port or 80

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.conn = c
        return c

    def send(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        for attempt in range(2):
            c = self.conn()
            try:
                c.request(method, path, body=body, headers=headers)
                resp = c.getresponse()
                resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    c.close()
                    self.local.conn = None
                return resp.status
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt == 1:
                    return "conn-error"
        return "conn-error"


def plan(rng, openapi, args):
    """The requests, as (method, path, body, auth) tuples."""
    operations = []
    for path, item in openapi.get("paths", {}).items():
        for method in item:
            if method in ("get", "post", "put", "delete", "patch"):
                operations.append((method.upper(), path))
    endpoints = [f"hostile-{i}-{rand_text(rng, 12)}" for i in range(args.endpoints)]
    for _ in range(args.requests):
        kind = rng.random()
        auth = rng.random() < 0.8
        if kind < 0.30:
            body = single_body(rng, rng.choice(endpoints), rng.randint(1, 40000), rng.randint(0, 65535))
            yield ("POST", "/leshan_api/resource/single", json.dumps(body).encode(), auth)
        elif kind < 0.40:
            size = rng.randint(1024, args.max_body - 64 * 1024)
            body = composite_body(rng, rng.choice(endpoints), size)
            data = json.dumps(body).encode()[: args.max_body]
            yield ("POST", "/leshan_api/resource/composite", data, auth)
        elif kind < 0.55:
            target = rng.choice(["/leshan_api/resource/single", "/leshan_api/resource/composite", "/api/v1/commands"])
            yield ("POST", target, bad_json(rng, args.max_body), auth)
        elif kind < 0.62:
            yield ("GET", "/api/v1/" + "a" * rng.choice([8 * 1024, 64 * 1024]), None, auth)
        elif kind < 0.75:
            name = urllib.parse.quote(rng.choice(endpoints + [rand_text(rng, 200)]), safe="")
            sub = rng.choice(["", "/series/3303/0/5700?from=0&to=99999999999999", "/series/1/2/3?bucket=" + rand_text(rng, 20)])
            yield ("GET", f"/api/v1/endpoints/{name}{sub}", None, auth)
        else:
            method, template = rng.choice(operations)
            path = fill_path(rng, template)
            if rng.random() < 0.5:
                query = "&".join(f"{rand_text(rng, 8)}={rand_text(rng, rng.randint(0, 300))}" for _ in range(rng.randint(1, 5)))
                path += "?" + query
            body = None
            if method in ("POST", "PUT", "PATCH"):
                body = rng.choice(
                    [
                        json.dumps({rand_text(rng, 8): rand_text(rng, 100) for _ in range(rng.randint(0, 50))}).encode(),
                        bad_json(rng, args.max_body),
                        b"",
                    ]
                )
            yield (method, path, body, auth)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:3000")
    ap.add_argument("--token", default="", help="an API token (scope api)")
    ap.add_argument("--pid", type=int, required=True, help="the server's process id")
    ap.add_argument("--requests", type=int, default=8000)
    ap.add_argument("--concurrency", type=int, default=48)
    ap.add_argument("--endpoints", type=int, default=2000, help="distinct endpoint names")
    ap.add_argument("--max-body", type=int, default=1024 * 1024, help="the server's max_body_bytes")
    ap.add_argument("--after", type=int, default=60, help="seconds to watch RSS after the load")
    ap.add_argument("--seed", type=int, default=27)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    client = Client(args.url)
    baseline = rss_mb(args.pid)
    c = http.client.HTTPConnection(client.host, client.port, timeout=30)
    c.request("GET", "/api/openapi.json")
    openapi = json.loads(c.getresponse().read())
    c.close()
    requests = plan(rng, openapi, args)
    print(f"baseline rss {baseline:.1f} MB; {args.requests} requests, {args.concurrency} connections", flush=True)

    watcher = Watcher(args.pid)
    watcher.start()
    statuses = Counter()
    lock = threading.Lock()

    def run(req):
        method, path, body, auth = req
        headers = {"Content-Type": "application/json"}
        if auth and args.token:
            headers["Authorization"] = f"Bearer {args.token}"
        status = client.send(method, path, body, headers)
        with lock:
            statuses[status] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        # map() takes the generator whole; submit in slices so that only a
        # few bodies are in memory at once.
        while True:
            batch = [req for _, req in zip(range(args.concurrency * 4), requests)]
            if not batch:
                break
            list(pool.map(run, batch))
    elapsed = time.monotonic() - started
    at_end = rss_mb(args.pid)
    print(f"load done in {elapsed:.1f} s ({args.requests / elapsed:.0f} req/s); rss at end {at_end:.1f} MB, peak {watcher.peak:.1f} MB", flush=True)
    print("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))), flush=True)
    after = at_end
    for t in range(10, args.after + 1, 10):
        time.sleep(10)
        after = rss_mb(args.pid)
        print(f"  {t:3d} s after: rss {after:.1f} MB", flush=True)
    watcher.stop.set()
    print(f"rss_mb baseline={baseline:.1f} peak={watcher.peak:.1f} after={after:.1f}")


if __name__ == "__main__":
    main()
