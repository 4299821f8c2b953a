-- resource_latest is rewritten for every stored value, so each write
-- should touch as few pages as possible. Before: a rowid table, its primary
-- key index and an index on resource_id (kept for the ON DELETE CASCADE
-- from resource) - three pages per value, two of them at random places.
-- After: one b-tree ordered by the primary key, and no link back;
-- retention deletes a series' latest row together with its values
-- (`retention::prune_once`), and readers join resource, so a latest row
-- whose value is gone is never shown.
CREATE TABLE resource_latest_new (
    endpoint_id           BIGINT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id      BIGINT NOT NULL REFERENCES resource_type (id),
    object_instance_id    BIGINT NOT NULL,
    resource_instance_key BIGINT NOT NULL,
    resource_id           BIGINT NOT NULL,
    received_at           BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, resource_type_id, object_instance_id, resource_instance_key)
) WITHOUT ROWID;
INSERT INTO resource_latest_new
    (endpoint_id, resource_type_id, object_instance_id, resource_instance_key, resource_id, received_at)
    SELECT endpoint_id, resource_type_id, object_instance_id, resource_instance_key, resource_id, received_at
    FROM resource_latest;
DROP TABLE resource_latest;
ALTER TABLE resource_latest_new RENAME TO resource_latest;
