-- PostgreSQL only: triggers that notify other replicas when authentication data changes.
-- SQLite serves one replica, whose store invalidates its own cache after every such
-- write (crates/store/src/auth_cache). Kept so both backends share one migration history.
SELECT 1;
