//! Durable steps across nodes: a task whose node died is rescued by another node, which
//! resumes it after its last saved step instead of running its steps again.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use longrun_runtime::{
    Context, KindSpec, Options, Outcome, RestartPolicy, Runtime, StartOptions, Status, Task,
    TaskError, TaskId,
};
use longrun_store_postgres::PostgresStore;
use serde_json::{Value, json};

const LEASE: Duration = Duration::from_millis(600);

type Runs = Arc<[AtomicU32; 3]>;

fn node(store: Arc<PostgresStore>, runs: Runs) -> Runtime {
    let runtime = Runtime::new(Options {
        renew_interval: LEASE / 3,
        ..Options::clustered(store)
    });
    // Two steps, a question, a third step; each step's executions are counted here, outside
    // the store.
    runtime
        .register(
            KindSpec::new("stepper").restart(RestartPolicy::Rerun),
            move |ctx: Context, _: Value| {
                let runs = runs.clone();
                async move {
                    let mut values = Vec::new();
                    for n in 0..3usize {
                        if n == 2 {
                            ctx.ask("go", json!({}), Duration::MAX).await?;
                        }
                        let runs = runs.clone();
                        let value: u32 = ctx
                            .step(format!("s{n}"), async move {
                                Ok::<_, TaskError>(runs[n].fetch_add(1, Ordering::SeqCst) + 1)
                            })
                            .await?;
                        values.push(value);
                    }
                    Ok::<_, TaskError>(json!({"runs": values, "attempt": ctx.attempt()}))
                }
            },
        )
        .unwrap();
    runtime
}

async fn wait_until(runtime: &Runtime, id: TaskId, done: impl Fn(&Task) -> bool) -> Task {
    for _ in 0..1_000 {
        let task = runtime.get(id).await.unwrap();
        if done(&task) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} never reached the expected state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescued_task_resumes_after_its_last_saved_step() {
    let Some(url) = common::url() else { return };
    let schema = common::Schema::new(&url);
    let runs: Runs = Arc::default();

    // Node A runs in a tokio runtime of its own, which is dropped: A dies without a word,
    // while its task waits between its second and third step.
    let a_store = schema.connect("node-a", LEASE).await;
    let id = {
        let runs = runs.clone();
        common::die_after(move || async move {
            let a = node(a_store, runs);
            let id = a
                .start("stepper", json!(null), StartOptions::background())
                .await
                .unwrap()
                .id();
            wait_until(&a, id, |t| t.status() == Status::InputRequired).await;
            id
        })
    };

    let b = node(schema.connect("node-b", LEASE).await, runs.clone());
    let rescued = tokio::time::timeout(
        Duration::from_secs(10),
        wait_until(&b, id, |t| {
            t.attempt() == 2 && t.status() == Status::InputRequired
        }),
    )
    .await
    .expect("rescued in time");
    assert_eq!(rescued.attempt(), 2);
    b.answer(id, "go", json!(true)).await.unwrap();
    let done = b.handle(id).wait().await.unwrap();
    assert_eq!(
        done.outcome(),
        Some(&Outcome::Completed {
            output: json!({"runs": [1, 1, 1], "attempt": 2})
        })
    );
    let counts: Vec<u32> = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(
        counts,
        [1, 1, 1],
        "no saved step ran again on the rescuing node"
    );
    b.shutdown().await;
}
