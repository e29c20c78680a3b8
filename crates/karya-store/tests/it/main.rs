//! The storage conformance suite: every test here runs unchanged against SQLite and PostgreSQL.
//!
//! PostgreSQL tests create a database of their own on the server named by
//! `KARYA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and drop it
//! afterwards. They fail, rather than skip, when the server cannot be reached, unless
//! `KARYA_TEST_SKIP_POSTGRES=1` is set.

mod case_suite;
mod consensus_suite;
mod decisions;
mod documents_suite;
mod flow_suite;
mod harness;
mod intake_suite;
mod loops_suite;
mod metrics_suite;
mod qa_suite;
mod sites_suite;
mod sla_suite;
mod suite;
mod views_suite;
mod webhooks_suite;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::harness::TestDb::sqlite().await;
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = crate::harness::TestDb::postgres().await else { return };
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

conformance!(
    clients_are_created_listed_and_unique,
    tenant_reads_never_cross_clients,
    work_item_lifecycle_is_event_sourced,
    illegal_transitions_write_nothing,
    external_ref_and_version_conflicts,
    claim_race_is_exactly_once,
    one_active_assignment_is_enforced_by_the_schema,
    tampering_is_detected_and_named,
    reopening_is_idempotent_and_newer_schemas_are_refused,
    lifecycle_property,
    decisions_follow_authority_and_policy,
    a_policy_change_undoes_and_flags_and_reports,
    decision_replay_matches_the_live_ledger,
    qa_review_enforces_separation_of_duties_and_drives_the_task,
    qa_rework_to_another_worker_releases_the_task,
    qa_gold_tasks_are_scored_and_pause_the_worker,
    sla_term_change_recomputes_open_items_in_bulk,
    invoice_applies_sla_credit_with_evidence,
    undoing_a_decision_reopens_the_item_and_its_sla_clock,
    routing_profiles_rules_and_explanations,
    bulk_import_stores_every_row_with_its_event,
    bulk_import_with_a_bad_row_stores_nothing,
    bulk_import_of_ten_thousand_rows_keeps_the_chain,
    bulk_import_interleaved_with_single_writes_keeps_the_chain,
    offers_reserve_capacity_and_end_once,
    capacity_claims_race_is_exactly_once,
    ranked_claims_take_the_best_task_left_exactly_once,
    pack_steps_weigh_their_own_requirements,
    engagement_packs_are_read_only_by_their_client,
    a_large_transaction_links_every_event_in_order,
    events_of_any_text_from_concurrent_writers_keep_every_chain,
    leadership_is_exclusive_and_passes_on,
    sla_warnings_are_given_once,
    webhook_cursor_advances_only_on_success_in_chain_order,
    webhook_suspends_after_failures_and_resumes,
    consensus_agreement_settles_the_group,
    consensus_disagreement_goes_to_an_adjudicator,
    gold_pause_bars_claims_until_lifted,
    rework_excluded_maker_does_not_get_the_task,
    a_maker_never_checks_their_own_work_on_any_claim_path,
    views_read_queues_outputs_and_history,
    exclusions_affinity_and_channel_caps_are_honoured,
    lapsed_qualifications_send_work_back_to_routing,
    a_lapse_that_breaks_an_any_of_qualification_takes_the_work_back,
    a_bulk_import_starts_each_item_of_a_pack_engagement,
    shifts_drive_presence,
    site_calendar_clocks_engagements_of_several_clients,
    bulk_import_starts_sla_clocks_as_single_intake_does,
    period_report_gives_utilisation_accuracy_and_accuracy_credits,
    jobs_are_held_by_one_claim_and_taken_over_after_their_lease,
    concurrent_job_claims_are_exactly_once,
    the_deliverable_is_assembled_from_the_steps_outputs,
    sites_calendars_and_counts_per_site,
    reassignment_moves_a_task_once_with_its_reason,
    leave_is_booked_and_keeps_the_worker_off_shift,
    reassignment_property,
    documents_are_stored_exactly_and_scoped_to_the_client,
    an_assignment_to_a_missing_worker_is_not_found_and_leaves_nothing,
);

/// Tests of what only one engine has.
mod sqlite_only {
    /// Commits are checkpointed by a task of their own, not by the writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_log_is_folded_into_the_database_file_in_the_background() {
        let db = crate::harness::TestDb::sqlite().await;
        crate::suite::the_log_is_folded_into_the_database_file_in_the_background(&db).await;
        db.finish().await;
    }
}

mod postgres_only {
    /// Events are queued with their change and linked after it commits (migration 17).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn events_left_queued_are_linked_later() {
        let Some(db) = crate::harness::TestDb::postgres().await else {
            return;
        };
        crate::suite::events_left_queued_are_linked_later(&db).await;
        db.finish().await;
    }

    /// Changes commit and read their queued events while another holds the chain head.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn changes_read_their_queued_events_while_the_chain_is_busy() {
        let Some(db) = crate::harness::TestDb::postgres().await else {
            return;
        };
        crate::suite::changes_read_their_queued_events_while_the_chain_is_busy(&db).await;
        db.finish().await;
    }

    /// A conditional write left for the commit still guards the change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writes_at_commit_fail_the_change_when_their_row_moved() {
        let Some(db) = crate::harness::TestDb::postgres().await else {
            return;
        };
        crate::suite::writes_at_commit_fail_the_change_when_their_row_moved(&db).await;
        db.finish().await;
    }
}
