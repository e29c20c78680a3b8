//! Routing scenarios as data: a world of workers, a few calls, and the decisions rendered as
//! one line each, compared with the expected lines. Then a property test that drives random
//! calls and checks the invariants against a model kept independently of the router.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::civil::time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::id::{ClientId, EngagementId, SiteId, TaskId, WorkerId};
use crate::model::{Designation, Priority};
use crate::workforce::{
    Capacity, ChannelCap, Presence, Qualification, ShiftPattern, Skill, WorkerProfile,
};

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

fn wid(n: u128) -> WorkerId {
    WorkerId::from_uuid(uuid(0x1000 + n))
}

fn tid(n: u128) -> TaskId {
    TaskId::from_uuid(uuid(0x2000 + n))
}

fn site(n: u128) -> SiteId {
    SiteId::from_uuid(uuid(0x3000 + n))
}

const CLIENT: ClientId = ClientId::from_uuid(uuid::Uuid::from_u128(0x4001));
const RIVAL: ClientId = ClientId::from_uuid(uuid::Uuid::from_u128(0x4002));
const ENGAGEMENT: EngagementId = EngagementId::from_uuid(uuid::Uuid::from_u128(0x5001));

/// Minutes after 2026-03-02 04:00 UTC, a Monday.
fn at(minutes: i64) -> Timestamp {
    "2026-03-02T04:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

/// An analyst at site 1 speaking English, on shift 02:00-14:00 UTC daily, capacity 10 units.
fn worker(n: u128) -> WorkerProfile {
    WorkerProfile {
        id: wid(n),
        site_id: Some(site(1)),
        designation: Designation::Analyst,
        languages: vec!["en".into()],
        qualifications: Vec::new(),
        skills: Vec::new(),
        growth_skills: Vec::new(),
        shift: ShiftPattern::daily(
            TimeZone::UTC,
            time(2, 0, 0, 0),
            SignedDuration::from_hours(12),
        ),
        capacity: Capacity {
            units_max: 10,
            channels: Vec::new(),
        },
        excluded_clients: Vec::new(),
        attributes: Vec::new(),
    }
}

fn qualification(kind: &str, until: Option<Timestamp>) -> Qualification {
    Qualification {
        kind: kind.into(),
        field: None,
        issuer: "board".into(),
        valid_from: "2020-01-01T00:00:00Z".parse().unwrap(),
        valid_until: until,
    }
}

fn skill(name: &str, level: u8) -> Skill {
    Skill {
        name: name.into(),
        level,
    }
}

/// A research task of 1 hour, weight 5, needing nothing.
fn requirements() -> Requirements {
    Requirements::any("research", 5, SignedDuration::from_hours(1))
}

fn task(n: u128, req: Requirements) -> OpenTask {
    OpenTask {
        id: tid(n),
        client_id: CLIENT,
        engagement_id: ENGAGEMENT,
        priority: Priority::Normal,
        created_at: at(0),
        due_at: None,
        requirements: Arc::new(req),
        preferred_worker: None,
        excluded_workers: Vec::new(),
        attributes: Vec::new(),
        step: "research".into(),
        service_line: None,
    }
}

/// A router with these workers, all available since `at(0)`.
fn world(workers: Vec<WorkerProfile>) -> Router {
    let mut router = Router::new(RoutingConfig::default());
    for w in workers {
        let id = w.id;
        assert!(router.upsert_worker(w, at(0), 999).is_empty());
        router.set_presence(id, Presence::Available, at(0)).unwrap();
    }
    router
}

fn name(worker_id: WorkerId) -> String {
    format!("w{}", worker_id.as_uuid().as_u128() - 0x1000)
}

fn render(effect: &Effect) -> String {
    let explain = |e: &Explanation| {
        let mut text = format!(
            "step={} rule={} eligible={}/{}",
            e.step_name,
            e.rule.code(),
            e.eligible,
            e.candidates
        );
        if !e.rejected.is_empty() {
            let parts: Vec<String> = e
                .rejected
                .iter()
                .map(|(r, n)| format!("{}:{n}", r.code()))
                .collect();
            text.push_str(&format!(" rejected={}", parts.join(",")));
        }
        if e.review_required {
            text.push_str(" review");
        }
        text
    };
    let t = |task_id: &TaskId| format!("t{}", task_id.as_uuid().as_u128() - 0x2000);
    match effect {
        Effect::Offer {
            task_id,
            worker_id,
            explanation,
            ..
        } => format!(
            "offer {} {} {}",
            t(task_id),
            name(*worker_id),
            explain(explanation)
        ),
        Effect::Assign {
            task_id,
            worker_id,
            explanation,
        } => format!(
            "assign {} {} via={} {}",
            t(task_id),
            name(*worker_id),
            explanation.path.code(),
            explain(explanation)
        ),
        Effect::Withdraw {
            task_id,
            worker_id,
            reason,
        } => format!(
            "withdraw {} {} {}",
            t(task_id),
            name(*worker_id),
            reason.code()
        ),
        Effect::Release {
            task_id,
            worker_id,
            reason,
        } => format!(
            "release {} {} {}",
            t(task_id),
            name(*worker_id),
            reason.code()
        ),
        Effect::Escalate {
            task_id,
            explanation,
        } => format!("escalate {} {}", t(task_id), explain(explanation)),
        Effect::Wait {
            task_id,
            explanation,
        } => format!("wait {} {}", t(task_id), explain(explanation)),
    }
}

/// A call on the router, as a scenario step.
enum Call {
    Add(OpenTask, i64),
    Accept(u128, u128, i64),
    Decline(u128, u128, i64),
    GetNext(u128, i64),
    Tick(i64),
    Roll(u16),
}

/// Runs the calls against a world and compares every decision, one line each.
fn check(workers: Vec<WorkerProfile>, calls: Vec<Call>, expect: &[&str]) {
    let mut router = world(workers);
    let mut roll = 999;
    let mut lines = Vec::new();
    for call in calls {
        let effects = match call {
            Call::Add(task, m) => vec![router.add_task(task, at(m), roll).unwrap()],
            Call::Accept(t, w, m) => vec![router.accept(tid(t), wid(w), at(m)).unwrap()],
            Call::Decline(t, w, m) => router.decline(tid(t), wid(w), at(m), roll).unwrap(),
            Call::GetNext(w, m) => router
                .get_next(wid(w), at(m), roll)
                .unwrap()
                .into_iter()
                .collect(),
            Call::Tick(m) => router.tick(at(m), roll),
            Call::Roll(r) => {
                roll = r;
                Vec::new()
            }
        };
        lines.extend(effects.iter().map(render));
    }
    let expect: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
    assert_eq!(lines, expect, "\ngot:\n{}\n", lines.join("\n"));
}

#[test]
fn expired_qualification_stops_counting_and_held_work_is_rerouted() {
    let mut req = requirements();
    req.qualifications = vec!["cpa".into()];
    let lapsed = Qualification {
        ..qualification("cpa", Some(at(-1)))
    };
    let mut w1 = worker(1);
    w1.qualifications = vec![lapsed];
    let mut w2 = worker(2);
    w2.qualifications = vec![qualification("cpa", Some(at(20)))];
    let mut w3 = worker(3);
    w3.qualifications = vec![qualification("cpa", None)];
    w3.site_id = Some(site(2));
    let mut req_home = req.clone();
    req_home.home_sites = vec![site(1)];
    check(
        vec![w1, w2, w3],
        vec![
            Call::Add(task(1, req_home), 0),
            Call::Accept(1, 2, 1),
            // w2's CPA lapses at minute 20: the task goes back and on to w3 (the workflow has
            // widened beyond the home site by then).
            Call::Tick(19),
            Call::Tick(20),
        ],
        &[
            // The home-site bucket is the smallest source of candidates: w3 is not looked at.
            "offer t1 w2 step=as_required rule=best_score eligible=1/2 rejected=qualification_expired:1",
            "assign t1 w2 via=offer step=as_required rule=best_score eligible=1/1",
            "release t1 w2 qualification_expired",
            "offer t1 w3 step=widen_sites rule=best_score eligible=1/3 rejected=qualification_expired:1,declined_before:1",
        ],
    );
}

/// Worker `n`, on shift every day from 00:00 to 04:30 UTC.
fn leaving_at_half_past_four(n: u128) -> WorkerProfile {
    let mut w = worker(n);
    w.shift = ShiftPattern::daily(
        TimeZone::UTC,
        time(0, 0, 0, 0),
        SignedDuration::from_mins(4 * 60 + 30),
    );
    w
}

/// The standard requirements, expected to take `minutes`.
fn taking(minutes: i64) -> Requirements {
    let mut req = requirements();
    req.expected_handling = SignedDuration::from_mins(minutes);
    req
}

#[test]
fn work_that_outlasts_a_shift_goes_to_a_worker_who_can_finish_it() {
    // At 04:00 w1's shift ends in 30 minutes; w2's in twenty hours.
    check(
        vec![leaving_at_half_past_four(1), worker(2)],
        vec![
            // Both may start it (w1 would hand it over at 04:30); w2 can finish it.
            Call::Add(task(1, taking(120)), 0),
            // 20 minutes of work fit before w1's shift ends; w2 now carries load.
            Call::Add(task(2, taking(20)), 0),
        ],
        &[
            "offer t1 w2 step=as_required rule=best_score eligible=2/2",
            "offer t2 w1 step=as_required rule=best_score eligible=2/2",
        ],
    );
}

#[test]
fn no_work_starts_without_a_useful_sitting_before_the_shift_ends() {
    // At 04:20 w1's shift ends in ten minutes: less than the shortest sitting worth starting
    // (fifteen minutes), so two hours of work do not start; five minutes of work fit whole.
    let mut router = world(vec![leaving_at_half_past_four(1)]);
    let line = render(&router.add_task(task(1, taking(120)), at(20), 999).unwrap());
    assert_eq!(
        line,
        "wait t1 step=as_required rule=no_eligible_worker eligible=0/1 rejected=shift_ends_too_soon:1"
    );
    let line = render(&router.add_task(task(2, taking(5)), at(20), 999).unwrap());
    assert_eq!(
        line,
        "offer t2 w1 step=as_required rule=best_score eligible=1/1"
    );
}

#[test]
fn work_longer_than_one_sitting_goes_to_the_worker_with_more_shift_left() {
    // Seven hours of work, more than the four-hour cap on continuous work: it is done over
    // several sittings. At 04:00 w1's shift ends in three hours (they would hand it over);
    // w2's in twenty, and w2 gets it.
    let mut ending = worker(1);
    ending.shift = ShiftPattern::daily(
        TimeZone::UTC,
        time(0, 0, 0, 0),
        SignedDuration::from_hours(7),
    );
    let mut long = requirements();
    long.expected_handling = SignedDuration::from_hours(7);
    check(
        vec![ending, worker(2)],
        vec![Call::Add(task(1, long), 0)],
        &["offer t1 w2 step=as_required rule=best_score eligible=2/2"],
    );
}

#[test]
fn conflicts_of_interest_exclude_a_worker_from_a_client() {
    let mut conflicted = worker(1);
    conflicted.excluded_clients = vec![CLIENT];
    let mut other_client = worker(2);
    other_client.excluded_clients = vec![RIVAL];
    let mut t2 = task(2, requirements());
    t2.excluded_workers = vec![wid(2)];
    check(
        vec![conflicted, other_client],
        vec![
            Call::Add(task(1, requirements()), 0),
            Call::Add(t2, 0),
            // Pulling does not get around the exclusions either.
            Call::GetNext(1, 1),
            Call::GetNext(2, 1),
        ],
        &[
            "offer t1 w2 step=as_required rule=best_score eligible=1/2 rejected=client_conflict:1",
            "wait t2 step=as_required rule=no_eligible_worker eligible=0/2 rejected=worker_excluded:1,client_conflict:1",
        ],
    );
}

#[test]
fn case_affinity_keeps_the_same_analyst_when_possible() {
    let busy = worker(2);
    let mut t1 = task(1, requirements());
    t1.preferred_worker = Some(wid(2));
    let mut t2 = task(2, requirements());
    t2.preferred_worker = Some(wid(2));
    let mut t3 = task(3, requirements());
    t3.preferred_worker = Some(wid(2));
    check(
        vec![worker(1), busy],
        vec![
            Call::Add(t1, 0),
            Call::Add(t2, 1),
            // w2 is at capacity: affinity yields to eligibility.
            Call::Add(t3, 2),
        ],
        &[
            "offer t1 w2 step=as_required rule=affinity eligible=2/2",
            "offer t2 w2 step=as_required rule=affinity eligible=2/2",
            "offer t3 w1 step=as_required rule=best_score eligible=1/2 rejected=capacity_full:1",
        ],
    );
}

#[test]
fn escalation_after_the_workflow_times_out() {
    let mut req = requirements();
    req.qualifications = vec!["llb".into()];
    check(
        vec![worker(1)],
        vec![
            Call::Add(task(1, req), 0),
            Call::Tick(5),
            Call::Tick(15),
            Call::Tick(30),
            Call::Tick(59),
            Call::Tick(60),
        ],
        &[
            "wait t1 step=as_required rule=no_eligible_worker eligible=0/0",
            "wait t1 step=drop_optional_skills rule=no_eligible_worker eligible=0/0",
            "wait t1 step=widen_sites rule=no_eligible_worker eligible=0/0",
            "wait t1 step=offer_to_leads rule=no_eligible_worker eligible=0/0",
            "escalate t1 step=escalate rule=escalated eligible=0/0",
        ],
    );
}

#[test]
fn optional_skills_are_dropped_after_their_timeout() {
    let mut req = requirements();
    req.skills = vec![
        SkillRequirement {
            skill: "patent_search".into(),
            level_min: 5,
            optional: false,
        },
        SkillRequirement {
            skill: "german".into(),
            level_min: 6,
            optional: true,
        },
    ];
    let mut w1 = worker(1);
    w1.skills = vec![skill("patent_search", 7), skill("german", 3)];
    let mut w2 = worker(2);
    w2.skills = vec![skill("patent_search", 4)];
    check(
        vec![w1, w2],
        vec![Call::Add(task(1, req), 0), Call::Tick(4), Call::Tick(5)],
        &[
            // Nobody has german at 5 or more: the index yields no candidate at all.
            "wait t1 step=as_required rule=no_eligible_worker eligible=0/0",
            "offer t1 w1 step=drop_optional_skills rule=best_score eligible=1/2 rejected=skill_too_low:1",
        ],
    );
}

#[test]
fn capacity_weights_let_one_long_or_several_short_tasks_through() {
    let research = Requirements::any("research", 10, SignedDuration::from_hours(1));
    let ticket = Requirements::any("ticket", 2, SignedDuration::from_mins(10));
    let mut w1 = worker(1);
    w1.capacity.channels = vec![ChannelCap {
        channel: "ticket".into(),
        units_max: 4,
    }];
    check(
        vec![w1],
        vec![
            Call::Add(task(1, research), 0),
            Call::Add(task(2, ticket.clone()), 0),
            Call::Decline(1, 1, 1),
            Call::Add(task(3, ticket.clone()), 2),
            Call::Add(task(4, ticket.clone()), 2),
            // The ticket channel is capped at 4 units (2 tickets).
            Call::Add(task(5, ticket), 2),
        ],
        &[
            "offer t1 w1 step=as_required rule=best_score eligible=1/1",
            "wait t2 step=as_required rule=no_eligible_worker eligible=0/1 rejected=capacity_full:1",
            "withdraw t1 w1 declined",
            "wait t1 step=as_required rule=no_eligible_worker eligible=0/1 rejected=declined_before:1",
            "offer t3 w1 step=as_required rule=best_score eligible=1/1",
            "offer t4 w1 step=as_required rule=best_score eligible=1/1",
            "wait t5 step=as_required rule=no_eligible_worker eligible=0/1 rejected=capacity_full:1",
        ],
    );
}

#[test]
fn an_offer_that_times_out_goes_to_the_next_best() {
    // Equal scores: the worker registered first wins, deterministically.
    check(
        vec![worker(1), worker(2)],
        vec![
            Call::Add(task(1, requirements()), 0),
            // Not yet expired: nothing happens.
            Call::Tick(0),
            Call::Tick(1),
        ],
        &[
            "offer t1 w1 step=as_required rule=best_score eligible=2/2",
            "withdraw t1 w1 timed_out",
            "offer t1 w2 step=as_required rule=best_score eligible=1/2 rejected=declined_before:1",
        ],
    );
}

#[test]
fn get_next_gives_the_most_urgent_task_the_worker_may_take() {
    let mut urgent = task(1, requirements());
    urgent.due_at = Some(at(120));
    let mut later = task(2, requirements());
    later.due_at = Some(at(600));
    let mut req_cpa = requirements();
    req_cpa.qualifications = vec!["cpa".into()];
    let mut most_urgent_but_unqualified = task(3, req_cpa);
    most_urgent_but_unqualified.due_at = Some(at(61));
    let mut router = world(vec![worker(1)]);
    router
        .set_presence(wid(1), Presence::Offline, at(0))
        .unwrap();
    for t in [later, urgent, most_urgent_but_unqualified] {
        assert!(render(&router.add_task(t, at(0), 999).unwrap()).starts_with("wait"));
    }
    router
        .set_presence(wid(1), Presence::Available, at(1))
        .unwrap();
    let lines: Vec<String> = (0..3)
        .filter_map(|_| router.get_next(wid(1), at(1), 999).unwrap())
        .map(|e| render(&e))
        .collect();
    assert_eq!(
        lines,
        [
            // Both tasks of the group were weighed; the most urgent won.
            "assign t1 w1 via=get_next step=as_required rule=best_score eligible=2/2",
            "assign t2 w1 via=get_next step=as_required rule=best_score eligible=1/1",
        ]
    );
}

#[test]
fn get_next_weighs_priority_among_the_most_urgent_tasks_of_a_group() {
    // Same requirements, so one group: t1 (normal) must start 30 minutes before t2 (urgent),
    // but with hours of slack left on both, the urgent one scores higher and goes first.
    let mut normal = task(1, requirements());
    normal.due_at = Some(at(200));
    let mut urgent = task(2, requirements());
    urgent.due_at = Some(at(230));
    urgent.priority = Priority::Urgent;
    let mut router = world(vec![worker(1)]);
    router
        .set_presence(wid(1), Presence::Offline, at(0))
        .unwrap();
    for t in [normal, urgent] {
        assert!(render(&router.add_task(t, at(0), 999).unwrap()).starts_with("wait"));
    }
    router
        .set_presence(wid(1), Presence::Available, at(1))
        .unwrap();
    let first = router.get_next(wid(1), at(1), 999).unwrap().unwrap();
    assert_eq!(
        render(&first),
        "assign t2 w1 via=get_next step=as_required rule=best_score eligible=2/2"
    );
}

#[test]
fn growth_assignments_go_to_learners_by_draw_and_are_reviewed() {
    let mut req = requirements();
    req.skills = vec![SkillRequirement {
        skill: "icd10".into(),
        level_min: 6,
        optional: false,
    }];
    let mut learner = worker(1);
    learner.skills = vec![skill("icd10", 5)];
    learner.growth_skills = vec!["icd10".into()];
    let mut expert = worker(2);
    expert.skills = vec![skill("icd10", 9)];
    check(
        vec![learner, expert],
        vec![
            Call::Add(task(1, req.clone()), 0),
            Call::Roll(42),
            Call::Add(task(2, req), 0),
        ],
        &[
            "offer t1 w2 step=as_required rule=best_score eligible=1/2 rejected=skill_too_low:1",
            "offer t2 w1 step=as_required rule=growth eligible=2/2 review",
        ],
    );
}

#[test]
fn target_expressions_and_breaks_and_continuous_hours() {
    let mut req = requirements();
    req.target = Some(
        expr::parse("worker.attr.team == 'ip' && task.attr.lang in worker.languages").unwrap(),
    );
    let mut t1 = task(1, req);
    t1.attributes = vec![("lang".into(), "de".into())];
    let mut ip_de = worker(1);
    ip_de.attributes = vec![("team".into(), "ip".into())];
    ip_de.languages.push("de".into());
    let mut ip_en = worker(2);
    ip_en.attributes = vec![("team".into(), "ip".into())];
    let mut router = world(vec![ip_de, ip_en, worker(3)]);
    let line = render(&router.add_task(t1, at(0), 999).unwrap());
    // w3 has no team: the first comparison is an error, but CEL's `&&` is false when either
    // side is false, so w3 does not meet the target rather than failing it.
    assert_eq!(
        line,
        "offer t1 w1 step=as_required rule=best_score eligible=1/3 rejected=target_not_met:2"
    );
    // Alone, the missing attribute is an error, named as such.
    let mut req = requirements();
    req.target = Some(expr::parse("worker.attr.team == 'ip'").unwrap());
    let line = render(&router.add_task(task(9, req), at(0), 999).unwrap());
    assert_eq!(
        line,
        "offer t9 w2 step=as_required rule=best_score eligible=2/3 rejected=target_error:1"
    );

    // w3 is on a break: not a candidate. w1 has worked since minute 0: a 1-hour task from
    // minute 212 would pass the 4-hour cap. w2 took a break and is back since minute 100.
    router.set_presence(wid(3), Presence::Break, at(1)).unwrap();
    router.set_presence(wid(2), Presence::Break, at(1)).unwrap();
    router
        .set_presence(wid(2), Presence::Available, at(100))
        .unwrap();
    let line = render(
        &router
            .add_task(task(2, requirements()), at(212), 999)
            .unwrap(),
    );
    assert_eq!(
        line,
        "offer t2 w2 step=as_required rule=best_score eligible=1/2 rejected=continuous_work_cap:1"
    );
}

#[test]
fn workflows_are_validated_and_stepped_by_elapsed_time() {
    let standard = RoutingWorkflow::standard();
    assert_eq!(standard.validate(), Ok(()));
    let mins = SignedDuration::from_mins;
    let steps: Vec<(usize, Option<SignedDuration>)> = [0, 4, 5, 14, 15, 29, 30, 59, 60, 1_000]
        .into_iter()
        .map(|m| standard.step_at(mins(m)))
        .collect();
    assert_eq!(
        steps,
        [
            (0, Some(mins(5))),
            (0, Some(mins(5))),
            (1, Some(mins(15))),
            (1, Some(mins(15))),
            (2, Some(mins(30))),
            (2, Some(mins(30))),
            (3, Some(mins(60))),
            (3, Some(mins(60))),
            (4, None),
            (4, None),
        ]
    );
    let mut bad = standard.clone();
    bad.steps[1].timeout = None;
    assert_eq!(bad.validate(), Err(WorkflowError::MissingTimeout(1)));
    assert_eq!(
        RoutingWorkflow { steps: vec![] }.validate(),
        Err(WorkflowError::Empty)
    );
}

// ---- property test -------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Add {
        quals: u8,
        sites: u8,
        weight: u8,
        handling_mins: u8,
        client: bool,
        preferred: Option<u8>,
        excluded: Option<u8>,
        ticket: bool,
    },
    Accept(u8),
    Decline(u8),
    GetNext(u8),
    Presence(u8, u8),
    Close(u8),
    Advance(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => ((0u8..4, 0u8..4, 1u8..8, 1u8..120), (any::<bool>(), proptest::option::of(0u8..6), proptest::option::of(0u8..6), any::<bool>())).prop_map(
            |((quals, sites, weight, handling_mins), (client, preferred, excluded, ticket))| Op::Add { quals, sites, weight, handling_mins, client, preferred, excluded, ticket }
        ),
        2 => (0u8..40).prop_map(Op::Accept),
        1 => (0u8..40).prop_map(Op::Decline),
        2 => (0u8..6).prop_map(Op::GetNext),
        1 => (0u8..6, 0u8..4).prop_map(|(w, p)| Op::Presence(w, p)),
        1 => (0u8..40).prop_map(Op::Close),
        1 => (0u8..90).prop_map(Op::Advance),
    ]
}

/// Workers with mixed qualifications (some lapsing during the run), sites, capacities,
/// shifts and conflicts.
fn property_workers() -> Vec<WorkerProfile> {
    (0..6u128)
        .map(|n| {
            let mut w = worker(n);
            w.site_id = Some(site(n % 2));
            w.capacity.units_max = 6 + (n as u32 % 3) * 4;
            if n % 3 == 0 {
                w.qualifications
                    .push(qualification("cpa", Some(at(40 + n as i64 * 20))));
            }
            if n % 2 == 1 {
                w.qualifications.push(qualification("cpa", None));
                w.qualifications.push(qualification("llb", None));
            }
            if n == 4 {
                w.excluded_clients = vec![RIVAL];
            }
            if n % 2 == 0 {
                w.capacity.channels = vec![ChannelCap {
                    channel: "ticket".into(),
                    units_max: 3,
                }];
            }
            if n == 5 {
                w.shift = ShiftPattern::daily(
                    TimeZone::UTC,
                    time(3, 0, 0, 0),
                    SignedDuration::from_hours(2),
                );
            }
            w
        })
        .collect()
}

/// The model's own reading of the hard rules (not the router's rule code).
fn violates_hard_rules(
    w: &WorkerProfile,
    presence: Presence,
    units: u32,
    channel_units: u32,
    t: &OpenTask,
    now: Timestamp,
) -> Option<&'static str> {
    let req = &t.requirements;
    if presence != Presence::Available {
        return Some("not available");
    }
    if units + req.weight > w.capacity.units_max {
        return Some("over capacity");
    }
    let cap = w
        .capacity
        .channels
        .iter()
        .find(|c| c.channel == req.channel)
        .map_or(w.capacity.units_max, |c| c.units_max);
    if channel_units + req.weight > cap {
        return Some("over the channel's cap");
    }
    if t.excluded_workers.contains(&w.id) {
        return Some("excluded from the task");
    }
    if w.excluded_clients.contains(&t.client_id) {
        return Some("conflict of interest");
    }
    for kind in &req.qualifications {
        let valid = w.qualifications.iter().any(|q| {
            &q.kind == kind && q.valid_from <= now && q.valid_until.is_none_or(|u| now < u)
        });
        if !valid {
            return Some("qualification not valid");
        }
    }
    if let Some(allowed) = &req.allowed_sites {
        if !allowed.contains(&w.site_id.unwrap()) {
            return Some("site not allowed");
        }
    }
    // Work is done in sittings and may outlast the shift (the rest is handed over), but it
    // needs a useful first sitting: the whole work, up to the shortest sitting and the cap.
    let shift_end = w.shift.shift_end_at(now)?;
    let first = req
        .expected_handling
        .min(SignedDuration::from_hours(4))
        .min(RoutingConfig::default().sitting_min);
    if now + first > shift_end {
        return Some("too little of the shift left");
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn routing_never_breaks_eligibility_capacity_or_single_holding(ops in proptest::collection::vec(op(), 1..80), rolls in proptest::collection::vec(0u16..1000, 80)) {
        let workers = property_workers();
        let profiles: HashMap<WorkerId, WorkerProfile> = workers.iter().map(|w| (w.id, w.clone())).collect();
        let mut router = world(workers);
        let mut presence: HashMap<WorkerId, Presence> = profiles.keys().map(|id| (*id, Presence::Available)).collect();
        let mut units: HashMap<WorkerId, u32> = profiles.keys().map(|id| (*id, 0)).collect();
        let mut channel_units: HashMap<(WorkerId, String), u32> = HashMap::new();
        // task -> (worker, offered or assigned)
        let mut holder: HashMap<TaskId, (WorkerId, bool)> = HashMap::new();
        let mut open: Vec<OpenTask> = Vec::new();
        let mut minute = 0i64;
        let mut n_tasks = 0u128;
        for (i, op) in ops.into_iter().enumerate() {
            let roll = rolls[i % rolls.len()];
            let now = at(minute);
            let effects: Vec<Effect> = match op {
                Op::Add { quals, sites, weight, handling_mins, client, preferred, excluded, ticket } => {
                    let channel = if ticket { "ticket" } else { "research" };
                    let mut req = Requirements::any(channel, u32::from(weight), SignedDuration::from_mins(i64::from(handling_mins)));
                    req.qualifications = match quals { 0 => vec![], 1 => vec!["cpa".into()], 2 => vec!["llb".into()], _ => vec!["cpa".into(), "llb".into()] };
                    req.allowed_sites = match sites { 0 => None, 1 => Some(vec![site(0)]), 2 => Some(vec![site(1)]), _ => Some(vec![site(0), site(1)]) };
                    n_tasks += 1;
                    let mut t = task(n_tasks, req);
                    t.client_id = if client { CLIENT } else { RIVAL };
                    t.preferred_worker = preferred.map(|p| wid(u128::from(p)));
                    t.excluded_workers = excluded.map(|e| wid(u128::from(e))).into_iter().collect();
                    t.created_at = now;
                    open.push(t.clone());
                    vec![router.add_task(t, now, roll).unwrap()]
                }
                Op::Accept(k) => match holder.iter().filter(|(_, (_, assigned))| !assigned).nth(k as usize % 4) {
                    Some((t, (w, _))) => vec![router.accept(*t, *w, now).unwrap()],
                    None => vec![],
                },
                Op::Decline(k) => match holder.iter().filter(|(_, (_, assigned))| !assigned).nth(k as usize % 4) {
                    Some((t, (w, _))) => router.decline(*t, *w, now, roll).unwrap(),
                    None => vec![],
                },
                Op::GetNext(w) => router.get_next(wid(u128::from(w)), now, roll).unwrap().into_iter().collect(),
                Op::Presence(w, p) => {
                    let p = Presence::ALL[p as usize];
                    router.set_presence(wid(u128::from(w)), p, now).unwrap();
                    presence.insert(wid(u128::from(w)), p);
                    vec![]
                }
                Op::Close(k) => {
                    if !open.is_empty() {
                        let t = open.remove(k as usize % open.len());
                        router.close_task(t.id).unwrap();
                        if let Some((w, _)) = holder.remove(&t.id) {
                            *units.get_mut(&w).unwrap() -= t.requirements.weight;
                            *channel_units.get_mut(&(w, t.requirements.channel.clone())).unwrap() -= t.requirements.weight;
                        }
                    }
                    vec![]
                }
                Op::Advance(m) => {
                    minute += i64::from(m);
                    router.tick(at(minute), roll)
                }
            };
            let now = at(minute);
            for effect in effects {
                match effect {
                    Effect::Offer { task_id, worker_id, .. } | Effect::Assign { task_id, worker_id, .. } => {
                        let t = open.iter().find(|t| t.id == task_id).unwrap();
                        match holder.get(&task_id) {
                            // Accepting one's own offer.
                            Some((w, false)) if *w == worker_id => {
                                holder.insert(task_id, (worker_id, true));
                                continue;
                            }
                            Some(other) => prop_assert!(false, "task {task_id} held by {other:?} got {worker_id}"),
                            None => {}
                        }
                        let w = &profiles[&worker_id];
                        let key = (worker_id, t.requirements.channel.clone());
                        let in_channel = channel_units.get(&key).copied().unwrap_or(0);
                        if let Some(why) = violates_hard_rules(w, presence[&worker_id], units[&worker_id], in_channel, t, now) {
                            prop_assert!(false, "task {task_id} went to ineligible {worker_id}: {why}");
                        }
                        let assigned = matches!(effect, Effect::Assign { .. });
                        holder.insert(task_id, (worker_id, assigned));
                        *units.get_mut(&worker_id).unwrap() += t.requirements.weight;
                        *channel_units.entry(key).or_default() += t.requirements.weight;
                    }
                    Effect::Withdraw { task_id, worker_id, .. } | Effect::Release { task_id, worker_id, .. } => {
                        let (w, _) = holder.remove(&task_id).unwrap();
                        prop_assert_eq!(w, worker_id);
                        let t = open.iter().find(|t| t.id == task_id).unwrap();
                        *units.get_mut(&worker_id).unwrap() -= t.requirements.weight;
                        *channel_units.get_mut(&(worker_id, t.requirements.channel.clone())).unwrap() -= t.requirements.weight;
                    }
                    Effect::Escalate { .. } | Effect::Wait { .. } => {}
                }
            }
            for (id, w) in &profiles {
                let load = router.worker_load(*id).unwrap();
                prop_assert_eq!(load.units_used, units[id]);
                prop_assert!(load.units_used <= w.capacity.units_max);
                for cap in &w.capacity.channels {
                    let used = load.channel_used(&cap.channel);
                    prop_assert_eq!(used, channel_units.get(&(*id, cap.channel.clone())).copied().unwrap_or(0));
                    prop_assert!(used <= cap.units_max);
                }
            }
        }
    }
}
