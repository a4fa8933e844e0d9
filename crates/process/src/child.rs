//! Starting a handler process in a process group of its own, and signalling that group.
//!
//! The group is what makes "no orphans" hold: a shell handler's `sleep` or a Python handler's
//! worker processes are in it too, so SIGTERM reaches them and SIGKILL ends them, and
//! [`Group`]'s `Drop` kills them all when the handler future is dropped (the runtime aborting a
//! handler after the kind's `cancel_grace`).

use std::{
    io,
    path::{Path, PathBuf},
    process::Stdio,
};

use longrun::trace::TraceContext;
use nix::{
    errno::Errno,
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::process::{Child, Command};

use crate::ProcessSpec;

/// The child's process group, killed with SIGKILL when dropped.
///
/// The group id is the child's pid. While any member of the group lives, the kernel does not
/// hand that id to a new process, so signalling it reaches only our processes; once the group is
/// empty the signal fails with `ESRCH`, which is the expected case after a clean exit.
#[derive(Debug)]
pub(crate) struct Group {
    pgid: Pid,
}

impl Group {
    /// The group id (the child's pid), for logs.
    pub(crate) fn id(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// Sends `signal` to every process in the group.
    pub(crate) fn signal(&self, signal: Signal) {
        match killpg(self.pgid, signal) {
            // Nobody left: the group exited on its own.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => {
                tracing::warn!(target: "longrun::process", pgid = self.id(), ?signal, %error, "could not signal a handler's process group");
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Whatever path ends the session (normal end, a panic, or the runtime dropping the
        // handler future), nothing of the group survives it.
        self.signal(Signal::SIGKILL);
    }
}

/// Starts `spec`'s program with piped stdio, as the leader of a new process group. With a
/// trace context, the program gets it as `TRACEPARENT` (and `TRACESTATE`), the environment
/// variables OpenTelemetry SDKs read, so its spans nest under the task's attempt.
pub(crate) fn spawn(
    spec: &ProcessSpec,
    trace: Option<&TraceContext>,
) -> io::Result<(Child, Group)> {
    let mut command = Command::new(program(spec)?);
    command
        .args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The direct child dies with the `Child` handle; `Group` takes care of its descendants.
        .kill_on_drop(true)
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    if let Some(trace) = trace {
        command.env("TRACEPARENT", trace.traceparent());
        // A state the server itself was started with belongs to another trace.
        match trace.tracestate() {
            Some(state) => command.env("TRACESTATE", state),
            None => command.env_remove("TRACESTATE"),
        };
    }
    let child = command.spawn()?;
    let pid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .ok_or_else(|| io::Error::other("the spawned process has no pid"))?;
    Ok((
        child,
        Group {
            pgid: Pid::from_raw(pid),
        },
    ))
}

/// The program to execute: bare names are left to the `PATH` search; a relative path is made
/// absolute against `cwd`, because how the OS resolves a relative program together with a
/// working directory is platform-specific.
fn program(spec: &ProcessSpec) -> io::Result<PathBuf> {
    let program = Path::new(&spec.program);
    if !spec.program.contains('/') || program.is_absolute() {
        return Ok(program.to_owned());
    }
    let joined = match &spec.cwd {
        Some(cwd) => cwd.join(program),
        None => program.to_owned(),
    };
    std::path::absolute(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_like_a_shell() {
        let here = std::env::current_dir().unwrap();
        let cases = [
            (ProcessSpec::new("python3"), PathBuf::from("python3")),
            (
                ProcessSpec::new("python3").cwd("/srv"),
                PathBuf::from("python3"),
            ),
            (
                ProcessSpec::new("/bin/sh").cwd("/srv"),
                PathBuf::from("/bin/sh"),
            ),
            (
                ProcessSpec::new("./run.sh").cwd("/srv/handlers"),
                PathBuf::from("/srv/handlers/run.sh"),
            ),
            (
                ProcessSpec::new("bin/run").cwd("/srv"),
                PathBuf::from("/srv/bin/run"),
            ),
            (ProcessSpec::new("bin/run"), here.join("bin/run")),
            (
                ProcessSpec::new("bin/run").cwd("handlers"),
                here.join("handlers/bin/run"),
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(program(&spec).unwrap(), expected, "{spec:?}");
        }
    }
}
