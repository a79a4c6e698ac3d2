//! The WinRM connector against the WinRM test server on loopback: the Connector conformance
//! suite over NTLM-sealed HTTP and over HTTPS + Basic, and WinRM-specific cases (shell reuse,
//! PowerShell, code pages, faults, fault injection, certificates).

#[path = "winrm_support/fixture.rs"]
mod fixture;

mod ntlm_http {
    orca_core::connector_conformance!(super::fixture::Fx::ntlm().await);
}

mod https_basic {
    orca_core::connector_conformance!(super::fixture::Fx::https_basic().await);
}

#[path = "winrm_support/cases.rs"]
mod cases;
