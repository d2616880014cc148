-- A user's tokens at an external auth provider (a Git host), encrypted at rest
-- (decisions.md 35): the provider's access and refresh tokens and when the access token
-- expires (the zero time: never).
CREATE TABLE external_auth_links (
    provider_id TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    oauth_access_token TEXT NOT NULL,
    oauth_refresh_token TEXT NOT NULL DEFAULT '',
    oauth_expiry TEXT NOT NULL DEFAULT '0001-01-01T00:00:00+00:00',
    PRIMARY KEY (provider_id, user_id)
);
