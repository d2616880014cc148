//! The `gatehouse` client commands. They talk to a deployment through the sdk client and
//! keep the URL and session token in the config directory, as Coder's CLI does.

use std::{fs, path::PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use gatehouse_sdk::client::{Client, ClientError};

pub mod login;
pub mod tokens;

/// Where the CLI keeps its state.
#[derive(Debug, Clone, Args)]
pub struct GlobalConfig {
    /// Directory for the CLI's URL and session files.
    #[arg(long = "global-config", env = "CODER_CONFIG_DIR")]
    pub dir: Option<PathBuf>,
}

impl GlobalConfig {
    pub fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| {
            dirs::config_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("gatehouse")
        })
    }

    /// Saves the deployment URL and the session token (owner-only permissions).
    pub fn save(&self, url: &url::Url, session: &str) -> anyhow::Result<()> {
        let dir = self.dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_private(&dir.join("url"), url.as_str())?;
        write_private(&dir.join("session"), session)?;
        Ok(())
    }

    /// A client for the saved deployment, authenticated with the saved session.
    pub fn client(&self) -> anyhow::Result<Client> {
        let dir = self.dir();
        let url = fs::read_to_string(dir.join("url"))
            .map_err(|_| anyhow!("You are not logged in. Run `gatehouse login <url>` first."))?;
        let session = fs::read_to_string(dir.join("session"))
            .map_err(|_| anyhow!("You are not logged in. Run `gatehouse login <url>` first."))?;
        let url = url::Url::parse(url.trim())
            .context("the saved deployment URL is not valid; log in again")?;
        Ok(Client::new(url).with_session_token(session.trim()))
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    Ok(())
}

/// Prints an error the way a person would say it: what we were doing, then the server's
/// message, its detail and any field problems.
#[expect(clippy::print_stderr, reason = "the CLI reports errors on stderr")]
pub fn report_error(err: &anyhow::Error) {
    let api = err.chain().find_map(|e| e.downcast_ref::<ClientError>());
    let text = match api {
        Some(ClientError::Api { response, .. }) => {
            let mut text = match err
                .chain()
                .next()
                .filter(|top| top.downcast_ref::<ClientError>().is_none())
            {
                Some(context) => format!("error: {context}: {}", response.message),
                None => format!("error: {}", response.message),
            };
            if !response.detail.is_empty() {
                text.push_str(&format!("\n  {}", response.detail));
            }
            for v in &response.validations {
                text.push_str(&format!("\n  {}: {}", v.field, v.detail));
            }
            text
        }
        _ => {
            let mut text = format!("error: {err}");
            for cause in err.chain().skip(1) {
                text.push_str(&format!("\n  caused by: {cause}"));
            }
            text
        }
    };
    eprintln!("{text}");
}
