-- The audit log (issue #9; codersdk.AuditLog): who did what to which resource, when, from
-- where, with which outcome, by request. Rows are never updated; the purge job removes
-- them only when a retention is set.
CREATE TABLE audit_logs (
    id UUID PRIMARY KEY,
    time TIMESTAMPTZ NOT NULL,
    -- The actor; NULL when there is none (a failed sign-in with an unknown email).
    user_id UUID,
    -- The zero UUID for site-level entries.
    organization_id UUID NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL,
    resource_id UUID NOT NULL,
    resource_target TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    diff JSONB NOT NULL DEFAULT '{}',
    status_code INTEGER NOT NULL,
    additional_fields JSONB,
    request_id UUID NOT NULL
);
CREATE INDEX audit_logs_time ON audit_logs (time DESC);
CREATE INDEX audit_logs_user ON audit_logs (user_id);
