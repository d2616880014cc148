-- Nothing to do on SQLite: one process owns the database, and it reloads the site CSP's
-- proxy list after every change it makes (PostgreSQL's replicas need the trigger of the
-- PostgreSQL migration of the same number).
SELECT 1;
