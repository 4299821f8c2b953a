-- flownexus initial schema (SQLite dialect). Forward-only: never edit a
-- migration that has shipped; add a new one.
-- Times are BIGINT milliseconds since the Unix epoch. Booleans are INTEGER
-- 0/1 with a check constraint (sqlx's Any driver cannot read SQLite's BOOLEAN
-- declared type); PostgreSQL uses real BOOLEAN columns.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    token_hash      TEXT    NOT NULL UNIQUE,
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE api_token (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scope           TEXT    NOT NULL CHECK (scope IN ('device', 'api')),
    token_prefix    TEXT    NOT NULL,
    token_hash      TEXT    NOT NULL UNIQUE,
    created_by      BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at      BIGINT  NOT NULL,
    last_used_at    BIGINT,
    revoked_at      BIGINT
);

CREATE TABLE settings (
    key             TEXT    PRIMARY KEY,
    value           TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE endpoint (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),
    registered           INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1)),
    last_registration_at BIGINT,
    last_update_at       BIGINT,
    last_seen_at         BIGINT,
    lifetime_s           BIGINT,
    binding              TEXT,
    queue_mode           INTEGER NOT NULL DEFAULT 0 CHECK (queue_mode IN (0, 1)),
    created_at           BIGINT  NOT NULL
);

CREATE TABLE resource_type (
    id              INTEGER PRIMARY KEY,
    object_id       BIGINT  NOT NULL CHECK (object_id BETWEEN 0 AND 65535),
    resource_id     BIGINT  NOT NULL CHECK (resource_id BETWEEN 0 AND 65535),
    name            TEXT    NOT NULL,
    data_type       TEXT    NOT NULL CHECK (data_type IN ('STRING', 'INTEGER', 'UNSIGNED_INTEGER',
                        'FLOAT', 'BOOLEAN', 'OPAQUE', 'TIME', 'OBJLNK', 'CORELINK', 'NONE')),
    unit            TEXT,
    writable        INTEGER NOT NULL DEFAULT 0 CHECK (writable IN (0, 1)),
    executable      INTEGER NOT NULL DEFAULT 0 CHECK (executable IN (0, 1)),
    origin          TEXT    NOT NULL DEFAULT 'seeded' CHECK (origin IN ('seeded', 'discovered', 'custom')),
    UNIQUE (object_id, resource_id)
);

CREATE TABLE resource (
    id                   INTEGER PRIMARY KEY,
    endpoint_id          BIGINT  NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id     BIGINT  NOT NULL REFERENCES resource_type (id),
    object_instance_id   BIGINT  NOT NULL DEFAULT 0,
    resource_instance_id BIGINT,
    int_value            BIGINT,
    float_value          DOUBLE PRECISION,
    text_value           TEXT,
    bytes_value          BLOB,
    received_at          BIGINT  NOT NULL
);
-- "this endpoint, this resource, this time range"
CREATE INDEX resource_series_idx
    ON resource (endpoint_id, resource_type_id, object_instance_id, resource_instance_id, received_at);

-- "latest value per resource of an endpoint": one row per series, kept
-- current by ingest, so the lookup never scans history.
-- resource_instance_key is the resource instance id, or -1 for a
-- single-instance resource (NULL cannot take part in the primary key).
CREATE TABLE resource_latest (
    endpoint_id           BIGINT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id      BIGINT NOT NULL REFERENCES resource_type (id),
    object_instance_id    BIGINT NOT NULL,
    resource_instance_key BIGINT NOT NULL,
    resource_id           BIGINT NOT NULL REFERENCES resource (id) ON DELETE CASCADE,
    received_at           BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, resource_type_id, object_instance_id, resource_instance_key)
);
CREATE INDEX resource_latest_resource_idx ON resource_latest (resource_id);

CREATE TABLE event (
    id              INTEGER PRIMARY KEY,
    endpoint_id     BIGINT  NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    event_type      TEXT    NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
    created_at      BIGINT  NOT NULL
);
CREATE INDEX event_endpoint_time_idx ON event (endpoint_id, created_at);
CREATE INDEX event_time_idx ON event (created_at);

CREATE TABLE event_resource (
    event_id        BIGINT  NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    resource_id     BIGINT  NOT NULL REFERENCES resource (id) ON DELETE CASCADE,
    PRIMARY KEY (event_id, resource_id)
);
CREATE INDEX event_resource_resource_idx ON event_resource (resource_id);

CREATE TABLE endpoint_operation (
    id                 INTEGER PRIMARY KEY,
    endpoint_id        BIGINT  NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id   BIGINT  REFERENCES resource_type (id),
    -- LwM2M path the operation targets, e.g. /5/0/1 or /3 for a read.
    path               TEXT    NOT NULL,
    operation_type     TEXT    NOT NULL CHECK (operation_type IN ('write', 'execute', 'read')),
    int_value          BIGINT,
    float_value        DOUBLE PRECISION,
    text_value         TEXT,
    bytes_value        BLOB,
    status             TEXT    NOT NULL DEFAULT 'queued'
                           CHECK (status IN ('queued', 'sending', 'confirmed', 'failed', 'cancelled')),
    attempts           BIGINT  NOT NULL DEFAULT 0,
    last_attempt_at    BIGINT,
    last_error         TEXT,
    expires_at         BIGINT,
    created_by         BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE INDEX endpoint_operation_queue_idx ON endpoint_operation (status, endpoint_id, id);
CREATE INDEX endpoint_operation_endpoint_idx ON endpoint_operation (endpoint_id, created_at);

CREATE TABLE firmware (
    id              INTEGER PRIMARY KEY,
    version         TEXT    NOT NULL UNIQUE CHECK (length(version) BETWEEN 1 AND 100),
    file_name       TEXT    NOT NULL,
    size_bytes      BIGINT  NOT NULL CHECK (size_bytes >= 0),
    sha256          TEXT    NOT NULL CHECK (length(sha256) = 64),
    stored_file     TEXT    NOT NULL UNIQUE,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE firmware_update (
    id                     INTEGER PRIMARY KEY,
    endpoint_id            BIGINT  NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    firmware_id            BIGINT  NOT NULL REFERENCES firmware (id),
    state                  TEXT    NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'downloading', 'downloaded', 'updating',
                                                'succeeded', 'failed', 'timed_out', 'cancelled')),
    -- LwM2M 5/0/5 update result code (0-9) last reported.
    result                 BIGINT  CHECK (result BETWEEN 0 AND 9),
    send_uri_operation_id  BIGINT  REFERENCES endpoint_operation (id) ON DELETE SET NULL,
    execute_operation_id   BIGINT  REFERENCES endpoint_operation (id) ON DELETE SET NULL,
    created_by             BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL
);
-- At most one active update per endpoint, enforced by the database.
CREATE UNIQUE INDEX firmware_update_one_active_idx ON firmware_update (endpoint_id)
    WHERE state IN ('pending', 'downloading', 'downloaded', 'updating');
CREATE INDEX firmware_update_endpoint_idx ON firmware_update (endpoint_id, created_at);
