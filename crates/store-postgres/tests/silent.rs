//! A database behind a silent partition (packets go nowhere, connections stay open, nothing
//! answers): every call fails within `io_timeout` instead of waiting for TCP to give up, and
//! the store works again by itself once the partition heals.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs as _},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Duration,
};

use longrun_core::{
    Cluster, Event, Labels, NewTask, Owner, Task, TaskId, Timestamp,
    store::{Error, TaskStore},
};
use longrun_store_postgres::{PostgresOptions, PostgresStore};
use serde_json::json;

use crate::common::Schema;

/// A TCP proxy that can go silent: nothing forwarded either way, new connections accepted but
/// not forwarded, nothing dropped (what was held back flows once restored).
#[derive(Default)]
struct Silence {
    silent: Mutex<bool>,
    heard: Condvar,
}

impl Silence {
    fn heard(&self) -> MutexGuard<'_, bool> {
        let silent = self.silent.lock().unwrap();
        self.heard.wait_while(silent, |silent| *silent).unwrap()
    }

    fn set(&self, silent: bool) {
        *self.silent.lock().unwrap() = silent;
        self.heard.notify_all();
    }

    fn pump(&self, mut from: TcpStream, mut to: TcpStream) {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            drop(self.heard());
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            drop(self.heard());
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    }
}

/// Starts the proxy to `target`; returns its address.
fn proxy(target: SocketAddr, silence: &Arc<Silence>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silence = silence.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let silence = silence.clone();
            std::thread::spawn(move || {
                drop(silence.heard());
                let Ok(server) = TcpStream::connect(target) else {
                    return;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let silence = silence.clone();
                    std::thread::spawn(move || silence.pump(from, to));
                }
            });
        }
    });
    addr
}

/// `url` with its `host:port` replaced by `addr`, and the address it named.
fn through(url: &str, addr: SocketAddr) -> (String, SocketAddr) {
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").unwrap() + 3, |at| at + 1);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let target = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let target = target.to_socket_addrs().unwrap().next().unwrap();
    (format!("{}{addr}{}", &url[..start], &url[end..]), target)
}

fn new_task() -> (Task, Arc<Event>) {
    let (task, first) = Task::create(NewTask {
        id: TaskId::random(),
        kind: "silent".to_owned(),
        owner: Owner::default(),
        session: None,
        input: json!(null),
        labels: Labels::new(),
        ttl: Duration::from_secs(60),
        deadline: None,
        created_at: Timestamp::from_millis(1_700_000_000_000),
        idempotency_key: None,
        start_at: None,
        trace: None,
    });
    (task, Arc::new(first))
}

/// What the test waits for a call before counting it as hung: far beyond the bound.
const HANG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_database_fails_every_call_within_io_timeout_and_heals() {
    let Some(url) = common::url() else { return };
    let schema = Schema::new(&url);
    let (_, target) = through(&url, "127.0.0.1:1".parse().unwrap());
    let silence = Arc::new(Silence::default());
    let (proxied, _) = through(&url, proxy(target, &silence));
    let options = PostgresOptions {
        url: proxied,
        ..schema.options("silent", Duration::from_secs(6))
    }
    .io_timeout(Duration::from_millis(500));
    let store = PostgresStore::connect(options).await.unwrap();
    let (before, first) = new_task();
    store.create_held(&before, &first).await.unwrap();
    assert!(store.get(before.id).await.unwrap().is_some());

    silence.set(true);
    let (during, first) = new_task();
    let write = tokio::time::timeout(HANG, store.create_held(&during, &first))
        .await
        .expect("a write hung on a silent database");
    assert!(matches!(write, Err(Error::Backend(_))), "{write:?}");
    let renewal = tokio::time::timeout(HANG, store.renew())
        .await
        .expect("a renewal hung on a silent database");
    assert!(matches!(renewal, Err(Error::Backend(_))), "{renewal:?}");
    let read = tokio::time::timeout(HANG, store.get(before.id))
        .await
        .expect("a read hung on a silent database");
    assert!(matches!(read, Err(Error::Backend(_))), "{read:?}");
    // The connections given up are not reused: a second read fails within the bound too.
    let read = tokio::time::timeout(HANG, store.get(before.id))
        .await
        .expect("a second read hung on a silent database");
    assert!(matches!(read, Err(Error::Backend(_))), "{read:?}");

    // The partition heals: the next calls open new connections and succeed.
    silence.set(false);
    let (after, first) = new_task();
    let mut tries = 0;
    while let Err(error) = store.create_held(&after, &first).await {
        tries += 1;
        assert!(tries < 100, "writes never worked again: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.get(before.id).await.unwrap().is_some());
    assert!(store.get(after.id).await.unwrap().is_some());
    let renewal = store.renew().await.unwrap();
    assert!(renewal.renewed >= 2, "{renewal:?}");
}
