/*
 * What SQLite itself costs per ingested value, without the server: the
 * project's schema (its SQLite migrations), the ingest writer's two
 * statements (a value row and its resource_latest upsert) prepared once,
 * 500 devices x 4 resources, commits of ROWS values, on a database
 * pre-filled with 200,000 values. Prints rows/s and commit latencies.
 *
 * Build and run (the SQLite sources are the ones sqlx builds, from
 * libsqlite3-sys in the cargo registry):
 *
 *   S=$(find ~/.cargo/registry/src -maxdepth 2 -name libsqlite3-sys-0.30.1)/sqlite3
 *   gcc -O2 -I"$S" benches/sqlite_wal.c "$S/sqlite3.c" -o /tmp/sqlite_wal -lm -lpthread
 *   cat migrations/sqlite/2*.sql > /tmp/schema.sql
 *   cd /tmp && ./sqlite_wal inline 32 6000
 *   cd /tmp && ./sqlite_wal background 32 6000 16384
 *   cd /tmp && ./sqlite_wal inline 32 6000 0 "DROP INDEX resource_series_idx"
 *
 * MODE inline: SQLite's own checkpoint inside the commit past 1,000 log
 * pages (what the server does). MODE background: no checkpoint on commit;
 * a second thread and connection checkpoint PASSIVE whenever 1,000 pages
 * are uncopied, and the writer copies the rest itself between commits once
 * the log has RESTART pages, so that the log starts over. An optional last
 * argument is SQL run after the schema (e.g. dropping an index).
 */
#include "sqlite3.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc(n + 1);
  if (fread(b, 1, n, f) != (size_t)n) { perror(path); exit(1); }
  b[n] = 0;
  fclose(f);
  return b;
}

static void check(int rc, sqlite3 *db, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
  }
}

static sqlite3 *db;
static sqlite3_stmt *insert_value, *upsert_latest;
static long next_id = 1, seq = 0, received_at = 1700000000000;
static volatile int log_pages = 0, copied_pages = 0, stop = 0;

static int wal_hook(void *arg, sqlite3 *d, const char *name, int pages) {
  (void)arg; (void)d; (void)name;
  log_pages = pages;
  return SQLITE_OK;
}

static void commit_batch(int rows) {
  check(sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0), db, "begin");
  for (int i = 0; i < rows; i++) {
    long endpoint = 1 + seq % 500, type = 10 + (seq / 500) % 4;
    seq++, next_id++, received_at++;
    sqlite3_stmt *v = insert_value, *l = upsert_latest;
    sqlite3_bind_int64(v, 1, next_id);
    sqlite3_bind_int64(v, 2, endpoint);
    sqlite3_bind_int64(v, 3, type);
    sqlite3_bind_int64(v, 4, 0);
    sqlite3_bind_null(v, 5);
    sqlite3_bind_null(v, 6);
    sqlite3_bind_double(v, 7, 21.5 + i);
    sqlite3_bind_null(v, 8);
    sqlite3_bind_null(v, 9);
    sqlite3_bind_int64(v, 10, received_at);
    check(sqlite3_step(v), db, "insert value");
    sqlite3_reset(v);
    sqlite3_bind_int64(l, 1, endpoint);
    sqlite3_bind_int64(l, 2, type);
    sqlite3_bind_int64(l, 3, 0);
    sqlite3_bind_int64(l, 4, -1);
    sqlite3_bind_int64(l, 5, next_id);
    sqlite3_bind_int64(l, 6, received_at);
    check(sqlite3_step(l), db, "upsert latest");
    sqlite3_reset(l);
  }
  check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
}

static void *background_checkpoints(void *arg) {
  (void)arg;
  sqlite3 *c;
  check(sqlite3_open("sqlite_wal.db", &c), c, "open checkpointer");
  sqlite3_busy_timeout(c, 10000);
  check(sqlite3_exec(c, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", 0, 0, 0), c,
        "checkpointer pragmas");
  while (!stop) {
    if (log_pages - copied_pages > 1000) {
      int log, copied;
      sqlite3_wal_checkpoint_v2(c, 0, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      copied_pages = copied;
    } else {
      usleep(500);
    }
  }
  sqlite3_close(c);
  return 0;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s inline|background ROWS COMMITS [RESTART] [SQL]\n", argv[0]);
    return 2;
  }
  int background = strcmp(argv[1], "background") == 0;
  int rows = atoi(argv[2]), commits = atoi(argv[3]);
  int restart = argc > 4 && atoi(argv[4]) > 0 ? atoi(argv[4]) : 16384;
  remove("sqlite_wal.db");
  remove("sqlite_wal.db-wal");
  remove("sqlite_wal.db-shm");
  check(sqlite3_open("sqlite_wal.db", &db), db, "open");
  check(sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                     "PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;",
                     0, 0, 0),
        db, "pragmas");
  check(sqlite3_exec(db, read_file("schema.sql"), 0, 0, 0), db, "schema");
  if (argc > 5) check(sqlite3_exec(db, argv[5], 0, 0, 0), db, argv[5]);
  check(sqlite3_exec(db,
                     "INSERT OR IGNORE INTO resource_type (id, object_id, resource_id, name, data_type) "
                     "SELECT 10 + value, 64000, value, 'bench' || value, 'FLOAT' FROM json_each('[0,1,2,3]');"
                     "INSERT INTO endpoint (id, name, created_at) WITH RECURSIVE n(i) AS "
                     "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i, 'dev' || i, 0 FROM n;",
                     0, 0, 0),
        db, "devices");
  check(sqlite3_prepare_v3(db,
                           "INSERT INTO resource (id, endpoint_id, resource_type_id, object_instance_id, "
                           "resource_instance_id, int_value, float_value, text_value, bytes_value, received_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &insert_value, 0),
        db, "prepare value");
  check(sqlite3_prepare_v3(db,
                           "INSERT INTO resource_latest (endpoint_id, resource_type_id, object_instance_id, "
                           "resource_instance_key, resource_id, received_at) VALUES (?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (endpoint_id, resource_type_id, object_instance_id, resource_instance_key) "
                           "DO UPDATE SET resource_id = excluded.resource_id, received_at = excluded.received_at",
                           -1, SQLITE_PREPARE_PERSISTENT, &upsert_latest, 0),
        db, "prepare latest");
  for (int i = 0; i < 200; i++) commit_batch(1000);
  sqlite3_wal_checkpoint_v2(db, 0, SQLITE_CHECKPOINT_TRUNCATE, 0, 0);

  pthread_t checkpointer;
  if (background) {
    sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0", 0, 0, 0);
    sqlite3_wal_hook(db, wal_hook, 0);
    pthread_create(&checkpointer, 0, background_checkpoints, 0);
  }
  double *latency = malloc(sizeof(double) * commits);
  int restarts = 0;
  double start = now();
  for (int k = 0; k < commits; k++) {
    double t = now();
    if (background && log_pages > restart && log_pages - copied_pages < 2000) {
      sqlite3_wal_checkpoint_v2(db, 0, SQLITE_CHECKPOINT_PASSIVE, 0, 0);
      restarts++;
      log_pages = copied_pages = 0;
    }
    commit_batch(rows);
    latency[k] = (now() - t) * 1e3;
  }
  double elapsed = now() - start;
  stop = 1;
  if (background) pthread_join(checkpointer, 0);
  qsort(latency, commits, sizeof(double), by_value);
  FILE *wal = fopen("sqlite_wal.db-wal", "r");
  fseek(wal, 0, SEEK_END);
  printf("%s, %d rows per commit: %.0f rows/s; commit ms p50 %.2f p99 %.2f p99.9 %.2f max %.2f; "
         "log restarts by the writer %d; log file %ld KiB\n",
         argv[1], rows, commits * rows / elapsed, latency[commits / 2], latency[commits * 99 / 100],
         latency[commits * 999 / 1000], latency[commits - 1], restarts, ftell(wal) / 1024);
  return 0;
}
