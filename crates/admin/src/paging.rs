//! Kong's paged listings: `size` and `offset` in, `{"data", "next",
//! "offset"}` out, with every filter of the request kept in `next`.

use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use hookd_store::Page;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;

/// Page size when none is asked for, and the largest allowed, as Kong.
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

/// A request for a listing: its query (the page and any filters) and the
/// path it was asked at.
pub(crate) struct ListRequest {
    /// The query string's pairs; the last of a repeated name wins.
    pub query: HashMap<String, String>,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ListRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        let OriginalUri(uri) = OriginalUri::from_request_parts(parts, state).await?;
        Ok(ListRequest {
            query,
            path: uri.path().to_string(),
        })
    }
}

impl ListRequest {
    /// The page asked for; a size out of range is Kong's error.
    pub fn page(&self) -> ApiResult<Page> {
        let size = match self.query.get("size") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(ApiError::InvalidSize(format!(
                        "size must be an integer between 1 and {MAX_PAGE_SIZE}"
                    )));
                }
            },
        };
        Ok(Page {
            size,
            offset: self.query.get("offset").cloned(),
        })
    }

    /// Kong's list answer: `{"data", "next"}`, and `offset` when there is
    /// a next page; `next` keeps the page size and every filter asked for.
    pub fn answer(&self, data: Vec<Value>, next: Option<String>) -> Json<Value> {
        let mut answer = json!({ "data": data, "next": null });
        if let Some(offset) = next {
            // size first, as Kong writes it, then the filters, then the offset.
            let mut kept: Vec<(&String, &String)> =
                self.query.iter().filter(|(k, _)| *k != "offset").collect();
            kept.sort_by_key(|(k, _)| (*k != "size", k.as_str()));
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in kept {
                q.append_pair(k, v);
            }
            q.append_pair("offset", &offset);
            let path = self.path.trim_end_matches('/');
            answer["next"] = Value::from(format!("{path}?{}", q.finish()));
            answer["offset"] = Value::from(offset);
        }
        Json(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)], path: &str) -> ListRequest {
        ListRequest {
            query: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path: path.to_string(),
        }
    }

    #[test]
    fn next_keeps_the_size_and_every_filter() {
        let asked = request(
            &[
                ("verdict", "denied"),
                ("size", "2"),
                ("hook", "h"),
                ("offset", "old"),
            ],
            "/audit/",
        );
        let Json(answer) = asked.answer(Vec::new(), Some("d-0a 1".into()));
        assert_eq!(
            answer["next"],
            "/audit?size=2&hook=h&verdict=denied&offset=d-0a+1"
        );
        assert_eq!(answer["offset"], "d-0a 1");
        let Json(last) = asked.answer(Vec::new(), None);
        assert_eq!(last, json!({"data": [], "next": null}));
    }

    #[test]
    fn sizes_are_kongs() {
        assert_eq!(request(&[], "/").page().unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(request(&[("size", "1000")], "/").page().unwrap().size, 1000);
        for bad in ["0", "1001", "-1", "x"] {
            assert!(matches!(
                request(&[("size", bad)], "/").page(),
                Err(ApiError::InvalidSize(_))
            ));
        }
    }
}
