//! Stores for tests: an embedded one in a temporary directory, and one on
//! a fresh PostgreSQL database that is dropped afterwards.
//!
//! The PostgreSQL server is `HOOKD_TEST_POSTGRES_URL` (by default the
//! local one, `postgres://postgres@127.0.0.1:5432/postgres`). When it
//! cannot be reached, a test on it says so loudly and passes, unless
//! `HOOKD_REQUIRE_POSTGRES=1`, as CI sets: then it fails.

use crate::{Connection, Due, GuestVersion, Queue, Store, Upload};
use hookd_model::delivery::{Attempt, Delivery, DeliveryState};
use serde_json::{Map, Value};
use std::time::Duration;

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("HOOKD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Whether a test must fail, not skip, when PostgreSQL cannot be reached.
pub fn postgres_required() -> bool {
    std::env::var("HOOKD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A database made for one test, dropped (with whatever still uses it)
/// when this is.
pub struct TestDatabase {
    name: String,
    /// How to reach it.
    pub connection: Connection,
}

impl TestDatabase {
    /// A fresh, empty database; none when the server cannot be reached
    /// and that is allowed (see the module's doc).
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let server = server_url();
        let name = format!("hookd_test_{}", uuid::Uuid::new_v4().simple());
        let created = async {
            let admin = crate::postgres::pool(&connection(&server)).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await?;
            admin.close().await;
            Ok::<_, crate::Error>(())
        }
        .await;
        match created {
            Ok(()) => Some(TestDatabase {
                connection: connection(&database_url(&server, &name)),
                name,
            }),
            Err(e) if !postgres_required() => {
                eprintln!(
                    "SKIPPED {test} on PostgreSQL: {server} cannot be reached ({e}); \
                     set HOOKD_REQUIRE_POSTGRES=1 to make this a failure"
                );
                None
            }
            Err(e) => panic!("{test}: PostgreSQL at {server} is required and failed: {e}"),
        }
    }

    /// [`TestDatabase::create`] for the test running on this thread, by
    /// its name: the harness names each test's thread after the test, and
    /// `#[tokio::test]` runs the body there.
    pub async fn for_this_test() -> Option<TestDatabase> {
        let thread = std::thread::current();
        TestDatabase::create(thread.name().unwrap_or("a test")).await
    }

    /// A fresh database for this test and a store on it.
    pub async fn with_store() -> Option<(TestDatabase, Store)> {
        let db = TestDatabase::for_this_test().await?;
        let store = db.store().await;
        Some((db, store))
    }

    /// A store on it.
    pub async fn store(&self) -> Store {
        Store::connect(&self.connection, uuid::Uuid::new_v4())
            .await
            .unwrap()
    }

    /// Runs one statement with `$1` bound to `bytes`, for tests that
    /// write what hookd never would (records that do not decode). Returns
    /// the rows it changed.
    pub async fn write_raw(&self, statement: &str, bytes: &[u8]) -> u64 {
        let pool = crate::postgres::pool(&self.connection).await.unwrap();
        let done = sqlx::query(statement)
            .bind(bytes)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        done.rows_affected()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (server_url(), self.name.clone());
        // Drop runs outside any runtime it could await on.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = crate::postgres::pool(&connection(&server)).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<_, crate::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("dropping test database {}: {e}", self.name);
        }
    }
}

fn connection(url: &str) -> Connection {
    Connection {
        url: url.to_string(),
        max_connections: 4,
        statement_timeout: Duration::from_secs(30),
    }
}

/// `server` with its database replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("HOOKD_TEST_POSTGRES_URL is a URL");
    url.set_path(name);
    url.to_string()
}

/// `d` after one attempt at `at_ms` that left it in `state`, final: what
/// a finished delivery looks like to the store.
pub fn finished(mut d: Delivery, at_ms: i64, state: DeliveryState) -> Delivery {
    d.attempts.push(Attempt {
        number: 1,
        at_ms,
        latency_ms: 1,
        ok: state == DeliveryState::Succeeded,
        status: Some(200),
        error: None,
        response: None,
        result: None,
    });
    d.state = state;
    d.next_attempt_at_ms = None;
    d
}

/// Every hook's deliveries due by `now_ms`, at most `limit`, none
/// skipped.
pub async fn due<Q: Queue + ?Sized>(queue: &Q, now_ms: i64, limit: usize) -> Vec<Delivery> {
    queue
        .due_deliveries(Due::every_hook(now_ms, limit), &mut |_| false)
        .await
        .unwrap()
}

/// An admin record as the Admin API writes one, with token login on.
pub fn admin(id: uuid::Uuid, username: &str) -> Value {
    serde_json::json!({"id": id.to_string(), "username": username, "rbac_token_enabled": true})
}

/// A guest's report as the sandbox makes one, for these bytes' digest.
pub fn guest_report(digest: &str) -> Map<String, Value> {
    let mut report = Map::new();
    report.insert("digest".into(), Value::from(digest));
    report.insert("size".into(), Value::from(3));
    report.insert("kind".into(), Value::from("component"));
    report
}

/// Uploads `bytes` as the guest `name`, with a report naming `digest`.
pub async fn upload_guest(
    store: &Store,
    name: &str,
    bytes: &[u8],
    digest: &str,
    now_s: i64,
) -> (Value, Upload) {
    let report = guest_report(digest);
    let guest = GuestVersion {
        name,
        bytes,
        report: &report,
    };
    store.put_guest(guest, now_s).await.unwrap()
}
