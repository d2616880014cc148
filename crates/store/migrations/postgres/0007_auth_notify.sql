-- Cross-replica invalidation of the authentication cache (crates/store/src/auth_cache).
-- Every change to what an authenticated request is built from (a key, its user, the
-- user's organization and group memberships, an organization's default roles) notifies
-- the `gatehouse_auth` channel with the user's id, or `*` when the change is not one
-- user's. Triggers, not application code, so a change made by any replica, by a cascade
-- (deleting an OAuth2 app deletes its tokens' keys) or by an operator's SQL is seen.
-- PostgreSQL delivers notifications only when the transaction commits, and folds
-- duplicates within one transaction.

CREATE FUNCTION gatehouse_notify_auth_user() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('gatehouse_auth', OLD.user_id::text);
    ELSE
        PERFORM pg_notify('gatehouse_auth', NEW.user_id::text);
        IF TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN
            PERFORM pg_notify('gatehouse_auth', OLD.user_id::text);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION gatehouse_notify_auth_users_row() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', OLD.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION gatehouse_notify_auth_all() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', '*');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A new key is not cached until it is used, so inserts need no notice.
CREATE TRIGGER gatehouse_auth_api_keys
AFTER UPDATE OR DELETE ON api_keys
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_auth_user();

CREATE TRIGGER gatehouse_auth_users
AFTER UPDATE OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_auth_users_row();

CREATE TRIGGER gatehouse_auth_organization_members
AFTER INSERT OR UPDATE OR DELETE ON organization_members
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_auth_user();

CREATE TRIGGER gatehouse_auth_group_members
AFTER INSERT OR UPDATE OR DELETE ON group_members
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_auth_user();

CREATE TRIGGER gatehouse_auth_organizations
AFTER UPDATE OR DELETE ON organizations
FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_auth_all();

-- An OAuth2 token row names its key's audience through its grant; grants are never
-- updated, and deleting one deletes its token rows and (by the 0006 trigger) their keys.
