-- Rollups: per-minute and per-hour aggregates of every numeric series,
-- maintained by the rollup worker (`server::rollup`) from the stored values,
-- so that charts over long ranges read one row per series and minute (or
-- hour) instead of every value. resource_instance_key is -1 for a
-- single-instance resource, as in resource_latest. (On SQLite the same
-- migration makes these tables WITHOUT ROWID.)
CREATE TABLE resource_rollup_minute (
    endpoint_id           BIGINT           NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id      BIGINT           NOT NULL REFERENCES resource_type (id),
    object_instance_id    BIGINT           NOT NULL,
    resource_instance_key BIGINT           NOT NULL,
    bucket_start          BIGINT           NOT NULL,
    min_value             DOUBLE PRECISION NOT NULL,
    max_value             DOUBLE PRECISION NOT NULL,
    sum_value             DOUBLE PRECISION NOT NULL,
    value_count           BIGINT           NOT NULL CHECK (value_count > 0),
    PRIMARY KEY (endpoint_id, resource_type_id, object_instance_id, resource_instance_key, bucket_start)
);
-- Retention deletes by age across all series.
CREATE INDEX resource_rollup_minute_time_idx ON resource_rollup_minute (bucket_start);

CREATE TABLE resource_rollup_hour (
    endpoint_id           BIGINT           NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id      BIGINT           NOT NULL REFERENCES resource_type (id),
    object_instance_id    BIGINT           NOT NULL,
    resource_instance_key BIGINT           NOT NULL,
    bucket_start          BIGINT           NOT NULL,
    min_value             DOUBLE PRECISION NOT NULL,
    max_value             DOUBLE PRECISION NOT NULL,
    sum_value             DOUBLE PRECISION NOT NULL,
    value_count           BIGINT           NOT NULL CHECK (value_count > 0),
    PRIMARY KEY (endpoint_id, resource_type_id, object_instance_id, resource_instance_key, bucket_start)
);
CREATE INDEX resource_rollup_hour_time_idx ON resource_rollup_hour (bucket_start);

-- Stored values of every type per minute, for the overview.
CREATE TABLE ingest_minute (
    bucket_start BIGINT NOT NULL PRIMARY KEY,
    value_count  BIGINT NOT NULL CHECK (value_count > 0)
);

-- The watermark: every resource row with id <= last_resource_id is in the
-- tables above, none with a larger id. One row.
CREATE TABLE rollup_state (
    id               BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    last_resource_id BIGINT NOT NULL CHECK (last_resource_id >= 0)
);
INSERT INTO rollup_state (id, last_resource_id) VALUES (1, 0);
