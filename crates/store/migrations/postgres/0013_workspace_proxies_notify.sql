-- The site CSP lists every registered workspace proxy (migration 0011). A change to the
-- registry, by any replica or by an operator's SQL, notifies `proxies` on the migration
-- 0007 channel, and every replica reloads its list at once (a slow reload stays as the
-- backstop for a notification lost with the listener's connection).
CREATE FUNCTION gatehouse_notify_proxies() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', 'proxies');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER gatehouse_workspace_proxies
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workspace_proxies
FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_proxies();
