//! One conformance suite per port. Each scenario is a plain async function over a [`Storage`]; the
//! `*_conformance!` macros instantiate every scenario as a test for one adapter:
//!
//! ```text
//! kurz_ports::event_log_conformance!(my_adapter::TestStorage::new());
//! ```
//!
//! The expression is evaluated once per test and must give fresh, empty storage.

pub mod api_keys;
pub mod certificates;
pub mod click_quota;
pub mod code_registry;
pub mod creation_log;
pub mod directory;
pub mod event_log;
pub mod fixtures;
pub mod history;
pub mod idempotency;
pub mod orphans;
pub mod read_store;

use std::sync::Arc;

use async_trait::async_trait;

/// Says by name that the calling test is skipped because `missing` could not be had (`hint`: how to
/// provide it). With `KURZ_TEST_REQUIRE_SERVICES` set (CI) it fails instead, unless `optional` (for
/// servers that cannot be installed where Kurz is tested, like ScyllaDB). Call it from the test's own
/// thread, which is named after the test. The notice goes past the harness's output capture, so it
/// shows even though the test "passes".
pub fn skip(missing: &str, hint: &str, optional: bool) {
    use std::io::Write as _;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(
        optional || std::env::var_os("KURZ_TEST_REQUIRE_SERVICES").is_none(),
        "{test}: {missing}, but KURZ_TEST_REQUIRE_SERVICES is set ({hint})"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing} ({hint})");
}

/// Fresh storage for one test. `open` may be called again after every earlier handle was dropped,
/// and must then give the same data (as a process restart would).
#[async_trait]
pub trait Storage<P: ?Sized>: Send + Sync {
    async fn open(&self) -> Arc<P>;
}

#[macro_export]
macro_rules! event_log_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::event_log,
            appends_are_read_back_in_order_with_their_positions,
            events_appended_each_on_their_own_are_read_back_with_their_positions,
            events_of_one_code_stay_in_one_partition_in_order,
            reads_start_anywhere_and_respect_the_limit,
            encoded_reads_hold_what_decoded_reads_hold,
            reads_start_anywhere_after_appends_of_every_size,
            end_offsets_follow_appends,
            waiting_ends_when_records_arrive_or_time_runs_out,
            concurrent_appends_get_distinct_positions,
            acknowledged_appends_survive_a_restart,
        );
    };
}

#[macro_export]
macro_rules! read_store_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::read_store,
            links_are_folded_from_their_events,
            applying_a_record_twice_changes_nothing,
            checkpoints_advance_with_the_effects,
            undecodable_records_only_move_the_checkpoint,
            chunks_of_a_write_apply_as_the_write,
            encoded_chunks_apply_as_the_records_decoded,
            chunks_without_their_end_write_nothing,
            stats_cover_the_requested_days,
            rows_of_several_links_are_read_as_one_by_one,
            unique_visitors_count_each_visitor_once,
            bots_are_kept_apart_from_people,
            only_link_changes_are_reported,
            projections_survive_a_restart,
            a_commands_own_link_events_show_at_once_and_the_projector_agrees,
            a_late_link_event_never_rolls_a_link_back,
            racing_projectors_apply_each_record_once,
        );
    };
}

#[macro_export]
macro_rules! link_directory_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::directory,
            links_list_newest_first_per_owner_and_across_owners,
            scans_go_on_strictly_after_a_position,
            changes_keep_a_links_place_and_deleted_links_stay_listed,
            applying_a_record_twice_changes_nothing,
            clicks_and_undecodable_records_only_move_the_checkpoint,
            the_directory_survives_a_restart_and_clears,
            pages_visit_every_matching_link_once,
        );
    };
}

#[macro_export]
macro_rules! link_history_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::history,
            a_links_changes_are_kept_in_order_without_its_clicks,
            applying_a_record_twice_keeps_one_of_each,
            undecodable_records_only_move_the_checkpoint,
            the_history_survives_a_restart_and_clears,
        );
    };
}

#[macro_export]
macro_rules! api_key_store_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::api_keys,
            keys_are_stored_and_read_back,
            a_key_id_is_taken_once,
            revocation_keeps_its_first_time,
            keys_survive_a_restart,
        );
    };
}

#[macro_export]
macro_rules! orphan_visit_store_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::orphans,
            added_days_are_read_back_and_add_up,
            concurrent_adds_all_count,
            a_day_keeps_the_codes_tried_most_within_its_bound,
            orphan_visits_survive_a_restart,
        );
    };
}

#[macro_export]
macro_rules! idempotency_store_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::idempotency,
            a_key_is_reserved_once,
            a_held_reservation_is_read_without_being_made,
            of_racing_reservations_one_wins_and_all_see_it,
            a_released_key_can_be_reserved_again,
            a_reservation_lapses_after_its_ttl,
            reservations_survive_a_restart,
        );
    };
}

#[macro_export]
macro_rules! click_quota_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::click_quota,
            click_quota_is_exact_under_contention,
            click_quota_survives_a_restart_and_follows_the_limit,
        );
    };
}

#[macro_export]
macro_rules! code_registry_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::code_registry,
            a_code_is_claimed_once,
            racing_claims_have_one_winner,
            released_codes_can_be_claimed_again,
            leases_never_overlap,
            claims_and_leases_survive_a_restart,
        );
    };
}

#[macro_export]
macro_rules! creation_log_conformance {
    ($storage:expr) => {
        $crate::conformance_tests!(
            $storage,
            $crate::conformance::creation_log,
            a_creation_claims_its_code_and_appends_its_events,
            a_claimed_code_appends_nothing,
            racing_creations_have_one_winner,
            creations_survive_a_restart,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! conformance_tests {
    ($storage:expr, $module:path, $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                use $module as scenarios;
                scenarios::$scenario($storage).await;
            }
        )+
    };
}
