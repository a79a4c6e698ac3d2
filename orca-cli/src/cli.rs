//! The command line (clap derive). Every verb has an example in its `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Orca: run commands on fleets of machines and keep every job, output line and action.
#[derive(Debug, Parser)]
#[command(
    name = "orca",
    version,
    about,
    after_help = "Examples:\n  orca serve                         # API + engine on ./orca-data, http://127.0.0.1:8080\n  orca login --username admin\n  orca run --system local -- uptime\n  orca jobs list"
)]
pub struct Cli {
    /// The configuration file (TOML; see docs/config.example.toml).
    #[arg(long, global = true, env = "ORCA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the embedded database and generated secrets live (default ./orca-data).
    #[arg(long, global = true, env = "ORCA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The Orca server for client verbs (default: the one you logged in to, else
    /// http://127.0.0.1:8080).
    #[arg(long, global = true, env = "ORCA_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// How listings are printed.
    #[arg(
        long,
        short = 'o',
        global = true,
        env = "ORCA_OUTPUT",
        default_value = "table"
    )]
    pub output: OutputFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How listings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run the engine (no configuration needed).
    #[command(
        after_help = "Examples:\n  orca serve\n  orca serve --listen 0.0.0.0:8080 --data-dir /var/lib/orca\n  orca serve --admin-password-file /run/secrets/orca-admin   # first start: admin's password\n  ORCA_ADMIN_PASSWORD='choose-a-long-one' orca serve         # the same, from the environment\n\nThe first admin's password (first start only; otherwise generated and printed once) comes from\n--admin-password-file or ORCA_ADMIN_PASSWORD. Orca removes ORCA_ADMIN_PASSWORD from its\nenvironment at start, but /proc/<pid>/environ keeps showing the initial environment to root\nand to Orca's own user: prefer the file (see docs/security.md)."
    )]
    Serve(ServeArgs),
    /// Run the engine only (scale-out on PostgreSQL).
    #[command(after_help = "Example:\n  ORCA_DATABASE_URL=postgres://orca@db/orca orca worker")]
    Worker,
    /// Create or upgrade the database schema, then exit.
    #[command(after_help = "Example:\n  orca migrate --config /etc/orca/orca.toml")]
    Migrate,
    /// Check or show the configuration.
    #[command(
        subcommand,
        after_help = "Examples:\n  orca config check --config orca.toml\n  ORCA_HTTP_LISTEN=0.0.0.0:8080 orca config show"
    )]
    Config(ConfigCmd),
    /// Manage users directly in the database.
    #[command(
        subcommand,
        after_help = "Examples:\n  orca user add alice --role operator\n  orca user passwd admin"
    )]
    User(UserCmd),
    /// Manage the credential encryption keys.
    #[command(
        subcommand,
        after_help = "Examples:\n  orca keys list\n  orca keys rotate && orca keys retire k1"
    )]
    Keys(KeysCmd),
    /// Log in to a server; the session is stored (mode 0600) for the other verbs.
    #[command(
        after_help = "Examples:\n  orca login --username admin\n  echo \"$PASSWORD\" | orca login --username admin --password-stdin --server http://orca:8080"
    )]
    Login(LoginArgs),
    /// End the stored session.
    #[command(after_help = "Example:\n  orca logout")]
    Logout,
    /// Registered systems.
    #[command(
        subcommand,
        after_help = "Examples:\n  orca systems list\n  orca systems add web1 --host 10.0.0.5 --user deploy --key-file ~/.ssh/id_ed25519\n  orca systems probe web1"
    )]
    Systems(SystemsCmd),
    /// Pinned SSH host keys.
    #[command(
        subcommand,
        after_help = "Examples:\n  orca hostkeys list web1\n  orca hostkeys approve web1 SHA256:Qm9v... --algorithm ssh-ed25519"
    )]
    Hostkeys(HostkeysCmd),
    /// Run a command on systems, following its output live.
    #[command(
        after_help = "Examples:\n  orca run --system local -- uname -a\n  orca run --tag web --concurrency 5 --timeout 60 -- 'systemctl restart nginx'\n\nExits 0 if every system completed, 1 otherwise."
    )]
    Run(RunArgs),
    /// Jobs.
    #[command(
        subcommand,
        after_help = "Examples:\n  orca jobs list --status failed\n  orca jobs show 0195f3c2-...\n  orca jobs retry 0195f3c2-..."
    )]
    Jobs(JobsCmd),
    /// Print an execution's output.
    #[command(
        after_help = "Examples:\n  orca logs 0195f3c2-...\n  orca logs 0195f3c2-... --follow"
    )]
    Logs(LogsArgs),
    /// Search the audit log.
    #[command(
        after_help = "Examples:\n  orca audit\n  orca audit --actor admin --action create --limit 20 --output json"
    )]
    Audit(AuditArgs),
}

/// `orca serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides http.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serve the API without running the engine here (another `orca worker` or `orca serve`
    /// on the same PostgreSQL runs the jobs).
    #[arg(long)]
    pub no_engine: bool,
    /// On first start, the `admin` user's password is the first line of this file (instead of
    /// ORCA_ADMIN_PASSWORD, or a generated one). Ignored once users exist.
    #[arg(long, value_name = "FILE", env = "ORCA_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
}

/// `orca config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration file and environment; print one line.
    #[command(after_help = "Example:\n  orca config check --config /etc/orca/orca.toml")]
    Check,
    /// Print the effective configuration (file < environment), secrets hidden.
    #[command(after_help = "Example:\n  orca config show > orca.toml")]
    Show,
}

/// `orca user`.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    #[command(
        after_help = "Examples:\n  orca user add alice --role operator\n  printf '%s\\n' \"$PW\" | orca user add ci --role viewer --password-stdin"
    )]
    Add {
        /// User name.
        name: String,
        /// Role.
        #[arg(long, value_parser = ["admin", "operator", "viewer"])]
        role: String,
        /// Read the password from standard input (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password.
    #[command(after_help = "Example:\n  orca user passwd admin")]
    Passwd {
        /// User name.
        name: String,
        /// Read the password from standard input (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `orca keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List the keys and how many credentials each encrypts.
    #[command(after_help = "Example:\n  orca keys list")]
    List,
    /// Add a new key (not used to encrypt yet): copy the key file to every node, restart them,
    /// then `orca keys rotate`.
    #[command(after_help = "Example:\n  orca keys add")]
    Add,
    /// Make the newest key primary (adding one if needed) and re-encrypt every credential
    /// with it. Safe to interrupt: run it again to finish.
    #[command(after_help = "Example:\n  orca keys rotate")]
    Rotate,
    /// Remove a key that no credential uses any more.
    #[command(after_help = "Example:\n  orca keys retire k1")]
    Retire {
        /// Key id, e.g. k1.
        id: String,
    },
}

/// `orca login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(long, short = 'u', default_value = "admin")]
    pub username: String,
    /// Read the password from standard input (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `orca systems`.
#[derive(Debug, Subcommand)]
pub enum SystemsCmd {
    /// List systems.
    #[command(
        after_help = "Examples:\n  orca systems list\n  orca systems list --tag web --output json"
    )]
    List {
        /// Only systems with this tag (repeatable).
        #[arg(long)]
        tag: Vec<String>,
    },
    /// Register a system.
    #[command(
        after_help = "Examples:\n  orca systems add web1 --host 10.0.0.5 --user deploy --key-file ~/.ssh/id_ed25519 --tag web\n  orca systems add db1 --host db1.lan --user root --password-stdin --host-key-policy tofu"
    )]
    Add(SystemAddArgs),
    /// Remove a system.
    #[command(after_help = "Example:\n  orca systems rm web1")]
    Rm {
        /// Name or id.
        system: String,
    },
    /// Check that a system answers (and record its health).
    #[command(after_help = "Example:\n  orca systems probe web1")]
    Probe {
        /// Name or id.
        system: String,
    },
}

/// `orca systems add`.
#[derive(Debug, Args)]
pub struct SystemAddArgs {
    /// Unique name.
    pub name: String,
    /// Host name or address (default: the name).
    #[arg(long)]
    pub host: Option<String>,
    /// Port (default 22 for linux, 5985 for windows).
    #[arg(long)]
    pub port: Option<u16>,
    /// System type.
    #[arg(long = "type", default_value = "linux", value_parser = ["linux", "windows", "local"])]
    pub system_type: String,
    /// Login user name.
    #[arg(long)]
    pub user: Option<String>,
    /// A private key file to log in with.
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    pub key_file: Option<PathBuf>,
    /// Read the login password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Tag (repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// What to do with an SSH host key that is not pinned: strict (only approved keys), tofu
    /// (pin on first contact), insecure (accept any).
    #[arg(long, default_value = "strict", value_parser = ["strict", "tofu", "insecure"])]
    pub host_key_policy: String,
}

/// `orca hostkeys`.
#[derive(Debug, Subcommand)]
pub enum HostkeysCmd {
    /// List the pinned host keys of a system.
    #[command(after_help = "Example:\n  orca hostkeys list web1")]
    List {
        /// Name or id.
        system: String,
    },
    /// Approve (pin) a host key. Without a fingerprint, probes the system and shows the key it
    /// offers; compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host.
    #[command(
        after_help = "Examples:\n  orca hostkeys approve web1 SHA256:Qm9v... --algorithm ssh-ed25519\n  orca hostkeys approve web1            # shows the offered key, asks to confirm"
    )]
    Approve {
        /// Name or id.
        system: String,
        /// The `SHA256:...` fingerprint.
        fingerprint: Option<String>,
        /// Key algorithm.
        #[arg(long, default_value = "ssh-ed25519")]
        algorithm: String,
        /// Approve the offered key without asking (only with no fingerprint given).
        #[arg(long)]
        yes: bool,
    },
}

/// `orca run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A system to run on (name or id; repeatable).
    #[arg(long = "system", short = 's')]
    pub systems: Vec<String>,
    /// Every active system with this tag (repeatable).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    /// At most this many systems at once.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Per-system timeout in seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// A name for the job.
    #[arg(long)]
    pub name: Option<String>,
    /// Submit and print the job id without following it.
    #[arg(long)]
    pub detach: bool,
    /// The command (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `orca jobs`.
#[derive(Debug, Subcommand)]
pub enum JobsCmd {
    /// List jobs, newest first.
    #[command(
        after_help = "Examples:\n  orca jobs list\n  orca jobs list --status failed --output json"
    )]
    List {
        /// Only this status.
        #[arg(long, value_parser = ["pending", "running", "completed", "failed", "cancelled"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a job and its executions.
    #[command(after_help = "Example:\n  orca jobs show 0195f3c2-...")]
    Show {
        /// Job id.
        id: String,
    },
    /// Cancel a job.
    #[command(after_help = "Example:\n  orca jobs cancel 0195f3c2-...")]
    Cancel {
        /// Job id.
        id: String,
    },
    /// Run a job again on the systems where it did not complete.
    #[command(after_help = "Example:\n  orca jobs retry 0195f3c2-...")]
    Retry {
        /// Job id.
        id: String,
        /// Submit and print the new job id without following it.
        #[arg(long)]
        detach: bool,
    },
}

/// `orca logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Execution id.
    pub execution: String,
    /// Keep printing until the execution ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `orca audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (create, login, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this resource type (system, job, user, auth, ...).
    #[arg(long)]
    pub resource_type: Option<String>,
    /// Not before this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_verb_has_an_example_in_its_help() {
        fn walk(c: &clap::Command, path: &str) {
            for sub in c.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                let help = sub
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(help.contains("Example"), "`{p} --help` has no example");
                walk(sub, &p);
            }
        }
        super::Cli::command().debug_assert();
        walk(&super::Cli::command(), "orca");
    }

    #[test]
    fn run_takes_the_command_after_the_double_dash() {
        use clap::Parser;
        let cli = super::Cli::parse_from(["orca", "run", "-s", "a", "-s", "b", "--", "ls", "-l"]);
        match cli.command {
            super::Command::Run(r) => {
                assert_eq!(r.systems, ["a", "b"]);
                assert_eq!(r.command, ["ls", "-l"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
