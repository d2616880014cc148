//! `gatehouse tokens create|list|remove`.

use anyhow::Context;
use clap::{Args, Subcommand};
use gatehouse_sdk::apikeys::CreateTokenRequest;

use super::GlobalConfig;
use crate::duration::parse_duration;

#[derive(Debug, Clone, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (it is shown only once).
    Create(CreateArgs),
    /// List your tokens.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Remove a token by name or id.
    #[command(alias = "rm", alias = "delete")]
    Remove(RemoveArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Token name (a random one when absent).
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Lifetime, e.g. 24h, 30d (the deployment default when absent).
    #[arg(long, value_parser = parse_duration)]
    pub lifetime: Option<std::time::Duration>,
    /// Scope, repeatable (see GET /api/v2/auth/scopes). Default: coder:all.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Allow-list entry `type:id`, repeatable. Default: everything.
    #[arg(long = "allow")]
    pub allow_list: Vec<String>,
    /// Whose token (`me` by default; owners may name another user).
    #[arg(long, default_value = "me")]
    pub user: String,
    #[command(flatten)]
    pub global: GlobalConfig,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Whose tokens.
    #[arg(long, default_value = "me")]
    pub user: String,
    #[command(flatten)]
    pub global: GlobalConfig,
}

#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// Token name or id.
    pub token: String,
    #[arg(long, default_value = "me")]
    pub user: String,
    #[command(flatten)]
    pub global: GlobalConfig,
}

pub async fn run(cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create(args) => create(args).await,
        TokensCommand::List(args) => list(args).await,
        TokensCommand::Remove(args) => remove(args).await,
    }
}

#[expect(clippy::print_stdout, reason = "CLI output")]
async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let client = args.global.client()?;
    let lifetime = args
        .lifetime
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let req = CreateTokenRequest {
        lifetime,
        scope: String::new(),
        scopes: (!args.scopes.is_empty()).then_some(args.scopes),
        token_name: args.name.unwrap_or_default(),
        allow_list: (!args.allow_list.is_empty()).then_some(args.allow_list),
    };
    let created = client
        .create_token(&args.user, &req)
        .await
        .context("could not create the token")?;
    println!("{}", created.key);
    Ok(())
}

#[expect(clippy::print_stdout, reason = "CLI output")]
async fn list(args: ListArgs) -> anyhow::Result<()> {
    let client = args.global.client()?;
    let tokens = client
        .tokens(&args.user)
        .await
        .context("could not list tokens")?;
    if tokens.is_empty() {
        println!("No tokens found.");
        return Ok(());
    }
    let name_width = tokens
        .iter()
        .map(|t| t.key.token_name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<10}  {:<name_width$}  {:<20}  SCOPES",
        "ID", "NAME", "EXPIRES AT"
    );
    for t in tokens {
        println!(
            "{:<10}  {:<name_width$}  {:<20}  {}",
            t.key.id,
            t.key.token_name,
            t.key.expires_at.format("%Y-%m-%d %H:%M:%S"),
            t.key.scopes.join(",")
        );
    }
    Ok(())
}

#[expect(clippy::print_stdout, reason = "CLI output")]
async fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let client = args.global.client()?;
    // A name first (what people type), then an id.
    let id = match client.token_by_name(&args.user, &args.token).await {
        Ok(key) => key.id,
        Err(_) => args.token.clone(),
    };
    client
        .delete_key(&args.user, &id)
        .await
        .with_context(|| format!("could not remove token {:?}", args.token))?;
    println!("Token has been deleted.");
    Ok(())
}
