//! The column lists the workspace, build and agent queries select, shared by their
//! modules.

macro_rules! workspace_columns {
    () => {
        "w.id, w.created_at, w.updated_at, w.owner_id, w.organization_id, w.template_id, w.deleted, w.name, \
         w.autostart_schedule, w.ttl, w.last_used_at, w.dormant_at, w.deleting_at, w.automatic_updates, w.favorite"
    };
}

macro_rules! build_columns {
    () => {
        "b.id, b.created_at, b.updated_at, b.workspace_id, b.template_version_id, b.build_number, \
         b.transition, b.initiator_id, b.job_id, b.deadline, b.max_deadline, b.reason, b.daily_cost"
    };
}

macro_rules! agent_columns {
    () => {
        "a.id, a.created_at, a.updated_at, a.name, a.resource_id, a.architecture, a.operating_system, \
         a.directory, a.version, a.api_version, a.lifecycle_state, a.parent_id, a.api_key_scope, a.deleted, \
         a.first_connected_at, a.last_connected_at, a.disconnected_at, a.started_at, a.ready_at, \
         a.connection_timeout_seconds, a.troubleshooting_url, a.display_order"
    };
}

pub(crate) use agent_columns;
pub(crate) use build_columns;
pub(crate) use workspace_columns;
