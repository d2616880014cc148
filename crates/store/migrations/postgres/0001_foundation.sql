-- Users, organizations, groups, links and API keys (spec/auth.md §7.2).
-- Timestamps are bound from Rust as UTC; lists are JSONB so both backends share one shape.

CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    username TEXT NOT NULL CHECK (length(username) >= 1),
    name TEXT NOT NULL DEFAULT '',
    avatar_url TEXT NOT NULL DEFAULT '',
    hashed_password BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL DEFAULT 'dormant' CHECK (status IN ('active', 'suspended', 'dormant')),
    rbac_roles JSONB NOT NULL DEFAULT '[]',
    login_type TEXT NOT NULL DEFAULT 'password',
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen_at TIMESTAMPTZ NOT NULL,
    is_system BOOLEAN NOT NULL DEFAULT FALSE,
    is_service_account BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX idx_users_username ON users (lower(username)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX idx_users_email ON users (lower(email)) WHERE deleted = FALSE AND email <> '';

-- One row, written in the same transaction as the first user, so two concurrent
-- first-user requests cannot both succeed.
CREATE TABLE first_user_claim (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE organizations (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '',
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    shareable_workspace_owners TEXT NOT NULL DEFAULT 'everyone',
    default_org_member_roles JSONB NOT NULL DEFAULT '["organization-workspace-access"]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_organizations_name ON organizations (lower(name)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX idx_organizations_single_default ON organizations (is_default) WHERE is_default = TRUE;

CREATE TABLE organization_members (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    roles JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX idx_organization_members_user ON organization_members (user_id);

CREATE TABLE groups (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    avatar_url TEXT NOT NULL DEFAULT '',
    quota_allowance INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'oidc'))
);
CREATE UNIQUE INDEX idx_groups_name ON groups (organization_id, name);

CREATE TABLE group_members (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX idx_group_members_user ON group_members (user_id);

CREATE TABLE user_links (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    login_type TEXT NOT NULL,
    linked_id TEXT NOT NULL DEFAULT '',
    oauth_access_token TEXT NOT NULL DEFAULT '',
    oauth_access_token_key_id TEXT,
    oauth_refresh_token TEXT NOT NULL DEFAULT '',
    oauth_refresh_token_key_id TEXT,
    oauth_expiry TIMESTAMPTZ NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    claims JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (user_id, login_type)
);
CREATE UNIQUE INDEX idx_user_links_linked_id ON user_links (linked_id, login_type) WHERE linked_id <> '';

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 10),
    hashed_secret BYTEA NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_used TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    login_type TEXT NOT NULL,
    lifetime_seconds BIGINT NOT NULL DEFAULT 86400,
    ip_address TEXT NOT NULL DEFAULT '0.0.0.0',
    token_name TEXT NOT NULL DEFAULT '',
    scopes JSONB NOT NULL,
    allow_list JSONB NOT NULL CHECK (jsonb_array_length(allow_list) > 0)
);
CREATE UNIQUE INDEX idx_api_keys_token_name ON api_keys (user_id, token_name) WHERE login_type = 'token';
CREATE INDEX idx_api_keys_user ON api_keys (user_id);
CREATE INDEX idx_api_keys_last_used ON api_keys (last_used DESC);
