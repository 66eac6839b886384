//! What a receiver answered.

use super::HandlerError;
use super::outbound::classify;
use reqwest::header::RETRY_AFTER;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The most of a body [`Response::excerpt`] returns, in bytes.
pub const EXCERPT_LIMIT: usize = 4096;

/// A receiver's answer. Any status is an answer; whether it counts as
/// delivered is [`Response::is_success`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Header names in lower case; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced), at most
    /// [`MAX_RESPONSE_BODY`](super::MAX_RESPONSE_BODY) bytes of it.
    pub body: String,
    /// The `Retry-After` header, when it parses.
    pub retry_after: Option<RetryAfter>,
}

/// When the receiver asks to be retried (`Retry-After`), as sent: bounding
/// it is the scheduler's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// After this many seconds.
    Seconds(u64),
    /// At this time.
    At(SystemTime),
}

impl RetryAfter {
    /// Parses a `Retry-After` value: delta-seconds or an HTTP-date.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits to fit is still "later than any bound".
            return Some(RetryAfter::Seconds(value.parse().unwrap_or(u64::MAX)));
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::At)
    }

    /// How long from `now_ms` (unix ms) the receiver asked to wait; a time
    /// already past is no wait.
    pub fn delay_from(&self, now_ms: i64) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(*s),
            RetryAfter::At(at) => {
                let at_ms = at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or_default();
                Duration::from_millis((at_ms - now_ms).max(0) as u64)
            }
        }
    }
}

impl Response {
    /// True for a 2xx status: the only answer that counts as delivered.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body, at most [`EXCERPT_LIMIT`] bytes, cut between
    /// characters: what an attempt record keeps.
    pub fn excerpt(&self) -> String {
        self.body[..self.body.floor_char_boundary(EXCERPT_LIMIT)].to_string()
    }

    /// Reads an answer, keeping at most `limit` bytes of its body.
    pub(super) async fn read(
        mut answer: reqwest::Response,
        limit: usize,
    ) -> Result<Response, HandlerError> {
        let mut headers = BTreeMap::<String, String>::new();
        for (name, value) in answer.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_string())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let retry_after = answer
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(RetryAfter::parse);
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(classify)? {
            let room = limit - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status: answer.status().as_u16(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: BTreeMap::new(),
            body: body.to_string(),
            retry_after: None,
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Seconds(120)));
        assert_eq!(RetryAfter::parse(" 0 "), Some(RetryAfter::Seconds(0)));
        assert_eq!(
            RetryAfter::parse("99999999999999999999999"),
            Some(RetryAfter::Seconds(u64::MAX))
        );
    }

    #[test]
    fn retry_after_http_date() {
        // RFC 9110's example date.
        assert_eq!(
            RetryAfter::parse("Fri, 31 Dec 1999 23:59:59 GMT"),
            Some(RetryAfter::At(
                SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799)
            ))
        );
    }

    #[test]
    fn retry_after_rejects_junk() {
        for junk in ["", "-5", "1.5", "soon", "12s"] {
            assert_eq!(RetryAfter::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn success_is_2xx_only() {
        assert!(response(200, "").is_success());
        assert!(response(299, "").is_success());
        assert!(!response(302, "").is_success());
        assert!(!response(500, "").is_success());
        assert!(!response(199, "").is_success());
    }

    #[test]
    fn excerpt_is_bounded_and_cut_between_characters() {
        assert_eq!(response(200, "short").excerpt(), "short");
        // 'é' is two bytes: 4095 bytes of 'a' then 'é' would straddle the limit.
        let body = format!("{}é", "a".repeat(EXCERPT_LIMIT - 1));
        let excerpt = response(200, &body).excerpt();
        assert_eq!(excerpt.len(), EXCERPT_LIMIT - 1);
        let long = "€".repeat(EXCERPT_LIMIT);
        let excerpt = response(200, &long).excerpt();
        assert!(excerpt.len() <= EXCERPT_LIMIT && excerpt.chars().all(|c| c == '€'));
    }
}
