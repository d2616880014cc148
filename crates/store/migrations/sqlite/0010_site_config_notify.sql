-- Nothing to do on SQLite: one process owns the database, and the store drops its cached
-- site settings after every change it commits (PostgreSQL's replicas need the trigger of
-- the PostgreSQL migration of the same number).
SELECT 1;
