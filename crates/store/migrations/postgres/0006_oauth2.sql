-- The OAuth2 authorization server (spec/oauth2.md §8.1, §10; decisions.md 25-29).
-- Deleting an app, a secret, a user or a grant revokes everything that hangs off it in the
-- same statement: the foreign keys cascade to grants and token rows, and the trigger at the
-- end deletes the API key (the access token) of every deleted token row.

CREATE TABLE site_configs (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE oauth2_provider_apps (
    id UUID PRIMARY KEY NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    name TEXT NOT NULL,
    icon TEXT NOT NULL DEFAULT '',
    -- JSON array; the first entry is the primary redirect URI (`callback_url`).
    redirect_uris JSONB NOT NULL CHECK (jsonb_array_length(redirect_uris) > 0),
    client_type TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    dynamically_registered BOOLEAN NOT NULL,
    -- Space-separated scope allowlist; '' = unrestricted.
    scope TEXT NOT NULL DEFAULT '',
    grant_types JSONB NOT NULL,
    response_types JSONB NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    -- The remaining RFC 7591 metadata, as registered.
    metadata JSONB NOT NULL DEFAULT '{}',
    client_id_issued_at TIMESTAMPTZ,
    -- SHA-256 of the RFC 7592 registration access token.
    registration_access_token BYTEA
);

CREATE TABLE oauth2_provider_app_secrets (
    id UUID PRIMARY KEY NOT NULL,
    app_id UUID NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    secret_prefix TEXT NOT NULL UNIQUE,
    hashed_secret BYTEA NOT NULL,
    display_secret TEXT NOT NULL
);
CREATE INDEX idx_oauth2_secrets_app ON oauth2_provider_app_secrets (app_id);

CREATE TABLE oauth2_provider_app_codes (
    id UUID PRIMARY KEY NOT NULL,
    app_id UUID NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    secret_prefix TEXT NOT NULL UNIQUE,
    hashed_secret BYTEA NOT NULL,
    code_challenge TEXT NOT NULL,
    -- NULL when the authorization request omitted redirect_uri / resource.
    redirect_uri TEXT,
    resource_uri TEXT,
    scope TEXT NOT NULL,
    state_hash TEXT,
    -- A used code is kept until it expires so a replay can revoke its grant.
    used_at TIMESTAMPTZ,
    grant_id UUID
);
CREATE INDEX idx_oauth2_codes_app_user ON oauth2_provider_app_codes (app_id, user_id);

CREATE TABLE oauth2_provider_grants (
    id UUID PRIMARY KEY NOT NULL,
    app_id UUID NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_secret_id UUID REFERENCES oauth2_provider_app_secrets (id) ON DELETE CASCADE,
    -- The RFC 8707 resource as requested (canonical form); NULL = the deployment root.
    resource_uri TEXT,
    scope TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_oauth2_grants_app_user ON oauth2_provider_grants (app_id, user_id);
CREATE INDEX idx_oauth2_grants_user ON oauth2_provider_grants (user_id);

CREATE TABLE oauth2_provider_app_tokens (
    id UUID PRIMARY KEY NOT NULL,
    grant_id UUID NOT NULL REFERENCES oauth2_provider_grants (id) ON DELETE CASCADE,
    hash_prefix TEXT NOT NULL UNIQUE,
    refresh_hash BYTEA NOT NULL,
    api_key_id TEXT REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- Set when the refresh token was rotated; presenting it again revokes the grant.
    rotated_at TIMESTAMPTZ
);
CREATE INDEX idx_oauth2_tokens_grant ON oauth2_provider_app_tokens (grant_id);
CREATE UNIQUE INDEX idx_oauth2_tokens_api_key ON oauth2_provider_app_tokens (api_key_id);

CREATE FUNCTION delete_oauth2_provider_app_token_api_key() RETURNS trigger AS $$
BEGIN
    IF OLD.api_key_id IS NOT NULL THEN
        DELETE FROM api_keys WHERE id = OLD.api_key_id;
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_delete_oauth2_provider_app_token
AFTER DELETE ON oauth2_provider_app_tokens
FOR EACH ROW EXECUTE FUNCTION delete_oauth2_provider_app_token_api_key();
