//! The audit: what each lambda hook's guests are granted (mode ∩ ceiling
//! ∩ request ∩ imports, with the outbound policy's verdict on each host),
//! and the sandbox's run-time decisions as a timeline filtered by hook,
//! guest, capability and verdict, denials marked.

use super::{encode, next_offset};
use crate::page::{Failure, Reply};
use crate::viewer::Viewer;
use crate::{Console, at};
use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use hookd_model::audit::CapabilityClass;
use serde::Deserialize;
use serde_json::{Value, json};

/// The audit log, filtered.
pub(super) fn routes() -> Router<Console> {
    Router::new().route(&at("/audit"), get(show))
}

/// Decisions a page of the timeline shows.
const PAGE_SIZE: usize = 50;

/// Lambda hooks whose grants the page shows at most; beyond, each hook's
/// own page has its grant.
const GRANTS_SHOWN: usize = 100;

/// Hooks read to find the lambda ones.
const HOOKS_READ: usize = 1000;

/// The timeline's filters, as the API takes them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    hook: Option<String>,
    guest: Option<String>,
    capability: Option<String>,
    verdict: Option<String>,
    offset: Option<String>,
}

impl Filters {
    /// The filters that are set, as `name=value` with the value encoded.
    fn set(&self) -> Vec<String> {
        [
            ("hook", &self.hook),
            ("guest", &self.guest),
            ("capability", &self.capability),
            ("verdict", &self.verdict),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.as_deref().filter(|v| !v.is_empty())?;
            Some(format!("{name}={}", encode(value)))
        })
        .collect()
    }

    /// The API's query: the filters that are set, this page.
    fn query(&self) -> String {
        let mut query = vec![format!("size={PAGE_SIZE}")];
        query.extend(self.set());
        if let Some(offset) = self.offset.as_deref().filter(|o| !o.is_empty()) {
            query.push(format!("offset={}", encode(offset)));
        }
        query.join("&")
    }

    /// The console's link to the next page with the same filters.
    fn next_link(&self, offset: &str) -> String {
        let mut query = self.set();
        query.push(format!("offset={}", encode(offset)));
        at(&format!("/audit?{}", query.join("&")))
    }
}

/// `GET /console/audit`.
async fn show(viewer: Viewer, Query(filters): Query<Filters>) -> Result<Reply, Failure> {
    let timeline = viewer.get(&format!("/audit?{}", filters.query())).await?;
    let hooks = viewer
        .get_all(&format!("/event-hooks?size={HOOKS_READ}"), HOOKS_READ)
        .await?;
    let mut grants = Vec::new();
    for hook in hooks.iter().filter(|h| h["handler"] == "lambda") {
        if grants.len() == GRANTS_SHOWN {
            break;
        }
        let id = hook["id"].as_str().unwrap_or_default();
        let grant = viewer
            .get(&format!("/event-hooks/{}/capabilities", encode(id)))
            .await?;
        grants.push(json!({"hook": hook, "grants": super::grant::view(&grant)}));
    }
    let capabilities: Vec<&str> = CapabilityClass::ALL.iter().map(|c| c.as_str()).collect();
    let next = next_offset(&timeline).map(|offset| filters.next_link(&offset));
    viewer.show(
        "audit.html",
        "audit",
        json!({
            "title": "Audit",
            "grants": grants,
            "records": timeline["data"],
            "next": next,
            "filters": {
                "hook": filters.hook,
                "guest": filters.guest,
                "capability": filters.capability,
                "verdict": filters.verdict,
            },
            "capabilities": capabilities,
            "lambda_hooks": hooks.iter().filter(|h| h["handler"] == "lambda").map(|h| h["id"].clone()).collect::<Vec<Value>>(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_that_are_set_reach_the_api_and_the_next_link() {
        let filters = Filters {
            guest: Some("a b".into()),
            verdict: Some("denied".into()),
            hook: Some(String::new()),
            ..Filters::default()
        };
        assert_eq!(filters.query(), "size=50&guest=a%20b&verdict=denied");
        assert_eq!(
            filters.next_link("x="),
            "/console/audit?guest=a%20b&verdict=denied&offset=x%3D"
        );
    }
}
