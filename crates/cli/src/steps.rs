//! The steps a task has saved, for `longrun tasks get`.
//!
//! A saved step is an event in the task's log (`step_saved`), not a field of the task, so the
//! command reads them where they are: the task's event stream, from the start up to the task's
//! `last_seq` as `get` just saw it (the stream of a running task stays open; reading stops
//! there rather than waiting for more).

use serde_json::Value;

use crate::{client::Client, tasks::task_path, view::Event};

/// Every step the task saved up to event `last_seq`: key and value, in the order they were
/// saved.
pub(crate) async fn saved(
    client: &Client,
    id: &str,
    last_seq: u64,
) -> anyhow::Result<Vec<(String, Value)>> {
    let mut steps = Vec::new();
    if last_seq == 0 {
        return Ok(steps);
    }
    let mut events = client
        .events(&format!("{}/events", task_path(id)), None)
        .await?;
    while let Some(message) = events.next().await? {
        if message.event == "error" {
            anyhow::bail!("the server ended the event stream: {}", message.data);
        }
        let Ok(event) = serde_json::from_str::<Value>(&message.data) else {
            continue;
        };
        let event = Event(&event);
        if event.kind() == "step_saved"
            && let Some((key, value)) = event.step()
        {
            steps.push((key.to_owned(), value.clone()));
        }
        if event.seq().is_some_and(|seq| seq >= last_seq) {
            break;
        }
    }
    Ok(steps)
}

/// The keys of `steps` in a line, the first few named: `3 saved (call-1, call-2, call-3)`.
pub(crate) fn summary(steps: &[(String, Value)]) -> String {
    /// Enough to recognise a loop's progress without flooding the terminal.
    const NAMED: usize = 8;
    let mut keys: Vec<&str> = steps
        .iter()
        .take(NAMED)
        .map(|(key, _)| key.as_str())
        .collect();
    if steps.len() > NAMED {
        keys.push("…");
    }
    let noun = if steps.len() == 1 { "step" } else { "steps" };
    format!("{} {noun} saved ({})", steps.len(), keys.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_summary_names_the_first_keys() {
        let few = [("call-1".to_owned(), json!(1))];
        assert_eq!(summary(&few), "1 step saved (call-1)");
        let many: Vec<_> = (1..=10).map(|n| (format!("k{n}"), json!(n))).collect();
        assert_eq!(
            summary(&many),
            "10 steps saved (k1, k2, k3, k4, k5, k6, k7, k8, …)",
            "saved order, not sorted"
        );
    }
}
