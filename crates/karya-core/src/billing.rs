//! Billing: what a period's work costs a client, and what the firm owes back for missed SLAs.
//!
//! An engagement is priced per work item (by priority and complexity band), per hour of task
//! time, or per FTE-month. Every invoice line that comes from work names its work item, so a
//! client can trace each amount. When the share of items resolved on time falls below the
//! engagement's target, a credit is applied as the contract says (e.g. 5% of the fees per
//! percentage point below target, capped), with the late items listed as its evidence.
//!
//! When the engagement promises accuracy and its checked work falls short beyond doubt (the
//! upper bound of the Wilson interval of the period's checks lies below the target), a second
//! credit is applied the same way, with the checks, defects and interval as its evidence.
//!
//! Amounts are integer minor units ([`Money`]); percentages are basis points (1% = 100 bp).
//! Division rounds half away from zero, once per line, so the lines add up to the total.

use jiff::{SignedDuration, Timestamp};

use crate::id::{EngagementId, WorkItemId};
use crate::lifecycle::TaskState;
use crate::model::Priority;
use crate::money::{Currency, Money, MoneyError};
use crate::qa::stats::wilson;

/// Basis points in a whole: 10 000 bp = 100%.
pub const BP_WHOLE: i64 = 10_000;

/// The price of one item of a given priority and complexity band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRate {
    pub priority: Priority,
    /// `None` applies to any band without a rate of its own.
    pub band: Option<String>,
    pub price: Money,
}

/// How an engagement is priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    PerItem {
        rates: Vec<ItemRate>,
    },
    /// Per hour of task time (assigned to submitted, minus pauses).
    PerHour {
        rate: Money,
    },
    /// A fixed team: `fte_milli` thousandths of a full-time person, per month.
    PerFteMonth {
        rate: Money,
        fte_milli: u32,
    },
}

impl Pricing {
    pub fn currency(&self) -> Option<Currency> {
        match self {
            Pricing::PerItem { rates } => rates.first().map(|r| r.price.currency),
            Pricing::PerHour { rate } | Pricing::PerFteMonth { rate, .. } => Some(rate.currency),
        }
    }
}

/// What a missed target (on time, or accuracy) costs the firm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditRule {
    /// Share of the fees credited per percentage point below target, in bp (500 = 5%).
    pub per_point_bp: u32,
    /// Largest credit, in bp of the fees.
    pub cap_bp: u32,
}

/// One delivered work item as billing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillableItem {
    pub work_item_id: WorkItemId,
    pub title: String,
    pub priority: Priority,
    pub band: Option<String>,
    pub delivered_at: Timestamp,
    /// Task time recorded on the item ([`task_time`] summed over its tasks).
    pub worked: SignedDuration,
    /// The resolution due time in force at delivery.
    pub due_at: Option<Timestamp>,
    /// Business time past the target (zero when on time).
    pub late_by: SignedDuration,
}

impl BillableItem {
    pub fn on_time(&self) -> bool {
        self.late_by <= SignedDuration::ZERO
    }
}

/// One engagement's share of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementBilling {
    pub engagement_id: EngagementId,
    pub name: String,
    pub pricing: Pricing,
    pub credit_rule: Option<CreditRule>,
    /// On-time target of the engagement, in bp.
    pub on_time_target_bp: u32,
    pub items: Vec<BillableItem>,
    /// What missing the accuracy target costs; `None` when the contract says nothing.
    pub accuracy_credit_rule: Option<CreditRule>,
    /// Accuracy target of the engagement, in bp; 0 when it promises none.
    pub accuracy_target_bp: u32,
    /// The period's quality checks of the engagement's work.
    pub accuracy: AccuracyEvidence,
}

/// Parts per million in a whole, for confidence levels.
pub const PPM_WHOLE: u32 = 1_000_000;

/// The quality checks of an engagement's work in a period: reviews, adjudicated consensus
/// answers and gold tasks, each right or wrong, and the defects reviewers recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccuracyEvidence {
    pub checks: u64,
    pub correct: u64,
    /// Defects recorded by the failing reviews (a failed check may carry several).
    pub defects: u64,
    /// Two-sided confidence of the interval, in parts per million (900 000 = 90%).
    pub confidence_ppm: u32,
}

/// An accuracy credit and how it was reached: anyone holding the evidence can recompute it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccuracyCredit {
    pub engagement_id: EngagementId,
    pub target_bp: u32,
    pub checks: u64,
    pub correct: u64,
    pub defects: u64,
    pub confidence_ppm: u32,
    /// The point estimate, rounded down.
    pub achieved_bp: u32,
    /// The Wilson interval, the low bound rounded down and the high bound rounded up (the
    /// benefit of the doubt goes to the firm).
    pub interval_low_bp: u32,
    pub interval_high_bp: u32,
    /// Percentage points short of the target beyond doubt: target minus the high bound.
    pub points_short_bp: u32,
    /// Credit as a share of the engagement's fees, after the cap.
    pub credit_bp: u32,
    pub fees: Money,
    /// Negative: it reduces the invoice.
    pub amount: Money,
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub engagement_id: EngagementId,
    /// The item the line bills; `None` for a flat line (FTE-month) or a credit.
    pub work_item_id: Option<WorkItemId>,
    pub description: String,
    /// Units in thousandths: items, hours or FTEs.
    pub quantity_milli: i64,
    pub unit_price: Money,
    pub amount: Money,
}

/// A late item listed in support of a credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditEvidence {
    pub work_item_id: WorkItemId,
    pub due_at: Option<Timestamp>,
    pub delivered_at: Timestamp,
    pub late_by: SignedDuration,
}

/// An SLA credit and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaCredit {
    pub engagement_id: EngagementId,
    pub items_measured: u32,
    pub items_on_time: u32,
    pub target_bp: u32,
    pub achieved_bp: u32,
    /// Credit as a share of the engagement's fees, after the cap.
    pub credit_bp: u32,
    pub fees: Money,
    /// Negative: it reduces the invoice.
    pub amount: Money,
    pub evidence: Vec<CreditEvidence>,
}

/// A client's invoice for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
    pub credits: Vec<SlaCredit>,
    pub accuracy_credits: Vec<AccuracyCredit>,
    pub subtotal: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("no rate for {priority} items of band {band:?} in engagement {engagement}")]
    NoRate {
        engagement: String,
        priority: &'static str,
        band: Option<String>,
    },
    #[error("engagement {engagement} is priced in {found}, the client is billed in {expected}")]
    WrongCurrency {
        engagement: String,
        found: Currency,
        expected: Currency,
    },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Task time from a task's state history: the time spent held by a worker (assigned, in
/// progress, in rework), which is assigned-to-submitted minus holds and releases.
pub fn task_time(history: &[(Timestamp, TaskState)]) -> SignedDuration {
    let mut total = SignedDuration::ZERO;
    for pair in history.windows(2) {
        let (since, state) = pair[0];
        let (until, _) = pair[1];
        if matches!(
            state,
            TaskState::Assigned | TaskState::InProgress | TaskState::Rework
        ) && until > since
        {
            total += until.duration_since(since);
        }
    }
    total
}

/// Computes a client's invoice for the engagements given.
pub fn invoice(
    currency: Currency,
    engagements: &[EngagementBilling],
) -> Result<Invoice, BillingError> {
    let mut lines = Vec::new();
    let mut credits = Vec::new();
    let mut accuracy_credits = Vec::new();
    let mut subtotal = Money::zero(currency);
    let mut total = Money::zero(currency);
    for engagement in engagements {
        if let Some(found) = engagement.pricing.currency().filter(|c| *c != currency) {
            return Err(BillingError::WrongCurrency {
                engagement: engagement.name.clone(),
                found,
                expected: currency,
            });
        }
        let mut fees = Money::zero(currency);
        for line in engagement_lines(engagement)? {
            fees = fees.checked_add(line.amount)?;
            lines.push(line);
        }
        subtotal = subtotal.checked_add(fees)?;
        total = total.checked_add(fees)?;
        if let Some(credit) = sla_credit(engagement, fees) {
            total = total.checked_add(credit.amount)?;
            credits.push(credit);
        }
        if let Some(credit) = accuracy_credit(engagement, fees) {
            total = total.checked_add(credit.amount)?;
            accuracy_credits.push(credit);
        }
    }
    Ok(Invoice {
        currency,
        lines,
        credits,
        accuracy_credits,
        subtotal,
        total,
    })
}

/// The credit an engagement earns its client, or `None` when the target was met (or nothing
/// was measured, or the contract has no credit rule).
pub fn sla_credit(engagement: &EngagementBilling, fees: Money) -> Option<SlaCredit> {
    let rule = engagement.credit_rule?;
    let measured = engagement.items.len() as i64;
    if measured == 0 {
        return None;
    }
    let on_time = engagement.items.iter().filter(|i| i.on_time()).count() as i64;
    // Floor: a fraction of a basis point short of the target is still short.
    let achieved_bp = on_time * BP_WHOLE / measured;
    let target_bp = i64::from(engagement.on_time_target_bp);
    if achieved_bp >= target_bp {
        return None;
    }
    let points_short_bp = target_bp - achieved_bp;
    let credit_bp = (points_short_bp * i64::from(rule.per_point_bp) / 100)
        .min(i64::from(rule.cap_bp))
        .min(BP_WHOLE);
    // Fees are never negative; a credit never adds to an invoice.
    let amount = -share(fees.minor.max(0), credit_bp, BP_WHOLE);
    let evidence = engagement
        .items
        .iter()
        .filter(|i| !i.on_time())
        .map(|i| CreditEvidence {
            work_item_id: i.work_item_id,
            due_at: i.due_at,
            delivered_at: i.delivered_at,
            late_by: i.late_by,
        })
        .collect();
    Some(SlaCredit {
        engagement_id: engagement.engagement_id,
        items_measured: measured as u32,
        items_on_time: on_time as u32,
        target_bp: target_bp as u32,
        achieved_bp: achieved_bp as u32,
        credit_bp: credit_bp as u32,
        fees,
        amount: Money::new(amount, fees.currency),
        evidence,
    })
}

/// The accuracy credit an engagement earns its client, or `None` when the target is met or
/// in doubt (the interval's high bound reaches it), nothing was checked, no target is set, or
/// the contract has no credit rule.
pub fn accuracy_credit(engagement: &EngagementBilling, fees: Money) -> Option<AccuracyCredit> {
    let rule = engagement.accuracy_credit_rule?;
    let evidence = engagement.accuracy;
    let target_bp = engagement.accuracy_target_bp.min(BP_WHOLE as u32);
    if target_bp == 0 || evidence.checks == 0 {
        return None;
    }
    let correct = evidence.correct.min(evidence.checks);
    // Wilson needs a confidence strictly inside (0, 1); the store keeps it there, and a
    // stored value outside is read as the nearest one allowed.
    let confidence_ppm = evidence.confidence_ppm.clamp(1, PPM_WHOLE - 1);
    let interval = wilson(
        correct,
        evidence.checks,
        f64::from(confidence_ppm) / f64::from(PPM_WHOLE),
    );
    let to_bp = |share: f64| share.clamp(0.0, 1.0) * BP_WHOLE as f64;
    let interval_low_bp = to_bp(interval.low).floor() as u32;
    let interval_high_bp = to_bp(interval.high).ceil() as u32;
    if interval_high_bp >= target_bp {
        return None;
    }
    let points_short_bp = target_bp - interval_high_bp;
    let credit_bp = (i64::from(points_short_bp) * i64::from(rule.per_point_bp) / 100)
        .min(i64::from(rule.cap_bp))
        .min(BP_WHOLE);
    Some(AccuracyCredit {
        engagement_id: engagement.engagement_id,
        target_bp,
        checks: evidence.checks,
        correct,
        defects: evidence.defects,
        confidence_ppm,
        achieved_bp: (u128::from(correct) * BP_WHOLE as u128 / u128::from(evidence.checks)) as u32,
        interval_low_bp,
        interval_high_bp,
        points_short_bp,
        credit_bp: credit_bp as u32,
        fees,
        amount: Money::new(
            -share(fees.minor.max(0), credit_bp, BP_WHOLE),
            fees.currency,
        ),
    })
}

fn engagement_lines(engagement: &EngagementBilling) -> Result<Vec<InvoiceLine>, BillingError> {
    let mut lines = Vec::with_capacity(engagement.items.len());
    match &engagement.pricing {
        Pricing::PerItem { rates } => {
            for item in &engagement.items {
                let rate = rates
                    .iter()
                    .find(|r| r.priority == item.priority && r.band == item.band)
                    .or_else(|| {
                        rates
                            .iter()
                            .find(|r| r.priority == item.priority && r.band.is_none())
                    })
                    .ok_or_else(|| BillingError::NoRate {
                        engagement: engagement.name.clone(),
                        priority: item.priority.code(),
                        band: item.band.clone(),
                    })?;
                lines.push(InvoiceLine {
                    engagement_id: engagement.engagement_id,
                    work_item_id: Some(item.work_item_id),
                    description: item.title.clone(),
                    quantity_milli: 1000,
                    unit_price: rate.price,
                    amount: rate.price,
                });
            }
        }
        Pricing::PerHour { rate } => {
            for item in &engagement.items {
                let seconds = item.worked.as_secs().max(0);
                lines.push(InvoiceLine {
                    engagement_id: engagement.engagement_id,
                    work_item_id: Some(item.work_item_id),
                    description: item.title.clone(),
                    quantity_milli: share(seconds, 1000, 3600),
                    unit_price: *rate,
                    amount: Money::new(share(rate.minor, seconds, 3600), rate.currency),
                });
            }
        }
        Pricing::PerFteMonth { rate, fte_milli } => {
            lines.push(InvoiceLine {
                engagement_id: engagement.engagement_id,
                work_item_id: None,
                description: format!("{}: dedicated team", engagement.name),
                quantity_milli: i64::from(*fte_milli),
                unit_price: *rate,
                amount: Money::new(
                    share(rate.minor, i64::from(*fte_milli), 1000),
                    rate.currency,
                ),
            });
        }
    }
    Ok(lines)
}

/// `value * numerator / denominator`, rounded half away from zero, without overflow.
fn share(value: i64, numerator: i64, denominator: i64) -> i64 {
    debug_assert!(denominator > 0);
    let product = i128::from(value) * i128::from(numerator);
    let half = i128::from(denominator) / 2;
    let rounded = if product >= 0 {
        (product + half) / i128::from(denominator)
    } else {
        (product - half) / i128::from(denominator)
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        format!("2026-11-{text}:00Z").parse().unwrap()
    }

    fn inr(rupees: i64) -> Money {
        Money::new(rupees * 100, Currency::INR)
    }

    fn item(n: u128, priority: Priority, delivered: &str, late_min: i64) -> BillableItem {
        BillableItem {
            work_item_id: WorkItemId::from_uuid(uuid::Uuid::from_u128(n)),
            title: format!("claim {n}"),
            priority,
            band: None,
            delivered_at: ts(delivered),
            worked: SignedDuration::from_mins(90),
            due_at: Some(ts(delivered) - SignedDuration::from_mins(late_min)),
            late_by: SignedDuration::from_mins(late_min),
        }
    }

    fn engagement(pricing: Pricing, items: Vec<BillableItem>) -> EngagementBilling {
        EngagementBilling {
            engagement_id: EngagementId::from_uuid(uuid::Uuid::from_u128(7)),
            name: "claims".into(),
            pricing,
            credit_rule: Some(CreditRule {
                per_point_bp: 500,
                cap_bp: 2_000,
            }),
            on_time_target_bp: 9_500,
            items,
            accuracy_credit_rule: None,
            accuracy_target_bp: 0,
            accuracy: AccuracyEvidence::default(),
        }
    }

    fn per_item() -> Pricing {
        Pricing::PerItem {
            rates: vec![
                ItemRate {
                    priority: Priority::Normal,
                    band: None,
                    price: inr(400),
                },
                ItemRate {
                    priority: Priority::Urgent,
                    band: None,
                    price: inr(700),
                },
                ItemRate {
                    priority: Priority::Normal,
                    band: Some("complex".into()),
                    price: inr(900),
                },
            ],
        }
    }

    /// Twenty items, two of them late: 90% on time against 95%, 5 points short at 5% a point
    /// is a 25% credit, capped at 20%.
    #[test]
    fn missed_target_credit_is_computed_from_its_evidence() {
        let mut items: Vec<BillableItem> = (0..20)
            .map(|n| item(n, Priority::Normal, "10T12:00", 0))
            .collect();
        items[3] = item(3, Priority::Urgent, "11T12:00", 45);
        items[11] = item(11, Priority::Normal, "12T12:00", 130);
        items[12].band = Some("complex".into());
        let eng = engagement(per_item(), items);
        let invoice = invoice(Currency::INR, std::slice::from_ref(&eng)).unwrap();

        // Every line names its item. Fees: 18 normal at 400 (7 200), one complex normal at
        // 900, one urgent at 700: 8 800 rupees.
        assert_eq!(invoice.lines.len(), 20);
        assert!(invoice.lines.iter().all(|l| l.work_item_id.is_some()));
        assert_eq!(invoice.subtotal, inr(7_200 + 900 + 700));

        let [credit] = invoice.credits.as_slice() else {
            panic!("one credit expected: {:?}", invoice.credits)
        };
        // The evidence alone determines the credit: recompute it from the listed items.
        let late: Vec<u128> = credit
            .evidence
            .iter()
            .map(|e| e.work_item_id.as_uuid().as_u128())
            .collect();
        assert_eq!(late, [3, 11]);
        assert_eq!(credit.evidence[0].late_by, SignedDuration::from_mins(45));
        let achieved_bp =
            (credit.items_measured - credit.evidence.len() as u32) * 10_000 / credit.items_measured;
        assert_eq!((credit.achieved_bp, achieved_bp), (9_000, 9_000));
        let uncapped_bp = (credit.target_bp - achieved_bp) * 500 / 100;
        assert_eq!(uncapped_bp, 2_500);
        assert_eq!(credit.credit_bp, 2_000);
        assert_eq!(credit.fees, inr(8_800));
        assert_eq!(credit.amount, inr(-1_760));
        assert_eq!(invoice.total, inr(8_800 - 1_760));
    }

    #[test]
    fn credit_below_the_cap_and_no_credit_on_target() {
        // 1 late of 25: 96% meets 95%, no credit.
        let mut items: Vec<BillableItem> = (0..25)
            .map(|n| item(n, Priority::Normal, "10T12:00", 0))
            .collect();
        items[0].late_by = SignedDuration::from_mins(1);
        let on_target = invoice(Currency::INR, &[engagement(per_item(), items.clone())]).unwrap();
        assert!(on_target.credits.is_empty());
        assert_eq!(on_target.total, inr(10_000));
        // 2 late of 25: 92%, 3 points short, 15% of 10 000.
        items[1].late_by = SignedDuration::from_mins(1);
        let short = invoice(Currency::INR, &[engagement(per_item(), items)]).unwrap();
        assert_eq!(short.credits[0].credit_bp, 1_500);
        assert_eq!(short.total, inr(8_500));
    }

    #[test]
    fn hourly_and_fte_pricing() {
        let mut items = vec![item(1, Priority::Normal, "10T12:00", 0)];
        items[0].worked = SignedDuration::from_secs(5_000); // 1.3889 h
        let hourly = engagement(
            Pricing::PerHour {
                rate: Money::new(1_999, Currency::INR),
            },
            items.clone(),
        );
        let inv = invoice(Currency::INR, &[hourly]).unwrap();
        // 19.99 x 5000 / 3600 = 27.7638... -> 27.76
        assert_eq!(inv.lines[0].amount, Money::new(2_776, Currency::INR));
        assert_eq!(inv.lines[0].quantity_milli, 1_389);

        let fte = engagement(
            Pricing::PerFteMonth {
                rate: inr(150_000),
                fte_milli: 2_500,
            },
            items,
        );
        let inv = invoice(Currency::INR, &[fte]).unwrap();
        assert_eq!(inv.lines.len(), 1);
        assert_eq!(inv.lines[0].work_item_id, None);
        assert_eq!(inv.total, inr(375_000));

        let usd = engagement(
            Pricing::PerHour {
                rate: Money::new(1, Currency::USD),
            },
            vec![],
        );
        assert!(matches!(
            invoice(Currency::INR, &[usd]),
            Err(BillingError::WrongCurrency { .. })
        ));
        let missing = engagement(per_item(), vec![item(1, Priority::Low, "10T12:00", 0)]);
        assert_eq!(
            invoice(Currency::INR, &[missing]).unwrap_err().to_string(),
            "no rate for low items of band None in engagement claims"
        );
    }

    #[test]
    fn task_time_counts_held_time_minus_pauses() {
        use TaskState::*;
        let history = [
            (ts("02T09:00"), Ready),
            (ts("02T09:10"), Assigned),
            (ts("02T09:20"), InProgress),
            (ts("02T10:00"), OnHold),
            (ts("02T13:00"), Ready),
            (ts("02T13:30"), Assigned),
            (ts("02T14:00"), InProgress),
            (ts("02T14:30"), Submitted),
            (ts("02T15:00"), InReview),
            (ts("02T15:10"), Rework),
            (ts("02T15:25"), InProgress),
            (ts("02T15:40"), Submitted),
        ];
        // 50m before the hold, 60m after, 30m rework.
        assert_eq!(task_time(&history), SignedDuration::from_mins(50 + 60 + 30));
    }

    /// 200 checks, 180 right (90%), at 90% confidence against a 98% target: the Wilson
    /// interval is [86.0%, 93.0%]; 98.00 - 92.98 = 5.02 points short beyond doubt, at 3% a point
    /// a 15.06% credit.
    #[test]
    fn accuracy_below_target_is_credited_from_its_evidence() {
        let items: Vec<BillableItem> = (0..10)
            .map(|n| item(n, Priority::Normal, "10T12:00", 0))
            .collect();
        let mut eng = engagement(per_item(), items);
        eng.accuracy_credit_rule = Some(CreditRule {
            per_point_bp: 300,
            cap_bp: 2_500,
        });
        eng.accuracy_target_bp = 9_800;
        eng.accuracy = AccuracyEvidence {
            checks: 200,
            correct: 180,
            defects: 27,
            confidence_ppm: 900_000,
        };
        let invoice = invoice(Currency::INR, std::slice::from_ref(&eng)).unwrap();
        assert!(invoice.credits.is_empty(), "all items were on time");
        let [credit] = invoice.accuracy_credits.as_slice() else {
            panic!(
                "one accuracy credit expected: {:?}",
                invoice.accuracy_credits
            )
        };
        assert_eq!(
            (
                credit.checks,
                credit.correct,
                credit.defects,
                credit.achieved_bp
            ),
            (200, 180, 27, 9_000)
        );
        assert_eq!(
            (credit.interval_low_bp, credit.interval_high_bp),
            (8_595, 9_298)
        );
        // Recomputed from the evidence alone.
        let interval = wilson(credit.correct, credit.checks, 0.9);
        assert_eq!(
            credit.interval_high_bp,
            (interval.high * 10_000.0).ceil() as u32
        );
        assert_eq!(credit.points_short_bp, 9_800 - 9_298);
        assert_eq!(credit.credit_bp, 502 * 3);
        assert_eq!(credit.fees, inr(4_000));
        assert_eq!(credit.amount, Money::new(-60_240, Currency::INR));
        assert_eq!(invoice.total, Money::new(400_000 - 60_240, Currency::INR));

        // In doubt: 49 of 50 right (98%) against 98%; and 20 of 20 against 99%.
        for (checks, correct, target) in [(50, 49, 9_800), (20, 20, 9_900), (0, 0, 9_800)] {
            eng.accuracy.checks = checks;
            eng.accuracy.correct = correct;
            eng.accuracy_target_bp = target;
            let invoice = super::invoice(Currency::INR, std::slice::from_ref(&eng)).unwrap();
            assert!(
                invoice.accuracy_credits.is_empty(),
                "{checks} {correct} {target}"
            );
        }
        // No rule, no credit, however bad.
        eng.accuracy = AccuracyEvidence {
            checks: 100,
            correct: 10,
            defects: 90,
            confidence_ppm: 900_000,
        };
        eng.accuracy_target_bp = 9_800;
        assert!(accuracy_credit(&eng, inr(4_000)).is_some());
        eng.accuracy_credit_rule = None;
        assert!(accuracy_credit(&eng, inr(4_000)).is_none());
    }

    mod invariants {
        use proptest::prelude::*;

        use super::*;

        fn any_engagement() -> impl Strategy<Value = EngagementBilling> {
            let rule = (0u32..5_000, 0u32..20_000).prop_map(|(per_point_bp, cap_bp)| CreditRule {
                per_point_bp,
                cap_bp,
            });
            let evidence = (0u64..2_000, 0u64..2_000, 0u64..50, 0u32..=1_000_000).prop_map(
                |(checks, correct, defects, confidence_ppm)| AccuracyEvidence {
                    checks,
                    // Occasionally more right than checked: stored data is not trusted.
                    correct: correct.min(checks + 1),
                    defects,
                    confidence_ppm,
                },
            );
            let late = prop::collection::vec(0i64..600, 0..40);
            (
                prop::option::of(rule.clone()),
                prop::option::of(rule),
                0u32..=12_000,
                0u32..=10_000,
                evidence,
                late,
            )
                .prop_map(
                    |(
                        on_time_rule,
                        accuracy_rule,
                        accuracy_target_bp,
                        on_time_target_bp,
                        accuracy,
                        late,
                    )| {
                        let items = late
                            .iter()
                            .enumerate()
                            .map(|(n, late_min)| {
                                item(n as u128, Priority::Normal, "10T12:00", *late_min)
                            })
                            .collect();
                        let mut eng = engagement(per_item(), items);
                        eng.credit_rule = on_time_rule;
                        eng.on_time_target_bp = on_time_target_bp;
                        eng.accuracy_credit_rule = accuracy_rule;
                        eng.accuracy_target_bp = accuracy_target_bp;
                        eng.accuracy = accuracy;
                        eng
                    },
                )
        }

        proptest! {
            /// A credit is never positive, never more than its cap of the fees, and never
            /// more than the fees.
            #[test]
            fn credits_stay_within_their_caps(eng in any_engagement()) {
                let invoice = invoice(Currency::INR, std::slice::from_ref(&eng)).unwrap();
                let fees = invoice.subtotal.minor;
                let cap = |rule: Option<CreditRule>| {
                    let cap_bp = i64::from(rule.unwrap().cap_bp).min(BP_WHOLE);
                    share(fees, cap_bp, BP_WHOLE)
                };
                for credit in &invoice.credits {
                    prop_assert!(credit.amount.minor <= 0);
                    prop_assert!(-credit.amount.minor <= cap(eng.credit_rule));
                    prop_assert!(i64::from(credit.credit_bp) <= i64::from(eng.credit_rule.unwrap().cap_bp));
                }
                for credit in &invoice.accuracy_credits {
                    prop_assert!(credit.amount.minor <= 0);
                    prop_assert!(-credit.amount.minor <= cap(eng.accuracy_credit_rule));
                    prop_assert!(i64::from(credit.credit_bp) <= i64::from(eng.accuracy_credit_rule.unwrap().cap_bp));
                    // Only a shortfall beyond doubt is credited.
                    prop_assert!(credit.interval_high_bp < credit.target_bp);
                    prop_assert!(credit.interval_low_bp <= credit.achieved_bp);
                    prop_assert!(credit.achieved_bp <= credit.interval_high_bp);
                }
                let credited: i64 = invoice.credits.iter().map(|c| c.amount.minor)
                    .chain(invoice.accuracy_credits.iter().map(|c| c.amount.minor))
                    .sum();
                prop_assert_eq!(invoice.total.minor, fees + credited);
            }

            /// More checks right never raises the credit.
            #[test]
            fn better_accuracy_never_costs_more(eng in any_engagement(), extra in 1u64..50) {
                let fees = Money::new(1_000_000, Currency::INR);
                let before = accuracy_credit(&eng, fees).map_or(0, |c| c.credit_bp);
                let mut better = eng.clone();
                let correct = better.accuracy.correct.min(better.accuracy.checks);
                better.accuracy.correct = (correct + extra).min(better.accuracy.checks);
                let after = accuracy_credit(&better, fees).map_or(0, |c| c.credit_bp);
                prop_assert!(after <= before, "{} -> {}", before, after);
            }
        }
    }
}
