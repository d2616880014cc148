-- Site settings are cached next to the authentication cache (a discovery document reads
-- one on every request), so a change to them, by any replica or by an operator's SQL,
-- notifies every replica as migration 0007's triggers do; `*` drops the whole cache.
CREATE TRIGGER gatehouse_auth_site_configs
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON site_configs
FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_auth_all();
