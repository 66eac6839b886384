//! Waiting for something to happen without sleeping a guessed time.

use std::future::Future;
use std::time::Duration;

/// Longest wait for anything the server should do by itself; generous,
/// because CI machines are shared and slow. Reaching it fails the test.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it yields a value; fails the test after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("gave up waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
