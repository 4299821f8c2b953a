-- The native LwM2M server (src/server/lwm2m).

-- Who may talk to the LwM2M server, by endpoint name: an operator
-- provisions a device before it first registers, so the endpoint row may
-- not exist yet. 'nosec' lets the endpoint register over plain CoAP; 'psk'
-- is for DTLS with a pre-shared key (identity and key set).
CREATE TABLE device_credential (
    endpoint_name   TEXT    PRIMARY KEY CHECK (length(endpoint_name) BETWEEN 1 AND 255),
    security_mode   TEXT    NOT NULL CHECK (security_mode IN ('nosec', 'psk')),
    psk_identity    TEXT    UNIQUE,
    psk_key         BYTEA,
    created_by      BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CHECK (security_mode <> 'psk' OR (psk_identity IS NOT NULL AND psk_key IS NOT NULL))
);

-- An endpoint's current registration with the native LwM2M server (at most
-- one; a new Register replaces it). The row outlives the registration's
-- expiry (expires_at says when it ended) and is deleted on De-register.
CREATE TABLE lwm2m_registration (
    endpoint_id      BIGINT  PRIMARY KEY REFERENCES endpoint (id) ON DELETE CASCADE,
    registration_id  TEXT    NOT NULL UNIQUE,
    address          TEXT    NOT NULL,
    secure           BOOLEAN NOT NULL DEFAULT FALSE,
    lwm2m_version    TEXT    NOT NULL,
    binding          TEXT    NOT NULL,
    queue_mode       BOOLEAN NOT NULL DEFAULT FALSE,
    lifetime_s       BIGINT  NOT NULL CHECK (lifetime_s > 0),
    object_links     TEXT    NOT NULL,
    registered_at    BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL
);
