-- "every value of this resource type, oldest first": the compatibility data
-- API GET /leshan_api/data/{name}/ reads by type across all endpoints.
-- Without it the query scans and sorts the whole resource table. Ids are
-- allocated in arrival order, so id order is time order.
CREATE INDEX resource_type_id_idx ON resource (resource_type_id, id);
