#!/usr/bin/env python3
"""Which b-trees fill SQLite's write-ahead log, per commit.

Reads the frames of the log's current generation (those with the header's
salts) from <dir>/bench.db-wal.last (the copy the benchmark takes with
--keep before it stops the server, which deletes its log), counts frames and commits, and names each
frame's page by the b-tree that owns it now (SQLite's dbstat table, which
Python's sqlite3 module has on Debian). Run it on a database that the
ingest benchmark kept:

    BENCH_SERVER_LOG=warn ./scripts/bench.sh --backend sqlite \\
        --kind composite --skip-get --keep
    python3 tools/perf/wal_frames.py /tmp/flownexus-bench-XXXXXX

The log holds what was committed since its last restart, so this shows the
end of the run (the half-load phase when --skip-get is given).
"""
import collections
import sqlite3
import statistics
import struct
import sys


def main(directory):
    with open(directory + "/bench.db-wal.last", "rb") as wal:
        header = wal.read(32)
        _magic, _version, page_size, _ckpt, salt1, salt2, _c1, _c2 = struct.unpack(">8I", header)
        frames_per_commit = []
        frames_in_commit = 0
        frames_by_page = collections.Counter()
        while True:
            frame_header = wal.read(24)
            if len(frame_header) < 24:
                break
            page, db_size, s1, s2, _k1, _k2 = struct.unpack(">6I", frame_header)
            wal.seek(page_size, 1)
            if (s1, s2) != (salt1, salt2):
                break  # an older generation of the log
            frames_in_commit += 1
            frames_by_page[page] += 1
            if db_size:  # the commit's last frame
                frames_per_commit.append(frames_in_commit)
                frames_in_commit = 0
    commits = len(frames_per_commit)
    if not commits:
        print("no commit in the log's current generation")
        return
    frames = sum(frames_per_commit)
    print(
        f"frames {frames}, commits {commits}, frames per commit: "
        f"mean {statistics.mean(frames_per_commit):.1f}, "
        f"median {statistics.median(frames_per_commit)}, "
        f"distinct pages {len(frames_by_page)}"
    )
    db = sqlite3.connect(f"file:{directory}/bench.db?mode=ro", uri=True)
    owner = {page: (name, kind) for name, page, kind in db.execute("SELECT name, pageno, pagetype FROM dbstat")}
    frames_by_tree = collections.Counter()
    pages_by_tree = collections.Counter()
    for page, count in frames_by_page.items():
        tree = owner.get(page, ("(not in the database yet)", ""))
        frames_by_tree[tree] += count
        pages_by_tree[tree] += 1
    print(f"{'b-tree':<40} {'page type':<9} {'frames':>8} {'/commit':>8} {'distinct':>9}")
    for (name, kind), count in frames_by_tree.most_common():
        print(f"{name:<40} {kind:<9} {count:>8} {count / commits:>8.1f} {pages_by_tree[(name, kind)]:>9}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
