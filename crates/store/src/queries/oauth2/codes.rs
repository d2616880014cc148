//! Authorization codes: issued, looked up, burnt, redeemed into a grant.

use super::*;

/// How a code redemption ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    Issued,
    /// Another request used the code first.
    AlreadyUsed,
}

/// `expires_at` of a code issued now (spec/oauth2.md §3.4 rule 24).
pub fn code_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::TimeDelta::minutes(10)
}

impl Store {
    pub async fn insert_oauth2_code(&self, subject: &Subject, code: &OAuth2Code) -> Result<()> {
        check(subject, Action::Create, &code_token_object(code.user_id))?;
        let sql = concat!(
            "INSERT INTO oauth2_provider_app_codes (",
            code_columns!(),
            ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL)"
        );
        on_db!(self, write, |pool| {
            sqlx::query(sql)
                .bind(code.id)
                .bind(code.app_id)
                .bind(code.user_id)
                .bind(code.created_at)
                .bind(code.expires_at)
                .bind(&code.secret_prefix)
                .bind(&code.hashed_secret)
                .bind(&code.code_challenge)
                .bind(&code.redirect_uri)
                .bind(&code.resource_uri)
                .bind(&code.scope)
                .bind(&code.state_hash)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// A code by its prefix, with its user's status (`deleted` for a deleted user): a code
    /// issued before a suspension must not be redeemed during it (issue #29).
    pub async fn oauth2_code_by_prefix(
        &self,
        subject: &Subject,
        prefix: &str,
    ) -> Result<Option<(OAuth2Code, String)>> {
        const SQL: &str = "SELECT c.id, c.app_id, c.user_id, c.created_at, c.expires_at, \
             c.secret_prefix, c.hashed_secret, c.code_challenge, c.redirect_uri, c.resource_uri, \
             c.scope, c.state_hash, c.used_at, c.grant_id, \
             CASE WHEN u.deleted THEN 'deleted' ELSE u.status END AS user_status \
             FROM oauth2_provider_app_codes c JOIN users u ON u.id = c.user_id \
             WHERE c.secret_prefix = $1";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            code: OAuth2Code,
            user_status: String,
        }
        let row = on_db!(self, read, |pool| {
            sqlx::query_as::<_, Row>(SQL)
                .bind(prefix)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(row) = &row {
            check(subject, Action::Read, &code_token_object(row.code.user_id))?;
        }
        Ok(row.map(|r| (r.code, r.user_status)))
    }

    /// Burns a code that failed verification (spec/oauth2.md §3.2 rule 12).
    pub async fn delete_oauth2_code(&self, subject: &Subject, code: &OAuth2Code) -> Result<()> {
        check(subject, Action::Delete, &code_token_object(code.user_id))?;
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_provider_app_codes WHERE id = $1")
                .bind(code.id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Redeems a code: marks it used (so a replay is recognised), creates the grant, its
    /// access token and its refresh-token row, all in one transaction. The conditional
    /// update makes two concurrent redemptions of one code issue at most once.
    pub async fn redeem_oauth2_code(
        &self,
        subject: &Subject,
        code: &OAuth2Code,
        grant: &NewOAuth2Grant,
        key: &NewApiKey,
        token: &NewOAuth2Token,
    ) -> Result<Redeemed> {
        check(subject, Action::Delete, &code_token_object(code.user_id))?;
        check(subject, Action::Create, &code_token_object(grant.user_id))?;
        check(subject, Action::Create, &Object::api_key(key.user_id))?;
        let now = now();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE oauth2_provider_app_codes SET used_at = $2, grant_id = $3 \
                 WHERE id = $1 AND used_at IS NULL",
            )
            .bind(code.id)
            .bind(now)
            .bind(grant.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                return Ok(Redeemed::AlreadyUsed);
            }
            sqlx::query(
                "INSERT INTO oauth2_provider_grants (id, app_id, user_id, app_secret_id, \
                 resource_uri, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(grant.id)
            .bind(grant.app_id)
            .bind(grant.user_id)
            .bind(grant.app_secret_id)
            .bind(&grant.resource_uri)
            .bind(&grant.scope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_key_and_token!(tx, key, token, grant.id, now);
            tx.commit().await?;
        });
        Ok(Redeemed::Issued)
    }
}
