-- AI tasks: a named prompt with the workspace that runs it (spec/auth.md §6.5, §7.2).

CREATE TABLE tasks (
    id BLOB PRIMARY KEY NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id),
    owner_id BLOB NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    workspace_id BLOB REFERENCES workspaces (id),
    template_version_id BLOB NOT NULL REFERENCES template_versions (id),
    prompt TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE UNIQUE INDEX idx_tasks_owner_name ON tasks (owner_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX idx_tasks_workspace ON tasks (workspace_id);
