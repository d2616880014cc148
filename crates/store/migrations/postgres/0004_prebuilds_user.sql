-- The prebuilds system user (decisions.md 24): owns prebuilt workspaces. It cannot log
-- in (no password, login type none); start-up makes it a member of the default org.
INSERT INTO users (id, email, username, name, avatar_url, hashed_password, created_at, updated_at, status,
                   rbac_roles, login_type, deleted, last_seen_at, is_system, is_service_account)
VALUES ('c42fdf75-3097-471c-8c33-fb52454d81c0', '', 'prebuilds', 'Prebuilds', '', '\x', '2026-01-01 00:00:00+00',
        '2026-01-01 00:00:00+00', 'active', '[]', 'none', FALSE, '0001-01-01 00:00:00+00', TRUE, FALSE);
