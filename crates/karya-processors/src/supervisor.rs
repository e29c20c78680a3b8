//! The [`Worker`] trait and the one [`Supervisor`] that runs workers.
//!
//! A worker only does units of work. The supervisor decides when the next unit runs: at once
//! after `Busy`, after the worker's idle interval after `Idle`, after a growing backoff after a
//! failure. A unit in flight is never cancelled by a stop request: the supervisor asks workers
//! to stop between units and waits up to a deadline, then aborts what is left.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// What one unit of work found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More work is waiting: run the next unit at once.
    Busy,
    /// Nothing to do now: wait for the worker's idle interval.
    Idle,
    /// The worker has finished for good.
    Done,
}

/// One kind of background work.
pub trait Worker: Send + 'static {
    /// A short stable name for logs and counters.
    fn name(&self) -> &'static str;

    /// How long to wait after an `Idle` unit.
    fn idle_interval(&self) -> Duration;

    /// Does one bounded unit of work.
    fn work(&mut self) -> impl Future<Output = anyhow::Result<Step>> + Send;

    /// Lets go of what the worker holds; called once when it stops, within the deadline.
    fn stop(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// Tuning of the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorOptions {
    /// Wait after the first failure of a unit; doubled after each further failure in a row.
    pub backoff_base: Duration,
    /// Longest wait between retries, however many failures in a row.
    pub backoff_max: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> SupervisorOptions {
        SupervisorOptions {
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// How long to wait before retrying after `failures` failed units in a row (at least one).
pub fn backoff(failures: u32, options: &SupervisorOptions) -> Duration {
    // 2^20 times the base is already far beyond any sensible maximum.
    let doublings = failures.saturating_sub(1).min(20);
    options
        .backoff_base
        .saturating_mul(1u32 << doublings)
        .min(options.backoff_max)
}

/// Counters of one worker, read at any time.
#[derive(Debug, Default)]
struct Counters {
    busy: AtomicU64,
    idle: AtomicU64,
    failed: AtomicU64,
}

/// A snapshot of one worker's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCounts {
    pub name: &'static str,
    /// Units that found more work waiting.
    pub busy: u64,
    /// Units that found nothing to do.
    pub idle: u64,
    /// Units that failed (and were retried after a backoff).
    pub failed: u64,
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Workers that stopped on their own within the deadline.
    pub stopped: usize,
    /// Workers still running at the deadline, aborted.
    pub aborted: usize,
}

/// Runs workers until asked to stop.
pub struct Supervisor {
    options: SupervisorOptions,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    counters: Vec<(&'static str, Arc<Counters>)>,
}

impl Supervisor {
    pub fn new(options: SupervisorOptions) -> Supervisor {
        Supervisor {
            options,
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
            counters: Vec::new(),
        }
    }

    /// Starts a worker on the current runtime.
    pub fn spawn<W: Worker>(&mut self, worker: W) {
        let counters = Arc::new(Counters::default());
        self.counters.push((worker.name(), counters.clone()));
        let stop = self.stop.subscribe();
        let options = self.options;
        self.tasks.spawn(run(worker, options, counters, stop));
    }

    /// The counters of every worker, in the order they were started.
    pub fn counts(&self) -> Vec<WorkerCounts> {
        self.counters
            .iter()
            .map(|(name, c)| WorkerCounts {
                name,
                busy: c.busy.load(Ordering::Relaxed),
                idle: c.idle.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Asks every worker to stop after its current unit and waits up to `deadline`; workers
    /// still running then are aborted.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.stop.send_replace(true);
        let total = self.tasks.len();
        let mut stopped = 0;
        let waited = tokio::time::timeout(deadline, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Err(err) = joined {
                    tracing::error!(error = %err, "background worker panicked");
                }
                stopped += 1;
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                still_running = total - stopped,
                "background workers did not stop within the deadline: aborting them"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        ShutdownReport {
            stopped,
            aborted: total - stopped,
        }
    }
}

/// Sleeps for `duration` unless a stop is requested first; `true` when stopping.
async fn pause(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        () = tokio::time::sleep(duration) => true,
        _ = stop.wait_for(|stopping| *stopping) => false,
    };
    !slept || *stop.borrow()
}

async fn run<W: Worker>(
    mut worker: W,
    options: SupervisorOptions,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let name = worker.name();
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        match worker.work().await {
            Ok(Step::Busy) => {
                failures = 0;
                counters.busy.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            Ok(Step::Idle) => {
                failures = 0;
                counters.idle.fetch_add(1, Ordering::Relaxed);
                if pause(worker.idle_interval(), &mut stop).await {
                    break;
                }
            }
            Ok(Step::Done) => break,
            Err(err) => {
                failures = failures.saturating_add(1);
                counters.failed.fetch_add(1, Ordering::Relaxed);
                let delay = backoff(failures, &options);
                tracing::warn!(
                    worker = name,
                    failures,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %format!("{err:#}"),
                    "background work failed"
                );
                if pause(delay, &mut stop).await {
                    break;
                }
            }
        }
    }
    worker.stop().await;
    tracing::debug!(worker = name, "background worker stopped");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let options = SupervisorOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        let check = |failures: u32, ms: u64| {
            assert_eq!(
                backoff(failures, &options),
                Duration::from_millis(ms),
                "{failures}"
            );
        };
        check(0, 100);
        check(1, 100);
        check(2, 200);
        check(3, 400);
        check(4, 800);
        check(5, 1000);
        check(u32::MAX, 1000);
    }

    /// Follows a script of unit results, then idles; records when it stopped.
    struct Scripted {
        script: Vec<anyhow::Result<Step>>,
        stopped: Arc<AtomicBool>,
    }

    impl Worker for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }

        fn idle_interval(&self) -> Duration {
            Duration::from_secs(10)
        }

        async fn work(&mut self) -> anyhow::Result<Step> {
            match self.script.is_empty() {
                true => Ok(Step::Idle),
                false => self.script.remove(0),
            }
        }

        async fn stop(self) {
            self.stopped.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_counted_and_the_worker_stops_on_request() {
        let stopped = Arc::new(AtomicBool::new(false));
        let mut supervisor = Supervisor::new(SupervisorOptions::default());
        supervisor.spawn(Scripted {
            script: vec![
                Err(anyhow::anyhow!("database away")),
                Err(anyhow::anyhow!("database away")),
                Ok(Step::Busy),
                Ok(Step::Busy),
            ],
            stopped: stopped.clone(),
        });
        // Two backoffs (200 ms and 400 ms), two busy units, then idle.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            supervisor.counts(),
            vec![WorkerCounts {
                name: "scripted",
                busy: 2,
                idle: 1,
                failed: 2
            }]
        );
        // Stopping interrupts the idle wait and runs `stop`.
        let report = supervisor.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            report,
            ShutdownReport {
                stopped: 1,
                aborted: 0
            }
        );
        assert!(stopped.load(Ordering::SeqCst));
    }

    struct Stuck;

    impl Worker for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }

        fn idle_interval(&self) -> Duration {
            Duration::from_secs(1)
        }

        async fn work(&mut self) -> anyhow::Result<Step> {
            std::future::pending::<()>().await;
            Ok(Step::Done)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_unit_that_outlives_the_deadline_is_aborted() {
        let mut supervisor = Supervisor::new(SupervisorOptions::default());
        supervisor.spawn(Stuck);
        supervisor.spawn(Scripted {
            script: vec![Ok(Step::Done)],
            stopped: Arc::new(AtomicBool::new(false)),
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let report = supervisor.shutdown(Duration::from_secs(2)).await;
        assert_eq!(
            report,
            ShutdownReport {
                stopped: 1,
                aborted: 1
            }
        );
    }
}
