//! Python arguments into orca-core requests. Only conversion: every rule (names, limits,
//! which fields a system type needs) is checked by orca-core.

use std::collections::BTreeMap;

use orca_core::model::{
    AuditFilter, Credential, HostKeyPolicy, JobFilter, JobOptions, JobSpec, JobStatus, NewSystem,
    Page, Shell, SystemFilter, SystemType, Targets,
};
use orca_core::{Error, Result};
use secrecy::SecretString;

/// `add_system` arguments.
#[derive(Debug)]
pub struct SystemArgs {
    pub name: String,
    pub hostname: Option<String>,
    pub system_type: String,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    pub host_key_policy: Option<String>,
    pub tags: Option<Vec<String>>,
    pub options: Option<BTreeMap<String, String>>,
}

impl SystemArgs {
    /// The request for [`orca_core::Orca::add_system`].
    pub fn into_new_system(self) -> Result<NewSystem> {
        let credential = match (self.password, self.private_key, self.passphrase) {
            (None, None, None) => Credential::None,
            (Some(p), None, None) => Credential::Password(SecretString::from(p)),
            (None, Some(k), pp) => Credential::PrivateKey {
                key: SecretString::from(k),
                passphrase: pp.map(SecretString::from),
            },
            (Some(_), Some(_), _) => {
                return Err(Error::invalid(
                    "give either password or private_key, not both",
                ));
            }
            (_, None, Some(_)) => {
                return Err(Error::invalid(
                    "passphrase is for an encrypted private_key: give the key too",
                ));
            }
        };
        Ok(NewSystem {
            name: self.name,
            hostname: self.hostname,
            port: self.port,
            system_type: Some(SystemType::parse(&self.system_type)?),
            username: self.username.unwrap_or_default(),
            credential,
            tags: self.tags.unwrap_or_default(),
            host_key_policy: self
                .host_key_policy
                .as_deref()
                .map(HostKeyPolicy::parse)
                .transpose()?,
            options: self.options.unwrap_or_default(),
        })
    }
}

/// `run` arguments.
#[derive(Debug)]
pub struct RunArgs {
    pub command: String,
    pub systems: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub name: Option<String>,
    pub concurrency: Option<u32>,
    pub timeout: Option<u64>,
    pub retries: u32,
    pub shell: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
}

fn parse_shell(s: &str) -> Result<Shell> {
    const ALL: [Shell; 5] = [
        Shell::Default,
        Shell::Sh,
        Shell::Bash,
        Shell::Cmd,
        Shell::Powershell,
    ];
    ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
        Error::invalid(format!(
            "unknown shell '{s}': use default, sh, bash, cmd or powershell"
        ))
    })
}

impl RunArgs {
    /// The request for [`orca_core::Orca::submit`].
    pub fn into_spec(self) -> Result<JobSpec> {
        Ok(JobSpec {
            name: self.name,
            command: self.command,
            targets: Targets {
                systems: self.systems.unwrap_or_default(),
                tags: self.tags.unwrap_or_default(),
            },
            options: JobOptions {
                concurrency: self.concurrency,
                timeout_seconds: self.timeout,
                retries: self.retries,
                shell: self
                    .shell
                    .as_deref()
                    .map(parse_shell)
                    .transpose()?
                    .unwrap_or_default(),
                env: self.env.unwrap_or_default(),
                ..JobOptions::default()
            },
        })
    }
}

/// A page from `limit` and `offset` (checked by orca-core).
pub fn page(limit: u32, offset: u64) -> Result<Page> {
    Page::new(offset, limit)
}

/// The filter of `systems()`.
pub fn system_filter(tags: Option<Vec<String>>, system_type: Option<&str>) -> Result<SystemFilter> {
    Ok(SystemFilter {
        tags: tags.unwrap_or_default(),
        system_type: system_type.map(SystemType::parse).transpose()?,
        ..SystemFilter::default()
    })
}

/// The filter of `jobs()`.
pub fn job_filter(status: Option<&str>, created_by: Option<String>) -> Result<JobFilter> {
    Ok(JobFilter {
        status: status.map(JobStatus::parse).transpose()?,
        created_by,
    })
}

/// The filter of `audit()`.
pub fn audit_filter(
    actor: Option<String>,
    resource_type: Option<String>,
    action: Option<String>,
) -> AuditFilter {
    AuditFilter {
        actor,
        resource_type,
        action,
        ..AuditFilter::default()
    }
}

/// A job id given by the caller.
pub fn job_id(s: &str) -> Result<orca_core::ids::JobId> {
    s.parse()
}
