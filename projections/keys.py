"""Writes to the subject keys' table shared by the keystore and the projector.

Here, below both, so that the service layer's keystore and the projection store run the same
statement without one importing the other's module.
"""

#: Crypto-shredding: an erasure destroys the subject's data keys up to the generation it names
#: (intake does it at once; the projector again, in case intake stopped before it could).
SHRED_KEYS = """
UPDATE subject_keys AS k SET wrapped = NULL, shredded_at = now(), shredded_by = e.event_id
FROM unnest($1::text[], $2::int[], $3::uuid[]) AS e(subject_id, through, event_id)
WHERE k.subject_id = e.subject_id AND k.generation <= e.through AND k.wrapped IS NOT NULL
"""
