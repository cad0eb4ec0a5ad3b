-- Which credential store the rows' credentials live in, and what `custodian store migrate`
-- is doing: one row at most. phase 'settled' (no migration), 'copying' (to the other
-- store, the rows still use this one) or 'retiring' (copies left in the other store are
-- being removed). Servers refuse to start when it does not match their configuration.
CREATE TABLE credential_store_binding (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    backend TEXT NOT NULL,
    location TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('settled', 'copying', 'retiring')),
    other_backend TEXT,
    other_location TEXT,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((phase = 'settled') = (other_backend IS NULL AND other_location IS NULL))
);
