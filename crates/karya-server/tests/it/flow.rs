//! Work flowing through its pack, end to end: every built-in pack's engagement set up from the
//! pack, its example input taken in, every step done (work, QA review, decisions, processor
//! jobs) until the item is delivered with a deliverable, and the audit chains intact. Also the
//! HTTP routes of intake validation and deliverables.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use jiff::Timestamp;
use karya_core::decision::attr::Attr;
use karya_core::id::{
    AssignmentId, ClientId, DecisionId, EngagementId, ReviewId, WorkItemId, WorkerId,
};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::Designation;
use karya_core::money::Currency;
use karya_core::pack::Authority;
use karya_core::pack::StepKind;
use karya_core::qa::review::Verdict;
use karya_packs::LoadedPack;
use karya_store::{
    Deliverable, NewDecision, NewEngagement, NewReview, NewWorkItem, Store, Submission,
    SubmitOutcome, Tenant,
};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::TestApp;

/// Most tasks and jobs one item may pass through before the test calls it stuck: more than the
/// longest pack (24 steps) with a rework round on each.
const STEPS_MAX: usize = 64;

/// A sample string for each pattern the packs' forms use.
const PATTERN_SAMPLES: &[(&str, &str)] = &[
    (
        r"\.(step|stp|igs|iges|x_t|prt|sldprt|catpart)$",
        "bracket.step",
    ),
    ("^(INC|REQ|RITM)[0-9]{7}$", "INC0012345"),
    ("^97[89][0-9]{10}$", "9781234567897"),
    ("^[0-9A-Z.]{2,8}$", "A1.B"),
    ("^[0-9A-Z]{2}$", "A1"),
    (r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", "1.0"),
    ("^[0-9]{10}$", "1234567890"),
    ("^[0-9]{12}$", "123456789012"),
    ("^[0-9]{2}$", "12"),
    ("^[0-9]{3}$", "123"),
    ("^[0-9]{4}$", "2024"),
    ("^[0-9]{4}-(0[1-9]|1[0-2])$", "2024-05"),
    ("^[0-9]{9,18}$", "123456789"),
    (
        "^[0-9a-f]{64}$",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    ("^[1-9][0-9]{5}$", "560001"),
    ("^[A-HY][0-9]{2}[A-Z]( ?[0-9]{1,4}/[0-9]{2,6})?$", "G06F"),
    (r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$", "E11.9"),
    ("^[A-Z0-9-]{4,32}$", "ABC-123"),
    ("^[A-Z0-9/-]{6,30}$", "ABC/123"),
    ("^[A-Z0-9]{8,20}$", "ABCD1234"),
    ("^[A-Z]{2}$", "IN"),
    ("^[A-Z]{2}[0-9A-Z]{4,14}$", "IN1234"),
    ("^[A-Z]{3}$", "INR"),
    ("^[A-Z]{4}0[A-Z0-9]{6}$", "HDFC0001234"),
    ("^[A-Z]{5}[0-9]{4}[A-Z]$", "ABCDE1234F"),
    ("^[A-Z]{5}[0-9]{7}[0-9]{3}$", "MHBAN0012345000"),
    ("^[A-Za-z][A-Za-z0-9_]*$", "field_1"),
    ("^[a-z0-9-]+$", "slug-1"),
    ("^[a-z]{2}(-[A-Z]{2})?$", "en"),
    (r"^\+?[0-9 -]{8,20}$", "+91 80 1234 5678"),
    (r"^\+[1-9][0-9]{7,14}$", "+918012345678"),
];

/// A value that satisfies `schema` (the subset of JSON Schema the packs use), with every
/// declared property present.
fn sample(schema: &Value) -> Value {
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return values[0].clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    let number = |schema: &Value| {
        let low = match (schema.get("minimum"), schema.get("exclusiveMinimum")) {
            (Some(min), _) => min.as_f64().unwrap(),
            (None, Some(min)) => min.as_f64().unwrap() + 1.0,
            (None, None) => 1.0,
        };
        match schema.get("maximum").and_then(Value::as_f64) {
            Some(max) if max < low => max,
            _ => low,
        }
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (name, property) in properties {
                    object.insert(name.clone(), sample(property));
                }
            }
            Value::Object(object)
        }
        "array" => {
            let n = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            let item = schema.get("items").map(sample).unwrap_or(json!("item"));
            Value::Array((0..n).map(|_| item.clone()).collect())
        }
        "integer" => json!(number(schema) as i64),
        "number" => json!(number(schema)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => {
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let (_, text) = PATTERN_SAMPLES
                    .iter()
                    .find(|(p, _)| *p == pattern)
                    .unwrap_or_else(|| panic!("no sample for pattern {pattern}"));
                return json!(text);
            }
            match schema.get("format").and_then(Value::as_str) {
                Some("date") => json!("2024-05-01"),
                Some("date-time") => json!("2024-05-01T10:00:00Z"),
                Some("email") => json!("ops@example.com"),
                Some("uri") => json!("https://example.com/doc"),
                Some("ipv4") => json!("10.0.0.1"),
                _ => {
                    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                    json!("sample text".repeat(1 + min as usize / 11))
                }
            }
        }
    }
}

fn attr_of(value: &Value) -> Attr {
    match value {
        Value::Null => Attr::Null,
        Value::Bool(b) => Attr::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Attr::Int(i),
            None => Attr::Float(n.as_f64().unwrap()),
        },
        Value::String(s) => Attr::Text(s.clone()),
        Value::Array(items) => Attr::List(items.iter().map(attr_of).collect()),
        Value::Object(map) => Attr::Map(map.iter().map(|(k, v)| (k.clone(), attr_of(v))).collect()),
    }
}

/// Test time: each reading is a minute after the previous one.
struct Clock(Timestamp);

impl Clock {
    fn tick(&mut self) -> Timestamp {
        self.0 += jiff::SignedDuration::from_secs(60);
        self.0
    }
}

/// The people doing the work: one maker and one reviewer, so separation of duties holds.
struct Crew {
    maker: WorkerId,
    reviewer: WorkerId,
}

impl Crew {
    async fn hire(store: &Store, clock: &mut Clock) -> Crew {
        let crew = Crew {
            maker: WorkerId::from_uuid(uuid::Uuid::now_v7()),
            reviewer: WorkerId::from_uuid(uuid::Uuid::now_v7()),
        };
        store
            .create_worker(
                crew.maker,
                "Asha Rao",
                None,
                Designation::Manager,
                clock.tick(),
            )
            .await
            .unwrap();
        store
            .create_worker(
                crew.reviewer,
                "Vikram Iyer",
                None,
                Designation::Manager,
                clock.tick(),
            )
            .await
            .unwrap();
        crew
    }

    /// Who does a step and who reviews it. The case rules keep everyone who made earlier work
    /// of the item off a check step, so each check step gets a checker of its own.
    async fn for_step(&self, store: &Store, step: &str, clock: &mut Clock) -> (WorkerId, WorkerId) {
        if !karya_core::routing::case::is_check_step(step) {
            return (self.maker, self.reviewer);
        }
        let checker = WorkerId::from_uuid(uuid::Uuid::now_v7());
        store
            .create_worker(
                checker,
                "Meera Nair",
                None,
                Designation::Manager,
                clock.tick(),
            )
            .await
            .unwrap();
        (checker, self.reviewer)
    }
}

/// A complete output of a pack: a sample of its output form, valid against it.
fn full_output(loaded: &LoadedPack) -> Value {
    let output = sample(&serde_json::from_str(&loaded.pack.output_schema).unwrap());
    loaded
        .validate_output(&output.to_string())
        .unwrap_or_else(|e| panic!("{}: generated output invalid: {e:?}", loaded.pack.id));
    output
}

/// Does every step of a started work item in plan order until it is delivered: a processor
/// step's job is claimed and completed; a human step's task is routed by the step's own
/// requirements, assigned, worked, its decisions taken, submitted with an output (the last
/// human step with `output`), and reviewed when QA samples it. Returns the steps done.
async fn drive_to_delivery(
    store: &Store,
    tenant: &Tenant,
    loaded: &LoadedPack,
    item_id: WorkItemId,
    output: &Value,
    crew: &Crew,
    clock: &mut Clock,
) -> Vec<String> {
    let pack = &loaded.pack;
    let line = pack.service_line.code();
    let last_human = pack
        .steps
        .iter()
        .rev()
        .find(|s| s.kind == StepKind::Human)
        .unwrap();
    let mut done = Vec::new();
    loop {
        assert!(done.len() <= STEPS_MAX, "{line}: stuck after {done:?}");
        let item = tenant.work_item(item_id).await.unwrap();
        if item.state == WorkItemState::Delivered {
            return done;
        }
        assert_eq!(item.state, WorkItemState::InProgress, "{line}");
        let queued = tenant
            .jobs_of(item_id)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.state == "queued");
        if let Some(job) = queued {
            let claimed = store
                .claim_job("test-processor", clock.tick())
                .await
                .unwrap()
                .expect("a queued job is claimed");
            assert_eq!((claimed.id, claimed.attempts), (job.id, 1), "{line}");
            assert_eq!(claimed.input, item.input, "{line}");
            store
                .complete_job(
                    job.id,
                    "test-processor",
                    &json!({"processed_by": job.processor}).to_string(),
                    uuid::Uuid::now_v7(),
                    clock.tick(),
                )
                .await
                .unwrap();
            done.push(job.step);
            continue;
        }
        let tasks = tenant.tasks_of(item_id).await.unwrap();
        let open: Vec<_> = tasks
            .iter()
            .filter(|t| t.state != TaskState::Done)
            .collect();
        assert_eq!(open.len(), 1, "{line}: one step at a time: {open:?}");
        let task = open[0];
        let step = pack.step(&task.step).unwrap();
        // Routing sees the task with its pack step's requirements.
        let routable = store.routable_tasks().await.unwrap();
        let routed = routable
            .iter()
            .find(|r| r.task.id == task.id)
            .unwrap_or_else(|| panic!("{line}: {} is routable", step.name));
        let (requirements, _) = routed.routing.as_ref().expect("a pack step has routing");
        assert_eq!(
            **requirements,
            karya_core::flow::step_requirements(step),
            "{line}: {}",
            step.name
        );
        let (maker, reviewer) = crew.for_step(store, &task.step, clock).await;
        tenant
            .assign_task(
                task.id,
                maker,
                AssignmentId::from_uuid(uuid::Uuid::now_v7()),
                clock.tick(),
            )
            .await
            .unwrap();
        tenant
            .transition_task(task.id, TaskState::InProgress, clock.tick())
            .await
            .unwrap();
        for name in &step.decisions {
            let decision = pack.decision(name).unwrap();
            let mut payload = sample(&serde_json::from_str(&decision.payload_schema).unwrap());
            if let Authority::Amount { field, .. } = &decision.authority {
                *payload.pointer_mut(field).unwrap() = json!(1);
            }
            let taken = tenant
                .take_decision(
                    &NewDecision {
                        id: DecisionId::from_uuid(uuid::Uuid::now_v7()),
                        work_item_id: item_id,
                        task_id: Some(task.id),
                        decision_type: name.clone(),
                        payload: attr_of(&payload),
                        team: None,
                        decided_by: maker,
                    },
                    clock.tick(),
                )
                .await
                .unwrap_or_else(|e| panic!("{line}: decision {name}: {e}"));
            assert_eq!(taken.decided_by, maker);
        }
        let step_output = match step.name == last_human.name {
            true => output.clone(),
            false => json!({"step_notes": format!("{} done", step.name)}),
        };
        let document = step_output.to_string();
        let outcome = tenant
            .submit_task_with_output(
                task.id,
                &Submission {
                    fields: &Default::default(),
                    document: Some(&document),
                    next_id: uuid::Uuid::now_v7(),
                },
                clock.tick(),
            )
            .await
            .unwrap();
        let SubmitOutcome::Sampled {
            task: submitted, ..
        } = outcome
        else {
            panic!("{line}: not gold")
        };
        if submitted.state == TaskState::InReview {
            let review = NewReview {
                id: ReviewId::from_uuid(uuid::Uuid::now_v7()),
                reviewer_id: reviewer,
                verdict: Verdict::Pass,
                defects: Vec::new(),
            };
            let passed = tenant
                .record_review_then(task.id, &review, uuid::Uuid::now_v7(), clock.tick())
                .await
                .unwrap();
            assert_eq!(passed.task.state, TaskState::Done);
        }
        assert_eq!(
            tenant.task_output(task.id).await.unwrap().as_deref(),
            Some(document.as_str())
        );
        done.push(task.step.clone());
    }
}

/// Checks a delivered item's one deliverable against its pack: the pack named, every field the
/// pack delivers taken from the work's output, every declared file listed, and the digest and
/// size those of the content.
fn check_deliverable(loaded: &LoadedPack, deliverables: &[Deliverable], output: &Value) {
    let pack = &loaded.pack;
    let line = pack.service_line.code();
    assert_eq!(deliverables.len(), 1, "{line}");
    let deliverable = &deliverables[0];
    let content: Value = serde_json::from_str(&deliverable.content).unwrap();
    assert_eq!(content["pack_id"], json!(pack.id), "{line}");
    assert_eq!(content["pack_version"], json!(pack.version), "{line}");
    for field in &pack.deliverable.fields {
        assert_eq!(
            content["data"][field], output[field],
            "{line}: deliverable field {field}"
        );
    }
    assert_eq!(
        content["files"].as_array().unwrap().len(),
        pack.deliverable.files.len(),
        "{line}"
    );
    assert_eq!(
        content["steps"].as_array().unwrap().len(),
        pack.steps.len(),
        "{line}"
    );
    assert_eq!(deliverable.bytes, deliverable.content.len() as u64);
    assert_eq!(
        deliverable.sha256,
        sha256_hex(deliverable.content.as_bytes())
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn every_pack_runs_one_item_from_intake_to_delivery() {
    let app = TestApp::new().await;
    let store = &app.store;
    let catalog = karya_packs::builtin().expect("built-in packs load and their schemas compile");
    assert_eq!(catalog.packs().len(), 25);
    let lines: std::collections::BTreeSet<_> = catalog
        .packs()
        .iter()
        .map(|l| l.pack.service_line)
        .collect();
    assert_eq!(lines.len(), 25, "one pack per service line");
    let mut clock = Clock(Timestamp::from_second(1_780_000_000).unwrap());
    let crew = Crew::hire(store, &mut clock).await;
    for loaded in catalog.packs() {
        let pack = &loaded.pack;
        let line = pack.service_line.code();
        let client = store
            .create_client(
                ClientId::from_uuid(uuid::Uuid::now_v7()),
                &format!("Client {line}"),
                Currency::INR,
                clock.tick(),
            )
            .await
            .unwrap();
        let tenant = store.tenant(client.id);
        let engagement = tenant
            .create_engagement_from_pack(
                &NewEngagement {
                    id: EngagementId::from_uuid(uuid::Uuid::now_v7()),
                    name: line.to_string(),
                    service_line: pack.service_line,
                },
                pack,
                clock.tick(),
            )
            .await
            .unwrap();
        assert_eq!(
            tenant.engagement_pack(engagement.id).await.unwrap(),
            Some((pack.id.clone(), pack.version)),
            "{line}"
        );
        assert_eq!(
            tenant.decision_types(engagement.id).await.unwrap().len(),
            pack.decisions.len(),
            "{line}"
        );
        let example = &pack.examples[0];
        karya_packs::validate_input(loaded, &example.input).expect("example input is valid");
        let item = tenant
            .create_and_start_work_item(
                &NewWorkItem {
                    id: WorkItemId::from_uuid(uuid::Uuid::now_v7()),
                    engagement_id: engagement.id,
                    external_ref: Some(format!("REF-{line}")),
                    title: example.name.clone(),
                    priority: example.priority,
                    input: example.input.clone(),
                },
                uuid::Uuid::now_v7(),
                clock.tick(),
            )
            .await
            .unwrap();
        assert_eq!(item.state, WorkItemState::InProgress, "{line}");
        let output = full_output(loaded);
        let done =
            drive_to_delivery(store, &tenant, loaded, item.id, &output, &crew, &mut clock).await;
        let plan: Vec<&str> = pack.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(done, plan, "{line}: every step once, in order");
        let deliverables = tenant.deliverables(item.id).await.unwrap();
        check_deliverable(loaded, &deliverables, &output);
    }
    let report = store.audit(None).await.unwrap();
    assert!(report.intact(), "audit: {:?}", report.first_break());
    app.finish().await;
}

async fn post(app: &TestApp, path: &str, body: Value) -> crate::Reply {
    app.send(
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn intake_checks_the_pack_form_and_delivery_is_downloadable() {
    let app = TestApp::new().await;
    let client = post(
        &app,
        "/api/v1/clients",
        json!({"name": "Acme Insurance", "currency": "INR"}),
    )
    .await;
    assert_eq!(client.status, StatusCode::CREATED, "{:?}", client.body);
    let client_id = client.body["id"].as_str().unwrap().to_string();
    let engagement = post(
        &app,
        &format!("/api/v1/clients/{client_id}/engagements"),
        json!({"name": "Claims", "service_line": "insurance_processing"}),
    )
    .await;
    assert_eq!(
        engagement.status,
        StatusCode::CREATED,
        "{:?}",
        engagement.body
    );
    let engagement_id = engagement.body["id"].as_str().unwrap().to_string();
    let items = format!("/api/v1/clients/{client_id}/work-items");
    let bad = post(
        &app,
        &items,
        json!({"engagement_id": engagement_id, "title": "claim", "input": {"claim_number": 7}}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["code"], "invalid_input");
    let fields = bad.body["error"]["fields"].as_array().unwrap();
    assert!(
        !fields.is_empty()
            && fields
                .iter()
                .all(|f| f["path"].is_string() && f["problem"].is_string()),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(|f| f["path"] == "/claim_number"),
        "the wrongly typed field is named: {fields:?}"
    );
    let listed = app.get(&items).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );

    let catalog = karya_server::builtin_packs();
    let loaded = catalog
        .for_line("insurance_processing".parse().unwrap())
        .next()
        .unwrap();
    let pack = &loaded.pack;
    let input: Value = serde_json::from_str(&pack.examples[0].input).unwrap();
    let good = post(
        &app,
        &items,
        json!({"engagement_id": engagement_id, "title": "claim", "external_ref": "CLM-7",
               "input": input}),
    )
    .await;
    assert_eq!(good.status, StatusCode::CREATED, "{:?}", good.body);
    assert_eq!(good.body["state"], "in_progress");
    let item_id = good.body["id"].as_str().unwrap().to_string();
    // The claim's first step is a processor's: a job waits for it, and no person has a task.
    let tenant = app.store.tenant(client_id.parse().unwrap());
    let work_item_id: WorkItemId = item_id.parse().unwrap();
    let jobs = tenant.jobs_of(work_item_id).await.unwrap();
    assert_eq!(
        jobs.iter()
            .map(|j| (j.step.as_str(), j.state.as_str()))
            .collect::<Vec<_>>(),
        [(pack.steps[0].name.as_str(), "queued")]
    );
    let tasks = app.get(&format!("{items}/{item_id}/tasks")).await;
    assert_eq!(tasks.body["items"], json!([]));
    let deliverables_uri = format!("{items}/{item_id}/deliverables");
    let none_yet = app.get(&deliverables_uri).await;
    assert_eq!(none_yet.status, StatusCode::OK);
    assert_eq!(none_yet.body["items"], json!([]));

    let mut clock = Clock(Timestamp::now());
    let crew = Crew::hire(&app.store, &mut clock).await;
    let output = full_output(loaded);
    drive_to_delivery(
        &app.store,
        &tenant,
        loaded,
        work_item_id,
        &output,
        &crew,
        &mut clock,
    )
    .await;
    let listed = app.get(&deliverables_uri).await;
    assert_eq!(listed.status, StatusCode::OK);
    let entries = listed.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["name"], "CLM-7-deliverable.json");
    let download = entries[0]["download"].as_str().unwrap();
    let request = Request::get(download)
        .header("authorization", format!("Bearer {}", app.token))
        .body(Body::empty())
        .unwrap();
    let response = karya_server::router(karya_server::AppState::new(app.store.clone()))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(
        header("content-disposition"),
        "attachment; filename=\"CLM-7-deliverable.json\""
    );
    let digest = header("x-content-sha256");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(digest, sha256_hex(&bytes));
    assert_eq!(entries[0]["sha256"], json!(digest));
    assert_eq!(entries[0]["bytes"], json!(bytes.len()));
    let content: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(content["work_item_id"], json!(item_id));
    for field in &pack.deliverable.fields {
        assert_eq!(content["data"][field], output[field], "{field}");
    }

    let missing = app
        .get(&format!("{deliverables_uri}/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let malformed = app.get(&format!("{deliverables_uri}/not-an-id")).await;
    assert_eq!(
        (malformed.status, &malformed.body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    app.finish().await;
}

#[tokio::test]
async fn a_pack_decision_is_checked_against_its_payload_form_and_registered_with_its_limits() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Acme").await;
    // The engagement's decision types are the pack's, with their authority.
    let types = app
        .get(&format!(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/decision-types"
        ))
        .await;
    assert_eq!(types.status, StatusCode::OK, "{types:?}");
    let names: Vec<&str> = types.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["accept_scope", "classify_reference", "release_report"]
    );
    assert_eq!(
        types.body["items"][0]["limits"],
        json!({"senior_analyst": i64::MAX})
    );

    let item = app.work_item(&client_id, &engagement_id, "search").await;
    let worker_id = WorkerId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .create_worker(
            worker_id,
            "Asha Rao",
            None,
            Designation::Manager,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let decisions = format!("/api/v1/clients/{client_id}/decisions");
    let decide = |payload: Value| {
        json!({"work_item_id": item["id"], "decision_type": "accept_scope",
               "payload": payload, "decided_by": worker_id.to_string()})
    };
    // A payload the form refuses: 400 naming the field, and nothing stored.
    let refused = app
        .post(&decisions, &decide(json!({"accepted": "yes"})))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
    assert_eq!(refused.body["error"]["fields"][0]["path"], "/accepted");
    let listed = app.get(&decisions).await;
    assert_eq!(listed.body["items"], json!([]), "{listed:?}");
    // A valid one is taken.
    let taken = app
        .post(
            &decisions,
            &decide(json!({"accepted": true, "estimated_hours": 6})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{taken:?}");
    assert_eq!(taken.body["status"], "in_force");
}
