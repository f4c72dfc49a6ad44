//! The `onbehalf` command: `serve` (default), `migrate`, and user administration.

use std::{
    io::{IsTerminal, Read},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{
    auth::{Role, password, service},
    config::Settings,
    db::Db,
    startup::Application,
};

#[derive(Debug, Parser)]
#[command(
    name = "onbehalf",
    version,
    about = "Link your users' accounts at OAuth 2.0 providers and act on their behalf."
)]
struct Cli {
    /// Configuration file (default: ./onbehalf.toml when it exists). Every key can also be set as ONBEHALF_<KEY>,
    /// with __ between nested keys, e.g. ONBEHALF_DATABASE__URL.
    #[arg(long, global = true, env = "ONBEHALF_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply database migrations and exit (the server also applies them at start-up, unless
    /// `database.migrate_on_start` is off).
    Migrate,
    /// Manage local accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Token encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The provider catalog.
    Providers {
        #[command(subcommand)]
        command: ProvidersCommand,
    },
    /// Keys of the service API (/api/v1) for platform backends.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Webhook endpoints: where the platform is told when a link changes (Standard Webhooks 1.0).
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Fill an empty database with synthetic users, linked accounts and audit events (the admin area's scale
    /// benchmark; trying the admin pages on volume). Refuses a database that has users.
    Seed {
        #[arg(long, default_value_t = 100_000)]
        users: i64,
        #[arg(long, default_value_t = 1_000_000)]
        accounts: i64,
        #[arg(long, default_value_t = 10_000_000)]
        events: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ApikeyCommand {
    /// Create a key; it is printed once (only its hash is stored).
    Create {
        /// A name for the key, unique forever (the audit log names the key that acted): letters, digits, - _ .
        #[arg(long)]
        name: String,
        /// A provider id the key may act with; repeat for several. None: every provider.
        #[arg(long = "provider")]
        providers: Vec<String>,
        /// A URL prefix connect sessions may return to (e.g. https://invenio.example.org/account/); repeat for
        /// several. None: the key cannot create connect sessions.
        #[arg(long = "return-url", value_name = "PREFIX")]
        return_urls: Vec<String>,
        /// What the browser pages of a connect session call the platform ("Back to …"); default: the key's name.
        #[arg(long)]
        platform_name: Option<String>,
    },
    /// List the keys (never their secrets).
    List,
    /// Revoke a key: it stops working at once.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Add an endpoint; its signing secret (whsec_…) is printed once.
    Add {
        /// Where to POST: https:// (http:// only to a loopback address with webhooks.allow_http_loopback).
        #[arg(long)]
        url: String,
        /// An event type to send (e.g. account.needs_reconnect); repeat for several. None: every type.
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the endpoints with their health (never their secrets).
    List,
    /// Stop sending to an endpoint.
    Disable {
        id: String,
        #[arg(long, default_value = "disabled by an operator")]
        reason: String,
    },
    /// Send to an endpoint again (deliveries waiting for it go out; replay covers what happened meanwhile).
    Enable { id: String },
    /// A new signing secret, printed once; the previous one keeps signing for webhooks.rotation_overlap.
    RotateSecret { id: String },
    /// Send a webhook.test event to an endpoint.
    Test { id: String },
    /// Send events to an endpoint again: one (--event ID), or every one since a time (--since, Unix ms or RFC 3339).
    Replay {
        id: String,
        #[arg(long = "event", value_name = "EVENT_ID", conflicts_with = "since")]
        event: Option<String>,
        #[arg(long, required_unless_present = "event")]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random key for vault.keys.
    Generate,
    /// Re-encrypt every stored access and refresh token with vault.current_key. Safe while the app runs (the app
    /// must know both the old and the new key meanwhile).
    Rotate,
}

#[derive(Debug, Subcommand)]
enum ProvidersCommand {
    /// Fetch each provider's discovery document and signing keys and report what is wrong.
    Check,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input; with none (or a terminal), one is generated
    /// and printed once.
    Add {
        #[arg(long)]
        email: String,
        /// Display name (default: the part of the email before @).
        #[arg(long, default_value = "")]
        name: String,
        /// Give the account the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Stop an account from signing in, and end its sessions.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Let a disabled account sign in again.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// List all accounts.
    List,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `providers check`: discovery (when the kind uses it) and JWKS for every provider; fails if any is broken.
async fn check_providers(settings: &Settings) -> Result<(), String> {
    let catalog = crate::providers::Catalog::from_settings(settings);
    let http = crate::providers::http_client(&settings.outbound);
    if catalog.all().is_empty() {
        println!("no providers are configured ([providers.<id>] in the configuration)");
        return Ok(());
    }
    let mut broken = 0;
    for provider in catalog.all() {
        println!(
            "{} ({}):",
            provider.id,
            crate::providers::settings::kind_name(provider.kind)
        );
        let endpoints = match provider.endpoints(&http).await {
            Ok(endpoints) => endpoints,
            Err(err) => {
                println!("  FAIL endpoints: {err}");
                broken += 1;
                continue;
            }
        };
        println!("  ok   authorization {}", endpoints.authorization);
        println!("  ok   token         {}", endpoints.token);
        match (&endpoints.jwks_uri, provider.uses_id_token()) {
            (Some(uri), _) => match crate::providers::id_token::fetch_jwks(&http, uri).await {
                Ok(keys) if keys.keys().is_empty() => {
                    println!("  FAIL jwks         {uri}: the key set is empty");
                    broken += 1;
                }
                Ok(keys) => println!("  ok   jwks          {uri} ({} keys)", keys.keys().len()),
                Err(err) => {
                    println!("  FAIL jwks         {err}");
                    broken += 1;
                }
            },
            (None, true) => {
                println!("  FAIL jwks         none configured or discovered, but ID tokens must be verified");
                broken += 1;
            }
            (None, false) => println!("  ok   jwks          not needed (identity from the provider's API)"),
        }
        if provider.client_secret.is_none() {
            println!("  note client_secret is not set: the client authenticates with PKCE only (public client)");
        }
    }
    if broken == 0 {
        Ok(())
    } else {
        Err(format!("{broken} provider check(s) failed"))
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let settings = Settings::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let db = Db::connect(&settings.database).await.map_err(|e| e.to_string())?;
            db.migrate().await.map_err(|e| e.to_string())?;
            // The one migration SQL cannot do (every start does it too): tokens sealed anew, bound to their owner.
            let vault = crate::tokens::vault_from_settings(&settings)?;
            let catalog = crate::providers::Catalog::from_settings(&settings);
            let bound = crate::tokens::rotation::bind_owners(&db, &vault, &catalog)
                .await
                .map_err(|e| e.to_string())?;
            bound.log();
            println!(
                "migrations applied; {} token set(s) bound to their account{}",
                bound.rebound,
                match bound.keys_not_configured.is_empty() {
                    true => String::new(),
                    false => format!(
                        " ({} key(s) not configured here: {:?}; run this where they are)",
                        bound.keys_not_configured.len(),
                        bound.keys_not_configured
                    ),
                }
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            println!("{}", crate::tokens::vault::generate_key());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let vault = crate::tokens::vault_from_settings(&settings)?;
            let db = open_db(&settings).await?;
            let catalog = crate::providers::Catalog::from_settings(&settings);
            let report = crate::tokens::rotation::rotate(&db, &vault, &catalog)
                .await
                .map_err(|e| format!("key rotation stopped: {e}"))?;
            println!(
                "key rotation to `{}`: {} token sets, {} re-encrypted, {} already current, {} undecryptable, {} left \
                 on other keys",
                vault.current_key_id(),
                report.rows,
                report.resealed,
                report.current,
                report.undecryptable.len(),
                report.left_on_old_keys
            );
            for account in &report.undecryptable {
                println!("  account {account}: a token does not decrypt; the account is marked error");
            }
            if !report.keys_not_configured.is_empty() {
                let keys: Vec<_> = report.keys_not_configured.iter().map(|k| format!("`{k}`")).collect();
                return Err(format!(
                    "tokens were sealed meanwhile with {}, which this instance does not have (another instance has \
                     it); add it to vault.keys here and run again",
                    keys.join(", ")
                ));
            }
            if report.left_on_old_keys > 0 {
                return Err(format!(
                    "{} token sets still use another key (an instance still seals with it?); keep the old keys and \
                     run again",
                    report.left_on_old_keys
                ));
            }
            Ok(())
        }
        Command::Providers {
            command: ProvidersCommand::Check,
        } => check_providers(&settings).await,
        Command::User { command } => user_command(&open_db(&settings).await?, command).await,
        Command::Apikey { command } => apikey_command(&settings, &open_db(&settings).await?, command).await,
        Command::Webhook { command } => webhook_command(&settings, &open_db(&settings).await?, command).await,
        Command::Seed {
            users,
            accounts,
            events,
        } => {
            let db = open_db(&settings).await?;
            let sizes = crate::seed::Sizes {
                users,
                accounts,
                events,
            };
            crate::seed::seed(&db, sizes, |line| println!("{line}"))
                .await
                .map_err(|e| e.to_string())?;
            println!("seeded {users} users, {accounts} linked accounts, {events} audit events");
            Ok(())
        }
    }
}

async fn webhook_command(settings: &Settings, db: &Db, command: WebhookCommand) -> Result<(), String> {
    use crate::webhooks::endpoints::{self, ChangedBy, NewWebhook, Replay};
    let by = ChangedBy::default();
    match command {
        WebhookCommand::Add {
            url,
            events,
            description,
        } => {
            let vault = crate::tokens::vault_from_settings(settings)?;
            let new = NewWebhook {
                url: &url,
                events: &events,
                description: description.as_deref(),
            };
            let (endpoint, secret) = endpoints::add(db, &vault, &settings.webhooks, new, by)
                .await
                .map_err(|e| e.to_string())?;
            let events = if endpoint.events.is_empty() {
                "every event".to_owned()
            } else {
                endpoint.events.join(", ")
            };
            println!("added webhook endpoint {} → {} ({events})", endpoint.id, endpoint.url);
            println!("signing secret (shown once, store it now): {secret}");
        }
        WebhookCommand::List => {
            let list = endpoints::list(db).await.map_err(|e| e.to_string())?;
            if list.is_empty() {
                println!("no webhook endpoints (onbehalf webhook add --url <url>)");
            }
            for e in list {
                let state = match (&e.disabled_reason, e.enabled) {
                    (_, true) if e.consecutive_failures > 0 => format!("failing ({} in a row)", e.consecutive_failures),
                    (_, true) => "enabled".to_owned(),
                    (Some(reason), false) => format!("disabled: {reason}"),
                    (None, false) => "disabled".to_owned(),
                };
                let events = if e.events.is_empty() {
                    "every event".to_owned()
                } else {
                    e.events.join(",")
                };
                println!(
                    "{}\t{}\t{state}\t{events}\t{}",
                    e.id,
                    e.url,
                    e.description.unwrap_or_default()
                );
            }
        }
        WebhookCommand::Disable { id, reason } => {
            endpoints::set_disabled(db, &id, Some(&reason), by)
                .await
                .map_err(|e| e.to_string())?;
            println!("disabled webhook endpoint {id}");
        }
        WebhookCommand::Enable { id } => {
            endpoints::set_disabled(db, &id, None, by)
                .await
                .map_err(|e| e.to_string())?;
            println!("enabled webhook endpoint {id}");
        }
        WebhookCommand::RotateSecret { id } => {
            let vault = crate::tokens::vault_from_settings(settings)?;
            let secret = endpoints::rotate_secret(db, &vault, &settings.webhooks, &id, by)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "new signing secret for {id} (shown once; the previous one also signs for {}): {secret}",
                humantime_serde::re::humantime::format_duration(settings.webhooks.rotation_overlap)
            );
        }
        WebhookCommand::Test { id } => {
            let (event, enabled) = endpoints::send_test(db, &id).await.map_err(|e| e.to_string())?;
            if enabled {
                println!("queued test event {event} for {id} (a running server sends it)");
            } else {
                println!("queued test event {event} for {id}; the endpoint is disabled: it goes out once enabled");
            }
        }
        WebhookCommand::Replay { id, event, since } => {
            let what = match (&event, &since) {
                (Some(event), _) => Replay::Event(event),
                (None, Some(since)) => Replay::Since(parse_time(since)?),
                (None, None) => return Err("name an --event or a --since time".into()),
            };
            let queued = endpoints::replay(db, &id, what, by).await.map_err(|e| e.to_string())?;
            println!("queued {queued} deliveries for {id} (a running server sends them)");
        }
    }
    Ok(())
}

/// Unix milliseconds, or an RFC 3339 time.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| format!("`{text}` is neither Unix milliseconds nor an RFC 3339 time (2026-12-01T00:00:00Z)"))
}

async fn apikey_command(settings: &Settings, db: &Db, command: ApikeyCommand) -> Result<(), String> {
    use crate::service_api::keys;
    match command {
        ApikeyCommand::Create {
            name,
            providers,
            return_urls,
            platform_name,
        } => {
            let mut known: Vec<String> = settings.providers.keys().cloned().collect();
            if settings.demo.enabled {
                known.push(crate::config::DEMO_PROVIDER_ID.to_owned());
            }
            let new = keys::NewKey {
                name: &name,
                providers: &providers,
                return_urls: &return_urls,
                platform_name: platform_name.as_deref(),
            };
            let (key, secret) = keys::create(&db.pool, new, &known).await.map_err(|e| e.to_string())?;
            let scope = key.providers.as_deref().unwrap_or("every provider");
            println!("created API key {} (providers: {scope})", key.name);
            match key.return_prefixes().collect::<Vec<_>>() {
                prefixes if prefixes.is_empty() => {
                    println!("connect sessions: none (no --return-url)")
                }
                prefixes => println!(
                    "connect sessions return to: {} (as \"{}\")",
                    prefixes.join(", "),
                    key.platform_name()
                ),
            }
            println!("key (shown once, store it now): {secret}");
            Ok(())
        }
        ApikeyCommand::List => {
            let keys = keys::list(&db.pool).await.map_err(|e| e.to_string())?;
            if keys.is_empty() {
                println!("no API keys (onbehalf apikey create --name <name>)");
            }
            let when = |at: Option<i64>| at.map_or_else(|| "never".to_owned(), crate::datetime::format_time);
            for key in keys {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", crate::datetime::format_time(at)),
                    None => "active".to_owned(),
                };
                let returns: Vec<_> = key.return_prefixes().collect();
                println!(
                    "{}\t{state}\tproviders: {}\treturn URLs: {}\tcreated {}\tlast used {}",
                    key.name,
                    key.providers.as_deref().unwrap_or("all"),
                    if returns.is_empty() {
                        "none".to_owned()
                    } else {
                        returns.join(" ")
                    },
                    crate::datetime::format_time(key.created_at),
                    when(key.last_used_at)
                );
            }
            Ok(())
        }
        ApikeyCommand::Revoke { name } => {
            keys::revoke(&db.pool, &name).await.map_err(|e| e.to_string())?;
            println!("revoked API key {name}");
            Ok(())
        }
    }
}

/// The database for a command other than `migrate`: migrated first, or checked to be, as `serve` does
/// (`database.migrate_on_start`).
async fn open_db(settings: &Settings) -> Result<Db, String> {
    let db = Db::connect(&settings.database).await.map_err(|e| e.to_string())?;
    db.prepare_schema(settings.database.migrate_on_start)
        .await
        .map_err(|e| e.to_string())?;
    Ok(db)
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings).await.map_err(|e| e.to_string())?;
    let url = app.state().settings.server.public_url();
    tracing::info!("onbehalf listening on port {}; open {url}", app.port());
    app.run().await.map_err(|e| e.to_string())
}

async fn user_command(db: &Db, command: UserCommand) -> Result<(), String> {
    match command {
        UserCommand::Add { email, name, admin } => {
            let (password, generated) = match read_password_from_stdin()? {
                Some(p) => (p, false),
                None => (password::generate(), true),
            };
            let role = if admin { Role::Admin } else { Role::User };
            let user = service::create_user(db, &email, &name, &password, role)
                .await
                .map_err(describe)?;
            println!(
                "created {} ({}, id {})",
                user.email.as_deref().unwrap_or_default(),
                user.role.as_str(),
                user.id
            );
            if generated {
                println!("password (shown once, store it now): {password}");
            }
            Ok(())
        }
        UserCommand::Disable { email } => {
            service::set_disabled_by_email(db, &email, true)
                .await
                .map_err(describe)?;
            println!("disabled {email}; its sessions have ended");
            Ok(())
        }
        UserCommand::Enable { email } => {
            service::set_disabled_by_email(db, &email, false)
                .await
                .map_err(describe)?;
            println!("enabled {email}");
            Ok(())
        }
        UserCommand::List => {
            let users = service::list_users(db).await.map_err(describe)?;
            println!(
                "{:<6} {:<40} {:<24} {:<6} {:<9} name",
                "id", "email", "external id", "role", "status"
            );
            for u in users {
                let status = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<6} {:<40} {:<24} {:<6} {:<9} {}",
                    u.id,
                    u.email.as_deref().unwrap_or("-"),
                    u.external_id.as_deref().unwrap_or("-"),
                    u.role.as_str(),
                    status,
                    u.display_name
                );
            }
            Ok(())
        }
    }
}

fn describe(err: service::AuthError) -> String {
    match err {
        service::AuthError::Invalid(field) => format!("{}: {}", field.field, field.message),
        service::AuthError::EmailTaken => "an account with this email already exists".to_owned(),
        other => other.to_string(),
    }
}

/// The first line of standard input, unless it is a terminal or empty.
fn read_password_from_stdin() -> Result<Option<String>, String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut input = String::new();
    stdin
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = input.lines().next().unwrap_or_default().to_owned();
    Ok((!password.is_empty()).then_some(password))
}
