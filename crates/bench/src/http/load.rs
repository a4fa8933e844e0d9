//! Request load over HTTP: an open-loop generator at a fixed offered rate, a closed loop of
//! concurrent clients, and the count of completed tasks read from the server's `/metrics`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::Client;

/// The body of every task creation: the `noop` kind returns at once.
const CREATE_BODY: &str = r#"{"kind":"noop","input":null}"#;

/// The completed-tasks series of `/metrics` for the `noop` kind.
const COMPLETED_SERIES: &str = r#"longrun_tasks_ended_total{kind="noop",status="completed"}"#;

/// The request a load sends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Request {
    /// `POST /v1/tasks` creating a `noop` task.
    Create,
    /// `GET /healthz`: the same HTTP round trip to a trivial handler (the baseline).
    Health,
}

/// What an open-loop run measured.
pub(crate) struct OpenLoop {
    /// Latency of every successful request, from the time it was *due* to be sent to the end
    /// of its response body, ascending.
    pub(crate) latencies: Vec<Duration>,
    /// Requests that failed or were answered with a non-2xx status.
    pub(crate) errors: usize,
    /// When the first request was due.
    pub(crate) started: Instant,
}

/// Sends `request` at `rate` per second for `duration`, each on schedule whether or not the
/// earlier ones were answered (open loop), and records each latency from its scheduled time,
/// so that a stall shows in the tail instead of slowing the generator (coordinated omission).
pub(crate) async fn open_loop(
    client: &Client,
    base: &str,
    request: Request,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<OpenLoop> {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u32;
    let interval = Duration::from_secs(1) / rate.max(1);
    let started = Instant::now();
    let mut requests = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + interval * i;
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let base = base.to_owned();
        requests.push(tokio::spawn(async move {
            let ok = send(&client, &base, request).await;
            (ok, due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    let mut errors = 0;
    for request in requests {
        match request.await? {
            (true, latency) => latencies.push(latency),
            (false, _) => errors += 1,
        }
    }
    latencies.sort_unstable();
    Ok(OpenLoop {
        latencies,
        errors,
        started,
    })
}

/// Runs `clients` loops sending `request` back to back for `duration`; returns the successful
/// requests and the errors.
pub(crate) async fn closed_loop(
    client: &Client,
    base: &str,
    request: Request,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(u64, u64)> {
    let stop = Instant::now() + duration;
    let mut loops = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = client.clone();
        let base = base.to_owned();
        loops.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0_u64, 0_u64);
            while Instant::now() < stop {
                if send(&client, &base, request).await {
                    ok += 1;
                } else {
                    errors += 1;
                }
            }
            (ok, errors)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for each in loops {
        let (o, e) = each.await?;
        ok += o;
        errors += e;
    }
    Ok((ok, errors))
}

/// One request, its whole response body read; whether it succeeded (2xx).
async fn send(client: &Client, base: &str, request: Request) -> bool {
    let response = match request {
        Request::Create => {
            client
                .post(format!("{base}/v1/tasks"))
                .header("content-type", "application/json")
                .body(CREATE_BODY)
                .send()
                .await
        }
        Request::Health => client.get(format!("{base}/healthz")).send().await,
    };
    match response {
        Ok(response) => {
            let ok = response.status().is_success();
            response.bytes().await.is_ok() && ok
        }
        Err(_) => false,
    }
}

/// `noop` tasks the server has seen complete, from its `/metrics`.
pub(crate) async fn completed(client: &Client, base: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    // No series yet means no task has ended.
    Ok(metric_value(&text, COMPLETED_SERIES).unwrap_or(0))
}

/// Events the server's metrics collector skipped (then its counts may be low).
pub(crate) async fn metrics_missed(client: &Client, base: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(metric_value(&text, "longrun_metrics_events_missed_total").unwrap_or(0))
}

/// Polls `/metrics` until at least `target` `noop` tasks completed; returns the count and the
/// moment it was seen (the clock for completion throughput stops there).
pub(crate) async fn wait_completed(
    client: &Client,
    base: &str,
    target: u64,
    timeout: Duration,
) -> anyhow::Result<(u64, Instant)> {
    let deadline = Instant::now() + timeout;
    loop {
        let count = completed(client, base)
            .await
            .context("cannot read /metrics")?;
        let now = Instant::now();
        if count >= target {
            return Ok((count, now));
        }
        if now > deadline {
            bail!("only {count} of {target} tasks completed within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The value of one series (`name{labels}`, exactly) in Prometheus text format.
fn metric_value(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().map(|value| value as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_series_exactly() {
        let text = "# TYPE longrun_tasks_ended_total counter\n\
                    longrun_tasks_ended_total{kind=\"noop\",status=\"failed\"} 3\n\
                    longrun_tasks_ended_total{kind=\"noop\",status=\"completed\"} 1234\n\
                    longrun_metrics_events_missed_total 0\n";
        assert_eq!(metric_value(text, COMPLETED_SERIES), Some(1234));
        assert_eq!(
            metric_value(text, "longrun_metrics_events_missed_total"),
            Some(0)
        );
        // A prefix of another series' name is not that series.
        assert_eq!(metric_value(text, "longrun_tasks_ended"), None);
    }
}
