//! The pack: a versioned definition of how one service line's work is done, as plain data.
//!
//! A pack names the steps of a work item and who (or which processor) may do each one, the
//! input and output forms, the default SLA terms per priority, the QA policy, the business
//! decisions a worker may take with their authority limits and inverses, the defect categories
//! reviewers use, and the shape of the deliverable. Packs are written as files and parsed and
//! validated by the `karya-packs` crate; this module only holds the shapes and the closed lists
//! (qualification codes, processor names) that a pack is checked against.
//!
//! JSON Schemas and JSON examples are kept as JSON text: the core neither parses nor
//! serialises JSON, and the crates at the edge compile them once at load.

use crate::model::{Designation, Priority, Severity};
use crate::money::{Currency, Money};
use crate::service_line::ServiceLine;

/// Lowest skill level a step may require.
pub const SKILL_LEVEL_MIN: u8 = 1;
/// Highest skill level a step may require; levels run from novice (1) to recognised expert (10).
pub const SKILL_LEVEL_MAX: u8 = 10;

macro_rules! qualifications {
    ($($variant:ident = $code:literal, $name:literal;)*) => {
        /// A degree, professional membership or certification a worker holds and a step may
        /// require. The list is closed so that a pack cannot ask for a qualification nobody can
        /// record on a worker; `packs/README.md` documents it for pack authors.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Qualification { $($variant),* }

        impl Qualification {
            /// Every qualification code, in the order `packs/README.md` lists them.
            pub const ALL: &'static [Qualification] = &[$(Qualification::$variant),*];

            /// Stable machine name, used in pack files, the API and the database.
            pub fn code(self) -> &'static str {
                match self { $(Qualification::$variant => $code),* }
            }

            /// Name as people say it.
            pub fn name(self) -> &'static str {
                match self { $(Qualification::$variant => $name),* }
            }

            pub fn parse(text: &str) -> Option<Qualification> {
                Qualification::ALL.iter().copied().find(|q| q.code() == text)
            }
        }
    };
}

qualifications! {
    // Engineering and science.
    Btech = "btech", "Bachelor of Technology / Engineering (B.Tech, B.E.)";
    Mtech = "mtech", "Master of Technology / Engineering (M.Tech, M.E.)";
    Bsc = "bsc", "Bachelor of Science";
    Msc = "msc", "Master of Science";
    Phd = "phd", "Doctorate (PhD)";
    Bca = "bca", "Bachelor of Computer Applications";
    Mca = "mca", "Master of Computer Applications";
    Barch = "barch", "Bachelor of Architecture";
    // Design and communication.
    Bdes = "bdes", "Bachelor of Design";
    Bfa = "bfa", "Bachelor of Fine Arts";
    Ba = "ba", "Bachelor of Arts";
    Ma = "ma", "Master of Arts";
    Mjmc = "mjmc", "Master of Journalism and Mass Communication";
    Bed = "bed", "Bachelor of Education";
    // Commerce, finance and management.
    Bcom = "bcom", "Bachelor of Commerce";
    Mcom = "mcom", "Master of Commerce";
    Ca = "ca", "Chartered Accountant (ICAI)";
    Cpa = "cpa", "Certified Public Accountant";
    Acca = "acca", "Association of Chartered Certified Accountants";
    Cma = "cma", "Cost and Management Accountant";
    Cs = "cs", "Company Secretary (ICSI)";
    Mba = "mba", "Master of Business Administration";
    Cfa = "cfa", "Chartered Financial Analyst";
    Frm = "frm", "Financial Risk Manager";
    // Law and intellectual property.
    Llb = "llb", "Bachelor of Laws";
    Llm = "llm", "Master of Laws";
    BarAdmission = "bar_admission", "Admitted to a bar";
    PatentAgent = "patent_agent", "Registered patent agent";
    // Medicine and pharmacy.
    Mbbs = "mbbs", "Bachelor of Medicine, Bachelor of Surgery";
    Md = "md", "Doctor of Medicine";
    Bds = "bds", "Bachelor of Dental Surgery";
    Bpharm = "bpharm", "Bachelor of Pharmacy";
    Mpharm = "mpharm", "Master of Pharmacy";
    Pharmd = "pharmd", "Doctor of Pharmacy";
    BscNursing = "bsc_nursing", "B.Sc. Nursing";
    Cpc = "cpc", "Certified Professional Coder (AAPC)";
    Ccs = "ccs", "Certified Coding Specialist (AHIMA)";
    Cdip = "cdip", "Certified Documentation Integrity Practitioner";
    // Insurance.
    IiiLicentiate = "iii_licentiate", "Licentiate of the Insurance Institute of India";
    Cpcu = "cpcu", "Chartered Property Casualty Underwriter";
    Aic = "aic", "Associate in Claims";
    // Information technology and networks.
    Ccna = "ccna", "Cisco Certified Network Associate";
    Ccnp = "ccnp", "Cisco Certified Network Professional";
    Itil = "itil", "ITIL Foundation";
    CompTiaAPlus = "comptia_a_plus", "CompTIA A+";
    Mcsa = "mcsa", "Microsoft Certified: Administrator";
    Cissp = "cissp", "Certified Information Systems Security Professional";
    // Training, quality and project delivery.
    Cptd = "cptd", "Certified Professional in Talent Development";
    Pmp = "pmp", "Project Management Professional";
    SixSigmaGreenBelt = "six_sigma_green_belt", "Lean Six Sigma Green Belt";
}

/// Names of the processors a pack step may name. A processor step becomes a durable job for
/// the processor of that name; the list is closed so that a typo fails at load, not at run.
pub const PROCESSORS: &[&str] = &[
    // Optical character recognition of scanned pages into text with positions.
    "ocr",
    // Extraction of named fields from a document or OCR text into the item's data.
    "extract_fields",
    // Conversion between document and data formats (XML, JSON, CSV, XLSX, PDF, EPUB, ...).
    "convert",
    // Search of the prior-art corpus by keywords, classes and dates.
    "prior_art_search",
    // Calculators: statutory dues, premiums, interest, reconciliation totals.
    "calculate",
    // Indexing of documents and text into the search index.
    "index",
    // Classification of an item into one of the pack's categories.
    "classify",
    // Detection of duplicate records or submissions.
    "dedupe",
    // Validation of extracted data against rules and reference data.
    "validate_rules",
    // Packaging of the deliverable's files and data.
    "package",
];

/// A share of a whole in hundredths of a percent (basis points): 9_950 is 99.5 %.
/// Kept as an integer so rules on accuracy and sampling are exact and deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BasisPoints(pub u16);

impl BasisPoints {
    /// The whole: 100 %.
    pub const WHOLE: BasisPoints = BasisPoints(10_000);

    pub fn as_percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

/// The versioned definition of how a service line's work is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// Stable identifier, e.g. `ip-prior-art-search`.
    pub id: String,
    /// Raised whenever the pack changes; work items record the version they were taken under.
    pub version: u32,
    pub service_line: ServiceLine,
    pub title: String,
    pub description: String,
    /// In the order a work item goes through them.
    pub steps: Vec<Step>,
    /// JSON Schema (JSON text) of a work item's input.
    pub input_schema: String,
    /// JSON Schema (JSON text) of the data delivered back.
    pub output_schema: String,
    /// Realistic inputs that validate against the input schema.
    pub examples: Vec<Example>,
    /// Default SLA terms, one per priority, in the order of [`Priority::ALL`].
    pub sla: Vec<SlaTerms>,
    pub qa: QaPolicy,
    pub decisions: Vec<DecisionType>,
    pub defects: Vec<DefectCategory>,
    pub deliverable: DeliverableShape,
}

impl Pack {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.name == name)
    }

    pub fn decision(&self, name: &str) -> Option<&DecisionType> {
        self.decisions.iter().find(|decision| decision.name == name)
    }

    pub fn defect(&self, name: &str) -> Option<&DefectCategory> {
        self.defects.iter().find(|defect| defect.name == name)
    }

    pub fn sla_for(&self, priority: Priority) -> Option<&SlaTerms> {
        self.sla.iter().find(|terms| terms.priority == priority)
    }
}

/// How a pack step is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// A person does it; it becomes a task for the router.
    Human,
    /// A processor (OCR, extraction, conversion) does it as a durable job.
    Processor { processor: String },
}

/// One step of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique within the pack, e.g. `search` or `adjudication`.
    pub name: String,
    pub title: String,
    pub kind: StepKind,
    /// Who may do it; empty for a processor step.
    pub requirements: Requirements,
    /// Decision types a worker may record in this step.
    pub decisions: Vec<String>,
    /// Typical handling time of one item in this step, in minutes of work.
    pub expected_minutes: u32,
}

/// What a worker must hold to be offered a step's task. Every listed item is required.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirements {
    /// The worker must hold at least one of these (empty: none needed).
    pub qualifications_any: Vec<Qualification>,
    pub skills: Vec<SkillRequirement>,
    /// The worker must speak every one of these (BCP 47 codes such as `en`, `de`, `ja`).
    pub languages: Vec<String>,
    /// The lowest rank that may do the step, e.g. a team lead for a final review.
    pub min_designation: Option<Designation>,
}

impl Requirements {
    pub fn is_empty(&self) -> bool {
        self.qualifications_any.is_empty()
            && self.skills.is_empty()
            && self.languages.is_empty()
            && self.min_designation.is_none()
    }
}

/// A skill at a minimum level between [`SKILL_LEVEL_MIN`] and [`SKILL_LEVEL_MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillRequirement {
    /// e.g. `patent_search`, `claim_adjudication`, `icd10_coding`.
    pub skill: String,
    pub min_level: u8,
}

/// A named input that validates against the pack's input schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub name: String,
    pub priority: Priority,
    /// JSON text.
    pub input: String,
}

/// Default SLA terms of one priority, in business minutes of the engagement's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTerms {
    pub priority: Priority,
    /// Time until work starts (the first task is accepted).
    pub first_response_minutes: u32,
    /// Time until the deliverable is sent.
    pub resolution_minutes: u32,
    /// Share of the resolution time after which the item is flagged at risk.
    pub warning_at: BasisPoints,
    /// Share of reviewed items that must pass.
    pub accuracy_target: BasisPoints,
}

/// How a pack's finished work is sampled and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QaPolicy {
    /// The lowest rank that may review.
    pub min_reviewer: Designation,
    /// Share of tasks reviewed while a worker or engagement has no track record.
    pub initial_review_rate: BasisPoints,
    /// Accuracy the sampling aims to prove.
    pub target_accuracy: BasisPoints,
    /// Statistical confidence of that proof.
    pub confidence: BasisPoints,
    /// Independent repetition of the work, compared field by field.
    pub consensus: Option<Consensus>,
    /// Share of tasks that are gold tasks with a known answer.
    pub gold_share: BasisPoints,
}

/// The same work done independently `k` times; disagreements go to adjudication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consensus {
    pub mode: ConsensusMode,
    /// How many independent workers (at least 2).
    pub k: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsensusMode {
    /// Keying the same fields twice (or more) and comparing character by character.
    DoubleKeying,
    /// Independent judgements (codes, classifications) compared for agreement.
    IndependentJudgement,
}

/// A business decision a worker may record inside a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionType {
    /// e.g. `approve_claim`, `assign_icd10_code`.
    pub name: String,
    pub title: String,
    /// JSON Schema (JSON text) of the decision's payload.
    pub payload_schema: String,
    pub inverse: Inverse,
    /// How long after the decision it may still be undone, in hours (0 when irreversible).
    pub undo_window_hours: u32,
    pub authority: Authority,
}

/// What undoing a decision takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inverse {
    /// Undone by a compensating action, e.g. `reverse_payment_instruction`.
    Compensate { action: String },
    /// Cannot be undone once taken (a filed return, a sent communication); flagged instead.
    Irreversible,
}

/// Who may take a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// Any worker at or above a rank, whatever the payload.
    Designation { minimum: Designation },
    /// A monetary decision: each rank may decide up to its limit; above the highest, `beyond`.
    Amount {
        /// JSON pointer to the amount (major units, number) in the payload, e.g. `/amount`.
        field: String,
        currency: Currency,
        /// Ascending by rank and by amount.
        limits: Vec<AuthorityLimit>,
        beyond: Beyond,
    },
}

/// The most one rank may decide on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorityLimit {
    pub designation: Designation,
    pub up_to: Money,
}

/// What happens to a decision above every rank's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beyond {
    /// The client approves it before it takes effect.
    ClientApproval,
    /// The firm may not take it at all.
    Refused,
}

/// A kind of fault reviewers record, with the severity it has unless they say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefectCategory {
    /// e.g. `missed_reference`, `wrong_code`.
    pub name: String,
    pub title: String,
    pub severity: Severity,
}

/// What goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverableShape {
    pub files: Vec<DeliverableFile>,
    /// Top-level fields of the output schema delivered as data.
    pub fields: Vec<String>,
}

/// One file of the deliverable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverableFile {
    /// File name, possibly with `{external_ref}` or `{work_item_id}`.
    pub name: String,
    pub media_type: String,
    pub description: String,
    pub required: bool,
}

/// Whether `designation` may decide `amount` of this authority on its own. `None` when the
/// amount is above every limit, so the decision follows [`Beyond`].
pub fn within_authority(
    authority: &Authority,
    designation: Designation,
    amount: Option<Money>,
) -> Option<bool> {
    match authority {
        Authority::Designation { minimum } => Some(designation >= *minimum),
        Authority::Amount { limits, .. } => {
            let amount = amount?;
            let highest = limits.iter().map(|limit| limit.up_to.minor).max()?;
            if amount.minor > highest {
                return None;
            }
            Some(limits.iter().any(|limit| {
                limit.designation <= designation
                    && limit.up_to.currency == amount.currency
                    && amount.minor <= limit.up_to.minor
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualification_codes_are_unique_and_parse_back() {
        let mut codes: Vec<&str> = Qualification::ALL.iter().map(|q| q.code()).collect();
        for code in &codes {
            assert_eq!(Qualification::parse(code).map(|q| q.code()), Some(*code));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Qualification::ALL.len());
        assert_eq!(Qualification::parse("btec"), None);
    }

    #[test]
    fn authority_by_amount_and_rank() {
        let inr = |major: i64| Money::new(major * 100, Currency::INR);
        let authority = Authority::Amount {
            field: "/amount".into(),
            currency: Currency::INR,
            limits: vec![
                AuthorityLimit {
                    designation: Designation::Analyst,
                    up_to: inr(50_000),
                },
                AuthorityLimit {
                    designation: Designation::TeamLead,
                    up_to: inr(500_000),
                },
            ],
            beyond: Beyond::ClientApproval,
        };
        let check = |designation, amount: i64, expect: Option<bool>| {
            assert_eq!(
                within_authority(&authority, designation, Some(inr(amount))),
                expect,
                "{designation:?} deciding {amount}"
            );
        };
        check(Designation::Analyst, 50_000, Some(true));
        check(Designation::Analyst, 50_001, Some(false));
        check(Designation::SeniorAnalyst, 60_000, Some(false));
        check(Designation::TeamLead, 500_000, Some(true));
        check(Designation::Manager, 400_000, Some(true));
        check(Designation::Manager, 500_001, None);
        let by_rank = Authority::Designation {
            minimum: Designation::SeniorAnalyst,
        };
        assert_eq!(
            within_authority(&by_rank, Designation::Analyst, None),
            Some(false)
        );
        assert_eq!(
            within_authority(&by_rank, Designation::TeamLead, None),
            Some(true)
        );
    }
}
