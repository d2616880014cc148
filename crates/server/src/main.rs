//! The `gatehouse` binary.

#![forbid(unsafe_code)]

use clap::Parser;
use gatehouse_server::{
    cli,
    config::{Cli, Command},
    serve,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    let result = match args.command {
        Command::Server(config) => serve::run(*config).await,
        Command::Login(login) => cli::login::run(login).await,
        Command::Tokens(tokens) => cli::tokens::run(tokens).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            cli::report_error(&err);
            std::process::ExitCode::FAILURE
        }
    }
}
