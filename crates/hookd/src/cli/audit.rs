//! `hookd audit`: the sandbox's run-time decisions (`GET /audit`).

use super::client::{Client, encode};
use super::print_listing;
use super::table::{Table, cell, time_ms};

/// A verdict to filter on.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Verdict {
    /// The guest got what it asked for.
    Allowed,
    /// The guest was refused.
    Denied,
}

/// Which decisions to list.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only those taken for this hook (its id).
    #[arg(long)]
    hook: Option<String>,
    /// Only those about this guest (its name).
    #[arg(long)]
    guest: Option<String>,
    /// Only those with this verdict.
    #[arg(long, value_enum)]
    verdict: Option<Verdict>,
}

impl AuditArgs {
    /// `/audit` with the filters as its query.
    fn path(&self) -> String {
        let verdict = self.verdict.map(|v| match v {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
        });
        let query: Vec<String> = [
            ("hook", self.hook.as_deref()),
            ("guest", self.guest.as_deref()),
            ("verdict", verdict),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v))))
        .collect();
        if query.is_empty() {
            "/audit".into()
        } else {
            format!("/audit?{}", query.join("&"))
        }
    }
}

/// Lists the decisions, every page.
pub async fn run(client: &Client, json: bool, filter: AuditArgs) -> anyhow::Result<()> {
    let records = client.list(&filter.path()).await?;
    print_listing(json, records, |records| {
        Table::of(
            records,
            &[
                ("TIME", |r| time_ms(&r["at_ms"])),
                ("HOOK", |r| cell(&r["hook_id"])),
                ("GUEST", |r| cell(&r["guest"]["name"])),
                ("CAPABILITY", |r| cell(&r["capability"])),
                ("TARGET", |r| cell(&r["target"])),
                ("VERDICT", |r| cell(&r["verdict"])),
                ("COUNT", |r| cell(&r["count"])),
                ("REASON", |r| cell(&r["reason"])),
            ],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_query() {
        let none = AuditArgs {
            hook: None,
            guest: None,
            verdict: None,
        };
        assert_eq!(none.path(), "/audit");
        let all = AuditArgs {
            hook: Some("h".into()),
            guest: Some("a b".into()),
            verdict: Some(Verdict::Denied),
        };
        assert_eq!(all.path(), "/audit?hook=h&guest=a%20b&verdict=denied");
    }
}
