//! A short run of every target, as CI runs it: a few thousand inputs each (a few hundred for
//! the process target, whose every input starts a child), no finding allowed.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use longrun_fuzz::{Options, Report, Target};

async fn smoke(target: Target, inputs: u64) -> Report {
    let report = longrun_fuzz::run(&Options::new(target, inputs, 20261207)).await;
    assert_eq!(report.inputs, inputs);
    for finding in &report.findings {
        eprintln!(
            "{target} {:?}: {}\n{}",
            finding.kind,
            finding.message,
            String::from_utf8_lossy(&finding.input)
        );
    }
    assert!(
        report.findings.is_empty(),
        "{target}: {} findings",
        report.findings.len()
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1() {
    smoke(Target::V1, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp() {
    smoke(Target::Mcp, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2a() {
    smoke(Target::A2a, 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process() {
    smoke(Target::Process, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config() {
    smoke(Target::Config, 3_000).await;
}
