-- A rollup run writes in short transactions, one per group of endpoints,
-- so that ingest commits between them. While it runs, pending_upto is the
-- last resource id of its range and done_endpoint_id the highest endpoint
-- whose values in (last_resource_id, pending_upto] are in the rollups
-- (-1: none yet). A run cut short is finished from there.
ALTER TABLE rollup_state ADD COLUMN pending_upto BIGINT;
ALTER TABLE rollup_state ADD COLUMN done_endpoint_id BIGINT NOT NULL DEFAULT -1;
