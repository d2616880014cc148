//! Grants and their refresh-token rows: revocation, lookups, rotation.

use super::*;

impl Store {
    /// Deletes a grant: its refresh tokens and access tokens die with it.
    pub async fn revoke_oauth2_grant(
        &self,
        subject: &Subject,
        user_id: Uuid,
        grant_id: Uuid,
    ) -> Result<()> {
        check(subject, Action::Delete, &code_token_object(user_id))?;
        let done = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_grants WHERE id = $1")
                .bind(grant_id)
                .execute(pool)
                .await
                .map(|_| ())
        });
        self.auth_changed(user_id);
        Ok(done?)
    }

    /// A user withdraws an app: every grant and code of (app, user) goes.
    pub async fn revoke_oauth2_app_for_user(
        &self,
        subject: &Subject,
        app_id: Uuid,
        user_id: Uuid,
    ) -> Result<()> {
        check(subject, Action::Delete, &code_token_object(user_id))?;
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM oauth2_provider_grants WHERE app_id = $1 AND user_id = $2")
                .bind(app_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM oauth2_provider_app_codes WHERE app_id = $1 AND user_id = $2")
                .bind(app_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.auth_changed(user_id);
        Ok(())
    }

    /// The refresh-token row with this lookup prefix, with its grant.
    pub async fn oauth2_token_by_prefix(
        &self,
        subject: &Subject,
        prefix: &str,
    ) -> Result<Option<OAuth2Token>> {
        let sql = concat!(token_select!(), " WHERE t.hash_prefix = $1");
        let token = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2Token>(sql)
                .bind(prefix)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(token) = &token {
            check(subject, Action::Read, &code_token_object(token.user_id))?;
        }
        Ok(token)
    }

    /// The live token row whose access token is this API key.
    pub async fn oauth2_token_by_api_key(
        &self,
        subject: &Subject,
        api_key_id: &str,
    ) -> Result<Option<OAuth2Token>> {
        let sql = concat!(token_select!(), " WHERE t.api_key_id = $1");
        let token = on_db!(self, read, |pool| {
            sqlx::query_as::<_, OAuth2Token>(sql)
                .bind(api_key_id)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(token) = &token {
            check(subject, Action::Read, &code_token_object(token.user_id))?;
        }
        Ok(token)
    }

    /// Rotates a refresh token (spec/oauth2.md §3.3 rule 21): the old row is marked
    /// rotated (kept for reuse detection), its access token deleted, and a new access token
    /// and row are issued under the same grant, atomically. `false` when another request
    /// rotated it first. Rotations waiting at the same moment share one commit
    /// ([`rotation`](super::rotation)).
    pub async fn rotate_oauth2_token(
        &self,
        subject: &Subject,
        old: &OAuth2Token,
        key: &NewApiKey,
        token: &NewOAuth2Token,
    ) -> Result<bool> {
        check(subject, Action::Delete, &code_token_object(old.user_id))?;
        check(subject, Action::Create, &Object::api_key(key.user_id))?;
        let rotation = Rotation::new(old, key, token, now());
        let rotated = self.rotations.rotate(rotation).await?;
        if rotated {
            self.auth_changed(old.user_id);
        }
        Ok(rotated)
    }
}
