-- Every subject an address was ever attached to, by the address's keyed hash (no address in
-- clear). The identity index keeps the first subject of each address; this table keeps all of
-- them, because an objection or erasure suppresses the address for every subject that holds
-- it, not only the one that objected (services/privacy/suppression.py). Intake writes it in the
-- same transaction as the identity index, before the events are appended.
CREATE TABLE address_holders (
    email_key   bytea       NOT NULL,
    subject_id  text        NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_key, subject_id)
);
CREATE INDEX address_holders_by_subject ON address_holders (subject_id);
COMMENT ON TABLE address_holders IS
    'HMAC-SHA-256 of a normalised e-mail address -> each subject id it was attached to.';

INSERT INTO address_holders (email_key, subject_id, first_seen)
SELECT email_key, subject_id, first_seen FROM identities;
