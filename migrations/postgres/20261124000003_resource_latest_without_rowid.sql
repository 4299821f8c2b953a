-- resource_latest is rewritten for every stored value, so each write
-- should touch as few pages as possible: no index on resource_id and no
-- foreign key to resource (which needed that index for its ON DELETE
-- CASCADE). Retention deletes a series' latest row together with its
-- values (`retention::prune_once`), and readers join resource, so a latest
-- row whose value is gone is never shown. (On SQLite the same migration
-- also makes the table WITHOUT ROWID; PostgreSQL tables have no rowid.)
ALTER TABLE resource_latest DROP CONSTRAINT resource_latest_resource_id_fkey;
DROP INDEX resource_latest_resource_idx;
