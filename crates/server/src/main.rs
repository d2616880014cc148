//! The `gatehouse` binary.

#![forbid(unsafe_code)]

use clap::Parser;
use gatehouse_server::{
    cli,
    config::{Cli, Command},
    serve,
};

// glibc's malloc showed as ~15% of a request's CPU under load, and its per-thread arenas
// kept freed memory from the cache and limiter churn; mimalloc does better at both.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    // Request handling runs on threads named `http-api`; background jobs start their own
    // named threads, so CPU profiles tell the two apart.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("http-api")
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            cli::report_error(&err.into());
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Server(config) => serve::run(*config).await,
            Command::Login(login) => cli::login::run(login).await,
            Command::Tokens(tokens) => cli::tokens::run(tokens).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            cli::report_error(&err);
            std::process::ExitCode::FAILURE
        }
    }
}
