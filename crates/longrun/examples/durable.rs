//! A task that survives a crash, on the SQLite store.
//!
//! The first "process" starts a deploy that asks two questions, gets the first answer, and then
//! dies while it waits for the second: its tokio runtime is dropped on the spot, as a kill -9
//! would, so nothing gets to write an end. The second process opens the same file, registers
//! the same kind and calls `recover()`: the task runs again (attempt 2), the first answer is
//! replayed so the handler does not ask it again, and the task completes once the second
//! question is answered.
//!
//! Run it with `cargo run -p longrun --features sqlite --example durable`. It ends with
//! assertions, so CI runs it as a test.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

use std::{path::Path, sync::Arc, time::Duration};

use longrun::{
    Context, KindSpec, Options, Outcome, Runtime, StartOptions, TaskError, TaskId,
    kind::RestartPolicy, store::SqliteStore, task::Status,
};
use serde_json::{Value, json};

/// Re-runs after a crash (the default is to fail with `interrupted`: a handler is not assumed
/// to be safe to run twice).
fn deploy_kind() -> KindSpec {
    KindSpec::new("deploy").restart(RestartPolicy::Rerun)
}

async fn deploy(ctx: Context, build: String) -> Result<Value, TaskError> {
    println!("  attempt {}: deploying {build}", ctx.attempt());
    let region = ctx
        .ask("region", json!({"type": "string"}), Duration::MAX)
        .await?;
    println!("  attempt {}: region is {region}", ctx.attempt());
    let go = ctx
        .ask("go", json!({"type": "boolean"}), Duration::MAX)
        .await?;
    Ok(json!({"build": build, "region": region, "go": go, "attempt": ctx.attempt()}))
}

fn runtime(path: &Path) -> Runtime {
    let store = Arc::new(SqliteStore::open(path).expect("the store opens"));
    let runtime = Runtime::new(Options {
        store: Some(store),
        ..Options::default()
    });
    runtime.register(deploy_kind(), deploy).expect("registered");
    runtime
}

/// Waits until attempt `attempt` of the task asks `key`.
async fn wait_for_question(runtime: &Runtime, id: TaskId, attempt: u32, key: &str) {
    loop {
        let task = runtime.get(id).await.expect("stored");
        let asked = task
            .state()
            .pending_input()
            .is_some_and(|q| q.contains_key(key));
        if task.attempt() == attempt && asked {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("longrun-durable-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("tasks.db");

    println!("first process:");
    let id = {
        let tokio = tokio::runtime::Runtime::new()?;
        let id = tokio.block_on(async {
            let runtime = runtime(&path);
            let id = runtime
                .start("deploy", "v1.2.3", StartOptions::background())
                .await?
                .id();
            wait_for_question(&runtime, id, 1, "region").await;
            runtime.answer(id, "region", json!("eu-west")).await?;
            wait_for_question(&runtime, id, 1, "go").await;
            println!("  crash while waiting for `go`");
            Ok::<_, longrun::Error>(id)
        })?;
        // Dropping the tokio runtime tears every task down where it stands.
        drop(tokio);
        id
    };

    println!("second process:");
    let tokio = tokio::runtime::Runtime::new()?;
    tokio.block_on(async {
        let runtime = runtime(&path);
        let before = runtime.get(id).await?;
        assert_eq!(before.status(), Status::InputRequired);
        let recovery = runtime.recover().await?;
        println!("  recovered: {recovery:?}");
        assert_eq!(recovery.rerun, 1);
        wait_for_question(&runtime, id, 2, "go").await;
        let task = runtime.get(id).await?;
        assert!(
            !task.state().pending_input().unwrap().contains_key("region"),
            "the first answer was replayed, not asked again"
        );
        runtime.answer(id, "go", json!(true)).await?;
        let done = runtime.handle(id).wait().await?;
        println!("  {}: {:?}", done.status(), done.outcome());
        assert_eq!(
            done.outcome(),
            Some(&Outcome::Completed {
                output: json!({"build": "v1.2.3", "region": "eu-west", "go": true, "attempt": 2})
            })
        );
        Ok::<_, longrun::Error>(())
    })?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
