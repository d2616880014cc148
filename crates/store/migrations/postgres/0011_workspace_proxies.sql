-- Workspace proxies an administrator registered (decisions.md 41): their hosts join the
-- site CSP so their apps can be framed and reached.
CREATE TABLE workspace_proxies (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    icon TEXT NOT NULL DEFAULT '',
    path_app_url TEXT NOT NULL,
    wildcard_hostname TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
