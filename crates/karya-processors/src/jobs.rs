//! The processor job runner, run on every node: claims the processor steps' durable jobs
//! (`jobs`, written by the store when a work item reaches a processor step), runs the named
//! processor, and completes the job, which moves the item on to its next step in the same
//! transaction.
//!
//! Nodes share the queue through the store's claim: one claim per job at a time (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL), held for a lease ([`karya_store::JOB_LEASE`]); a job whose
//! runner died is taken over once its lease expires, and the dead runner's late answer is
//! refused. A failed attempt is retried after a backoff that doubles
//! ([`karya_core::flow::after_failure`]); after [`karya_store::JOB_ATTEMPTS_MAX`] failed
//! attempts the job is `failed` (event `job.failed` with the reason) and its step becomes a
//! person's task, so the item waits in a queue an operator sees, with its SLA clock running,
//! instead of silently. The person's output moves the item on exactly as the processor's
//! would have. A job whose processor is not installed ([`ProcessorSet::installed`]) goes to a
//! person at once: no retry can install it.
//!
//! The processors themselves live elsewhere, behind [`ProcessorSet`]; this module only runs
//! them. A processor is synchronous and may be slow (OCR of a scan), so it runs on the
//! blocking threads.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use karya_store::{Job, JobFailed, Store, StoreError};
use serde_json::Value;

use crate::supervisor::{Step, Worker};

/// Pause when no job waits: processor steps sit between human steps that take minutes, so a
/// couple of seconds of pickup delay is invisible, and an idle node costs one query per pause.
pub const JOB_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The processors a node can run, by name (the `processor` of a pack's step).
pub trait ProcessorSet: Send + Sync + 'static {
    /// Runs processor `name` on one job. `input` is {"item": <work item input JSON>,
    /// "outputs": {<step name>: <output JSON>...}, "documents": [{"id","name","media_type","sha256","path"}]}
    /// where `path` is a file holding the document's bytes for the time of the call.
    /// Returns the step's output JSON.
    fn run(&self, name: &str, input: &serde_json::Value) -> Result<serde_json::Value, String>;

    /// Whether processor `name` exists in this set. A job whose processor is not installed is
    /// handed to a person at once: retrying cannot install it.
    fn installed(&self, name: &str) -> bool {
        let _ = name;
        true
    }
}

/// What one job came to, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The output was stored and the item moved on.
    Completed,
    /// The attempt failed and the job waits for its next one.
    Retrying { reason: String },
    /// The last attempt failed: the step went to a person.
    HandedOff { reason: String },
    /// Another runner took the job over meanwhile (this runner's lease had expired); its
    /// answer was dropped.
    Lost,
}

/// The directory of one attempt's document files, removed on drop.
struct JobFiles(std::path::PathBuf);

impl Drop for JobFiles {
    fn drop(&mut self) {
        // Absent when the item had no documents.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the runner reads the time: the wall clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Claims and runs processor jobs, one per unit of work.
pub struct JobRunner {
    store: Store,
    processors: Arc<dyn ProcessorSet>,
    /// Names this runner in claims and events; unique per node and process.
    runner_id: String,
    clock: Clock,
}

impl JobRunner {
    pub fn new(store: Store, processors: Arc<dyn ProcessorSet>, runner_id: String) -> JobRunner {
        JobRunner {
            store,
            processors,
            runner_id,
            clock: Arc::new(Timestamp::now),
        }
    }

    /// The same runner reading the time from `clock`.
    pub fn with_clock(self, clock: Clock) -> JobRunner {
        JobRunner { clock, ..self }
    }

    /// Claims one waiting job and runs it; `None` when no job waits.
    pub async fn run_one(&self) -> anyhow::Result<Option<(Job, JobOutcome)>> {
        let Some(job) = self
            .store
            .claim_job(&self.runner_id, (self.clock)())
            .await?
        else {
            return Ok(None);
        };
        let outcome = self.run_claimed(&job).await?;
        Ok(Some((job, outcome)))
    }

    /// Writes each document the input lists to a file of a fresh directory and adds its
    /// `path` to the input; the directory is removed when the returned guard drops.
    async fn write_documents(&self, job: &Job, input: &mut Value) -> anyhow::Result<JobFiles> {
        let dir =
            std::env::temp_dir().join(format!("karya-job-{}-{}", job.id, uuid::Uuid::now_v7()));
        let files = JobFiles(dir.clone());
        let Some(list) = input.get_mut("documents").and_then(Value::as_array_mut) else {
            return Ok(files);
        };
        if list.is_empty() {
            return Ok(files);
        }
        tokio::fs::create_dir_all(&dir).await?;
        let tenant = self.store.tenant(job.client_id);
        for (idx, doc) in list.iter_mut().enumerate() {
            let id = doc["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("document {idx} has no id"))?;
            let (stored, bytes) = tenant.document_bytes(job.work_item_id, id).await?;
            // The stored name is the client's; the file gets a safe one with its extension.
            let extension = std::path::Path::new(&stored.name)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or("bin");
            let path = dir.join(format!("{idx:03}.{extension}"));
            tokio::fs::write(&path, &bytes).await?;
            doc["path"] = Value::String(path.display().to_string());
        }
        Ok(files)
    }

    async fn run_claimed(&self, job: &Job) -> anyhow::Result<JobOutcome> {
        if !self.processors.installed(&job.processor) {
            let reason = format!("processor {} is not installed", job.processor);
            return self.hand_off(job, &reason).await;
        }
        let mut input = self.store.job_input(job).await?;
        // The item's documents go to the processor as files of their own, in a directory that
        // lives as long as this attempt.
        let files = match self.write_documents(job, &mut input).await {
            Ok(files) => files,
            Err(err) => return self.fail(job, &format!("documents: {err:#}")).await,
        };
        let processors = self.processors.clone();
        let name = job.processor.clone();
        let ran = tokio::task::spawn_blocking(move || processors.run(&name, &input)).await;
        drop(files);
        let output = match ran {
            Ok(Ok(output)) => output,
            Ok(Err(reason)) => return self.fail(job, &reason).await,
            Err(join_error) => {
                let reason = format!("processor {} panicked: {join_error}", job.processor);
                return self.fail(job, &reason).await;
            }
        };
        if !output.is_object() {
            let reason = format!(
                "processor {} returned {}, not a JSON object",
                job.processor,
                kind_of(&output)
            );
            return self.fail(job, &reason).await;
        }
        let completed = self
            .store
            .complete_job(
                job.id,
                &self.runner_id,
                &output.to_string(),
                uuid::Uuid::now_v7(),
                (self.clock)(),
            )
            .await;
        match completed {
            Ok(()) => {
                tracing::info!(job_id = %job.id, step = %job.step, processor = %job.processor, "job completed");
                Ok(JobOutcome::Completed)
            }
            // The output itself is refused (too large): that is the processor's failure.
            Err(StoreError::Rejected { message }) => self.fail(job, &message).await,
            Err(StoreError::Conflict { .. }) => Ok(self.lost(job)),
            Err(err) => Err(err.into()),
        }
    }

    async fn fail(&self, job: &Job, reason: &str) -> anyhow::Result<JobOutcome> {
        let failed = self
            .store
            .fail_job(
                job.id,
                &self.runner_id,
                reason,
                uuid::Uuid::now_v7(),
                (self.clock)(),
            )
            .await;
        match failed {
            Ok(JobFailed::Retry { at }) => {
                tracing::warn!(
                    job_id = %job.id,
                    processor = %job.processor,
                    attempt = job.attempts,
                    retry_at = %at,
                    reason,
                    "job attempt failed"
                );
                Ok(JobOutcome::Retrying {
                    reason: reason.to_string(),
                })
            }
            Ok(JobFailed::HandedOff { task_id }) => {
                tracing::error!(
                    job_id = %job.id,
                    processor = %job.processor,
                    attempts = job.attempts,
                    task_id = task_id.map(|t| t.to_string()),
                    reason,
                    "job failed on every attempt: its step is handed to a person"
                );
                Ok(JobOutcome::HandedOff {
                    reason: reason.to_string(),
                })
            }
            Err(StoreError::Conflict { .. }) => Ok(self.lost(job)),
            Err(err) => Err(err.into()),
        }
    }

    async fn hand_off(&self, job: &Job, reason: &str) -> anyhow::Result<JobOutcome> {
        let handed = self
            .store
            .hand_off_job(
                job.id,
                &self.runner_id,
                reason,
                uuid::Uuid::now_v7(),
                (self.clock)(),
            )
            .await;
        match handed {
            Ok(task_id) => {
                tracing::error!(
                    job_id = %job.id,
                    processor = %job.processor,
                    task_id = task_id.map(|t| t.to_string()),
                    reason,
                    "job cannot run here: its step is handed to a person"
                );
                Ok(JobOutcome::HandedOff {
                    reason: reason.to_string(),
                })
            }
            Err(StoreError::Conflict { .. }) => Ok(self.lost(job)),
            Err(err) => Err(err.into()),
        }
    }

    fn lost(&self, job: &Job) -> JobOutcome {
        tracing::warn!(
            job_id = %job.id,
            processor = %job.processor,
            "job was taken over by another runner after this one's lease expired"
        );
        JobOutcome::Lost
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Worker for JobRunner {
    fn name(&self) -> &'static str {
        "jobs"
    }

    fn idle_interval(&self) -> Duration {
        // `work` already waited a poll interval for a queued job before answering idle.
        Duration::from_millis(10)
    }

    async fn work(&mut self) -> anyhow::Result<Step> {
        if self.run_one().await?.is_some() {
            return Ok(Step::Busy);
        }
        // Nothing waits: sleep until this process queues a job or the poll interval passes
        // (jobs queued by other nodes, retries whose backoff ended).
        // The wait is here rather than in the supervisor's idle pause, which is kept short.
        let woken =
            tokio::time::timeout(JOB_POLL_INTERVAL, karya_store::jobs_queued().notified()).await;
        Ok(match woken {
            Ok(()) => Step::Busy,
            Err(_) => Step::Idle,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Mutex;

    use karya_core::id::{ClientId, EngagementId, WorkItemId};
    use karya_core::lifecycle::{TaskState, WorkItemState};
    use karya_core::money::Currency;
    use karya_store::{NewEngagement, NewWorkItem, StoreOptions, Tenant, JOB_ATTEMPTS_MAX};
    use serde_json::json;

    use super::*;
    use crate::supervisor::{Supervisor, SupervisorOptions};

    /// Processors that answer from their name and what they were given, deterministically:
    /// `ocr` reads the item's `period`, `extract_fields` counts what `ocr` found; any other
    /// name, or every name once `broken` is set, fails like a processor that is not installed.
    /// Records every call.
    #[derive(Default)]
    struct Fixed {
        broken: bool,
        /// Processors reported as not installed.
        missing: Vec<&'static str>,
        calls: Mutex<Vec<(String, Value)>>,
    }

    impl ProcessorSet for Fixed {
        fn run(&self, name: &str, input: &Value) -> Result<Value, String> {
            self.calls
                .lock()
                .unwrap()
                .push((name.to_string(), input.clone()));
            match (self.broken, name) {
                (false, "ocr") => Ok(json!({"pages": 3, "period": input["item"]["period"]})),
                (false, "extract_fields") => Ok(json!({
                    "lines": input["outputs"]["ocr"]["pages"].as_i64().unwrap_or(0) * 10
                })),
                _ => Err(format!("processor {name} is not installed")),
            }
        }

        fn installed(&self, name: &str) -> bool {
            !self.missing.contains(&name)
        }
    }

    /// A test clock: a fixed start that tests move on by hand.
    struct TestClock(Arc<AtomicI64>);

    impl TestClock {
        fn new() -> TestClock {
            TestClock(Arc::new(AtomicI64::new(1_790_000_000)))
        }

        fn clock(&self) -> Clock {
            let seconds = self.0.clone();
            Arc::new(move || Timestamp::from_second(seconds.load(Ordering::SeqCst)).unwrap())
        }

        fn now(&self) -> Timestamp {
            (self.clock())()
        }

        fn advance_minutes(&self, minutes: i64) {
            self.0.fetch_add(minutes * 60, Ordering::SeqCst);
        }
    }

    async fn store() -> Store {
        let dir =
            std::env::temp_dir().join(format!("karya-jobs-{}", uuid::Uuid::now_v7().simple()));
        let url = format!("sqlite://{}/karya.db", dir.display());
        Store::open(&url, &StoreOptions::default())
            .await
            .expect("open sqlite")
    }

    /// A bookkeeping client (whose pack starts with two processor steps, `document_capture`
    /// by `ocr` and `extraction` by `extract_fields`) with one item taken in from the pack's
    /// first example.
    async fn bookkeeping_item(store: &Store, now: Timestamp) -> (Tenant, WorkItemId) {
        let catalog = karya_packs::builtin().expect("built-in packs load");
        let pack = &catalog
            .for_line("bookkeeping".parse().unwrap())
            .next()
            .expect("a bookkeeping pack")
            .pack;
        let client_id = ClientId::from_uuid(uuid::Uuid::now_v7());
        store
            .create_client(client_id, "Acme Traders", Currency::INR, now)
            .await
            .unwrap();
        let tenant = store.tenant(client_id);
        let engagement = NewEngagement {
            id: EngagementId::from_uuid(uuid::Uuid::now_v7()),
            name: "Books".into(),
            service_line: pack.service_line,
        };
        tenant
            .create_engagement_from_pack(&engagement, pack, now)
            .await
            .unwrap();
        let example = &pack.examples[0];
        let new = NewWorkItem {
            id: WorkItemId::from_uuid(uuid::Uuid::now_v7()),
            engagement_id: engagement.id,
            external_ref: None,
            title: example.name.clone(),
            priority: example.priority,
            input: example.input.clone(),
        };
        let item = tenant
            .create_and_start_work_item(&new, uuid::Uuid::now_v7(), now)
            .await
            .unwrap();
        (tenant, item.id)
    }

    #[tokio::test]
    async fn jobs_run_in_step_order_and_hand_the_item_to_its_first_human_step() {
        let store = store().await;
        let clock = TestClock::new();
        let (tenant, item_id) = bookkeeping_item(&store, clock.now()).await;
        let processors = Arc::new(Fixed::default());
        let runner = JobRunner::new(store.clone(), processors.clone(), "node-a".into())
            .with_clock(clock.clock());

        let (job, outcome) = runner.run_one().await.unwrap().expect("the first job");
        assert_eq!(
            (job.step.as_str(), outcome),
            ("document_capture", JobOutcome::Completed)
        );
        let (job, outcome) = runner.run_one().await.unwrap().expect("the second job");
        assert_eq!(
            (job.step.as_str(), outcome),
            ("extraction", JobOutcome::Completed)
        );
        assert!(runner.run_one().await.unwrap().is_none(), "nothing waits");

        // Each processor saw the item's input, the outputs of the steps before its own, and
        // the item's documents.
        let item_input: Value =
            serde_json::from_str(&tenant.work_item(item_id).await.unwrap().input).unwrap();
        let calls = processors.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                (
                    "ocr".to_string(),
                    json!({"item": item_input, "outputs": {}, "documents": []})
                ),
                (
                    "extract_fields".to_string(),
                    json!({"item": item_input,
                           "outputs": {"document_capture": {"pages": 3, "period": item_input["period"]}},
                           "documents": []})
                ),
            ]
        );
        let jobs = tenant.jobs_of(item_id).await.unwrap();
        assert!(jobs.iter().all(|j| j.state == "done" && j.attempts == 1));
        let tasks = tenant.tasks_of(item_id).await.unwrap();
        assert_eq!(
            tasks
                .iter()
                .map(|t| (t.step.as_str(), t.state))
                .collect::<Vec<_>>(),
            [("transaction_coding", TaskState::Ready)]
        );
        assert_eq!(
            tenant.work_item(item_id).await.unwrap().state,
            WorkItemState::InProgress
        );
    }

    #[tokio::test]
    async fn a_failing_processor_is_retried_with_backoff_then_its_step_goes_to_a_person() {
        let store = store().await;
        let clock = TestClock::new();
        let (tenant, item_id) = bookkeeping_item(&store, clock.now()).await;
        let processors = Arc::new(Fixed {
            broken: true,
            ..Fixed::default()
        });
        let runner = JobRunner::new(store.clone(), processors.clone(), "node-a".into())
            .with_clock(clock.clock());
        let reason = "processor ocr is not installed".to_string();
        for attempt in 1..JOB_ATTEMPTS_MAX {
            let (job, outcome) = runner.run_one().await.unwrap().expect("the job waits");
            assert_eq!(job.attempts, attempt);
            assert_eq!(
                outcome,
                JobOutcome::Retrying {
                    reason: reason.clone()
                }
            );
            // Not before its backoff has passed.
            assert!(runner.run_one().await.unwrap().is_none());
            clock.advance_minutes(31);
        }
        let (_, outcome) = runner.run_one().await.unwrap().expect("the last attempt");
        assert_eq!(
            outcome,
            JobOutcome::HandedOff {
                reason: reason.clone()
            }
        );
        clock.advance_minutes(60);
        assert!(runner.run_one().await.unwrap().is_none(), "never run again");
        assert_eq!(
            processors.calls.lock().unwrap().len(),
            JOB_ATTEMPTS_MAX as usize
        );

        // Visible: the job is failed with its reason, and the step waits for a person with
        // the item still in progress.
        let job = &tenant.jobs_of(item_id).await.unwrap()[0];
        assert_eq!(
            (job.state.as_str(), job.last_error.as_deref()),
            ("failed", Some(reason.as_str()))
        );
        let tasks = tenant.tasks_of(item_id).await.unwrap();
        assert_eq!(
            tasks
                .iter()
                .map(|t| (t.step.as_str(), t.state))
                .collect::<Vec<_>>(),
            [("document_capture", TaskState::Ready)]
        );
        assert_eq!(
            tenant.work_item(item_id).await.unwrap().state,
            WorkItemState::InProgress
        );
        let events = tenant
            .entity_events("task", &job.id.to_string())
            .await
            .unwrap();
        let failed = events.last().unwrap();
        assert_eq!(failed.kind, "job.failed");
        let payload: Value = serde_json::from_str(&failed.payload).unwrap();
        assert_eq!(payload["reason"], json!(reason));
        assert_eq!(payload["handed_to_task"], json!(tasks[0].id.to_string()));
    }

    #[tokio::test]
    async fn a_processor_that_is_not_installed_hands_its_step_to_a_person_at_once() {
        let store = store().await;
        let clock = TestClock::new();
        let (tenant, item_id) = bookkeeping_item(&store, clock.now()).await;
        let processors = Arc::new(Fixed {
            missing: vec!["ocr"],
            ..Fixed::default()
        });
        let runner = JobRunner::new(store.clone(), processors.clone(), "node-a".into())
            .with_clock(clock.clock());
        let (job, outcome) = runner.run_one().await.unwrap().expect("the job");
        assert_eq!(
            (job.attempts, outcome),
            (
                1,
                JobOutcome::HandedOff {
                    reason: "processor ocr is not installed".into()
                }
            )
        );
        assert!(processors.calls.lock().unwrap().is_empty(), "never run");
        let tasks = tenant.tasks_of(item_id).await.unwrap();
        assert_eq!(
            tasks.iter().map(|t| t.step.as_str()).collect::<Vec<_>>(),
            ["document_capture"]
        );
        assert!(runner.run_one().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_runner_whose_lease_expired_loses_the_job_to_the_next() {
        let store = store().await;
        let clock = TestClock::new();
        let (tenant, item_id) = bookkeeping_item(&store, clock.now()).await;
        let processors: Arc<dyn ProcessorSet> = Arc::new(Fixed::default());
        let slow = store.claim_job("node-slow", clock.now()).await.unwrap();
        let slow = slow.expect("the job");
        clock.advance_minutes(karya_store::JOB_LEASE.as_mins() + 1);
        let runner =
            JobRunner::new(store.clone(), processors, "node-b".into()).with_clock(clock.clock());
        let (job, outcome) = runner.run_one().await.unwrap().unwrap();
        assert_eq!(
            (job.id, job.attempts, outcome),
            (slow.id, 2, JobOutcome::Completed)
        );
        // The slow runner's late answer is refused, and the item moved on once.
        let late = store
            .complete_job(
                slow.id,
                "node-slow",
                "{}",
                uuid::Uuid::now_v7(),
                clock.now(),
            )
            .await;
        assert!(matches!(late, Err(StoreError::Conflict { .. })), "{late:?}");
        let jobs = tenant.jobs_of(item_id).await.unwrap();
        assert_eq!(
            jobs.iter().map(|j| j.step.as_str()).collect::<Vec<_>>(),
            ["document_capture", "extraction"]
        );
    }

    #[tokio::test]
    async fn the_supervisor_runs_the_runner_until_the_queue_is_empty() {
        let store = store().await;
        let (tenant, item_id) = bookkeeping_item(&store, Timestamp::now()).await;
        let mut supervisor = Supervisor::new(SupervisorOptions::default());
        supervisor.spawn(JobRunner::new(
            store.clone(),
            Arc::new(Fixed::default()),
            "node-a".into(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let tasks = tenant.tasks_of(item_id).await.unwrap();
            if !tasks.is_empty() {
                assert_eq!(tasks[0].step, "transaction_coding");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "jobs did not run within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let report = supervisor.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.aborted, 0);
    }
}
