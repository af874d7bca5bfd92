-- Privacy by design: per-subject data keys (crypto-shredding), the keyed identity index with its
-- suppression list, and the API tokens of access control. The ledger mirror no longer needs
-- scrubbing: from event schema version 2 its personal sections are sealed under these keys.

CREATE TABLE subject_keys (
    subject_id      text        NOT NULL,
    generation      integer     NOT NULL CHECK (generation >= 1),
    wrapped         bytea,
    master_key_id   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    shredded_at     timestamptz,
    shredded_by     uuid,
    PRIMARY KEY (subject_id, generation),
    CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL))
);
COMMENT ON TABLE subject_keys IS
    'Per-subject data keys, wrapped by the master key; erasure destroys them (wrapped = NULL).';
COMMENT ON COLUMN subject_keys.shredded_by IS 'The subject.erased event that destroyed the key.';

CREATE TABLE identities (
    email_key       bytea       PRIMARY KEY,
    subject_id      text        NOT NULL,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    suppressed_at   timestamptz,
    suppression     text        CHECK (suppression IN ('erased', 'objected')),
    suppressed_by   uuid,
    CHECK ((suppressed_at IS NULL) = (suppression IS NULL))
);
CREATE INDEX identities_by_subject ON identities (subject_id);
COMMENT ON TABLE identities IS
    'HMAC-SHA-256 (server secret) of each normalised e-mail address -> subject id; no address in '
    'clear. Rows with a suppression stay after erasure: the suppression list.';

CREATE TABLE api_tokens (
    token_id        text        PRIMARY KEY,
    secret_hash     bytea       NOT NULL,
    role            text        NOT NULL
        CHECK (role IN ('signup', 'crm', 'dpo', 'auditor', 'mail_tool', 'admin')),
    grants          text[]      NOT NULL DEFAULT '{}',
    label           text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz
);
COMMENT ON TABLE api_tokens IS 'API tokens: SHA-256 of the random secret, never the secret.';
