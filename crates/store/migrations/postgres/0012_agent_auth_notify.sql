-- Workspace-agent tokens are cached with API keys (crates/store/src/auth_cache). Whether
-- an agent token authenticates, and as what, is decided by its agent, the agent's build
-- and that build's job, the workspace's later builds and their jobs (the shutdown
-- window), the workspace and its task. A change to any of these, by any replica or by an
-- operator's SQL, notifies `agents:<owner id>` on the migration 0007 channel, and every
-- replica drops the agents of that owner's workspaces. Changes that decide nothing (a
-- job's heartbeat, an agent's lifecycle report) stay silent, so a busy deployment's
-- writes do not empty the cache.

CREATE FUNCTION gatehouse_notify_agents_of_workspace(workspace UUID) RETURNS void AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', 'agents:' || w.owner_id::text)
    FROM workspaces w WHERE w.id = workspace;
END;
$$ LANGUAGE plpgsql;

-- Rows with a `workspace_id` column: builds and tasks.
CREATE FUNCTION gatehouse_notify_agents_by_workspace_id() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM gatehouse_notify_agents_of_workspace(OLD.workspace_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM gatehouse_notify_agents_of_workspace(NEW.workspace_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION gatehouse_notify_agents_jobs() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', 'agents:' || w.owner_id::text)
    FROM workspace_builds b JOIN workspaces w ON w.id = b.workspace_id
    WHERE b.job_id = OLD.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION gatehouse_notify_agents_workspaces() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', 'agents:' || OLD.owner_id::text);
    IF TG_OP = 'UPDATE' AND NEW.owner_id IS DISTINCT FROM OLD.owner_id THEN
        PERFORM pg_notify('gatehouse_auth', 'agents:' || NEW.owner_id::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION gatehouse_notify_agents_agents() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_auth', 'agents:' || w.owner_id::text)
    FROM workspace_resources r
    JOIN workspace_builds b ON b.job_id = r.job_id
    JOIN workspaces w ON w.id = b.workspace_id
    WHERE r.id = OLD.resource_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A new build can end an older build's agents (a newer start) or open their shutdown
-- window (a stop); builds are otherwise only touched (`updated_at`).
CREATE TRIGGER gatehouse_agents_workspace_builds
AFTER INSERT OR DELETE ON workspace_builds
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_agents_by_workspace_id();

CREATE TRIGGER gatehouse_agents_workspace_builds_update
AFTER UPDATE ON workspace_builds
FOR EACH ROW
WHEN ((OLD.workspace_id, OLD.build_number, OLD.transition, OLD.template_version_id, OLD.job_id)
      IS DISTINCT FROM
      (NEW.workspace_id, NEW.build_number, NEW.transition, NEW.template_version_id, NEW.job_id))
EXECUTE FUNCTION gatehouse_notify_agents_by_workspace_id();

CREATE TRIGGER gatehouse_agents_tasks
AFTER INSERT OR UPDATE OR DELETE ON tasks
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_agents_by_workspace_id();

-- A job's status is what the shutdown window reads; heartbeats change only `updated_at`.
CREATE TRIGGER gatehouse_agents_provisioner_jobs
AFTER UPDATE ON provisioner_jobs
FOR EACH ROW
WHEN (OLD.job_status IS DISTINCT FROM NEW.job_status)
EXECUTE FUNCTION gatehouse_notify_agents_jobs();

CREATE TRIGGER gatehouse_agents_workspaces_update
AFTER UPDATE ON workspaces
FOR EACH ROW
WHEN ((OLD.owner_id, OLD.organization_id, OLD.template_id, OLD.deleted, OLD.name)
      IS DISTINCT FROM
      (NEW.owner_id, NEW.organization_id, NEW.template_id, NEW.deleted, NEW.name))
EXECUTE FUNCTION gatehouse_notify_agents_workspaces();

CREATE TRIGGER gatehouse_agents_workspaces_delete
AFTER DELETE ON workspaces
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_agents_workspaces();

CREATE TRIGGER gatehouse_agents_workspace_agents_update
AFTER UPDATE ON workspace_agents
FOR EACH ROW
WHEN ((OLD.deleted, OLD.auth_token_hash, OLD.name, OLD.resource_id, OLD.parent_id,
       OLD.api_key_scope, OLD.directory)
      IS DISTINCT FROM
      (NEW.deleted, NEW.auth_token_hash, NEW.name, NEW.resource_id, NEW.parent_id,
       NEW.api_key_scope, NEW.directory))
EXECUTE FUNCTION gatehouse_notify_agents_agents();

CREATE TRIGGER gatehouse_agents_workspace_agents_delete
AFTER DELETE ON workspace_agents
FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_agents_agents();
