//! OAuth2 apps (clients): registration, management, and the client lookups of the
//! protocol endpoints.

use super::*;

impl Store {
    /// Authorizes an app operation before the request is validated, so a caller who may
    /// not act learns nothing from validation errors.
    pub fn authorize_oauth2_app(
        &self,
        subject: &Subject,
        action: Action,
        id: Option<Uuid>,
    ) -> Result<()> {
        let object = match id {
            Some(id) => app_object(id),
            None => Object::of(ResourceType::Oauth2App),
        };
        check(subject, action, &object)
    }

    /// Inserts an app and, for confidential DCR clients, its first secret, in one
    /// transaction (spec/oauth2.md §6 rule 6).
    pub async fn insert_oauth2_app(
        &self,
        subject: &Subject,
        app: &OAuth2App,
        secret: Option<&NewOAuth2Secret>,
    ) -> Result<OAuth2App> {
        check(
            subject,
            Action::Create,
            &Object::of(ResourceType::Oauth2App),
        )?;
        if secret.is_some() {
            check(subject, Action::Create, &secret_object(app.id))?;
        }
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO oauth2_provider_apps (id, created_at, updated_at, name, icon, \
                 redirect_uris, client_type, dynamically_registered, scope, grant_types, \
                 response_types, token_endpoint_auth_method, metadata, client_id_issued_at, \
                 registration_access_token) \
                 VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(app.id)
            .bind(now)
            .bind(&app.name)
            .bind(&app.icon)
            .bind(&app.redirect_uris)
            .bind(&app.client_type)
            .bind(app.dynamically_registered)
            .bind(&app.scope)
            .bind(&app.grant_types)
            .bind(&app.response_types)
            .bind(&app.token_endpoint_auth_method)
            .bind(&app.metadata)
            .bind(app.client_id_issued_at)
            .bind(&app.registration_access_token)
            .execute(&mut *tx)
            .await?;
            if let Some(secret) = secret {
                sqlx::query(
                    "INSERT INTO oauth2_provider_app_secrets (id, app_id, created_at, \
                     secret_prefix, hashed_secret, display_secret) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(secret.id)
                .bind(app.id)
                .bind(now)
                .bind(&secret.secret_prefix)
                .bind(&secret.hashed_secret)
                .bind(&secret.display_secret)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.oauth2_app(subject, app.id).await
    }

    /// Rewrites an app's mutable fields (name, icon, redirect URIs, scope, metadata).
    pub async fn update_oauth2_app(&self, subject: &Subject, app: &OAuth2App) -> Result<OAuth2App> {
        check_or_hide(subject, Action::Update, &app_object(app.id))?;
        let now = now();
        let done = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE oauth2_provider_apps SET updated_at = $2, name = $3, icon = $4, \
                 redirect_uris = $5, scope = $6, grant_types = $7, response_types = $8, \
                 token_endpoint_auth_method = $9, metadata = $10 WHERE id = $1",
            )
            .bind(app.id)
            .bind(now)
            .bind(&app.name)
            .bind(&app.icon)
            .bind(&app.redirect_uris)
            .bind(&app.scope)
            .bind(&app.grant_types)
            .bind(&app.response_types)
            .bind(&app.token_endpoint_auth_method)
            .bind(&app.metadata)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.oauth2_app(subject, app.id).await
    }

    /// One app, by id (= its `client_id`).
    pub async fn oauth2_app(&self, subject: &Subject, id: Uuid) -> Result<OAuth2App> {
        let sql = concat!(
            "SELECT ",
            app_columns!(),
            " FROM oauth2_provider_apps WHERE id = $1"
        );
        let app = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2App>(sql)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        check_or_hide(subject, Action::Read, &app_object(id))?;
        Ok(app)
    }

    /// A client for the protocol endpoints: the app, with the hash of its secret whose
    /// prefix is `secret_prefix` when it has one, in one query (a token request reads
    /// nothing else before its grant).
    pub async fn oauth2_client(
        &self,
        subject: &Subject,
        id: Uuid,
        secret_prefix: Option<&str>,
    ) -> Result<(OAuth2App, Option<ClientSecretHash>)> {
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ClientRow>(CLIENT_SQL)
                .bind(id)
                .bind(secret_prefix)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        client_of(subject, row)
    }

    /// [`Store::oauth2_client`] and [`Store::oauth2_token_by_prefix`] in one query: the
    /// refresh grant's two reads before its rotation.
    pub async fn oauth2_client_and_token(
        &self,
        subject: &Subject,
        id: Uuid,
        secret_prefix: Option<&str>,
        token_prefix: &str,
    ) -> Result<(OAuth2App, Option<ClientSecretHash>, Option<OAuth2Token>)> {
        let mut row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, ClientAndTokenRow>(CLIENT_AND_TOKEN_SQL)
                .bind(id)
                .bind(secret_prefix)
                .bind(token_prefix)
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound)?;
        let token = row.token(token_prefix);
        let (app, secret) = client_of(subject, row.client)?;
        if let Some(token) = &token {
            check(subject, Action::Read, &code_token_object(token.user_id))?;
        }
        Ok((app, secret, token))
    }

    /// Every app the subject may read, by name; with `authorized_by`, only those the user
    /// holds a grant for.
    pub async fn list_oauth2_apps(
        &self,
        subject: &Subject,
        authorized_by: Option<Uuid>,
    ) -> Result<Vec<OAuth2App>> {
        let sql = concat!(
            "SELECT ",
            app_columns!(),
            " FROM oauth2_provider_apps a WHERE $1 IS NULL OR EXISTS \
             (SELECT 1 FROM oauth2_provider_grants g WHERE g.app_id = a.id AND g.user_id = $1) \
             ORDER BY name, id"
        );
        if let Some(user) = authorized_by {
            check(subject, Action::Read, &code_token_object(user))?;
        }
        let apps = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2App>(sql)
                .bind(authorized_by)
                .fetch_all(pool)
                .await
        })?;
        Ok(apps
            .into_iter()
            .filter(|a| allowed(subject, Action::Read, &app_object(a.id)))
            .collect())
    }

    /// Deletes an app; its secrets, codes, grants, token rows and access tokens go with it.
    pub async fn delete_oauth2_app(&self, subject: &Subject, id: Uuid) -> Result<()> {
        self.oauth2_app(subject, id).await?;
        check_or_hide(subject, Action::Delete, &app_object(id))?;
        let done = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_apps WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        });
        // Every user's tokens from this app died with it.
        self.auth_changed_all();
        Ok(done?)
    }
}
