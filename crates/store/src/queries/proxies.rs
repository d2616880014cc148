//! Workspace proxies (decisions.md 41): a registry an administrator keeps, read by the
//! site CSP.

use chrono::{DateTime, Utc};
use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use uuid::Uuid;

use crate::{
    Store,
    authz::check,
    db::on_db,
    error::{Result, StoreError},
    models::now,
};

/// A registered workspace proxy.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkspaceProxy {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub icon: String,
    pub path_app_url: String,
    pub wildcard_hostname: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What registering a proxy takes.
#[derive(Debug, Clone)]
pub struct NewWorkspaceProxy {
    pub name: String,
    pub display_name: String,
    pub icon: String,
    pub path_app_url: String,
    pub wildcard_hostname: String,
}

fn proxies() -> Object<'static> {
    Object::of(ResourceType::WorkspaceProxy)
}

impl Store {
    pub async fn insert_workspace_proxy(
        &self,
        subject: &Subject,
        new: &NewWorkspaceProxy,
    ) -> Result<WorkspaceProxy> {
        check(subject, Action::Create, &proxies())?;
        let now = now();
        let proxy = WorkspaceProxy {
            id: Uuid::new_v4(),
            name: new.name.clone(),
            display_name: new.display_name.clone(),
            icon: new.icon.clone(),
            path_app_url: new.path_app_url.clone(),
            wildcard_hostname: new.wildcard_hostname.clone(),
            created_at: now,
            updated_at: now,
        };
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO workspace_proxies (id, name, display_name, icon, path_app_url, \
                 wildcard_hostname, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(proxy.id)
            .bind(&proxy.name)
            .bind(&proxy.display_name)
            .bind(&proxy.icon)
            .bind(&proxy.path_app_url)
            .bind(&proxy.wildcard_hostname)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(proxy)
    }

    /// Every registered proxy, by name.
    pub async fn workspace_proxies(&self, subject: &Subject) -> Result<Vec<WorkspaceProxy>> {
        check(subject, Action::Read, &proxies())?;
        Ok(on_db!(self, read, |pool| {
            sqlx::query_as::<_, WorkspaceProxy>(
                "SELECT id, name, display_name, icon, path_app_url, wildcard_hostname, \
                 created_at, updated_at FROM workspace_proxies ORDER BY name",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    /// Removes a proxy named by id or name.
    pub async fn delete_workspace_proxy(&self, subject: &Subject, id_or_name: &str) -> Result<()> {
        check(subject, Action::Delete, &proxies())?;
        let id = Uuid::parse_str(id_or_name).ok();
        let deleted = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM workspace_proxies WHERE id = $1 OR name = $2")
                .bind(id)
                .bind(id_or_name)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
