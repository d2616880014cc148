-- The audit log (issue #9; codersdk.AuditLog): who did what to which resource, when, from
-- where, with which outcome, by request. Rows are never updated; the purge job removes
-- them only when a retention is set.
CREATE TABLE audit_logs (
    id BLOB PRIMARY KEY,
    time TEXT NOT NULL,
    -- The actor; NULL when there is none (a failed sign-in with an unknown email).
    user_id BLOB,
    -- The zero UUID for site-level entries.
    organization_id BLOB NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL,
    resource_id BLOB NOT NULL,
    resource_target TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    diff TEXT NOT NULL DEFAULT '{}',
    status_code INTEGER NOT NULL,
    additional_fields TEXT,
    request_id BLOB NOT NULL
);
CREATE INDEX audit_logs_time ON audit_logs (time DESC);
CREATE INDEX audit_logs_user ON audit_logs (user_id);
