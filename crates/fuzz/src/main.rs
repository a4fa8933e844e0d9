//! `longrun-fuzz`: runs N fuzz inputs of a target (or of all), prints inputs/s and findings,
//! writes each finding to a file, and exits non-zero on any.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "a harness: it prints its figures, bounds each input by real elapsed time and runs each door on a task it aborts"
)]

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use longrun_fuzz::{Options, Target};

/// Fuzzes longrun's doors and parsers.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// v1, mcp, a2a, process, config, or all.
    #[arg(long, default_value = "all")]
    target: String,
    /// Inputs per target.
    #[arg(long, default_value_t = 10_000)]
    inputs: u64,
    /// The seed of every random choice (the same seed makes the same inputs).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inputs in flight at once (many of them wait: a question, a stream, a blocking call).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Where findings are written, one directory per target.
    #[arg(long, default_value = "target/fuzz-findings")]
    findings: PathBuf,
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Replay these kept inputs (finding or regression files) of `--target` instead of fuzzing.
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let targets: Vec<Target> = if args.target == "all" {
        Target::ALL.to_vec()
    } else {
        match args.target.parse() {
            Ok(target) => vec![target],
            Err(message) => {
                eprintln!("longrun-fuzz: {message}");
                return ExitCode::from(2);
            }
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(2))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("longrun-fuzz: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    if !args.replay.is_empty() {
        return replay(&runtime, &targets, &args.replay);
    }
    let mut total_inputs = 0;
    let mut total_findings = 0;
    let mut total_seconds = 0.0;
    for target in targets {
        let mut options = Options::new(target, args.inputs, args.seed);
        options.concurrency = args.concurrency;
        let report = runtime.block_on(longrun_fuzz::run(&options));
        total_inputs += report.inputs;
        total_seconds += report.elapsed.as_secs_f64();
        total_findings += report.findings.len();
        println!(
            "{target}: {} inputs in {:.1} s, {:.0} inputs/s, peak RSS {} MiB, {} findings",
            report.inputs,
            report.elapsed.as_secs_f64(),
            report.rate(),
            report.peak_rss >> 20,
            report.findings.len()
        );
        for (n, finding) in report.findings.iter().enumerate() {
            let first = finding.message.lines().next().unwrap_or("");
            match finding.write(&args.findings, n) {
                Ok(path) => println!(
                    "  {:?}: {first}\n    input: {}",
                    finding.kind,
                    path.display()
                ),
                Err(error) => println!("  {:?}: {first}\n    (not written: {error})", finding.kind),
            }
        }
    }
    println!(
        "total: {total_inputs} inputs in {total_seconds:.1} s, {:.0} inputs/s, {total_findings} findings",
        total_inputs as f64 / total_seconds.max(1e-9)
    );
    if total_findings == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Replays each file as an input of the one target given; fails if any gets a bad answer.
fn replay(runtime: &tokio::runtime::Runtime, targets: &[Target], files: &[PathBuf]) -> ExitCode {
    let [target] = targets else {
        eprintln!("longrun-fuzz: --replay needs one --target");
        return ExitCode::from(2);
    };
    let mut failed = false;
    for file in files {
        let result = match std::fs::read(file) {
            Ok(bytes) => runtime.block_on(longrun_fuzz::replay(*target, &bytes)),
            Err(error) => Err(format!("cannot read it: {error}")),
        };
        match result {
            Ok(()) => println!("{}: good answer", file.display()),
            Err(problem) => {
                failed = true;
                println!("{}: {problem}", file.display());
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
