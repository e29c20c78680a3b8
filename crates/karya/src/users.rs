//! `karya user …` and `karya token …`: accounts and API tokens from the command line, for the
//! first administrator of a new firm and for automation accounts.

use std::io::BufRead;

use anyhow::Context;
use karya_core::id::{ClientId, WorkerId};
use karya_core::model::Role;
use karya_store::{NewUser, PageRequest, Store};

/// What `karya user add` was asked to create.
pub struct AddUser {
    pub email: String,
    pub name: String,
    pub role: String,
    pub client: Option<String>,
    pub worker: Option<String>,
    pub password_stdin: bool,
    pub token: bool,
}

pub async fn add(store: &Store, request: AddUser) -> anyhow::Result<()> {
    let role = Role::parse(&request.role).with_context(|| {
        format!("unknown role {:?}: use admin, manager, lead, worker, reviewer, client_admin, client_user or auditor", request.role)
    })?;
    let client_id = request
        .client
        .as_deref()
        .map(str::parse::<ClientId>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--client: {e}"))?;
    let worker_id = request
        .worker
        .as_deref()
        .map(str::parse::<WorkerId>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--worker: {e}"))?;
    let password_hash = if request.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        let chars = password.chars().count();
        let (min, max) = (
            karya_server::PASSWORD_LEN_MIN,
            karya_server::PASSWORD_LEN_MAX,
        );
        anyhow::ensure!(
            (min..=max).contains(&chars),
            "a password has {min} to {max} characters"
        );
        let auth = karya_server::auth::AuthState::default();
        Some(
            auth.hash_password(password)
                .await
                .map_err(|err| anyhow::anyhow!("{}", err.message))?,
        )
    } else {
        None
    };
    anyhow::ensure!(
        password_hash.is_some() || request.token,
        "give --password-stdin (to sign in) or --token (for API access), or both"
    );
    let now = jiff::Timestamp::now();
    let new = NewUser {
        id: uuid::Uuid::now_v7(),
        email: request.email.trim().to_lowercase(),
        name: request.name.trim().to_string(),
        role,
        client_id,
        worker_id,
        password_hash,
    };
    let user = store.create_user(&new, now).await?;
    println!(
        "user {} ({}, {}) created",
        user.email,
        user.role.code(),
        user.id
    );
    if request.token {
        let token =
            karya_server::auth::mint_token(store, user.id, "created with karya user add", now)
                .await?;
        println!("api token: {token}");
        eprintln!("the token is shown only now; store it safely");
    }
    Ok(())
}

pub async fn list(store: &Store) -> anyhow::Result<()> {
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let users = store.list_users(None, &page).await?;
        for user in &users.items {
            let client = user
                .client_id
                .map(|c| format!(" client {c}"))
                .unwrap_or_default();
            let state = if user.disabled { " (disabled)" } else { "" };
            println!(
                "{}  {:<12} {}{client}{state}",
                user.id,
                user.role.code(),
                user.email
            );
        }
        match users.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(()),
        }
    }
}

pub async fn create_token(store: &Store, email: &str, name: &str) -> anyhow::Result<()> {
    let (user, _) = store
        .user_for_login(email)
        .await?
        .with_context(|| format!("no user with email {email}"))?;
    anyhow::ensure!(!user.disabled, "user {email} is disabled");
    let token =
        karya_server::auth::mint_token(store, user.id, name, jiff::Timestamp::now()).await?;
    println!("api token: {token}");
    eprintln!("the token is shown only now; store it safely");
    Ok(())
}
