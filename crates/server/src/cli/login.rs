//! `gatehouse login <url>`: creates the first user when there is none, then logs in with
//! email and password (or checks a given token) and saves the session.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use gatehouse_sdk::{
    client::Client,
    users::{CreateFirstUserRequest, LoginWithPasswordRequest},
};

use super::GlobalConfig;

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The deployment URL, e.g. http://127.0.0.1:3000.
    pub url: url::Url,
    /// Email of the first user, when the deployment has none yet.
    #[arg(long, env = "CODER_FIRST_USER_EMAIL")]
    pub first_user_email: Option<String>,
    /// Username of the first user.
    #[arg(long, env = "CODER_FIRST_USER_USERNAME")]
    pub first_user_username: Option<String>,
    /// Password of the first user.
    #[arg(long, env = "CODER_FIRST_USER_PASSWORD", hide_env_values = true)]
    pub first_user_password: Option<String>,
    /// Email to log in with.
    #[arg(long, env = "CODER_EMAIL")]
    pub email: Option<String>,
    /// Password to log in with.
    #[arg(long, env = "CODER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Use an existing session token or API token instead of a password.
    #[arg(long, env = "CODER_SESSION_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub global: GlobalConfig,
}

/// Asks on the terminal, or explains which flag to pass when there is none.
fn ask(question: &str, flag: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{question} is needed: pass {flag}");
    }
    let mut stderr = std::io::stderr();
    write!(stderr, "{question}: ")?;
    stderr.flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let answer = line.trim().to_owned();
    if answer.is_empty() {
        bail!("{question} cannot be empty");
    }
    Ok(answer)
}

#[expect(clippy::print_stdout, reason = "CLI output")]
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let client = Client::new(args.url.clone());
    if let Some(token) = &args.token {
        let authed = client.clone().with_session_token(token);
        let me = authed
            .user("me")
            .await
            .context("the token was not accepted")?;
        args.global.save(&args.url, token)?;
        println!(
            "Welcome to Gatehouse, {}! You're authenticated.",
            me.username
        );
        return Ok(());
    }
    let has_first_user = client
        .has_first_user()
        .await
        .with_context(|| format!("cannot reach a Gatehouse deployment at {}", args.url))?;
    let (email, password) = if has_first_user {
        let email = match args.email.clone() {
            Some(e) => e,
            None => ask("Email", "--email")?,
        };
        let password = match args.password.clone() {
            Some(p) => p,
            None => ask("Password", "--password")?,
        };
        (email, password)
    } else {
        println!("This deployment has no users yet: creating the first one (an owner).");
        let email = match args.first_user_email.clone() {
            Some(e) => e,
            None => ask("Email", "--first-user-email")?,
        };
        let username = match args.first_user_username.clone() {
            Some(u) => u,
            None => ask("Username", "--first-user-username")?,
        };
        let password = match args.first_user_password.clone() {
            Some(p) => p,
            None => ask("Password", "--first-user-password")?,
        };
        client
            .create_first_user(&CreateFirstUserRequest {
                email: email.clone(),
                username,
                password: password.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!(e))
            .context("could not create the first user")?;
        (email, password)
    };
    let session = client
        .login(&LoginWithPasswordRequest { email, password })
        .await?
        .session_token;
    let me = client
        .clone()
        .with_session_token(&session)
        .user("me")
        .await?;
    args.global.save(&args.url, &session)?;
    println!(
        "Welcome to Gatehouse, {}! You're authenticated.",
        me.username
    );
    Ok(())
}
