#!/usr/bin/env python3
"""What the server was doing when the half-load phase's slowest requests waited.

Lines up the ingest benchmark's per-request latency log with the server's
log of the same run:

    BENCH_SERVER_LOG="warn,flownexus::server::db::wal=debug,flownexus::server::ingest::writer=debug" \\
        ./scripts/bench.sh --backend sqlite --kind composite --skip-get \\
        --keep --latency-log /tmp/lat.csv
    python3 tools/perf/latency_tail.py /tmp/lat.csv /tmp/flownexus-bench-XXXXXX/server.log

The slowest 1% of requests are grouped into episodes (slow requests due
less than 50 ms apart). For each episode it prints how late the load
generator sent them, and what the server logged from 50 ms before the first
was due to when the last was answered: WAL restarts, slow commits, the
longest commit and the longest gap between two commits.
"""
import datetime
import re
import statistics
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELD = re.compile(r"(\w+)=([^\s]+)")


def unix_us(stamp):
    t = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(t.timestamp() * 1_000_000)


def read_requests(path):
    requests = []
    with open(path) as f:
        for line in f:
            _phase, due, lag, latency = line.strip().split(",")
            requests.append((int(due), int(lag), int(latency)))
    requests.sort()
    return requests


def read_server_log(path):
    commits = []  # (end_us, took_us, requests, rows)
    notable = []  # (at_us, text)
    with open(path, errors="replace") as f:
        for raw in f:
            line = ANSI.sub("", raw).strip()
            if not line[:4].isdigit():
                continue
            stamp, _, rest = line.partition(" ")
            try:
                at = unix_us(stamp)
            except ValueError:
                continue
            fields = dict(FIELD.findall(rest))
            if "ingest commit" in rest and "us" in fields:
                commits.append((at, int(fields["us"]), int(fields.get("requests", 0)), int(fields.get("rows", 0))))
            elif "slow ingest commit" in rest:
                commits.append((at, int(fields["ms"]) * 1000, int(fields.get("requests", 0)), int(fields.get("rows", 0))))
                notable.append((at, "slow commit " + " ".join(f"{k}={v}" for k, v in fields.items())))
            elif "WAL copied" in rest or "WARN" in rest or "rollup" in rest:
                text = rest.split(":", 1)[-1].strip()
                notable.append((at, text[:160]))
    commits.sort()
    notable.sort()
    return commits, notable


def main(latency_csv, server_log):
    requests = read_requests(latency_csv)
    commits, notable = read_server_log(server_log)
    latencies = sorted(r[2] for r in requests)
    p99 = latencies[int(0.99 * len(latencies))]
    lags = sorted(r[1] for r in requests)
    print(f"{len(requests)} requests; latency p50 {latencies[len(latencies) // 2] / 1000:.2f} ms, "
          f"p99 {p99 / 1000:.2f} ms; send lag p50 {lags[len(lags) // 2] / 1000:.2f} ms, "
          f"p99 {lags[int(0.99 * len(lags))] / 1000:.2f} ms")
    if commits:
        took = sorted(c[1] for c in commits)
        print(f"{len(commits)} commits logged; took p50 {took[len(took) // 2] / 1000:.2f} ms, "
              f"p99 {took[int(0.99 * len(took))] / 1000:.2f} ms, max {took[-1] / 1000:.2f} ms; "
              f"requests per commit {statistics.mean(c[2] for c in commits):.2}")

    slow = [r for r in requests if r[2] >= p99]
    episodes = []
    for r in slow:
        if episodes and r[0] - episodes[-1][-1][0] < 50_000:
            episodes[-1].append(r)
        else:
            episodes.append([r])
    print(f"{len(slow)} requests at or over p99, in {len(episodes)} episodes\n")
    start_all = requests[0][0]
    for ep in episodes:
        begin = ep[0][0]
        end = max(due + latency for due, _, latency in ep)
        lo, hi = begin - 50_000, end
        in_window = [c for c in commits if lo <= c[0] <= hi]
        gaps = [b[0] - a[0] for a, b in zip(in_window, in_window[1:])]
        print(f"t+{(begin - start_all) / 1e6:7.3f} s: {len(ep)} slow requests, latency max "
              f"{max(r[2] for r in ep) / 1000:.1f} ms, send lag max {max(r[1] for r in ep) / 1000:.1f} ms")
        if in_window:
            longest = max(in_window, key=lambda c: c[1])
            print(f"    {len(in_window)} commits; longest {longest[1] / 1000:.1f} ms "
                  f"(ended t+{(longest[0] - start_all) / 1e6:.3f} s, {longest[2]} requests); "
                  f"longest gap between commit ends {max(gaps, default=0) / 1000:.1f} ms")
        else:
            print("    no commit logged in the window")
        for at, text in notable:
            if lo <= at <= hi:
                print(f"    t+{(at - start_all) / 1e6:.3f} s {text}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
