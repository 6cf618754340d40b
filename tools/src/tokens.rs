//! `rootcause tokens …`: API tokens, written into the service's database directly, so that the
//! first one exists before the service starts with authentication on. A running service picks
//! changes up within `auth.reload_secs`.

use anyhow::{Context, bail};
use clap::Args;
use rootcause::auth::{check_name, format_scopes, new_secret, parse_scopes};
use rootcause::config::Config;
use rootcause::store::Store;

/// `rootcause tokens create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Unique name, recorded as the actor of everything done with the token.
    pub name: String,
    /// Comma-separated scopes: ingest, read, respond, admin.
    #[arg(long, value_name = "SCOPES")]
    pub scopes: String,
    /// Days until the token expires (default: never).
    #[arg(long, value_name = "DAYS")]
    pub expires_in_days: Option<u32>,
}

/// `rootcause tokens …`.
#[derive(Debug)]
pub enum TokensCommand<'a> {
    /// Create a token and print its secret.
    Create(&'a CreateArgs),
    /// List tokens.
    List,
    /// Revoke the named token.
    Revoke(&'a str),
}

/// Runs a tokens command against the database of `config`.
pub fn tokens(command: &TokensCommand<'_>, config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let url = config.database_url();
        let store = Store::open(url.expose(), &config.store)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        let now = chrono::Utc::now().timestamp_millis();
        let result = match command {
            TokensCommand::Create(CreateArgs {
                name,
                scopes,
                expires_in_days,
            }) => {
                check_name(name).map_err(anyhow::Error::msg)?;
                let scopes = parse_scopes(scopes)
                    .and_then(|s| format_scopes(&s))
                    .map_err(anyhow::Error::msg)?;
                let secret = new_secret()?;
                let expires_at = expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
                store
                    .create_token(name, &secret.digest, &scopes, now, expires_at)
                    .await?;
                eprintln!("token {name:?} created with scopes {scopes}; its secret (shown once):");
                println!("{}", secret.secret);
                Ok(())
            }
            TokensCommand::List => {
                println!(
                    "{:<24} {:<28} {:<20} {:<20} STATUS",
                    "NAME", "SCOPES", "CREATED", "EXPIRES"
                );
                for t in store.tokens().await? {
                    let status = match (t.revoked_at, t.expires_at) {
                        (Some(_), _) => "revoked",
                        (None, Some(e)) if e <= now => "expired",
                        _ => "active",
                    };
                    println!(
                        "{:<24} {:<28} {:<20} {:<20} {status}",
                        t.name,
                        t.scopes,
                        day(t.created_at),
                        t.expires_at.map_or_else(|| "never".to_owned(), day)
                    );
                }
                Ok(())
            }
            TokensCommand::Revoke(name) => {
                if !store.revoke_token(name, now).await? {
                    bail!("no active token named {name:?}");
                }
                eprintln!("token {name:?} revoked");
                Ok(())
            }
        };
        store.close().await;
        result
    })
}

fn day(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M")
        .to_string()
}
