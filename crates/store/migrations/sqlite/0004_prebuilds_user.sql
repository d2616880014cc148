-- The prebuilds system user (decisions.md 24): owns prebuilt workspaces. It cannot log
-- in (no password, login type none); start-up makes it a member of the default org.
INSERT INTO users (id, email, username, name, avatar_url, hashed_password, created_at, updated_at, status,
                   rbac_roles, login_type, deleted, last_seen_at, is_system, is_service_account)
VALUES (X'c42fdf753097471c8c33fb52454d81c0', '', 'prebuilds', 'Prebuilds', '', X'', '2026-01-01T00:00:00+00:00',
        '2026-01-01T00:00:00+00:00', 'active', '[]', 'none', FALSE, '0001-01-01T00:00:00+00:00', TRUE, FALSE);
