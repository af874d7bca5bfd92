-- The GIN index over the whole purposes document goes.
--
-- Every upsert of a subscriber re-indexed each path of that document (about ninety per
-- person): about half of PostgreSQL's time for the projector's subscriber upsert in a profile
-- (docs/performance.md). And the one query that could use it, the mailing-list export, pages
-- by subject_id: with the index, PostgreSQL read every eligible row and sorted them again for
-- each page, so a large export grew with the square of its size. It now reads the primary key
-- in order, each page where the last one stopped.
DROP INDEX IF EXISTS subscribers_by_purpose;
