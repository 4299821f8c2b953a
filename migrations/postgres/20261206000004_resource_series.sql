-- The latest value of a series is read from resource_series_idx, where
-- it is the series' last entry in device time, instead of being written
-- with every value. The upsert of resource_latest dirtied one page at a
-- random place per value (a fleet's devices report in no order), about a
-- third of the pages a commit of single values wrote to the log.
--
-- What stays is the list of series, one row each, written once when a
-- series gets its first value (`db::resource::add_series_many`); the
-- view resource_latest finds each series' newest value by index, as the
-- table did: measured last, and of equal times the last stored (the
-- highest id). Retention forgets a series with its last value
-- (`db::resource::delete_older_than`).
CREATE TABLE resource_series (
    endpoint_id           BIGINT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id      BIGINT NOT NULL REFERENCES resource_type (id),
    object_instance_id    BIGINT NOT NULL,
    -- The resource instance id, or -1 for a single-instance resource
    -- (NULL cannot take part in the primary key).
    resource_instance_key BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, resource_type_id, object_instance_id, resource_instance_key)
);
INSERT INTO resource_series (endpoint_id, resource_type_id, object_instance_id, resource_instance_key)
    SELECT endpoint_id, resource_type_id, object_instance_id, resource_instance_key
    FROM resource_latest;
DROP TABLE resource_latest;

-- One branch per spelling of the resource instance (IS NULL, = key), so
-- that both databases answer each from the index; the ORDER BY names the
-- fixed resource_instance_id too, which PostgreSQL needs to read the
-- index backwards instead of sorting the series.
CREATE VIEW resource_latest AS
SELECT s.endpoint_id, s.resource_type_id, s.object_instance_id, s.resource_instance_key,
    CASE WHEN s.resource_instance_key = -1 THEN
        (SELECT r.id FROM resource r
         WHERE r.endpoint_id = s.endpoint_id AND r.resource_type_id = s.resource_type_id
           AND r.object_instance_id = s.object_instance_id AND r.resource_instance_id IS NULL
         ORDER BY r.resource_instance_id DESC, r.measured_at DESC, r.id DESC LIMIT 1)
    ELSE
        (SELECT r.id FROM resource r
         WHERE r.endpoint_id = s.endpoint_id AND r.resource_type_id = s.resource_type_id
           AND r.object_instance_id = s.object_instance_id
           AND r.resource_instance_id = s.resource_instance_key
         ORDER BY r.resource_instance_id DESC, r.measured_at DESC, r.id DESC LIMIT 1)
    END AS resource_id
FROM resource_series s;
