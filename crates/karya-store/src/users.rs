//! People who sign in: users with a role, their sessions and their API tokens.
//!
//! The store keeps only hashes of secrets (argon2id for passwords, SHA-256 for tokens), made
//! by the caller; it never sees a password or a token in clear. A disabled user's sessions
//! and tokens stop working at once, because every lookup joins the user row.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{ClientId, WorkerId};
use karya_core::model::Role;
use serde_json::json;
use sqlx::any::AnyRow;

use crate::clients::{ensure_firm_chain, page_of};
use crate::events::{append, FIRM_CHAIN};
use crate::rows::{get, is_foreign_key_violation, is_unique_violation, timestamp, us};
use crate::{Page, PageRequest, Result, Store, StoreError};

/// A person who signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub client_id: Option<ClientId>,
    pub worker_id: Option<WorkerId>,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// A user as created; `password_hash` is an argon2id PHC string, or `None` for a user who
/// signs in only with API tokens.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub client_id: Option<ClientId>,
    pub worker_id: Option<WorkerId>,
    pub password_hash: Option<String>,
}

/// An API token's record (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

const USER_COLUMNS: &str =
    "u.id, u.email, u.name, u.role, u.client_id, u.worker_id, u.disabled, u.created_at_us";

fn user_row(row: &AnyRow) -> Result<User> {
    let role: String = get(row, "role")?;
    let client_id: Option<String> = get(row, "client_id")?;
    let worker_id: Option<String> = get(row, "worker_id")?;
    let id: String = get(row, "id")?;
    Ok(User {
        id: id
            .parse()
            .map_err(|e| anyhow::anyhow!("stored user id: {e}"))?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        role: Role::parse(&role).ok_or_else(|| anyhow::anyhow!("stored role {role:?} unknown"))?,
        client_id: client_id
            .map(|c| c.parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("stored client id: {e}"))?,
        worker_id: worker_id
            .map(|w| w.parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("stored worker id: {e}"))?,
        disabled: get::<i64>(row, "disabled")? != 0,
        created_at: timestamp(row, "created_at_us")?,
    })
}

impl Store {
    pub async fn create_user(&self, new: &NewUser, now: Timestamp) -> Result<User> {
        if new.role.is_client_role() != new.client_id.is_some() {
            return Err(StoreError::Rejected {
                message: format!(
                    "a {} user {} a client",
                    new.role.code(),
                    if new.role.is_client_role() {
                        "needs"
                    } else {
                        "has no"
                    }
                ),
            });
        }
        if new.role.needs_worker() && new.worker_id.is_none() {
            return Err(StoreError::Rejected {
                message: format!("a {} user needs a worker record", new.role.code()),
            });
        }
        let mut tx = crate::tx::Tx::begin(self).await?;
        ensure_firm_chain(&mut tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, name, role, client_id, worker_id, password_hash, disabled, created_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
        )
        .bind(new.id.to_string())
        .bind(new.email.to_lowercase())
        .bind(&new.name)
        .bind(new.role.code())
        .bind(new.client_id.map(|c| c.to_string()))
        .bind(new.worker_id.map(|w| w.to_string()))
        .bind(new.password_hash.clone())
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict {
                    message: format!("a user with email {} exists already", new.email),
                })
            }
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::NotFound {
                    kind: "client or worker",
                    id: "named for the user".into(),
                })
            }
            other => other?,
        };
        // The audit trail records who was given access, never a secret.
        let chain = new.client_id.unwrap_or(FIRM_CHAIN);
        append(
            &mut tx,
            chain,
            EventKind::UserCreated,
            &new.id.to_string(),
            &json!({"email": new.email.to_lowercase(), "name": new.name, "role": new.role.code(),
                    "worker_id": new.worker_id.map(|w| w.to_string())}),
            now,
        )
        .await?;
        tx.commit().await?;
        self.user(new.id).await
    }

    pub async fn user(&self, id: uuid::Uuid) -> Result<User> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))?;
        user_row(&row)
    }

    /// The user and password hash for a sign-in attempt.
    pub async fn user_for_login(&self, email: &str) -> Result<Option<(User, Option<String>)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1"
        ))
        .bind(email.to_lowercase())
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((user_row(&row)?, get(&row, "password_hash")?)))
    }

    /// Users, optionally only one client's.
    pub async fn list_users(
        &self,
        client_id: Option<ClientId>,
        page: &PageRequest,
    ) -> Result<Page<User>> {
        let limit = page.limit();
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id > $1 AND ($2 = '' OR u.client_id = $2) ORDER BY u.id LIMIT $3"
        ))
        .bind(page.after.clone().unwrap_or_default())
        .bind(client_id.map(|c| c.to_string()).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let items = rows.iter().map(user_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |u| u.id.to_string()))
    }

    /// Disables a user and ends their sessions; their tokens stop working too.
    pub async fn disable_user(&self, id: uuid::Uuid, now: Timestamp) -> Result<User> {
        let user = self.user(id).await?;
        let mut tx = crate::tx::Tx::begin(self).await?;
        sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            user.client_id.unwrap_or(FIRM_CHAIN),
            EventKind::UserDisabled,
            &id.to_string(),
            &json!({}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(User {
            disabled: true,
            ..user
        })
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: uuid::Uuid,
        csrf_token: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        // Sessions are access, not business state: they are not chained events, but sign-ins
        // are logged by the server.
        let mut tx = crate::tx::Tx::begin(self).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id.to_string())
        .bind(csrf_token)
        .bind(us(now))
        .bind(us(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user behind a live session, with the session's CSRF token.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<(User, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at_us > $2 AND u.disabled = 0"
        ))
        .bind(token_hash)
        .bind(us(now))
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((user_row(&row)?, get(&row, "csrf_token")?)))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: Timestamp) -> Result<u64> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at_us <= $1")
            .bind(us(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn create_api_token(
        &self,
        id: uuid::Uuid,
        user_id: uuid::Uuid,
        name: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<ApiToken> {
        let user = self.user(user_id).await?;
        let mut tx = crate::tx::Tx::begin(self).await?;
        sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .bind(name)
            .bind(token_hash)
            .bind(us(now))
            .execute(&mut *tx)
            .await?;
        append(
            &mut tx,
            user.client_id.unwrap_or(FIRM_CHAIN),
            EventKind::TokenCreated,
            &id.to_string(),
            &json!({"user_id": user_id.to_string(), "name": name}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(ApiToken {
            id,
            user_id,
            name: name.to_string(),
            created_at: now,
            revoked_at: None,
        })
    }

    /// The user behind a live API token.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at_us IS NULL AND u.disabled = 0"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    pub async fn api_tokens_of(&self, user_id: uuid::Uuid) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, created_at_us, revoked_at_us FROM api_tokens WHERE user_id = $1 ORDER BY created_at_us",
        )
        .bind(user_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = get(row, "id")?;
                let revoked: Option<i64> = get(row, "revoked_at_us")?;
                Ok(ApiToken {
                    id: id
                        .parse()
                        .map_err(|e| anyhow::anyhow!("stored token id: {e}"))?,
                    user_id,
                    name: get(row, "name")?,
                    created_at: timestamp(row, "created_at_us")?,
                    revoked_at: revoked
                        .map(Timestamp::from_microsecond)
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                })
            })
            .collect()
    }

    /// Revokes a token of the given user.
    pub async fn revoke_api_token(
        &self,
        user_id: uuid::Uuid,
        id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<()> {
        let user = self.user(user_id).await?;
        let mut tx = crate::tx::Tx::begin(self).await?;
        let done = sqlx::query("UPDATE api_tokens SET revoked_at_us = $1 WHERE id = $2 AND user_id = $3 AND revoked_at_us IS NULL")
            .bind(us(now))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::not_found("api token", id));
        }
        append(
            &mut tx,
            user.client_id.unwrap_or(FIRM_CHAIN),
            EventKind::TokenRevoked,
            &id.to_string(),
            &json!({}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a worker holds (has an active assignment on) the task, or any task of the work
    /// item, of this client.
    pub async fn worker_holds(
        &self,
        worker_id: WorkerId,
        client_id: ClientId,
        task_id: Option<&str>,
        work_item_id: Option<&str>,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM assignments a JOIN tasks t ON t.id = a.task_id
             WHERE a.worker_id = $1 AND a.client_id = $2 AND a.released_at_us IS NULL
               AND ($3 = '' OR t.id = $3) AND ($4 = '' OR t.work_item_id = $4)
             LIMIT 1",
        )
        .bind(worker_id.to_string())
        .bind(client_id.to_string())
        .bind(task_id.unwrap_or(""))
        .bind(work_item_id.unwrap_or(""))
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.is_some())
    }
}
