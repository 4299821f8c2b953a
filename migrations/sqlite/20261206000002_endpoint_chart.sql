-- An operator's choice for one chart of one endpoint (a resource, all its
-- instances): pinned charts are always drawn, hidden ones never. Without a
-- row the page charts what is observed or changed in the range.
CREATE TABLE endpoint_chart (
    endpoint_id BIGINT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    object_id   BIGINT NOT NULL CHECK (object_id BETWEEN 0 AND 65535),
    resource_id BIGINT NOT NULL CHECK (resource_id BETWEEN 0 AND 65535),
    choice      TEXT   NOT NULL CHECK (choice IN ('pinned', 'hidden')),
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, object_id, resource_id)
);
