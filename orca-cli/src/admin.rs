//! Admin verbs that work on the database directly: `migrate`, `config`, `user`, `keys`.
//! They run beside a running server (SQLite is opened as a client), except `keys rotate` on
//! SQLite, which needs the server stopped (a running server keeps its key ring in memory).

use std::io::BufRead;

use orca_core::keyfile;
use orca_core::model::{Principal, Role};
use orca_core::{Actor, Ctx, Error, ErrorKind, KeyRing, Orca, Result};
use secrecy::{ExposeSecret, SecretString};

use crate::cli::{ConfigCmd, KeysCmd, UserCmd};
use crate::config::Config;
use crate::datadir;
use crate::open::{self, Role as DbRole};

/// An open database.
type Opened = orca::Database;

/// Most credentials looked at in one listing.
const SCAN_LIMIT: u32 = 10_000;

/// The actor of admin verbs in the audit log: `orca-cli:<os user>`, with a request id of its
/// own for this invocation, client `local` and user agent `orca-cli/<version>`.
pub fn me() -> Actor {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::geteuid().to_string());
    Actor::new(
        Principal::system(&format!("orca-cli:{user}")),
        Ctx::local(concat!("orca-cli/", env!("CARGO_PKG_VERSION"))),
    )
}

/// Open the database for an admin verb. With `live`, a PostgreSQL database also gets its event
/// bus, to tell running servers about changes they cache (see [`announce_auth_change`]).
async fn open_db(cfg: &Config, role: DbRole, live: bool) -> Result<Opened> {
    if matches!(
        cfg.database()?,
        orca_core::location::DatabaseLocation::Sqlite(_)
    ) {
        datadir::prepare(&cfg.data_dir())?;
    }
    open::open(cfg, role, live).await
}

/// The facade for admin verbs: `ring` decrypts credentials (an ephemeral one when none are
/// touched).
fn facade(opened: &Opened, ring: KeyRing) -> Result<Orca> {
    opened.builder(ring)?.build()
}

/// `orca migrate`.
pub async fn migrate(cfg: &Config) -> Result<()> {
    let opened = open_db(cfg, DbRole::Client, false).await?;
    println!("The database {} is up to date.", opened.location());
    opened.close().await;
    Ok(())
}

/// `orca config check | show`.
pub fn config(cfg: &Config, cmd: &ConfigCmd) {
    match cmd {
        ConfigCmd::Check => {
            let db = cfg
                .database()
                .map(|d| d.to_string())
                .unwrap_or_else(|e| e.to_string());
            println!(
                "The configuration from {} is valid: database {db}, listen {}, data dir {}.",
                cfg.source,
                cfg.http.listen,
                cfg.data_dir().display()
            );
        }
        ConfigCmd::Show => print!("{}", cfg.to_toml()),
    }
}

/// Read a new password: from standard input (one line), or prompted twice on the terminal.
fn read_new_password(username: &str, from_stdin: bool) -> Result<SecretString> {
    let pw = if from_stdin {
        read_stdin_line()?
    } else {
        let a = rpassword::prompt_password(format!("New password for '{username}': "))
            .map_err(tty_error)?;
        let b = rpassword::prompt_password("Repeat it: ").map_err(tty_error)?;
        if a != b {
            return Err(Error::invalid("the passwords differ; nothing was changed"));
        }
        SecretString::from(a)
    };
    orca_core::auth::check_password_policy(username, pw.expose_secret())?;
    Ok(pw)
}

fn tty_error(e: std::io::Error) -> Error {
    Error::invalid(format!(
        "cannot read a password from the terminal ({e}); pipe it in with --password-stdin"
    ))
}

/// One line of standard input, without its line ending.
pub fn read_stdin_line() -> Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::invalid(format!("cannot read standard input: {e}")))?;
    let trimmed = line.trim_end_matches(['\n', '\r']).to_string();
    secrecy::zeroize::Zeroize::zeroize(&mut line);
    if trimmed.is_empty() {
        return Err(Error::invalid(
            "standard input was empty: pipe the password in, e.g. `printf '%s\\n' \"$PW\" | orca ... --password-stdin`",
        ));
    }
    Ok(SecretString::from(trimmed))
}

/// `orca user add | passwd`.
pub async fn user(cfg: &Config, cmd: &UserCmd) -> Result<()> {
    let opened = open_db(cfg, DbRole::Client, true).await?;
    let orca = facade(&opened, KeyRing::ephemeral())?;
    let p = me();
    match cmd {
        UserCmd::Add {
            name,
            role,
            password_stdin,
        } => {
            let role = Role::parse(role)?;
            if orca.find_user(&p, name).await.is_ok() {
                return Err(Error::already_exists(format!(
                    "user '{name}' exists already; change its password with `orca user passwd {name}`"
                )));
            }
            let pw = read_new_password(name, *password_stdin)?;
            let u = orca.add_user(&p, name, role, pw).await?;
            println!("Created user '{}' ({}).", u.username, u.role.as_str());
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let u = orca.find_user(&p, name).await.map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::not_found(format!(
                        "no user '{name}'; create it with `orca user add {name} --role ROLE`"
                    ))
                } else {
                    e
                }
            })?;
            let pw = read_new_password(name, *password_stdin)?;
            // The facade ends every session and API token of the user, audits it once and
            // tells running servers (at once over PostgreSQL's bus; on SQLite they see it
            // within http.auth.cache_ttl_ms).
            orca.reset_password(&p, u.id, pw).await?;
            println!(
                "Changed the password of '{name}'; every session and API token of it has ended."
            );
        }
    }
    opened.close().await;
    Ok(())
}

/// `orca keys list | add | rotate | retire`.
pub async fn keys(cfg: &Config, cmd: &KeysCmd) -> Result<()> {
    let path = cfg.key_file();
    let role = match cmd {
        KeysCmd::Rotate => DbRole::Engine,
        _ => DbRole::Client,
    };
    let mut opened = open_db(cfg, role, false).await.map_err(|e| {
        if role == DbRole::Engine && e.message().contains("holds the lock") {
            Error::new(
                ErrorKind::Conflict,
                "`orca serve` is running on this database: stop it, run `orca keys rotate`, \
                 then start it again (a running server keeps its key ring in memory and could \
                 not decrypt re-encrypted credentials)",
            )
        } else {
            e
        }
    })?;
    // Checks the key file against the database (and creates it on a fresh data dir).
    opened.key_ring().await?;
    // Reads which key seals each credential (no secret is decrypted here).
    let reader = facade(&opened, KeyRing::ephemeral())?;
    match cmd {
        KeysCmd::List => {
            let (ids, primary) = keyfile::key_ids(&path)?;
            let sealed = reader.credential_keys(&me(), "", SCAN_LIMIT).await?;
            println!("{:<8} {:<8} CREDENTIALS", "KEY", "PRIMARY");
            for id in &ids {
                let n = sealed
                    .iter()
                    .filter(|(_, k)| k.as_deref() == Some(id.as_str()))
                    .count();
                let more = if sealed.len() as u32 >= SCAN_LIMIT {
                    "+"
                } else {
                    ""
                };
                let star = if *id == primary { "yes" } else { "" };
                println!("{id:<8} {star:<8} {n}{more}");
            }
            println!("key file: {}", path.display());
        }
        KeysCmd::Add => {
            let id = keyfile::add_key(&path)?;
            println!(
                "Added key '{id}' to {} (not primary yet). Copy this file to every Orca node and \
                 restart them, then run `orca keys rotate` to encrypt everything with '{id}'.",
                path.display()
            );
        }
        KeysCmd::Rotate => rotate(&opened, &path).await?,
        KeysCmd::Retire { id } => {
            let (ids, primary) = keyfile::key_ids(&path)?;
            if !ids.contains(id) {
                return Err(Error::not_found(format!(
                    "the key file {} has no key '{id}' (it has {})",
                    path.display(),
                    ids.join(", ")
                )));
            }
            if *id == primary {
                return Err(Error::conflict(format!(
                    "'{id}' is the primary key (it encrypts new credentials): run `orca keys \
                     rotate` first, then retire '{id}'"
                )));
            }
            let rest = reader.credential_keys(&me(), &primary, SCAN_LIMIT).await?;
            let using = rest
                .iter()
                .filter(|(_, k)| k.as_deref() == Some(id.as_str()))
                .count();
            if using > 0 || rest.len() as u32 >= SCAN_LIMIT {
                return Err(Error::conflict(format!(
                    "key '{id}' still encrypts {using} credential(s); retiring it would make them \
                     unreadable. Run `orca keys rotate` to re-encrypt them, then retire '{id}'"
                )));
            }
            keyfile::remove_key(&path, id)?;
            println!("Retired key '{id}'; {} keys remain.", ids.len() - 1);
        }
    }
    opened.close().await;
    Ok(())
}

async fn rotate(opened: &Opened, path: &std::path::Path) -> Result<()> {
    let (ids, primary) = keyfile::key_ids(path)?;
    let newest = ids.last().cloned().unwrap_or_else(|| primary.clone());
    let leftovers = facade(opened, KeyRing::ephemeral())?
        .credential_keys(&me(), &primary, 1)
        .await?;
    if newest != primary {
        keyfile::set_primary(path, &newest)?;
        println!("'{newest}' is now the primary key.");
    } else if leftovers.is_empty() {
        let id = keyfile::add_key(path)?;
        keyfile::set_primary(path, &id)?;
        println!("Added key '{id}' and made it primary.");
        if opened.is_postgres() {
            println!(
                "Note: other nodes on this database cannot decrypt credentials under '{id}' \
                 until they run with this key file; copy {} to them and restart them now.",
                path.display()
            );
        }
    } else {
        println!("Resuming: some credentials are still under older keys.");
    }
    let ring = keyfile::load(path)?;
    let orca = facade(opened, ring)?;
    let report = orca.reencrypt_credentials(&me()).await?;
    let (ids, primary) = keyfile::key_ids(path)?;
    let old: Vec<&String> = ids.iter().filter(|i| **i != primary).collect();
    println!(
        "Re-encrypted {} credential(s) with '{primary}'{}.",
        report.reencrypted,
        if report.skipped > 0 {
            format!(
                " ({} changed meanwhile and were already current)",
                report.skipped
            )
        } else {
            String::new()
        }
    );
    if !old.is_empty() {
        let list: Vec<&str> = old.iter().map(|s| s.as_str()).collect();
        println!(
            "Older keys no longer needed: {}. Retire each with `orca keys retire ID`.",
            list.join(", ")
        );
    }
    Ok(())
}
