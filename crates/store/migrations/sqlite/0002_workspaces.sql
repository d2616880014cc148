-- Files, provisioner jobs, templates, workspaces, builds, resources and agents
-- (spec/auth.md §7.2). Agent tokens are stored as SHA-256 only (decisions.md 35).

CREATE TABLE files (
    id BLOB PRIMARY KEY NOT NULL,
    hash TEXT NOT NULL,
    created_by BLOB NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    mimetype TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX idx_files_hash_creator ON files (hash, created_by);

CREATE TABLE provisioner_jobs (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    canceled_at TEXT,
    completed_at TEXT,
    error TEXT,
    error_code TEXT NOT NULL DEFAULT '',
    organization_id BLOB NOT NULL REFERENCES organizations (id),
    initiator_id BLOB NOT NULL REFERENCES users (id),
    provisioner TEXT NOT NULL,
    storage_method TEXT NOT NULL DEFAULT 'file',
    type TEXT NOT NULL CHECK (type IN ('template_version_import', 'workspace_build', 'template_version_dry_run')),
    input TEXT NOT NULL DEFAULT '{}',
    worker_id BLOB,
    file_id BLOB NOT NULL REFERENCES files (id),
    tags TEXT NOT NULL DEFAULT '{}',
    job_status TEXT GENERATED ALWAYS AS (
        CASE
            WHEN completed_at IS NOT NULL THEN
                CASE WHEN COALESCE(error, '') <> '' THEN 'failed'
                     WHEN canceled_at IS NOT NULL THEN 'canceled'
                     ELSE 'succeeded' END
            ELSE
                CASE WHEN COALESCE(error, '') <> '' THEN 'failed'
                     WHEN canceled_at IS NOT NULL THEN 'canceling'
                     WHEN started_at IS NULL THEN 'pending'
                     ELSE 'running' END
        END
    ) STORED
);
CREATE INDEX idx_provisioner_jobs_pending ON provisioner_jobs (created_at) WHERE started_at IS NULL;

CREATE TABLE templates (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id),
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '',
    provisioner TEXT NOT NULL,
    active_version_id BLOB NOT NULL,
    created_by BLOB NOT NULL REFERENCES users (id),
    user_acl TEXT NOT NULL DEFAULT '{}',
    group_acl TEXT NOT NULL DEFAULT '{}',
    default_ttl_ms INTEGER NOT NULL DEFAULT 0,
    activity_bump_ms INTEGER NOT NULL DEFAULT 3600000,
    allow_user_autostart BOOLEAN NOT NULL DEFAULT TRUE,
    allow_user_autostop BOOLEAN NOT NULL DEFAULT TRUE,
    allow_user_cancel_workspace_jobs BOOLEAN NOT NULL DEFAULT TRUE,
    require_active_version BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX idx_templates_name ON templates (organization_id, lower(name)) WHERE deleted = FALSE;

CREATE TABLE template_versions (
    id BLOB PRIMARY KEY NOT NULL,
    template_id BLOB REFERENCES templates (id),
    organization_id BLOB NOT NULL REFERENCES organizations (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    readme TEXT NOT NULL DEFAULT '',
    job_id BLOB NOT NULL REFERENCES provisioner_jobs (id),
    created_by BLOB NOT NULL REFERENCES users (id),
    archived BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX idx_template_versions_template ON template_versions (template_id);

CREATE TABLE workspaces (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    owner_id BLOB NOT NULL REFERENCES users (id),
    organization_id BLOB NOT NULL REFERENCES organizations (id),
    template_id BLOB NOT NULL REFERENCES templates (id),
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    name TEXT NOT NULL,
    autostart_schedule TEXT,
    ttl INTEGER,
    last_used_at TEXT NOT NULL,
    dormant_at TEXT,
    deleting_at TEXT,
    automatic_updates TEXT NOT NULL DEFAULT 'never',
    favorite BOOLEAN NOT NULL DEFAULT FALSE,
    group_acl TEXT NOT NULL DEFAULT '{}',
    user_acl TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX idx_workspaces_owner_name ON workspaces (owner_id, lower(name)) WHERE deleted = FALSE;

CREATE TABLE workspace_builds (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id),
    template_version_id BLOB NOT NULL REFERENCES template_versions (id),
    build_number INTEGER NOT NULL,
    transition TEXT NOT NULL CHECK (transition IN ('start', 'stop', 'delete')),
    initiator_id BLOB NOT NULL REFERENCES users (id),
    job_id BLOB NOT NULL UNIQUE REFERENCES provisioner_jobs (id),
    provisioner_state BLOB,
    deadline TEXT,
    max_deadline TEXT,
    reason TEXT NOT NULL DEFAULT 'initiator',
    daily_cost INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX idx_workspace_builds_number ON workspace_builds (workspace_id, build_number);

CREATE TABLE workspace_resources (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    job_id BLOB NOT NULL REFERENCES provisioner_jobs (id),
    transition TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    hide BOOLEAN NOT NULL DEFAULT FALSE,
    icon TEXT NOT NULL DEFAULT '',
    daily_cost INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_workspace_resources_job ON workspace_resources (job_id);

CREATE TABLE workspace_agents (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL,
    resource_id BLOB NOT NULL REFERENCES workspace_resources (id),
    auth_token_hash BLOB NOT NULL,
    architecture TEXT NOT NULL DEFAULT '',
    operating_system TEXT NOT NULL DEFAULT '',
    directory TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    api_version TEXT NOT NULL DEFAULT '',
    lifecycle_state TEXT NOT NULL DEFAULT 'created',
    parent_id BLOB REFERENCES workspace_agents (id),
    api_key_scope TEXT NOT NULL DEFAULT 'all' CHECK (api_key_scope IN ('all', 'no_user_data')),
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    first_connected_at TEXT,
    last_connected_at TEXT,
    disconnected_at TEXT,
    started_at TEXT,
    ready_at TEXT,
    connection_timeout_seconds INTEGER NOT NULL DEFAULT 0,
    troubleshooting_url TEXT NOT NULL DEFAULT '',
    display_order INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_workspace_agents_token ON workspace_agents (auth_token_hash);
CREATE INDEX idx_workspace_agents_resource ON workspace_agents (resource_id);

CREATE TABLE workspace_agent_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id BLOB NOT NULL REFERENCES workspace_agents (id),
    created_at TEXT NOT NULL,
    level TEXT NOT NULL DEFAULT 'info',
    output TEXT NOT NULL
);
CREATE INDEX idx_workspace_agent_logs_agent ON workspace_agent_logs (agent_id, id);
