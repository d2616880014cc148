-- Nothing to do on SQLite: one process owns the database, and the store drops the cached
-- agents of a workspace owner after every change it commits to their builds, jobs,
-- agents, workspaces or tasks (PostgreSQL's replicas need the triggers of the PostgreSQL
-- migration of the same number).
SELECT 1;
