//! The SQL that gathers a user's org memberships and groups as JSON text, per dialect,
//! so a subject can be built from the same row as the credential (one round trip).
//! Each macro takes the SQL expression of the user id.

macro_rules! memberships_sqlite {
    ($user:literal) => {
        concat!(
            "(SELECT json_group_array(json_object('org', lower(hex(m.organization_id)), 'roles', json(m.roles), \
             'defaults', json(o.default_org_member_roles), 'joined', m.created_at)) \
             FROM organization_members m JOIN organizations o ON o.id = m.organization_id \
             WHERE m.user_id = ", $user, " AND o.deleted = FALSE)"
        )
    };
}

macro_rules! groups_sqlite {
    ($user:literal) => {
        concat!("(SELECT json_group_array(lower(hex(g.group_id))) FROM group_members g WHERE g.user_id = ", $user, ")")
    };
}

macro_rules! memberships_postgres {
    ($user:literal) => {
        concat!(
            "COALESCE((SELECT json_agg(json_build_object('org', m.organization_id, 'roles', m.roles, \
             'defaults', o.default_org_member_roles, 'joined', m.created_at))::text \
             FROM organization_members m JOIN organizations o ON o.id = m.organization_id \
             WHERE m.user_id = ", $user, " AND o.deleted = FALSE), '[]')"
        )
    };
}

macro_rules! groups_postgres {
    ($user:literal) => {
        concat!(
            "COALESCE((SELECT json_agg(g.group_id)::text FROM group_members g WHERE g.user_id = ",
            $user,
            "), '[]')"
        )
    };
}

pub(crate) use groups_postgres;
pub(crate) use groups_sqlite;
pub(crate) use memberships_postgres;
pub(crate) use memberships_sqlite;
