-- hookguard schema v2: replay protection, event-type allowlist and sender handshakes (DESIGN §4).
-- Runs inside one transaction (db/migrator.cc); no BEGIN/COMMIT here. Limits mirror
-- policy::PolicyLimits, so a row the database accepts is one the gateway can compile.
ALTER TABLE webhook_trigger
    ADD COLUMN replay_enabled        boolean NOT NULL DEFAULT false,
    ADD COLUMN replay_window_seconds bigint NOT NULL DEFAULT 86400
        CONSTRAINT webhook_trigger_replay_window_range
        CHECK (replay_window_seconds BETWEEN 1 AND 604800),
    ADD COLUMN replay_header         text NOT NULL DEFAULT ''
        CONSTRAINT webhook_trigger_replay_header_format
        CHECK (replay_header ~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]{0,128}$'),
    ADD COLUMN events_enabled        boolean NOT NULL DEFAULT false,
    ADD COLUMN events_allow          text[] NOT NULL DEFAULT '{}'
        CONSTRAINT webhook_trigger_events_allow_size
        CHECK (cardinality(events_allow) <= 100),
    ADD COLUMN events_source         text NOT NULL DEFAULT ''
        CONSTRAINT webhook_trigger_events_source_format
        CHECK (events_source = '' OR events_source ~ '^(header:[A-Za-z0-9!#$%&''*+.^_`|~-]{1,128}|json:.{1,128})$'),
    ADD COLUMN handshake             text NOT NULL DEFAULT 'none'
        CONSTRAINT webhook_trigger_handshake_value
        CHECK (handshake IN ('none', 'tmi', 'slack'));

-- An enabled event filter needs something to allow; replay needs a verified signature to
-- record ids (policy/trigger_policy.cc explains both).
ALTER TABLE webhook_trigger
    ADD CONSTRAINT webhook_trigger_events_allow_nonempty
        CHECK (NOT events_enabled OR cardinality(events_allow) > 0),
    ADD CONSTRAINT webhook_trigger_replay_needs_hmac
        CHECK (NOT replay_enabled OR hmac_enabled);
