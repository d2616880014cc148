-- The OAuth2 authorization server (spec/oauth2.md §8.1, §10; decisions.md 25-29).
-- Deleting an app, a secret, a user or a grant revokes everything that hangs off it in the
-- same statement: the foreign keys cascade to grants and token rows, and the trigger at the
-- end deletes the API key (the access token) of every deleted token row.

CREATE TABLE site_configs (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE oauth2_provider_apps (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL,
    icon TEXT NOT NULL DEFAULT '',
    -- JSON array; the first entry is the primary redirect URI (`callback_url`).
    redirect_uris TEXT NOT NULL CHECK (json_array_length(redirect_uris) > 0),
    client_type TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    dynamically_registered BOOLEAN NOT NULL,
    -- Space-separated scope allowlist; '' = unrestricted.
    scope TEXT NOT NULL DEFAULT '',
    grant_types TEXT NOT NULL,
    response_types TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    -- The remaining RFC 7591 metadata, as registered.
    metadata TEXT NOT NULL DEFAULT '{}',
    client_id_issued_at TEXT,
    -- SHA-256 of the RFC 7592 registration access token.
    registration_access_token BLOB
);

CREATE TABLE oauth2_provider_app_secrets (
    id BLOB PRIMARY KEY NOT NULL,
    app_id BLOB NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    secret_prefix TEXT NOT NULL UNIQUE,
    hashed_secret BLOB NOT NULL,
    display_secret TEXT NOT NULL
);
CREATE INDEX idx_oauth2_secrets_app ON oauth2_provider_app_secrets (app_id);

CREATE TABLE oauth2_provider_app_codes (
    id BLOB PRIMARY KEY NOT NULL,
    app_id BLOB NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    secret_prefix TEXT NOT NULL UNIQUE,
    hashed_secret BLOB NOT NULL,
    code_challenge TEXT NOT NULL,
    -- NULL when the authorization request omitted redirect_uri / resource.
    redirect_uri TEXT,
    resource_uri TEXT,
    scope TEXT NOT NULL,
    state_hash TEXT,
    -- A used code is kept until it expires so a replay can revoke its grant.
    used_at TEXT,
    grant_id BLOB
);
CREATE INDEX idx_oauth2_codes_app_user ON oauth2_provider_app_codes (app_id, user_id);

CREATE TABLE oauth2_provider_grants (
    id BLOB PRIMARY KEY NOT NULL,
    app_id BLOB NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_secret_id BLOB REFERENCES oauth2_provider_app_secrets (id) ON DELETE CASCADE,
    -- The RFC 8707 resource as requested (canonical form); NULL = the deployment root.
    resource_uri TEXT,
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_oauth2_grants_app_user ON oauth2_provider_grants (app_id, user_id);
CREATE INDEX idx_oauth2_grants_user ON oauth2_provider_grants (user_id);

CREATE TABLE oauth2_provider_app_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    grant_id BLOB NOT NULL REFERENCES oauth2_provider_grants (id) ON DELETE CASCADE,
    hash_prefix TEXT NOT NULL UNIQUE,
    refresh_hash BLOB NOT NULL,
    api_key_id TEXT REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    -- Set when the refresh token was rotated; presenting it again revokes the grant.
    rotated_at TEXT
);
CREATE INDEX idx_oauth2_tokens_grant ON oauth2_provider_app_tokens (grant_id);
CREATE UNIQUE INDEX idx_oauth2_tokens_api_key ON oauth2_provider_app_tokens (api_key_id);

CREATE TRIGGER trigger_delete_oauth2_provider_app_token
AFTER DELETE ON oauth2_provider_app_tokens
FOR EACH ROW WHEN OLD.api_key_id IS NOT NULL
BEGIN
    DELETE FROM api_keys WHERE id = OLD.api_key_id;
END;
