//! Integration tests of the firm simulator: scenario validation, determinism, the offline
//! bound against every policy, and karya's shift rule. Each failing case prints its seed.

use karya_sim::bound::{self, BoundOptions};
use karya_sim::firm::{self, Policy};
use karya_sim::scenario::Scenario;
use karya_sim::trace;

/// A small firm: two sites, three teams with overlapping skills, three lines.
const SMALL: &str = r#"
name = "small"
start = "2026-03-02"
days = 2
load = 0.9
slot_minutes = 60
priorities = { urgent = 0.2, high = 0.3, normal = 0.5 }

[[sites]]
name = "pune"
utc_offset = "+05:30"

[[sites]]
name = "manila"
utc_offset = "+08:00"

[[calendars]]
name = "uk"
utc_offset = "+00:00"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = ["08:00-18:00"]

[[shifts]]
name = "day"
days = ["mon", "tue", "wed", "thu", "fri"]
blocks = ["09:00-13:00", "13:30-17:30"]

[[shifts]]
name = "late"
days = ["mon", "tue", "wed", "thu", "fri"]
blocks = ["13:00-17:00", "17:30-21:30"]

[[teams]]
name = "coders"
site = "pune"
shift = "late"
workers = 4
qualifications = ["cmc"]
skills = { coding = 6, claims = 5 }
hourly_cost = 12.0
absence_rate = 0.1

[[teams]]
name = "claims"
site = "manila"
shift = "day"
workers = 3
skills = { claims = 6 }
hourly_cost = 9.0
absence_rate = 0.1

[[teams]]
name = "entry"
site = "pune"
shift = "day"
workers = 3
skills = { entry = 5, claims = 4 }
hourly_cost = 7.0

[[lines]]
code = "medical_coding"
weight = 3.0
qualifications = ["cmc"]
skills = { coding = 5 }
handling_median_minutes = 25
handling_sigma = 0.5
calendar = "uk"
sla_hours = { urgent = 1, high = 2, normal = 5 }

[[lines]]
code = "insurance_processing"
weight = 4.0
skills = { claims = 5 }
allowed_sites = ["pune", "manila"]
handling_median_minutes = 20
handling_sigma = 0.6
calendar = "uk"
sla_hours = { urgent = 1, high = 2, normal = 4 }

[[lines]]
code = "data_entry"
weight = 6.0
skills = { entry = 4 }
handling_median_minutes = 8
handling_sigma = 0.4
calendar = "uk"
sla_hours = { urgent = 1, high = 2, normal = 4 }

[arrivals]
days = ["mon", "tue", "wed", "thu", "fri"]
hourly_weights = [1, 1, 1, 2, 4, 6, 8, 9, 10, 10, 9, 8, 8, 9, 10, 10, 9, 7, 5, 3, 2, 1, 1, 1]
"#;

fn small() -> Scenario {
    Scenario::parse(SMALL).expect("the small scenario is valid")
}

/// Replaces the first occurrence of `from` in the small scenario, parses it, and checks the
/// error names the problem.
fn check_invalid(from: &str, to: &str, expect: &str) {
    assert!(SMALL.contains(from), "fixture lacks {from:?}");
    let text = SMALL.replacen(from, to, 1);
    let err = Scenario::parse(&text).expect_err(&format!("{from:?} -> {to:?} should fail"));
    let message = err.to_string();
    assert!(
        message.contains(expect),
        "{from:?} -> {to:?}: got {message:?}, expected it to contain {expect:?}"
    );
}

#[test]
fn scenario_errors_name_the_entry_at_fault() {
    check_invalid("days = 2", "days = 0", "days must be between 1 and 31");
    check_invalid("load = 0.9", "load = 3.0", "load must be in (0, 2]");
    check_invalid("load = 0.9", "lod = 0.9", "unknown field `lod`");
    check_invalid(
        "utc_offset = \"+08:00\"",
        "utc_offset = \"Asia/Manila\"",
        "sites[1] (manila): utc_offset \"Asia/Manila\" is not of the form +HH:MM",
    );
    check_invalid(
        "site = \"manila\"",
        "site = \"cebu\"",
        "teams[1] (claims): site \"cebu\" is not defined",
    );
    check_invalid(
        "shift = \"late\"",
        "shift = \"night\"",
        "teams[0] (coders): shift \"night\" is not defined",
    );
    check_invalid(
        "\"09:00-13:00\"",
        "\"9am-1pm\"",
        "shifts[0] (day): \"9am-1pm\" is not a span of the form HH:MM-HH:MM",
    );
    check_invalid(
        "coding = 6, claims = 5",
        "coding = 11, claims = 5",
        "teams[0] (coders): skill coding has level 11",
    );
    check_invalid(
        "calendar = \"uk\"",
        "calendar = \"us\"",
        "lines[0] (medical_coding): calendar \"us\" is not defined",
    );
    check_invalid(
        "sla_hours = { urgent = 1, high = 2, normal = 5 }",
        "sla_hours = { urgent = 1, normal = 5 }",
        "lines[0] (medical_coding): sla_hours has no target for priority high",
    );
    check_invalid(
        "handling_sigma = 0.5",
        "handling_sigma = -0.5",
        "lines[0] (medical_coding): handling_sigma must be in [0, 2]",
    );
    check_invalid(
        "qualifications = [\"cmc\"]\nskills = { coding = 5 }",
        "qualifications = [\"md\"]\nskills = { coding = 5 }",
        "lines[0] (medical_coding): no team is eligible for it",
    );
    check_invalid(
        "hourly_weights = [1, 1, 1, ",
        "hourly_weights = [1, 1, ",
        "arrivals.hourly_weights must have 24 entries, not 23",
    );
    check_invalid(
        "name = \"claims\"",
        "name = \"coders\"",
        "teams[1] (coders): name \"coders\" is used twice",
    );
    check_invalid(
        "priorities = { urgent = 0.2,",
        "priorities = { critical = 0.2,",
        "priorities: unknown priority \"critical\"",
    );
}

#[test]
fn the_reference_scenario_is_valid() {
    let text = include_str!("../../../../scenarios/reference.toml");
    let scenario = Scenario::parse(text).expect("scenarios/reference.toml is valid");
    assert!((10..=15).contains(&scenario.lines.len()));
    assert!(scenario.sites.len() >= 3);
    assert!(scenario.shifts.len() >= 3);
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let scenario = small();
    for policy in Policy::ALL {
        for seed in [1, 7] {
            let a = trace::generate(&scenario, 0.9, seed).unwrap();
            let b = trace::generate(&scenario, 0.9, seed).unwrap();
            let (ra, rb) = (
                firm::run(&scenario, &a, policy, seed),
                firm::run(&scenario, &b, policy, seed),
            );
            assert_eq!(ra, rb, "seed {seed}, policy {}", policy.code());
            assert!(ra.items > 50, "seed {seed}: only {} items", ra.items);
        }
        let one = trace::generate(&scenario, 0.9, 1).unwrap();
        let two = trace::generate(&scenario, 0.9, 2).unwrap();
        assert_ne!(
            firm::run(&scenario, &one, policy, 1),
            firm::run(&scenario, &two, policy, 2),
            "policy {}",
            policy.code()
        );
    }
}

#[test]
fn the_bound_is_at_least_every_policys_attainment() {
    let scenario = small();
    for load in [0.8, 1.1] {
        for seed in 1..=4 {
            let trace = trace::generate(&scenario, load, seed).unwrap();
            let within = |overtime_s| {
                bound::solve(
                    &scenario,
                    &trace,
                    BoundOptions {
                        slot_minutes: scenario.slot_minutes,
                        overtime_s,
                    },
                )
                .unwrap()
                .attainment()
            };
            // karya keeps shift ends: the bound on shift time alone applies.
            let shift_only = within(0);
            // The baselines finish the task at hand past the shift end, for at most the
            // longest handling time: that much overtime per block bounds them.
            let longest = trace.items.iter().map(|i| i.handling_s).max().unwrap();
            let with_overtime = within(longest);
            for policy in Policy::ALL {
                let got = firm::run(&scenario, &trace, policy, seed).attainment();
                let bound = match policy {
                    Policy::Karya => shift_only,
                    Policy::Fifo | Policy::PrioritySkills => with_overtime,
                };
                assert!(
                    got <= bound + 1e-6,
                    "seed {seed}, load {load}: {} attains {got:.4} above the bound {bound:.4}",
                    policy.code()
                );
            }
            assert!(
                shift_only <= with_overtime + 1e-6,
                "seed {seed}, load {load}"
            );
            assert!(
                shift_only > 0.5,
                "seed {seed}, load {load}: bound {shift_only}"
            );
        }
    }
}

#[test]
fn karya_never_works_past_a_shift_end_and_baselines_do() {
    let scenario = small();
    let mut baseline_overruns = 0;
    for seed in 1..=5 {
        let trace = trace::generate(&scenario, 1.0, seed).unwrap();
        let karya = firm::run(&scenario, &trace, Policy::Karya, seed);
        assert_eq!(
            (karya.overrun_tasks, karya.overrun_s),
            (0, 0),
            "seed {seed}: karya overran"
        );
        assert_eq!(karya.overtime_cost, 0.0, "seed {seed}");
        assert!(karya.completed > 0, "seed {seed}");
        baseline_overruns += firm::run(&scenario, &trace, Policy::Fifo, seed).overrun_tasks;
    }
    // The measure is live: the shift-unaware baseline does overrun on the same traces.
    assert!(baseline_overruns > 0);
}

#[test]
fn items_longer_than_their_coverage_count_zero_in_the_bound_and_for_every_policy() {
    let scenario = small();
    let mut seen = 0;
    for seed in 1..=4 {
        let trace = trace::generate(&scenario, 1.0, seed).unwrap();
        let longest = trace.items.iter().map(|i| i.handling_s).max().unwrap();
        for overtime_s in [0, longest] {
            let b = bound::solve(
                &scenario,
                &trace,
                BoundOptions {
                    slot_minutes: scenario.slot_minutes,
                    overtime_s,
                },
            )
            .unwrap();
            assert!(b.on_time <= f64::from(b.items - b.uncoverable) + 1e-6);
            // The policies bounded by this program cannot finish those items on time either.
            let bounded: &[Policy] = match overtime_s {
                0 => &[Policy::Karya],
                _ => &[Policy::Fifo, Policy::PrioritySkills],
            };
            for policy in bounded {
                let run = firm::run(&scenario, &trace, *policy, seed);
                assert!(
                    run.on_time <= b.items - b.uncoverable,
                    "seed {seed}: {} finished {} on time, but {} of {} items are uncoverable",
                    policy.code(),
                    run.on_time,
                    b.uncoverable,
                    b.items
                );
            }
            if overtime_s == 0 {
                seen += b.uncoverable;
            }
        }
    }
    // The rule is live: the small scenario has items no eligible worker covers in time.
    assert!(seen > 0);
}
