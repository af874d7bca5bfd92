"""Folding ledger batches into the projection: the one batch runner of the live projector and
the replay, which differ only in where their records come from."""
