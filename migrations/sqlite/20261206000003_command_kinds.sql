-- Device management over CoAP adds command kinds: discover, create,
-- delete, write-attributes, observe and cancel-observe; and `answer`, what
-- the device answered where that is more than a status (a Discover's link
-- format). SQLite cannot change a CHECK constraint, so the table is built
-- anew (https://sqlite.org/lang_altertable.html#otheralter); the copy
-- keeps every id. The migration runs in a transaction, where foreign keys
-- cannot be turned off, and dropping the old table sets firmware_update's
-- references to it to NULL (ON DELETE SET NULL): they are kept aside and
-- put back.
CREATE TEMP TABLE firmware_update_operations AS
    SELECT id, send_uri_operation_id, execute_operation_id FROM firmware_update
    WHERE send_uri_operation_id IS NOT NULL OR execute_operation_id IS NOT NULL;
CREATE TABLE endpoint_operation_new (
    id                 INTEGER PRIMARY KEY,
    endpoint_id        BIGINT  NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    resource_type_id   BIGINT  REFERENCES resource_type (id),
    -- LwM2M path the operation targets, e.g. /5/0/1 or /3 for a read; an
    -- observe may list several, comma-separated (observe-composite).
    path               TEXT    NOT NULL,
    operation_type     TEXT    NOT NULL CHECK (operation_type IN ('write', 'execute', 'read',
                           'discover', 'create', 'delete', 'write_attributes', 'observe',
                           'cancel_observe')),
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
    updated_at         BIGINT  NOT NULL,
    claimed_at         BIGINT,
    not_before         BIGINT,
    wake_after         BIGINT,
    device_status      TEXT,
    finished_at        BIGINT,
    actor              TEXT,
    answer             TEXT
);
INSERT INTO endpoint_operation_new (id, endpoint_id, resource_type_id, path, operation_type,
    int_value, float_value, text_value, bytes_value, status, attempts, last_attempt_at,
    last_error, expires_at, created_by, created_at, updated_at, claimed_at, not_before,
    wake_after, device_status, finished_at, actor)
SELECT id, endpoint_id, resource_type_id, path, operation_type,
    int_value, float_value, text_value, bytes_value, status, attempts, last_attempt_at,
    last_error, expires_at, created_by, created_at, updated_at, claimed_at, not_before,
    wake_after, device_status, finished_at, actor
FROM endpoint_operation;
DROP TABLE endpoint_operation;
ALTER TABLE endpoint_operation_new RENAME TO endpoint_operation;
CREATE INDEX endpoint_operation_queue_idx ON endpoint_operation (status, endpoint_id, id);
CREATE INDEX endpoint_operation_endpoint_idx ON endpoint_operation (endpoint_id, created_at);
CREATE INDEX endpoint_operation_endpoint_id_idx ON endpoint_operation (endpoint_id, id);
UPDATE firmware_update SET
    send_uri_operation_id = (SELECT k.send_uri_operation_id FROM firmware_update_operations k
                             WHERE k.id = firmware_update.id),
    execute_operation_id = (SELECT k.execute_operation_id FROM firmware_update_operations k
                            WHERE k.id = firmware_update.id)
WHERE id IN (SELECT id FROM firmware_update_operations);
DROP TABLE firmware_update_operations;
