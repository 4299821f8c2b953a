-- Commands (issue 5): the dispatcher's lease, retry backoff, waiting for a
-- sleeping device, and the device's answer; who queued a command or started
-- an update, kept by name so that the audit trail outlives the user; audit
-- events with their actor and details, linked to the firmware update they
-- belong to.

-- When a dispatcher claimed the command (status 'sending'); a claim older
-- than the lease is recovered (the server died while sending).
ALTER TABLE endpoint_operation ADD COLUMN claimed_at BIGINT;
-- Retry backoff after a transient failure: not sent before this time.
ALTER TABLE endpoint_operation ADD COLUMN not_before BIGINT;
-- The LwM2M server said the device sleeps or is not registered at this
-- time: wait until the device is heard from after it.
ALTER TABLE endpoint_operation ADD COLUMN wake_after BIGINT;
-- The device's answer status (CHANGED, CONTENT, NOT_FOUND, ...).
ALTER TABLE endpoint_operation ADD COLUMN device_status TEXT;
ALTER TABLE endpoint_operation ADD COLUMN finished_at BIGINT;
ALTER TABLE endpoint_operation ADD COLUMN actor TEXT;

ALTER TABLE firmware_update ADD COLUMN actor TEXT;
-- Why the update failed, timed out or was cancelled, in words.
ALTER TABLE firmware_update ADD COLUMN error TEXT;

ALTER TABLE event ADD COLUMN actor TEXT;
ALTER TABLE event ADD COLUMN detail TEXT;
ALTER TABLE event ADD COLUMN firmware_update_id BIGINT REFERENCES firmware_update (id) ON DELETE SET NULL;

-- The Commands page lists newest first, by endpoint or status.
CREATE INDEX endpoint_operation_endpoint_id_idx ON endpoint_operation (endpoint_id, id);
CREATE INDEX event_firmware_update_idx ON event (firmware_update_id);
CREATE INDEX firmware_update_state_idx ON firmware_update (state, updated_at);
