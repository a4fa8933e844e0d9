//! Sending one body until the receiver takes it: retries with exponential backoff, a give-up
//! time, and an HTTP client that only reaches what the SSRF [`Policy`] allows.

use std::{sync::Arc, time::Duration};

use reqwest::header::CONTENT_TYPE;
// tokio's clock, so paused-time tests reach the give-up deadline.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ssrf::{Policy, Resolver};

/// How deliveries retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The wait after the first failure; it doubles after each further one.
    pub first: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// After failing this long on one body, the delivery stops (logged as an error).
    pub give_up: Duration,
    /// One POST's time limit.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
            give_up: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// POSTs webhook bodies. Cloning is cheap (one connection pool).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Policy,
    retry: Retry,
}

/// Headers for one attempt, given the body: `(name, value)` pairs.
pub type Headers<'a> = dyn Fn(&[u8]) -> Vec<(&'static str, String)> + Sync + 'a;

/// Names a delivery in the log: the task, and the door's name for the delivery.
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    /// The task, as its id's text.
    pub task: &'a str,
    /// The delivery's id within the task.
    pub id: &'a str,
}

impl Sender {
    /// A sender that reaches only what `policy` allows. Redirects are not followed and proxies
    /// not used, so neither can lead a POST around the policy.
    pub fn new(policy: Policy, retry: Retry) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .connect_timeout(retry.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Resolver(policy)))
            .user_agent(concat!("longrun/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy,
            retry,
        })
    }

    /// The SSRF policy webhook URLs are checked against.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The retry policy.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// POSTs `body` (JSON) to `url` until the receiver answers 2xx; false if stopped or given
    /// up. `headers` is called before each attempt, so a signature can carry the attempt's
    /// time.
    pub async fn post(
        &self,
        label: Label<'_>,
        url: &str,
        body: &[u8],
        headers: &Headers<'_>,
        stop: &CancellationToken,
    ) -> bool {
        let started = Instant::now();
        let mut wait = self.retry.first;
        let mut attempt = 1u32;
        loop {
            let sent = tokio::select! {
                () = stop.cancelled() => return false,
                sent = self.send(url, body, headers(body)) => sent,
            };
            let why = match sent {
                Ok(()) => return true,
                Err(why) => why,
            };
            if started.elapsed() >= self.retry.give_up {
                tracing::error!(
                    task = %label.task,
                    delivery = %label.id,
                    attempt,
                    %why,
                    "giving up on a webhook delivery: the webhook kept failing"
                );
                return false;
            }
            tracing::warn!(
                task = %label.task,
                delivery = %label.id,
                attempt,
                %why,
                retry_in_ms = wait.as_millis() as u64,
                "webhook delivery failed; retrying"
            );
            if !self.pause(stop, &mut wait).await {
                return false;
            }
            attempt += 1;
        }
    }

    /// Waits `wait` (doubling it for next time, up to the maximum); false if stopped meanwhile.
    pub async fn pause(&self, stop: &CancellationToken, wait: &mut Duration) -> bool {
        let this = *wait;
        *wait = (*wait * 2).min(self.retry.max);
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep(this) => true,
        }
    }

    async fn send(
        &self,
        url: &str,
        body: &[u8],
        headers: Vec<(&'static str, String)>,
    ) -> Result<(), String> {
        // Checked again on every POST: the policy may have changed since the URL was accepted.
        let url = self.policy.check(url)?;
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|error| {
            // reqwest's message names the URL, which may hold secrets in its query: keep the
            // cause.
            let mut cause: &dyn std::error::Error = &error;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("the request failed: {cause}")
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {status}"))
        }
    }
}
