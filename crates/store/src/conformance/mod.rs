//! The store's conformance suite: what every backend must do, written
//! once against [`crate::Store`] and run on each backend. A backend that passes
//! it is a backend. Tests of one backend's own machinery (sled's trees,
//! PostgreSQL's rows) sit next to that backend.
//!
//! On PostgreSQL each test gets a database of its own (see
//! [`crate::testing`]).

mod audit;
mod entities;
mod guests;
mod outbox;
mod queue;
mod tokens;

use crate::testing::TestDatabase;

/// Each test, on sled in a temporary directory and on PostgreSQL in a
/// fresh database.
macro_rules! conformance {
    ($($concept:ident::$test:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = crate::Store::open(dir.path()).unwrap();
                    super::$concept::$test(store).await;
                }
            )*
        }

        mod on_postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let Some((_db, store)) = TestDatabase::with_store().await else {
                        return;
                    };
                    super::$concept::$test(store).await;
                }
            )*
        }
    };
}

conformance! {
    entities::insert_writes_entity_and_its_three_events_in_order,
    entities::unique_values_are_refused_and_released,
    entities::foreign_keys_must_exist_and_restrict_deletes,
    entities::cascading_delete_emits_events_for_every_entity_removed,
    entities::listing_pages_by_id,
    audit::pages_newest_first_across_verdicts_with_filters,
    audit::retention_keeps_denials_longer,
    guests::a_name_points_at_its_latest_bytes_and_keeps_its_id,
    guests::a_guest_without_a_digest_is_refused_as_such,
    guests::delete_keeps_bytes_another_name_uses,
    outbox::published_events_come_out_in_order_and_are_counted,
    tokens::a_new_token_replaces_the_old,
    tokens::a_token_dies_with_its_admin_and_stays_dead,
    tokens::no_token_for_an_admin_that_does_not_exist,
    queue::dispatch_moves_events_into_due_deliveries_atomically,
    queue::a_delivery_stored_at_its_first_attempts_end_takes_its_outbox_record_with_it,
    queue::hook_deliveries_page_newest_first,
    queue::retention_removes_the_oldest_finished_beyond_count_and_age,
}
