//! Client policies over decisions: CEL expressions in layers, firm → client → engagement → team.
//!
//! Every policy in force that covers a decision must pass; a lower layer can therefore only add
//! constraints. What a lower layer may not do is *replace* a constraint set above it with a
//! looser one: publishing a policy under a key that a higher layer already uses is allowed only
//! when it tightens (a lower `at_most`, a higher `at_least`, a stricter consequence), or when the
//! higher one is a declared default and the draft states a reason. Everything else is refused
//! with an explanation. Policies are versioned and never overwritten; an evaluation names the
//! version of every policy it applied.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use crate::decision::attr::Attr;
use crate::id::{ClientId, EngagementId};

/// How high in the organisation a policy is set. Earlier variants are higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Firm,
    Client,
    Engagement,
    Team,
}

impl Layer {
    pub const ALL: [Layer; 4] = [Layer::Firm, Layer::Client, Layer::Engagement, Layer::Team];

    pub fn code(self) -> &'static str {
        match self {
            Layer::Firm => "firm",
            Layer::Client => "client",
            Layer::Engagement => "engagement",
            Layer::Team => "team",
        }
    }

    pub fn parse(text: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|layer| layer.code() == text)
    }
}

/// Where a policy applies: its layer and the client, engagement or team it is set for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub layer: Layer,
    pub client_id: Option<ClientId>,
    pub engagement_id: Option<EngagementId>,
    pub team: Option<String>,
}

/// Where a decision is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionScope {
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub team: Option<String>,
}

impl Scope {
    pub fn firm() -> Scope {
        Scope {
            layer: Layer::Firm,
            client_id: None,
            engagement_id: None,
            team: None,
        }
    }

    pub fn client(client_id: ClientId) -> Scope {
        Scope {
            layer: Layer::Client,
            client_id: Some(client_id),
            engagement_id: None,
            team: None,
        }
    }

    pub fn engagement(client_id: ClientId, engagement_id: EngagementId) -> Scope {
        Scope {
            layer: Layer::Engagement,
            client_id: Some(client_id),
            engagement_id: Some(engagement_id),
            team: None,
        }
    }

    pub fn team(client_id: ClientId, team: &str) -> Scope {
        Scope {
            layer: Layer::Team,
            client_id: Some(client_id),
            engagement_id: None,
            team: Some(team.to_string()),
        }
    }

    /// Checks that the scope names exactly what its layer needs.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let ok = match self.layer {
            Layer::Firm => {
                self.client_id.is_none() && self.engagement_id.is_none() && self.team.is_none()
            }
            Layer::Client => {
                self.client_id.is_some() && self.engagement_id.is_none() && self.team.is_none()
            }
            Layer::Engagement => {
                self.client_id.is_some() && self.engagement_id.is_some() && self.team.is_none()
            }
            Layer::Team => {
                self.client_id.is_some() && self.team.as_deref().is_some_and(|t| !t.is_empty())
            }
        };
        if ok {
            return Ok(());
        }
        Err(PolicyError::Invalid(format!(
            "a {} policy names {}",
            self.layer.code(),
            match self.layer {
                Layer::Firm => "no client, engagement or team",
                Layer::Client => "a client only",
                Layer::Engagement => "a client and an engagement",
                Layer::Team => "a client and a team (and optionally an engagement)",
            }
        )))
    }

    /// Whether a policy of this scope applies to a decision made at `at`.
    pub fn covers(&self, at: &DecisionScope) -> bool {
        self.client_id.is_none_or(|c| c == at.client_id)
            && self.engagement_id.is_none_or(|e| e == at.engagement_id)
            && self
                .team
                .as_ref()
                .is_none_or(|t| at.team.as_ref() == Some(t))
    }

    /// Whether this scope is a higher layer that contains `other`.
    pub fn is_above(&self, other: &Scope) -> bool {
        self.layer < other.layer
            && self.client_id.is_none_or(|c| other.client_id == Some(c))
            && self
                .engagement_id
                .is_none_or(|e| other.engagement_id == Some(e))
            && self
                .team
                .as_ref()
                .is_none_or(|t| other.team.as_ref() == Some(t))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.team {
            Some(team) => write!(f, "team {team}"),
            None => f.write_str(self.layer.code()),
        }
    }
}

/// What a policy requires of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// Any CEL expression over `decision`, `item` and `context` that must be true.
    Rule { expression: String },
    /// A decision field (dotted path) must be at most `limit` (amounts in minor units).
    AtMost { field: String, limit: i64 },
    /// A decision field must be at least `limit`.
    AtLeast { field: String, limit: i64 },
}

impl Constraint {
    /// The CEL expression evaluated for this constraint.
    pub fn expression(&self) -> String {
        match self {
            Constraint::Rule { expression } => expression.clone(),
            Constraint::AtMost { field, limit } => format!("decision.{field} <= {limit}"),
            Constraint::AtLeast { field, limit } => format!("decision.{field} >= {limit}"),
        }
    }
}

/// Who must approve a decision that fails a policy asking for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Approver {
    /// A team lead (or above) of the firm.
    Lead,
    /// The client itself.
    Client,
}

impl Approver {
    pub fn code(self) -> &'static str {
        match self {
            Approver::Lead => "lead",
            Approver::Client => "client",
        }
    }
}

/// What a failed policy does to a decision. Ordered from mildest to strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OnFail {
    Approval(Approver),
    Block,
}

impl OnFail {
    pub fn code(self) -> &'static str {
        match self {
            OnFail::Approval(Approver::Lead) => "approval:lead",
            OnFail::Approval(Approver::Client) => "approval:client",
            OnFail::Block => "block",
        }
    }

    pub fn parse(text: &str) -> Option<OnFail> {
        [
            OnFail::Approval(Approver::Lead),
            OnFail::Approval(Approver::Client),
            OnFail::Block,
        ]
        .into_iter()
        .find(|on_fail| on_fail.code() == text)
    }
}

/// A policy as proposed, before it gets a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDraft {
    /// Names the constraint across layers, e.g. `refunds.max_amount`.
    pub key: String,
    pub scope: Scope,
    /// The decision type it governs; `None` for every type.
    pub decision_type: Option<String>,
    pub constraint: Constraint,
    pub on_fail: OnFail,
    /// A default: lower layers may override it, with a stated reason.
    pub default: bool,
    /// Why this policy is set; required when it overrides a default.
    pub reason: Option<String>,
}

/// A published policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub key: String,
    pub scope: Scope,
    pub decision_type: Option<String>,
    pub constraint: Constraint,
    pub on_fail: OnFail,
    pub default: bool,
    pub reason: Option<String>,
    /// 1 for the first version of `(key, scope)`, then 2, 3, ...
    pub version: u32,
    pub effective_from: Timestamp,
}

impl Policy {
    /// How people refer to it: `client/refunds.max_amount v4`.
    pub fn label(&self) -> String {
        format!("{}/{} v{}", self.scope, self.key, self.version)
    }

    fn applies_to(&self, decision_type: &str, at: &DecisionScope) -> bool {
        self.decision_type
            .as_deref()
            .is_none_or(|t| t == decision_type)
            && self.scope.covers(at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy: {0}")]
    Invalid(String),
    #[error("policy expression does not parse: {0}")]
    Syntax(String),
    /// The draft would loosen a constraint set at a higher layer.
    #[error("{0}")]
    Loosens(String),
}

/// Longest policy expression accepted; policies are rules people read, not programs.
pub const EXPRESSION_LEN_MAX: usize = 2_000;

struct Compiled {
    policy: Policy,
    program: Arc<cel::Program>,
}

/// Every published policy version, and the rules for publishing more.
#[derive(Default)]
pub struct PolicyBook {
    versions: Vec<Compiled>,
}

impl fmt::Debug for PolicyBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.versions.iter().map(|c| c.policy.label()))
            .finish()
    }
}

/// The result of one policy against one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub label: String,
    pub key: String,
    pub scope: Scope,
    pub version: u32,
    pub expression: String,
    pub on_fail: OnFail,
    pub passed: bool,
    /// Why it failed, in words: the values it saw, or why it could not be evaluated.
    pub detail: Option<String>,
}

impl Check {
    /// One line a person can read, e.g. "policy client/refunds v4 `decision.amount <= 20000`
    /// fails for decision.amount = 25000".
    pub fn trace(&self) -> String {
        let outcome = if self.passed { "passes" } else { "fails" };
        match &self.detail {
            Some(detail) => format!(
                "policy {} `{}` {outcome} {detail}",
                self.label, self.expression
            ),
            None => format!("policy {} `{}` {outcome}", self.label, self.expression),
        }
    }
}

/// What the policies say about a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Approval(Approver),
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub checks: Vec<Check>,
}

impl Evaluation {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The strictest consequence among the failed policies.
    pub fn verdict(&self) -> Verdict {
        match self.failures().map(|c| c.on_fail).max() {
            None => Verdict::Allow,
            Some(OnFail::Block) => Verdict::Block,
            Some(OnFail::Approval(approver)) => Verdict::Approval(
                self.failures()
                    .filter_map(|c| match c.on_fail {
                        OnFail::Approval(a) => Some(a),
                        OnFail::Block => None,
                    })
                    .max()
                    .unwrap_or(approver),
            ),
        }
    }

    /// `(label)` of every policy applied, for the record.
    pub fn applied(&self) -> Vec<String> {
        self.checks.iter().map(|c| c.label.clone()).collect()
    }
}

/// Everything a policy may look at.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    pub decision_type: String,
    /// The decision's content (amounts in minor units).
    pub payload: Attr,
    /// The work item it belongs to: priority, service line, input fields.
    pub item: Attr,
    /// Who decides and where: designation, qualifications, site.
    pub context: Attr,
    pub scope: DecisionScope,
}

impl PolicyBook {
    pub fn new() -> PolicyBook {
        PolicyBook::default()
    }

    /// The latest version of every `(key, scope)`.
    pub fn in_force(&self) -> impl Iterator<Item = &Policy> {
        self.in_force_compiled().map(|c| &c.policy)
    }

    fn in_force_compiled(&self) -> impl Iterator<Item = &Compiled> {
        self.versions
            .iter()
            .enumerate()
            .filter_map(|(idx, compiled)| {
                let superseded = self.versions[idx + 1..].iter().any(|later| {
                    later.policy.key == compiled.policy.key
                        && later.policy.scope == compiled.policy.scope
                });
                (!superseded).then_some(compiled)
            })
    }

    /// Checks a draft against the layers above it and returns the version it would get.
    pub fn check(&self, draft: &PolicyDraft) -> Result<u32, PolicyError> {
        draft.scope.validate()?;
        if draft.key.trim().is_empty() || draft.key.len() > 200 {
            return Err(PolicyError::Invalid(
                "a policy key is 1 to 200 characters".into(),
            ));
        }
        let expression = draft.constraint.expression();
        if expression.len() > EXPRESSION_LEN_MAX {
            return Err(PolicyError::Invalid(format!(
                "the expression is longer than {EXPRESSION_LEN_MAX} characters"
            )));
        }
        cel::Program::compile(&expression).map_err(|err| PolicyError::Syntax(err.to_string()))?;
        for upper in self
            .in_force()
            .filter(|p| p.key == draft.key && p.scope.is_above(&draft.scope))
        {
            check_tightens(upper, draft)?;
        }
        let previous = self
            .versions
            .iter()
            .filter(|c| c.policy.key == draft.key && c.policy.scope == draft.scope)
            .map(|c| c.policy.version)
            .max();
        Ok(previous.unwrap_or(0) + 1)
    }

    /// Checks and publishes a draft; it is in force from `now`.
    pub fn publish(&mut self, draft: PolicyDraft, now: Timestamp) -> Result<Policy, PolicyError> {
        let version = self.check(&draft)?;
        let policy = Policy {
            key: draft.key,
            scope: draft.scope,
            decision_type: draft.decision_type,
            constraint: draft.constraint,
            on_fail: draft.on_fail,
            default: draft.default,
            reason: draft.reason,
            version,
            effective_from: now,
        };
        self.insert(policy.clone())?;
        Ok(policy)
    }

    /// Adds a version published earlier (loaded from the store); only compiles it, since the
    /// layering was checked when it was published.
    pub fn insert(&mut self, policy: Policy) -> Result<(), PolicyError> {
        let program = cel::Program::compile(&policy.constraint.expression())
            .map_err(|err| PolicyError::Syntax(err.to_string()))?;
        self.versions.push(Compiled {
            policy,
            program: Arc::new(program),
        });
        Ok(())
    }

    /// Evaluates every policy in force that covers the decision.
    pub fn evaluate(&self, input: &DecisionInput) -> Evaluation {
        let mut decision = input.payload.clone();
        if let Attr::Map(map) = &mut decision {
            map.insert("type".into(), Attr::Text(input.decision_type.clone()));
        }
        let mut context = cel::Context::default();
        context.add_variable_from_value("decision", decision.to_cel());
        context.add_variable_from_value("item", input.item.to_cel());
        context.add_variable_from_value("context", input.context.to_cel());
        let mut checks: Vec<Check> = self
            .in_force_compiled()
            .filter(|c| c.policy.applies_to(&input.decision_type, &input.scope))
            .map(|compiled| {
                let policy = &compiled.policy;
                let (passed, detail) = match compiled.program.execute(&context) {
                    Ok(cel::Value::Bool(true)) => (true, None),
                    Ok(cel::Value::Bool(false)) => {
                        (false, Some(observed(&policy.constraint, &input.payload)))
                    }
                    // A policy that cannot be evaluated does not let a decision through.
                    Ok(other) => (
                        false,
                        Some(format!("(it gave {other:?}, not true or false)")),
                    ),
                    Err(err) => (false, Some(format!("(it could not be evaluated: {err})"))),
                };
                Check {
                    label: policy.label(),
                    key: policy.key.clone(),
                    scope: policy.scope.clone(),
                    version: policy.version,
                    expression: policy.constraint.expression(),
                    on_fail: policy.on_fail,
                    passed,
                    detail: detail.filter(|d| !d.is_empty()),
                }
            })
            .collect();
        checks.sort_by(|a, b| (a.scope.layer, &a.key).cmp(&(b.scope.layer, &b.key)));
        Evaluation { checks }
    }
}

/// The value(s) a failing limit saw, for the trace.
fn observed(constraint: &Constraint, payload: &Attr) -> String {
    match constraint {
        Constraint::AtMost { field, .. } | Constraint::AtLeast { field, .. } => {
            match payload.get_path(field) {
                Some(Attr::Int(n)) => format!("for {field} {n}"),
                Some(other) => format!("for {field} {other:?}"),
                None => format!("(the decision has no {field})"),
            }
        }
        Constraint::Rule { .. } => String::new(),
    }
}

/// The tighten-only rule between a higher policy and a draft under the same key.
fn check_tightens(upper: &Policy, draft: &PolicyDraft) -> Result<(), PolicyError> {
    let place = format!(
        "{} sets {} as `{}`",
        upper.scope,
        upper.key,
        upper.constraint.expression()
    );
    if upper.default {
        return match draft.reason.as_deref().map(str::trim) {
            Some(reason) if !reason.is_empty() => Ok(()),
            _ => Err(PolicyError::Loosens(format!(
                "{place} as a default; overriding a default needs a stated reason"
            ))),
        };
    }
    if draft.on_fail < upper.on_fail {
        return Err(PolicyError::Loosens(format!(
            "{place} with consequence {}; {} at the {} layer would be milder",
            upper.on_fail.code(),
            draft.on_fail.code(),
            draft.scope
        )));
    }
    match (&upper.constraint, &draft.constraint) {
        (Constraint::AtMost { field: f1, limit: l1 }, Constraint::AtMost { field: f2, limit: l2 }) if f1 == f2 => {
            if l2 <= l1 {
                Ok(())
            } else {
                Err(PolicyError::Loosens(format!(
                    "{place}; {f2} <= {l2} at the {} layer would loosen it: a lower layer may only tighten",
                    draft.scope
                )))
            }
        }
        (Constraint::AtLeast { field: f1, limit: l1 }, Constraint::AtLeast { field: f2, limit: l2 }) if f1 == f2 => {
            if l2 >= l1 {
                Ok(())
            } else {
                Err(PolicyError::Loosens(format!(
                    "{place}; {f2} >= {l2} at the {} layer would loosen it: a lower layer may only tighten",
                    draft.scope
                )))
            }
        }
        (upper_constraint, draft_constraint) if upper_constraint == draft_constraint => Ok(()),
        _ => Err(PolicyError::Loosens(format!(
            "{place}; a lower layer cannot replace it with another constraint (it could loosen it): \
             publish an additional policy under another key to tighten"
        ))),
    }
}

#[cfg(test)]
#[allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in minor units read best with the cents as their own group: 50_000_00"
)]
mod tests {
    use super::*;

    fn client() -> ClientId {
        "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b".parse().unwrap()
    }

    fn engagement() -> EngagementId {
        "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7c".parse().unwrap()
    }

    fn at() -> Timestamp {
        Timestamp::from_second(1_790_000_000).unwrap()
    }

    fn draft(key: &str, scope: Scope, constraint: Constraint, on_fail: OnFail) -> PolicyDraft {
        PolicyDraft {
            key: key.into(),
            scope,
            decision_type: Some("refund".into()),
            constraint,
            on_fail,
            default: false,
            reason: None,
        }
    }

    fn at_most(limit: i64) -> Constraint {
        Constraint::AtMost {
            field: "amount".into(),
            limit,
        }
    }

    /// Publishes `drafts` in order and reports each outcome as text.
    fn check_layering(drafts: Vec<PolicyDraft>, expected: &[&str]) {
        let mut book = PolicyBook::new();
        let actual: Vec<String> = drafts
            .into_iter()
            .map(|draft| match book.publish(draft, at()) {
                Ok(policy) => format!("ok {}", policy.label()),
                Err(err) => format!("refused: {err}"),
            })
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn lower_layers_may_tighten_a_limit() {
        check_layering(
            vec![
                draft(
                    "refunds.max",
                    Scope::firm(),
                    at_most(50_000_00),
                    OnFail::Block,
                ),
                draft(
                    "refunds.max",
                    Scope::client(client()),
                    at_most(20_000_00),
                    OnFail::Block,
                ),
                draft(
                    "refunds.max",
                    Scope::engagement(client(), engagement()),
                    at_most(20_000_00),
                    OnFail::Block,
                ),
            ],
            &[
                "ok firm/refunds.max v1",
                "ok client/refunds.max v1",
                "ok engagement/refunds.max v1",
            ],
        );
    }

    #[test]
    fn loosening_is_refused_with_an_explanation() {
        check_layering(
            vec![
                draft("refunds.max", Scope::firm(), at_most(20_000_00), OnFail::Block),
                draft("refunds.max", Scope::client(client()), at_most(25_000_00), OnFail::Block),
                draft("refunds.max", Scope::client(client()), at_most(10_000_00), OnFail::Approval(Approver::Client)),
                draft(
                    "refunds.max",
                    Scope::team(client(), "north"),
                    Constraint::Rule { expression: "decision.amount < 1".into() },
                    OnFail::Block,
                ),
            ],
            &[
                "ok firm/refunds.max v1",
                "refused: firm sets refunds.max as `decision.amount <= 2000000`; amount <= 2500000 at the client layer would loosen it: a lower layer may only tighten",
                "refused: firm sets refunds.max as `decision.amount <= 2000000` with consequence block; approval:client at the client layer would be milder",
                "refused: firm sets refunds.max as `decision.amount <= 2000000`; a lower layer cannot replace it with another constraint (it could loosen it): publish an additional policy under another key to tighten",
            ],
        );
    }

    #[test]
    fn defaults_may_be_overridden_with_a_reason() {
        let default = PolicyDraft {
            default: true,
            ..draft(
                "refunds.max",
                Scope::firm(),
                at_most(20_000_00),
                OnFail::Block,
            )
        };
        let without_reason = draft(
            "refunds.max",
            Scope::client(client()),
            at_most(30_000_00),
            OnFail::Block,
        );
        let with_reason = PolicyDraft {
            reason: Some("contract schedule 4 allows larger goodwill refunds".into()),
            ..without_reason.clone()
        };
        check_layering(
            vec![default, without_reason, with_reason],
            &[
                "ok firm/refunds.max v1",
                "refused: firm sets refunds.max as `decision.amount <= 2000000` as a default; overriding a default needs a stated reason",
                "ok client/refunds.max v1",
            ],
        );
    }

    #[test]
    fn republishing_gives_a_new_version_and_other_clients_are_not_affected() {
        let other: ClientId = "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7d".parse().unwrap();
        check_layering(
            vec![
                draft(
                    "refunds.max",
                    Scope::client(client()),
                    at_most(20_000_00),
                    OnFail::Block,
                ),
                draft(
                    "refunds.max",
                    Scope::client(client()),
                    at_most(30_000_00),
                    OnFail::Block,
                ),
                draft(
                    "refunds.max",
                    Scope::team(other, "north"),
                    at_most(90_000_00),
                    OnFail::Block,
                ),
                draft(
                    "bad",
                    Scope {
                        layer: Layer::Client,
                        client_id: None,
                        engagement_id: None,
                        team: None,
                    },
                    at_most(1),
                    OnFail::Block,
                ),
            ],
            &[
                "ok client/refunds.max v1",
                "ok client/refunds.max v2",
                "ok team north/refunds.max v1",
                "refused: invalid policy: a client policy names a client only",
            ],
        );
        let syntax = PolicyBook::new()
            .publish(
                draft(
                    "bad",
                    Scope::firm(),
                    Constraint::Rule {
                        expression: "decision.amount <=".into(),
                    },
                    OnFail::Block,
                ),
                at(),
            )
            .unwrap_err();
        assert!(matches!(syntax, PolicyError::Syntax(_)), "{syntax:?}");
    }

    fn input(amount: i64) -> DecisionInput {
        DecisionInput {
            decision_type: "refund".into(),
            payload: Attr::map()
                .with("amount", amount)
                .with("reason", "late delivery"),
            item: Attr::map().with("priority", "high"),
            context: Attr::map().with("designation", "analyst"),
            scope: DecisionScope {
                client_id: client(),
                engagement_id: engagement(),
                team: Some("north".into()),
            },
        }
    }

    #[test]
    fn evaluation_applies_every_layer_and_takes_the_strictest_consequence() {
        let mut book = PolicyBook::new();
        book.publish(
            draft(
                "refunds.max",
                Scope::firm(),
                at_most(50_000_00),
                OnFail::Block,
            ),
            at(),
        )
        .unwrap();
        book.publish(
            draft(
                "refunds.max",
                Scope::client(client()),
                at_most(20_000_00),
                OnFail::Block,
            ),
            at(),
        )
        .unwrap();
        book.publish(
            draft(
                "refunds.review",
                Scope::team(client(), "north"),
                at_most(5_000_00),
                OnFail::Approval(Approver::Lead),
            ),
            at(),
        )
        .unwrap();
        book.publish(
            draft(
                "refunds.reason",
                Scope::client(client()),
                Constraint::Rule {
                    expression: "decision.reason != '' && item.priority in ['high', 'urgent']"
                        .into(),
                },
                OnFail::Approval(Approver::Client),
            ),
            at(),
        )
        .unwrap();

        let small = book.evaluate(&input(1_000_00));
        assert_eq!(small.verdict(), Verdict::Allow);
        assert_eq!(small.applied().len(), 4);

        let medium = book.evaluate(&input(10_000_00));
        assert_eq!(medium.verdict(), Verdict::Approval(Approver::Lead));
        assert_eq!(
            medium.failures().map(Check::trace).collect::<Vec<_>>(),
            ["policy team north/refunds.review v1 `decision.amount <= 500000` fails for amount 1000000"]
        );

        let large = book.evaluate(&input(25_000_00));
        assert_eq!(large.verdict(), Verdict::Block);
        assert_eq!(
            large.failures().map(Check::trace).collect::<Vec<_>>(),
            [
                "policy client/refunds.max v1 `decision.amount <= 2000000` fails for amount 2500000",
                "policy team north/refunds.review v1 `decision.amount <= 500000` fails for amount 2500000",
            ]
        );

        // Another team's decision is not under team north's policy.
        let mut elsewhere = input(10_000_00);
        elsewhere.scope.team = Some("south".into());
        assert_eq!(book.evaluate(&elsewhere).verdict(), Verdict::Allow);
    }

    #[test]
    fn a_policy_that_cannot_be_evaluated_does_not_let_a_decision_through() {
        let mut book = PolicyBook::new();
        book.publish(
            draft(
                "x",
                Scope::client(client()),
                Constraint::AtMost {
                    field: "discount".into(),
                    limit: 10,
                },
                OnFail::Block,
            ),
            at(),
        )
        .unwrap();
        let evaluation = book.evaluate(&input(1));
        assert_eq!(evaluation.verdict(), Verdict::Block);
        let trace = evaluation.failures().next().unwrap().trace();
        assert!(trace.contains("could not be evaluated"), "{trace}");
    }
}
