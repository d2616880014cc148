//! Site-wide settings (`site_configs`), read through the authentication cache.

use gatehouse_rbac::{Action, Object, ResourceType, Subject};

use crate::{Store, authz::check, db::on_db, error::Result};

impl Store {
    /// A site-wide setting, `None` when never saved. Served from the auth cache once read:
    /// a change on this replica drops it after its commit, and on PostgreSQL the
    /// `site_configs` trigger tells every other replica (migration 0010).
    pub async fn site_config(&self, subject: &Subject, key: &str) -> Result<Option<String>> {
        check(
            subject,
            Action::Read,
            &Object::of(ResourceType::DeploymentConfig),
        )?;
        if let Some(cached) = self.auth_cache.site_config(key) {
            return Ok(cached.map(String::from));
        }
        let ticket = self.auth_cache.ticket();
        let value = on_db!(self, read, |pool| {
            sqlx::query_scalar::<_, String>("SELECT value FROM site_configs WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        self.auth_cache
            .insert_site_config(ticket, key, value.as_deref());
        Ok(value)
    }

    pub async fn set_site_config(&self, subject: &Subject, key: &str, value: &str) -> Result<()> {
        check(
            subject,
            Action::Update,
            &Object::of(ResourceType::DeploymentConfig),
        )?;
        let done = on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO site_configs (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await
            .map(|_| ())
        });
        // Even a failed write may have committed (a lost reply): drop the cached value.
        self.auth_changed_all();
        Ok(done?)
    }
}
