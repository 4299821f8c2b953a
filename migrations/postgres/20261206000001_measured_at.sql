-- The time a device measured a value (SenML bt/t, LwM2M CBOR times),
-- beside the time it was received. Values that carry no device time take
-- the receive time, so every row has one. Series, charts and rollups go
-- by it: a device that buffered an hour offline and sends it at once
-- lands its values where they belong in time. Retention still counts
-- from receipt.
ALTER TABLE resource ADD COLUMN measured_at BIGINT;
UPDATE resource SET measured_at = received_at;
ALTER TABLE resource ALTER COLUMN measured_at SET NOT NULL;
DROP INDEX resource_series_idx;
CREATE INDEX resource_series_idx
    ON resource (endpoint_id, resource_type_id, object_instance_id, resource_instance_id, measured_at);

-- The latest value of a series is the one measured last: an older batch
-- arriving later does not replace it.
ALTER TABLE resource_latest ADD COLUMN measured_at BIGINT;
UPDATE resource_latest SET measured_at = received_at;
ALTER TABLE resource_latest ALTER COLUMN measured_at SET NOT NULL;
