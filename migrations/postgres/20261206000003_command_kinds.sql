-- Device management over CoAP adds command kinds: discover, create,
-- delete, write-attributes, observe and cancel-observe; and `answer`, what
-- the device answered where that is more than a status (a Discover's link
-- format).
ALTER TABLE endpoint_operation DROP CONSTRAINT endpoint_operation_operation_type_check;
ALTER TABLE endpoint_operation ADD CONSTRAINT endpoint_operation_operation_type_check
    CHECK (operation_type IN ('write', 'execute', 'read', 'discover', 'create', 'delete',
        'write_attributes', 'observe', 'cancel_observe'));
ALTER TABLE endpoint_operation ADD COLUMN answer TEXT;
