//! Two `karya serve` processes on one fresh PostgreSQL database: one leads (routes and runs
//! the timers); when it is killed with SIGKILL the other takes over, and offers and claims stay
//! exactly-once across both (checked in the database at the end).

use std::time::{Duration, Instant};

use jiff::SignedDuration;
use karya_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::model::{Designation, Priority};
use karya_core::money::Currency;
use karya_core::routing::{Requirements, RoutingWorkflow};
use karya_core::service_line::ServiceLine;
use karya_core::workforce::{Presence, ShiftBlock};
use karya_store::{
    NewEngagement, NewTask, NewWorkItem, Store, StoreOptions, Tenant, WorkerRouting,
};
use sqlx::{Connection, Executor, Row};

use crate::http::request;
use crate::{admin_url, Scratch, Server};

/// How long a follower may take to lead after the leader dies: its session closes at once on
/// SIGKILL and followers ask every second, so this is generous; the test fails past it.
const TAKEOVER_BOUND: Duration = Duration::from_secs(20);
/// How long to wait for the leader to offer every ready task.
const OFFERS_BOUND: Duration = Duration::from_secs(20);

fn database_url(admin_url: &str, name: &str) -> String {
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    format!("{base}/{name}")
}

fn leader(addr: &str) -> Option<bool> {
    let reply = request(addr, "GET", "/healthz", None).ok()?;
    reply.body["leader"].as_bool()
}

fn wait_until(bound: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

struct Firm {
    tenant: Tenant,
    engagement_id: EngagementId,
    workers: Vec<WorkerId>,
}

async fn firm(store: &Store) -> Firm {
    let now = jiff::Timestamp::now();
    let client_id = ClientId::from_uuid(uuid::Uuid::now_v7());
    store
        .create_client(client_id, "Two Nodes Ltd", Currency::USD, now)
        .await
        .unwrap();
    let tenant = store.tenant(client_id);
    let engagement_id = EngagementId::from_uuid(uuid::Uuid::now_v7());
    tenant
        .create_engagement(
            &NewEngagement {
                id: engagement_id,
                name: "claims".into(),
                service_line: ServiceLine::InsuranceProcessing,
            },
            now,
        )
        .await
        .unwrap();
    let req = Requirements::any("claims", 1, SignedDuration::from_mins(1));
    tenant
        .set_engagement_routing(engagement_id, &req, &RoutingWorkflow::standard(), now)
        .await
        .unwrap();
    let mut workers = Vec::new();
    for name in ["Asha", "Ben", "Chen"] {
        let worker_id = WorkerId::from_uuid(uuid::Uuid::now_v7());
        store
            .create_worker(worker_id, name, None, Designation::Analyst, now)
            .await
            .unwrap();
        let shifts = jiff::civil::Weekday::Monday
            .cycle_forward()
            .take(7)
            .map(|weekday| ShiftBlock {
                weekday,
                start: jiff::civil::time(0, 0, 0, 0),
                length: SignedDuration::from_hours(24),
            })
            .collect();
        store
            .set_worker_routing(
                worker_id,
                &WorkerRouting {
                    languages: vec!["en".into()],
                    time_zone: "UTC".into(),
                    shifts,
                    capacity_units: 50,
                    excluded_clients: vec![],
                },
                now,
            )
            .await
            .unwrap();
        store
            .set_presence(worker_id, Presence::Available, now)
            .await
            .unwrap();
        workers.push(worker_id);
    }
    Firm {
        tenant,
        engagement_id,
        workers,
    }
}

async fn add_tasks(firm: &Firm, n: usize) -> Vec<TaskId> {
    let mut tasks = Vec::new();
    for idx in 0..n {
        let now = jiff::Timestamp::now();
        let item_id = WorkItemId::from_uuid(uuid::Uuid::now_v7());
        firm.tenant
            .create_work_item(
                &NewWorkItem {
                    id: item_id,
                    engagement_id: firm.engagement_id,
                    external_ref: None,
                    title: format!("claim {idx}"),
                    priority: Priority::Normal,
                    input: "{}".into(),
                },
                now,
            )
            .await
            .unwrap();
        let task_id = TaskId::from_uuid(uuid::Uuid::now_v7());
        firm.tenant
            .create_task(
                &NewTask {
                    id: task_id,
                    work_item_id: item_id,
                    step: "assess".into(),
                },
                now,
            )
            .await
            .unwrap();
        tasks.push(task_id);
    }
    tasks
}

/// Open offers as `(worker, offer)` pairs, read over HTTP from one node.
fn open_offers(addr: &str, workers: &[WorkerId]) -> Vec<(WorkerId, String, String)> {
    let mut offers = Vec::new();
    for worker in workers {
        let reply = request(
            addr,
            "GET",
            &format!("/api/v1/workers/{worker}/offers"),
            None,
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        for offer in reply.body["items"].as_array().unwrap() {
            offers.push((
                *worker,
                offer["id"].as_str().unwrap().to_string(),
                offer["task_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    offers
}

/// Both nodes accept every open offer at the same time: exactly one acceptance of each wins.
fn accept_on_both(a: &str, b: &str, offers: &[(WorkerId, String, String)]) -> usize {
    let mut won = 0;
    for (worker, offer, _) in offers {
        let path = format!("/api/v1/workers/{worker}/offers/{offer}/accept");
        let replies: Vec<u16> = std::thread::scope(|scope| {
            let calls: Vec<_> = [a, b]
                .into_iter()
                .map(|addr| {
                    let path = path.clone();
                    scope.spawn(move || request(addr, "POST", &path, None).map(|r| r.status))
                })
                .collect();
            calls
                .into_iter()
                .filter_map(|call| call.join().unwrap().ok())
                .collect()
        });
        let ok = replies.iter().filter(|s| **s == 200).count();
        assert!(ok <= 1, "offer {offer} accepted twice: {replies:?}");
        assert!(
            replies.iter().all(|s| *s == 200 || *s == 409),
            "{replies:?}"
        );
        won += ok;
    }
    won
}

async fn check_exactly_once(url: &str) -> (i64, i64) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let doubled: i64 = conn
        .fetch_one(
            "SELECT COUNT(*) FROM (SELECT task_id FROM assignments WHERE released_at_us IS NULL
             GROUP BY task_id HAVING COUNT(*) > 1) d",
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(doubled, 0, "a task with two active assignments");
    let offered_twice: i64 = conn
        .fetch_one(
            "SELECT COUNT(*) FROM (SELECT task_id FROM offers WHERE outcome IS NULL
             GROUP BY task_id HAVING COUNT(*) > 1) d",
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(offered_twice, 0, "a task with two open offers");
    // The task states agree with the offers and assignments.
    let mismatched: i64 = conn
        .fetch_one(
            "SELECT COUNT(*) FROM tasks t WHERE
               (t.state = 'offered') <> EXISTS (SELECT 1 FROM offers o WHERE o.task_id = t.id AND o.outcome IS NULL)
            OR (t.state = 'assigned') <> EXISTS (SELECT 1 FROM assignments a WHERE a.task_id = t.id AND a.released_at_us IS NULL)",
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        mismatched, 0,
        "task states disagree with offers or assignments"
    );
    let assigned: i64 = conn
        .fetch_one("SELECT COUNT(*) FROM tasks WHERE state = 'assigned'")
        .await
        .unwrap()
        .get(0);
    let accepted: i64 = conn
        .fetch_one("SELECT COUNT(*) FROM offers WHERE outcome = 'accepted'")
        .await
        .unwrap()
        .get(0);
    conn.close().await.ok();
    (assigned, accepted)
}

#[test]
fn a_follower_takes_over_when_the_leader_is_killed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admin = admin_url();
    let name = format!("karya_it_leader_{}", uuid::Uuid::now_v7().simple());
    let url = database_url(&admin, &name);
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL is not reachable at {admin} ({err})"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        conn.close().await.ok();
    });
    let store =
        runtime.block_on(async { Store::open(&url, &StoreOptions::default()).await.unwrap() });
    let firm = runtime.block_on(firm(&store));
    let first = runtime.block_on(add_tasks(&firm, 6));
    let scratch = Scratch::new("leader");

    let a = Server::start(&url, &scratch.0);
    wait_until(TAKEOVER_BOUND, "first node leads", || {
        leader(&a.addr) == Some(true)
    });
    let b = Server::start(&url, &scratch.0);
    assert_eq!(leader(&b.addr), Some(false), "two leaders");

    // The leader offers every task; both nodes race to accept each offer.
    wait_until(OFFERS_BOUND, "first tasks offered", || {
        open_offers(&b.addr, &firm.workers).len() == first.len()
    });
    let offers = open_offers(&a.addr, &firm.workers);
    let won = accept_on_both(&a.addr, &b.addr, &offers[..3]);
    assert_eq!(won, 3);

    // The leader dies; the follower leads within the bound.
    let pid_a = a.child.id();
    a.kill();
    let took = wait_until(TAKEOVER_BOUND, "follower takes over", || {
        leader(&b.addr) == Some(true)
    });
    eprintln!("leader {pid_a} killed; the follower led after {took:?}");

    // The new leader routes new work, and the offers made before the crash are still good.
    let second = runtime.block_on(add_tasks(&firm, 4));
    wait_until(OFFERS_BOUND, "new tasks offered by the new leader", || {
        let open = open_offers(&b.addr, &firm.workers);
        second
            .iter()
            .all(|t| open.iter().any(|(_, _, task)| *task == t.to_string()))
    });
    let offers = open_offers(&b.addr, &firm.workers);
    assert_eq!(offers.len(), 3 + second.len());
    let won = accept_on_both(&b.addr, &b.addr, &offers);
    assert_eq!(won, offers.len());

    let (assigned, accepted) = runtime.block_on(check_exactly_once(&url));
    assert_eq!((assigned, accepted), (10, 10));

    let status = b.terminate();
    assert!(
        status.success(),
        "karya serve did not stop cleanly: {status}"
    );
    runtime.block_on(async {
        store.close().await;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .unwrap();
    });
}
