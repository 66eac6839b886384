//! `http`: the granted hosts go to the wasi-http hook, which checks every
//! request against them.

use super::{ApplyKind, GuestContext};
use hookd_model::capability::{AllowedHost, HttpHosts};

impl ApplyKind for HttpHosts {
    fn apply(host: &AllowedHost, to: &mut GuestContext<'_>) -> Result<(), String> {
        to.http_hosts.push(host.clone());
        Ok(())
    }

    fn target(host: &AllowedHost) -> String {
        host.to_string()
    }
}
