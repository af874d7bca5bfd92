"""Privacy by design: secrets, per-subject data keys, and the keyed identity index."""
