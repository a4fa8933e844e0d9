//! The Python worker, when the SDK's test venv is there
//! (`~/.cache/longrun-tests/sdk-python/venv`, made by the Python SDK's tests): a child process
//! running `longrun.Worker` with one kind that echoes its input.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::servers::PYTHON_KIND;

/// The worker's program: the same handler as the Rust worker's.
const SCRIPT: &str = r#"
import sys
from longrun import Worker

worker = Worker(sys.argv[1], name="bench-python", capacity=int(sys.argv[2]))

@worker.kind(sys.argv[3])
async def echo(ctx, input):
    return {"echo": input}

worker.run_forever()
"#;

/// The same handler as a process handler (`longrun.process.run`): one interpreter per task.
pub(crate) const PROCESS_SCRIPT: &str = r#"
from longrun.process import run

async def echo(ctx, input):
    return {"echo": input}

run(echo)
"#;

/// A running Python worker; stopped with SIGTERM (its graceful stop) when dropped.
pub(crate) struct PythonWorker {
    child: Child,
    _dir: tempfile::TempDir,
}

/// The venv's interpreter, or why there is none.
pub(crate) fn interpreter() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let python = PathBuf::from(home).join(".cache/longrun-tests/sdk-python/venv/bin/python");
    if !python.exists() {
        return Err(format!(
            "no Python SDK venv at {} (the Python SDK's tests make it)",
            python.display()
        ));
    }
    let check = Command::new(&python)
        .args(["-c", "from longrun import Worker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|error| format!("cannot run {}: {error}", python.display()))?;
    if !check.success() {
        return Err(format!("{} has no longrun.Worker", python.display()));
    }
    Ok(python)
}

impl PythonWorker {
    /// Starts the worker and waits until the server lists it; `Err` says why it was skipped.
    pub(crate) async fn start(
        http: &reqwest::Client,
        url: &str,
        capacity: usize,
    ) -> Result<Self, String> {
        let python = interpreter()?;
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let script = dir.path().join("echo_worker.py");
        std::fs::write(&script, SCRIPT).map_err(|error| error.to_string())?;
        let child = Command::new(&python)
            .arg(&script)
            .arg(url)
            .arg(capacity.to_string())
            .arg(PYTHON_KIND)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start the Python worker: {error}"))?;
        let worker = Self { child, _dir: dir };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let listed = http
                .get(format!("{url}/v1/workers"))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            if let Ok(response) = listed
                && response
                    .text()
                    .await
                    .is_ok_and(|text| text.contains("bench-python"))
            {
                return Ok(worker);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the Python worker did not register within 20 s".to_owned())
    }
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).map(Pid::from_raw);
        if let Ok(pid) = pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}
