//! `calculate`: the statutory and commercial calculators the packs need.
//!
//! - Gratuity under India's Payment of Gratuity Act, 1972.
//! - Monthly EPF, EPS and EDLI contributions and administration charges under the Employees'
//!   Provident Funds and Miscellaneous Provisions Act, 1952 and its schemes.
//! - The payable amount of an insurance claim: approved − deductible − co-payment, capped by
//!   the sum insured.
//! - Bank reconciliation totals, training evaluation scores and structural margins of safety.
//!
//! Money is in major units with two decimals, as the packs' forms carry it; statutory
//! contributions are rounded to whole rupees as the EPFO's ECR requires.

use jiff::civil::Date;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::extract::value_number;
use crate::text::round2;
use crate::{AutomationError, Context, Result};

// --- gratuity ------------------------------------------------------------------------------------

/// Section 4(3) of the Payment of Gratuity Act, 1972: the most gratuity payable, ₹20,00,000 from
/// 29 March 2018 (notification S.O. 1420(E) under the Payment of Gratuity (Amendment) Act, 2018).
pub const GRATUITY_CEILING: f64 = 2_000_000.0;

/// Section 4(1): gratuity is payable after at least five years of continuous service, except on
/// death or disablement, where the five years are not required.
pub const GRATUITY_MIN_YEARS: i64 = 5;

/// A gratuity computation.
#[derive(Debug, Clone, PartialEq)]
pub struct Gratuity {
    /// Completed years: whole years, plus one for a part in excess of six months (Section 4(2)).
    pub completed_years: i64,
    /// 15/26 × last drawn wages × completed years, before the ceiling.
    pub computed: f64,
    /// What is payable: the computed amount, capped by the ceiling; 0 when not eligible.
    pub amount: f64,
    pub eligible: bool,
    pub capped: bool,
    pub note: Option<String>,
}

/// Whole years and remaining days of service between joining and exit (the exit day counted).
fn service(joined: Date, exit: Date) -> (i64, i64) {
    let end = exit.tomorrow().unwrap_or(exit);
    let span = joined.until((jiff::Unit::Year, end)).unwrap_or_default();
    let years = span.get_years() as i64;
    let anniversary = joined
        .checked_add(jiff::Span::new().years(years))
        .unwrap_or(joined);
    let days = anniversary
        .until((jiff::Unit::Day, end))
        .map(|s| s.get_days() as i64)
        .unwrap_or(0);
    (years, days)
}

/// Gratuity per Section 4 of the Payment of Gratuity Act, 1972, for a monthly-rated employee:
/// 15 days' wages (15/26 of the last drawn monthly basic + dearness allowance, Section 2(s)) for
/// every completed year of service or part of one in excess of six months (Section 4(2)).
pub fn gratuity(joined: Date, exit: Date, monthly_wages: f64, reason: &str) -> Gratuity {
    let (whole, days) = service(joined, exit);
    // "Part thereof in excess of six months": more than 182 days past the last anniversary.
    let completed_years = whole + i64::from(days > 182);
    let death_or_disablement = matches!(reason, "death" | "disablement");
    // Continuous service of five years counts whole years actually served; courts (and
    // Section 2A) read 4 years 240 days as five years, which the rounding above gives.
    let eligible = death_or_disablement || completed_years >= GRATUITY_MIN_YEARS;
    let computed = round2(15.0 / 26.0 * monthly_wages * completed_years as f64);
    let capped = computed > GRATUITY_CEILING;
    let amount = if eligible {
        computed.min(GRATUITY_CEILING)
    } else {
        0.0
    };
    let note = if !eligible {
        Some(format!(
            "{completed_years} completed years: gratuity needs {GRATUITY_MIN_YEARS} years of continuous service (Section 4(1))"
        ))
    } else if capped {
        Some(format!(
            "capped at the ceiling of {GRATUITY_CEILING} (Section 4(3))"
        ))
    } else {
        None
    };
    Gratuity {
        completed_years,
        computed,
        amount,
        eligible,
        capped,
        note,
    }
}

// --- EPF / EPS / EDLI -----------------------------------------------------------------------------

/// Paragraph 3 of the Employees' Pension Scheme, 1995 (as amended from 1 September 2014): the
/// pension contribution is on pay up to ₹15,000 a month.
pub const EPS_WAGE_CEILING: f64 = 15_000.0;
/// Section 6 of the EPF & MP Act, 1952: employee and employer each contribute 12 % of wages.
pub const EPF_RATE: f64 = 0.12;
/// Paragraph 3(2) of the EPS, 1995: 8.33 % of the employer's share goes to the pension fund.
pub const EPS_RATE: f64 = 0.0833;
/// Paragraph 8 of the EDLI Scheme, 1976: 0.5 % of wages up to the ceiling.
pub const EDLI_RATE: f64 = 0.005;
/// Administration charges (account 2): 0.5 % of EPF wages from 1 June 2018, at least ₹500 a
/// month for an establishment with contributing members.
pub const ADMIN_RATE: f64 = 0.005;
pub const ADMIN_MINIMUM: f64 = 500.0;
/// EPS membership ends at 58 (paragraph 6 of the EPS, 1995); after that the whole employer share
/// goes to the provident fund.
pub const EPS_MAX_AGE: i16 = 58;

fn rupees(v: f64) -> f64 {
    v.round()
}

/// One member's contributions for a wage month.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub employee_epf: f64,
    pub eps: f64,
    pub employer_epf: f64,
    pub edli: f64,
    pub eps_stopped_at_58: bool,
}

/// A member's contributions: employee 12 % of EPF wages; employer 8.33 % of EPS wages (capped at
/// ₹15,000) to the pension fund and the rest of its 12 % to the provident fund; EDLI 0.5 %.
pub fn contribution(
    epf_wages: f64,
    eps_wages: f64,
    edli_wages: f64,
    age_in_month: Option<i16>,
) -> Contribution {
    let employee_epf = rupees(epf_wages * EPF_RATE);
    let over_age = age_in_month.is_some_and(|a| a >= EPS_MAX_AGE);
    let eps = if over_age {
        0.0
    } else {
        rupees(eps_wages.min(EPS_WAGE_CEILING) * EPS_RATE)
    };
    let employer_epf = rupees(epf_wages * EPF_RATE) - eps;
    let edli = rupees(edli_wages.min(EPS_WAGE_CEILING) * EDLI_RATE);
    Contribution {
        employee_epf,
        eps,
        employer_epf,
        edli,
        eps_stopped_at_58: over_age,
    }
}

/// Age in whole years on the last day of a wage month `YYYY-MM`.
fn age_at_month_end(birth: Date, wage_month: &str) -> Option<i16> {
    let (y, m) = wage_month.split_once('-')?;
    let first = Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok()?;
    let last = first.last_of_month();
    let span = birth.until((jiff::Unit::Year, last)).ok()?;
    Some(span.get_years())
}

fn date(v: Option<&Value>) -> Option<Date> {
    v?.as_str()?.parse().ok()
}

pub fn pf_month(item: &Value, members: &[Value]) -> Value {
    let wage_month = item.get("wage_month").and_then(Value::as_str).unwrap_or("");
    let mut totals = [0.0f64; 4];
    let mut epf_wages_total = 0.0;
    let mut rows = Vec::new();
    let mut exceptions = Vec::new();
    for m in members {
        let uan = m.get("uan").and_then(Value::as_str).unwrap_or("?");
        let n = |k: &str| m.get(k).and_then(value_number).unwrap_or(0.0);
        let age = date(m.get("date_of_birth")).and_then(|b| age_at_month_end(b, wage_month));
        let eps_wages = n("eps_wages");
        if eps_wages > EPS_WAGE_CEILING {
            exceptions.push(format!(
                "{uan}: EPS wages {eps_wages} above the ceiling; {EPS_WAGE_CEILING} used"
            ));
        }
        let edli_wages = if m.get("edli_wages").is_some() {
            n("edli_wages")
        } else {
            eps_wages
        };
        let c = contribution(n("epf_wages"), eps_wages, edli_wages, age);
        if c.eps_stopped_at_58 {
            exceptions.push(format!(
                "{uan}: aged 58 or more; no EPS contribution, the employer's 12 % goes to EPF"
            ));
        }
        if age.is_none() && m.get("date_of_birth").is_none() {
            exceptions.push(format!(
                "{uan}: no date of birth; EPS age limit not checked"
            ));
        }
        epf_wages_total += n("epf_wages");
        totals[0] += c.employee_epf;
        totals[1] += c.employer_epf;
        totals[2] += c.eps;
        totals[3] += c.edli;
        rows.push(json!({
            "uan": uan, "name": m.get("name"), "epf_wages": n("epf_wages"), "eps_wages": eps_wages.min(EPS_WAGE_CEILING),
            "employee_epf": c.employee_epf, "employer_epf": c.employer_epf, "eps": c.eps, "edli": c.edli,
            "ncp_days": m.get("ncp_days"),
        }));
    }
    let admin = if members.is_empty() {
        0.0
    } else {
        rupees((epf_wages_total * ADMIN_RATE).max(ADMIN_MINIMUM))
    };
    json!({
        "wage_month": wage_month,
        "members_count": members.len(),
        "totals": {
            "ac1_employee_share": totals[0],
            "ac1_employer_share": totals[1],
            "ac10_eps": totals[2],
            "ac2_admin": admin,
            "ac21_edli": totals[3],
        },
        "members": rows,
        "exceptions": exceptions,
    })
}

// --- insurance claims ----------------------------------------------------------------------------

/// What a claim pays.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPayable {
    pub payable: f64,
    pub deductible: f64,
    pub co_payment: f64,
    pub capped_by_sum_insured: bool,
}

/// Payable = approved − deductible − co-payment (a share of what is left after the deductible),
/// never below zero and never above the sum insured still available.
pub fn claim_payable(
    approved: f64,
    deductible: f64,
    co_pay_percent: f64,
    sum_insured: Option<f64>,
) -> ClaimPayable {
    let after_deductible = (approved - deductible).max(0.0);
    let deductible = approved.min(deductible).max(0.0);
    let co_payment = round2(after_deductible * co_pay_percent / 100.0);
    let before_cap = round2(after_deductible - co_payment);
    let (payable, capped) = match sum_insured {
        Some(cap) if before_cap > cap => (round2(cap), true),
        _ => (before_cap, false),
    };
    ClaimPayable {
        payable,
        deductible: round2(deductible),
        co_payment,
        capped_by_sum_insured: capped,
    }
}

fn claim(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    let find = |key: &str| -> Option<f64> {
        ctx.input
            .get(key)
            .or_else(|| ctx.latest_output_with(key))
            .or_else(|| item.get(key))
            .and_then(value_number)
    };
    let approved = find("approved_amount").ok_or_else(|| {
        AutomationError::bad(
            "no approved_amount in the earlier outputs: the assessment must come first",
        )
    })?;
    let deductions = ctx
        .latest_output_with("deductions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let listed = |reason: &str| {
        deductions
            .iter()
            .filter(|d| d.get("reason").and_then(Value::as_str) == Some(reason))
            .filter_map(|d| d.get("amount").and_then(value_number))
            .sum::<f64>()
    };
    let deductible = find("deductible").unwrap_or_else(|| listed("deductible"));
    let co_pay_percent = find("co_pay_percent").unwrap_or(0.0);
    let sum_insured = find("sum_insured_available").or_else(|| find("sum_insured"));
    let mut p = claim_payable(approved, deductible, co_pay_percent, sum_insured);
    // A co-payment already listed as a deduction in money is taken as it is.
    if co_pay_percent == 0.0 && listed("co_payment") > 0.0 {
        p.co_payment = round2(listed("co_payment"));
        p.payable = round2((p.payable - p.co_payment).max(0.0));
    }
    let claim_number = item
        .get("claim_number")
        .and_then(Value::as_str)
        .unwrap_or("");
    let digest = Sha256::digest(format!("{claim_number}|{:.2}", p.payable).as_bytes());
    let reference: String = digest.iter().take(5).map(|b| format!("{b:02X}")).collect();
    Ok(json!({
        "claim_number": claim_number,
        "approved_amount": round2(approved),
        "deductions": [
            { "reason": "deductible", "amount": p.deductible },
            { "reason": "co_payment", "amount": p.co_payment },
        ],
        "payable": p.payable,
        "capped_by_sum_insured": p.capped_by_sum_insured,
        "currency": item.pointer("/amount_claimed/currency"),
        "payee": item.pointer("/claimant/name"),
        "bank_account": item.pointer("/claimant/bank_account"),
        "payment_reference": format!("PAY-{reference}"),
    }))
}

// --- reconciliation, evaluation, margins -------------------------------------------------------

/// Per bank account: statement balance, ledger balance (from an earlier output's `ledger_balances`
/// by ledger account) and the unreconciled difference.
pub fn reconciliations(accounts: &[Value], ledger: &Value) -> Vec<Value> {
    accounts
        .iter()
        .map(|a| {
            let account = a
                .get("ledger_account")
                .and_then(Value::as_str)
                .unwrap_or("");
            let statement = a
                .get("closing_balance")
                .and_then(value_number)
                .unwrap_or(0.0);
            let ledger_balance = ledger.get(account).and_then(value_number);
            json!({
                "ledger_account": account,
                "statement_balance": round2(statement),
                "ledger_balance": ledger_balance.map(round2),
                "unreconciled": ledger_balance.map(|l| round2(statement - l)),
            })
        })
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Kirkpatrick levels 1-2 from participants' scores: attendance, pass mark, reaction (1-5),
/// pre/post gain, and net promoter score (share of 9-10 minus share of 0-6).
pub fn evaluation(item: &Value, scores: &[Value]) -> Value {
    let pass = item
        .get("pass_mark_percent")
        .and_then(Value::as_f64)
        .unwrap_or(70.0);
    let attended: Vec<&Value> = scores
        .iter()
        .filter(|s| s.get("attended").and_then(Value::as_bool) != Some(false))
        .collect();
    let get = |k: &str| -> Vec<f64> {
        attended
            .iter()
            .filter_map(|s| s.get(k).and_then(value_number))
            .collect()
    };
    let (pre, post, reaction, nps) = (
        get("pre_score"),
        get("post_score"),
        get("reaction"),
        get("recommend"),
    );
    let passed = post.iter().filter(|p| **p >= pass).count();
    let gain = match (mean(&pre), mean(&post)) {
        (Some(a), Some(b)) if a > 0.0 => Some(round2((b - a) / a * 100.0)),
        _ => None,
    };
    let nps_score = (!nps.is_empty()).then(|| {
        let promoters = nps.iter().filter(|v| **v >= 9.0).count() as f64;
        let detractors = nps.iter().filter(|v| **v <= 6.0).count() as f64;
        round2((promoters - detractors) / nps.len() as f64 * 100.0)
    });
    let follow_up = date(item.get("start_date"))
        .and_then(|d| d.checked_add(jiff::Span::new().days(90)).ok())
        .map(|d| d.to_string());
    json!({
        "attended": attended.len(),
        "passed": passed,
        "reaction_score": mean(&reaction).map(round2),
        "pre_post_gain_percent": gain,
        "net_promoter_score": nps_score,
        "follow_up_due": follow_up,
    })
}

/// Margin of safety on yield: yield strength / peak von Mises stress − 1.
pub fn margin_of_safety(yield_mpa: f64, stress_mpa: f64) -> Option<f64> {
    (stress_mpa > 0.0).then(|| ((yield_mpa / stress_mpa - 1.0) * 1000.0).round() / 1000.0)
}

fn margins(item: &Value, results: &[Value]) -> Value {
    let yield_mpa = item
        .get("materials")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .filter_map(|m| m.get("yield_strength_mpa").and_then(Value::as_f64))
                .reduce(f64::min)
        });
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let stress = r
                .get("max_von_mises_mpa")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let mut row = r.clone();
            row["margin_of_safety"] = json!(yield_mpa.and_then(|y| margin_of_safety(y, stress)));
            row
        })
        .collect();
    let worst = rows
        .iter()
        .filter_map(|r| r["margin_of_safety"].as_f64())
        .reduce(f64::min);
    json!({
        "project_code": item.get("project_code"),
        "results": rows,
        "minimum_margin_of_safety": worst,
        "verdict": worst.map(|w| if w >= 0.0 { "meets_criteria" } else { "fails_criteria" }),
    })
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    match ctx.service_line() {
        Some("provident_fund_gratuity") => {
            let members = ctx
                .latest_output_with("members")
                .or_else(|| item.get("members"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = pf_month(item, &members);
            let mut gratuities = Vec::new();
            for (i, g) in item.get("gratuity_claims").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let (Some(joined), Some(exit)) = (date(g.get("date_of_joining")), date(g.get("date_of_exit"))) else {
                    return Err(AutomationError::bad(format!("gratuity_claims[{i}]: dates of joining and exit are needed")));
                };
                if exit < joined {
                    return Err(AutomationError::bad(format!("gratuity_claims[{i}]: exit {exit} is before joining {joined}")));
                }
                let wages = g.get("last_drawn_basic_plus_da").and_then(value_number).unwrap_or(0.0);
                let reason = g.get("reason").and_then(Value::as_str).unwrap_or("");
                let r = gratuity(joined, exit, wages, reason);
                let code = g.get("employee_code").cloned().unwrap_or(Value::Null);
                if let Some(note) = &r.note {
                    out["exceptions"].as_array_mut().expect("array").push(json!(format!("{}: {note}", super::extract::value_text(&code))));
                }
                gratuities.push(json!({
                    "employee_code": code,
                    "completed_years": r.completed_years,
                    "amount": r.amount,
                    "computed": r.computed,
                    "eligible": r.eligible,
                    // Section 10(10)(ii) of the Income-tax Act exempts statutory gratuity up to
                    // the same ₹20 lakh, so the statutory amount carries no taxable part.
                    "taxable_amount": 0.0,
                }));
            }
            out["gratuity"] = json!(gratuities);
            Ok(out)
        }
        Some("insurance_processing") => claim(ctx),
        Some("training_and_consultancy") => {
            let scores = ctx.latest_output_with("scores").and_then(Value::as_array).cloned().ok_or_else(|| {
                AutomationError::bad("no participant scores in the earlier outputs (an array `scores`)")
            })?;
            Ok(evaluation(item, &scores))
        }
        Some("research_and_development") => {
            let results = ctx.latest_output_with("results").and_then(Value::as_array).cloned().ok_or_else(|| {
                AutomationError::bad("no solver results in the earlier outputs (an array `results`)")
            })?;
            Ok(margins(item, &results))
        }
        _ if item.get("bank_accounts").is_some() => {
            let accounts = item.get("bank_accounts").and_then(Value::as_array).cloned().unwrap_or_default();
            let ledger = ctx.latest_output_with("ledger_balances").cloned().unwrap_or(json!({}));
            Ok(json!({ "reconciliations": reconciliations(&accounts, &ledger) }))
        }
        _ => Err(AutomationError::bad("no calculator for this item: it is not a PF/gratuity, claim, training, engineering or bookkeeping item")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn gratuity_worked_example_superannuation() {
        // Joined 1 June 1998, retired 31 March 2026: 27 years 10 months → 28 completed years.
        // 15/26 × 42,000 × 28 = 6,78,461.54.
        let g = gratuity(d("1998-06-01"), d("2026-03-31"), 42_000.0, "superannuation");
        assert_eq!(g.completed_years, 28);
        assert_eq!(g.amount, 678_461.54);
        assert!(g.eligible && !g.capped);
    }

    #[test]
    fn gratuity_part_year_counts_only_beyond_six_months() {
        // 6 years 6 months exactly: not in excess of six months → 6 years.
        let g = gratuity(d("2019-01-01"), d("2025-06-30"), 26_000.0, "resignation");
        assert_eq!(g.completed_years, 6);
        assert_eq!(g.amount, 90_000.0, "15/26 × 26,000 × 6");
        // 6 years 7 months → 7 years.
        let g = gratuity(d("2019-01-01"), d("2025-07-31"), 26_000.0, "resignation");
        assert_eq!(g.completed_years, 7);
    }

    #[test]
    fn gratuity_needs_five_years_except_on_death() {
        let g = gratuity(d("2022-01-01"), d("2025-12-31"), 50_000.0, "resignation");
        assert_eq!(g.completed_years, 4);
        assert!(!g.eligible);
        assert_eq!(g.amount, 0.0);
        let g = gratuity(d("2022-01-01"), d("2025-12-31"), 52_000.0, "death");
        assert!(g.eligible);
        assert_eq!(g.amount, 120_000.0, "15/26 × 52,000 × 4");
    }

    #[test]
    fn gratuity_is_capped_at_twenty_lakh() {
        // 15/26 × 2,60,000 × 30 = 45,00,000 → 20,00,000.
        let g = gratuity(d("1995-04-01"), d("2025-03-31"), 260_000.0, "retirement");
        assert_eq!(g.computed, 4_500_000.0);
        assert_eq!(g.amount, GRATUITY_CEILING);
        assert!(g.capped);
    }

    #[test]
    fn epf_contribution_worked_examples() {
        // EPF wages 18,500, EPS wages 15,000: employee 2,220; EPS 1,249.5 → 1,250; employer
        // EPF 2,220 − 1,250 = 970; EDLI 75.
        let c = contribution(18_500.0, 15_000.0, 15_000.0, Some(30));
        assert_eq!(
            (c.employee_epf, c.eps, c.employer_epf, c.edli),
            (2_220.0, 1_250.0, 970.0, 75.0)
        );
        // EPS wages above the ceiling are capped.
        let c = contribution(42_000.0, 42_000.0, 42_000.0, Some(40));
        assert_eq!(
            (c.employee_epf, c.eps, c.employer_epf, c.edli),
            (5_040.0, 1_250.0, 3_790.0, 75.0)
        );
        // At 58 the pension contribution stops.
        let c = contribution(42_000.0, 15_000.0, 15_000.0, Some(58));
        assert_eq!((c.eps, c.employer_epf), (0.0, 5_040.0));
        assert!(c.eps_stopped_at_58);
    }

    #[test]
    fn pf_month_of_the_pack_example() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .packs()
                .iter()
                .find(|p| p.pack.service_line.code() == "provident_fund_gratuity")
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let out = automation.run("calculate", &json!({"item": item})).unwrap();
        // Ramesh (60 in March 2026): 5,040 / 5,040 / 0; Shilpa: 2,220 / 970 / 1,250;
        // Abdul: 1,488 / 455 / 1,033 (12,400 × 8.33 % = 1,032.92).
        assert_eq!(out["totals"]["ac1_employee_share"], 8_748.0);
        assert_eq!(out["totals"]["ac1_employer_share"], 6_465.0);
        assert_eq!(out["totals"]["ac10_eps"], 2_283.0);
        assert_eq!(out["totals"]["ac21_edli"], 75.0 + 75.0 + 62.0);
        // Admin: 0.5 % of 72,900 = 364.5 → the ₹500 minimum.
        assert_eq!(out["totals"]["ac2_admin"], 500.0);
        assert_eq!(out["gratuity"][0]["completed_years"], 28);
        assert_eq!(out["gratuity"][0]["amount"], 678_461.54);
        assert_eq!(out["members_count"], 3);
    }

    #[test]
    fn claim_payable_worked_examples() {
        // 1,40,000 approved, 10,000 deductible, 10 % co-pay: 1,30,000 − 13,000 = 1,17,000.
        let p = claim_payable(140_000.0, 10_000.0, 10.0, Some(500_000.0));
        assert_eq!(
            (p.payable, p.co_payment, p.capped_by_sum_insured),
            (117_000.0, 13_000.0, false)
        );
        // Capped by the sum insured left.
        let p = claim_payable(140_000.0, 0.0, 0.0, Some(100_000.0));
        assert_eq!((p.payable, p.capped_by_sum_insured), (100_000.0, true));
        // A deductible above the approval pays nothing.
        let p = claim_payable(5_000.0, 10_000.0, 20.0, None);
        assert_eq!((p.payable, p.deductible), (0.0, 5_000.0));
    }

    #[test]
    fn claim_from_the_assessment_output() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .packs()
                .iter()
                .find(|p| p.pack.service_line.code() == "insurance_processing")
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let input = json!({"item": item, "outputs": {"assessment": {"approved_amount": 131_200, "deductions": [{"reason": "non_payable_items", "amount": 7_450}, {"reason": "deductible", "amount": 5_000}]}},
            "sum_insured": 300_000, "co_pay_percent": 10});
        let out = automation.run("calculate", &input).unwrap();
        assert_eq!(out["payable"], json!(113_580.0), "(131,200 − 5,000) × 0.9");
        assert_eq!(out["payee"], "Anjali Deshmukh");
        assert!(out["payment_reference"]
            .as_str()
            .unwrap()
            .starts_with("PAY-"));
        let err = automation
            .run("calculate", &json!({"item": item}))
            .unwrap_err();
        assert!(err.to_string().contains("approved_amount"), "{err}");
    }

    #[test]
    fn evaluation_scores() {
        let item = json!({"pass_mark_percent": 70, "start_date": "2026-04-06"});
        let scores = vec![
            json!({"attended": true, "pre_score": 40, "post_score": 80, "reaction": 4.5, "recommend": 10}),
            json!({"attended": true, "pre_score": 60, "post_score": 65, "reaction": 3.5, "recommend": 6}),
            json!({"attended": false}),
        ];
        let out = evaluation(&item, &scores);
        assert_eq!(out["attended"], 2);
        assert_eq!(out["passed"], 1);
        assert_eq!(out["reaction_score"], 4.0);
        assert_eq!(out["pre_post_gain_percent"], 45.0, "mean 50 → 72.5");
        assert_eq!(out["net_promoter_score"], 0.0);
        assert_eq!(out["follow_up_due"], "2026-07-05");
    }

    #[test]
    fn margins_and_reconciliation() {
        assert_eq!(margin_of_safety(276.0, 200.0), Some(0.38));
        let rec = reconciliations(
            &[json!({"ledger_account": "1010", "closing_balance": 1000.5})],
            &json!({"1010": 900.25}),
        );
        assert_eq!(rec[0]["unreconciled"], 100.25);
    }
}
