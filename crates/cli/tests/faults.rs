//! Storage faults (issue 15, item 3) on the real `longrun serve` with its SQLite store: a full
//! disk, a failing fsync and a read-only file system, each produced by the `LD_PRELOAD` shim in
//! `tests/faults/shim.c` while a trigger file exists. PostgreSQL's are in `faults_postgres.rs`.
//!
//! For each fault, under a small load of starts over `/v1`, MCP and A2A: during the fault every
//! door answers a start with 503 in its own shape, and nothing is acknowledged that was not
//! written; once the trigger is gone the same server takes starts again by itself, and every
//! task acknowledged before or after the fault ends; a restart of the server on the same file
//! finds them all.
//!
//! Needs a C compiler (`cc`) and Linux (`/proc/self/fd`, `LD_PRELOAD`). No assertion here is
//! about time; the waits are hang guards.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

#[path = "faults/support.rs"]
mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use reqwest::{Client, StatusCode};

use support::{DOORS, Place, Server, read_start, send, start, until_ended};

/// The shim, compiled once per test binary.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("liblongrun-faults.so");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("a C compiler (`cc`) builds the fault shim");
        assert!(status.success(), "cc failed to build {}", source.display());
        out
    })
}

/// The faults the shim produces: the name of the trigger file.
#[derive(Clone, Copy, Debug)]
enum Fault {
    FullDisk,
    FailingFsync,
    ReadOnly,
}

impl Fault {
    fn trigger(self) -> &'static str {
        match self {
            Self::FullDisk => "enospc",
            Self::FailingFsync => "eio",
            Self::ReadOnly => "erofs",
        }
    }
}

/// The trigger file of `fault` in `place`.
fn trigger(place: &Place, fault: Fault) -> PathBuf {
    place.dir.path().join("triggers").join(fault.trigger())
}

/// Starts the server in `place` on SQLite; with `faulty`, under the shim.
fn serve(place: &Place, faulty: bool) -> Server {
    let mut command = Server::command(&place.dir.path().join("longrun.toml"), &place.data(), &[]);
    if faulty {
        command
            .env("LD_PRELOAD", shim())
            .env("LONGRUN_FAULTS", place.dir.path().join("triggers"))
            .env("LONGRUN_FAULT_FILES", place.data());
    }
    Server::spawn(command)
}

/// The whole scenario for one fault, as the module docs describe.
async fn survives(fault: Fault) {
    let place = Place::new();
    let server = serve(&place, true);
    let client = Client::new();
    let mut acknowledged = Vec::new();

    // Before: a task per door, long enough (2 s) to be running when the fault starts.
    for door in DOORS {
        let (status, body) = send(start(&server, &client, door, 20)).await;
        let id = read_start(door, status, &body)
            .unwrap_or_else(|| panic!("{door:?}: refused before any fault: {body}"));
        acknowledged.push(id);
    }

    // During: every start through every door is refused with its 503. No write can reach the
    // disk under the shim, so an acknowledgement here would be one of nothing written.
    std::fs::write(trigger(&place, fault), "").unwrap();
    for _ in 0..3 {
        for door in DOORS {
            let (status, body) = send(start(&server, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                panic!("{fault:?}: {door:?} acknowledged {id} during the fault");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reads need no write: a task is still there to be seen.
    let (status, _) = send(server.get(&client, &format!("/v1/tasks/{}", acknowledged[0]))).await;
    assert_eq!(status, StatusCode::OK, "{fault:?}: a read during the fault");

    // After: the same server takes starts again by itself.
    std::fs::remove_file(trigger(&place, fault)).unwrap();
    for door in DOORS {
        let mut tries = 0;
        let id = loop {
            let (status, body) = send(start(&server, &client, door, 2)).await;
            if let Some(id) = read_start(door, status, &body) {
                break id;
            }
            tries += 1;
            assert!(tries < 600, "{fault:?}: {door:?} never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        acknowledged.push(id);
    }

    // Nothing acknowledged is lost: every task ends, those cut off by the fault re-run.
    for id in &acknowledged {
        let task = until_ended(&server, &client, id).await;
        assert_eq!(task["status"], "completed", "{fault:?}: {task}");
    }

    // And a restart on the same file, without the shim, finds them all as they ended.
    drop(server);
    let server = serve(&place, false);
    for id in &acknowledged {
        let (status, task) = send(server.get(&client, &format!("/v1/tasks/{id}"))).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{fault:?}: {id} after a restart: {task}"
        );
        assert_eq!(task["status"], "completed", "{fault:?}: {task}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_a_503_on_every_door_and_loses_nothing() {
    survives(Fault::FullDisk).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_fsync_is_a_503_on_every_door_and_loses_nothing() {
    survives(Fault::FailingFsync).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_file_system_is_a_503_on_every_door_and_loses_nothing() {
    survives(Fault::ReadOnly).await;
}
