//! The push-notification config operations (create, get, list, delete) and the check of a
//! config before it is stored: its URL against the SSRF policy, its credentials as header values.

use axum::http::HeaderValue;
use longrun::Task;

use super::Call;
use crate::{
    error::{Error, Kind},
    push::Record,
    wire,
};

/// The most push configs one task may have.
const MAX_PUSH_CONFIGS: usize = 16;
/// The longest push config id.
const MAX_PUSH_ID: usize = 256;

impl Call {
    /// A push config checked against the policy, before anything is started.
    pub(super) fn check_push(&self, config: &wire::PushConfig) -> Result<wire::PushConfig, Error> {
        self.door
            .push()
            .policy()
            .check(&config.url)
            .map_err(|why| Error::invalid_params(format!("push notification url: {why}")))?;
        if config.id.len() > MAX_PUSH_ID {
            return Err(Error::invalid_params(format!(
                "a push notification config id has at most {MAX_PUSH_ID} bytes"
            )));
        }
        if let Some(auth) = &config.authentication {
            if auth.scheme.trim().is_empty() || auth.scheme.contains(char::is_whitespace) {
                return Err(Error::invalid_params(
                    "authentication.scheme must name one HTTP auth scheme, e.g. Bearer",
                ));
            }
            if HeaderValue::from_str(&format!("{} {}", auth.scheme, auth.credentials)).is_err() {
                return Err(Error::invalid_params(
                    "authentication.credentials cannot be sent in an HTTP header",
                ));
            }
        }
        if HeaderValue::from_str(&config.token).is_err() {
            return Err(Error::invalid_params(
                "the push notification token cannot be sent in an HTTP header",
            ));
        }
        Ok(config.clone())
    }

    /// Stores a checked config for `task` and starts its delivery.
    pub(super) async fn put_push(
        &self,
        task: &Task,
        config: wire::PushConfig,
    ) -> Result<wire::PushConfig, Error> {
        let task_id = task.id.to_string();
        let id = if config.id.is_empty() {
            task_id.clone()
        } else {
            config.id.clone()
        };
        let push = self.door.push();
        let existing = push.list(&task_id).await?;
        if existing.len() >= MAX_PUSH_CONFIGS && !existing.iter().any(|r| r.id == id) {
            return Err(Error::invalid_params(format!(
                "task {task_id} already has {MAX_PUSH_CONFIGS} push notification configs; delete one first"
            )));
        }
        let (scheme, credentials) = config
            .authentication
            .map(|auth| (auth.scheme, auth.credentials))
            .unwrap_or_default();
        let record = Record {
            task: task_id,
            id,
            owner: task.owner.to_string(),
            url: config.url,
            token: config.token,
            scheme,
            credentials,
            version: self.version,
            delivered: 0,
        };
        push.put(record.clone()).await?;
        Ok(wire_config(&record))
    }

    /// `CreateTaskPushNotificationConfig` / `tasks/pushNotificationConfig/set`.
    pub(crate) async fn create_push(
        &self,
        config: wire::PushConfig,
    ) -> Result<wire::PushConfig, Error> {
        let task = self.owned(&config.task_id).await?;
        let config = self.check_push(&config)?;
        self.put_push(&task, config).await
    }

    /// `GetTaskPushNotificationConfig` / `tasks/pushNotificationConfig/get`.
    pub(crate) async fn get_push(
        &self,
        request: wire::PushConfigRequest,
    ) -> Result<wire::PushConfig, Error> {
        let task = self.owned(&request.task_id).await?;
        let record = self
            .door
            .push()
            .get(&task.id.to_string(), &request.id)
            .await?
            .ok_or_else(|| no_config(&task, &request.id))?;
        Ok(wire_config(&record))
    }

    /// `ListTaskPushNotificationConfigs` / `tasks/pushNotificationConfig/list`.
    pub(crate) async fn list_push(&self, task_id: &str) -> Result<Vec<wire::PushConfig>, Error> {
        let task = self.owned(task_id).await?;
        let records = self.door.push().list(&task.id.to_string()).await?;
        Ok(records.iter().map(wire_config).collect())
    }

    /// `DeleteTaskPushNotificationConfig` / `tasks/pushNotificationConfig/delete`. Idempotent:
    /// deleting a config that is not there (any more) succeeds.
    pub(crate) async fn delete_push(&self, request: wire::PushConfigRequest) -> Result<(), Error> {
        let task = self.owned(&request.task_id).await?;
        self.door
            .push()
            .delete(&task.id.to_string(), &request.id)
            .await?;
        Ok(())
    }
}

fn no_config(task: &Task, id: &str) -> Error {
    Error::new(
        Kind::TaskNotFound,
        format!(
            "task {} has no push notification config `{}`",
            task.id,
            crate::error::short(id)
        ),
    )
}

fn wire_config(record: &Record) -> wire::PushConfig {
    wire::PushConfig {
        tenant: String::new(),
        id: record.id.clone(),
        task_id: record.task.clone(),
        url: record.url.clone(),
        token: record.token.clone(),
        authentication: (!record.scheme.is_empty()).then(|| wire::Authentication {
            scheme: record.scheme.clone(),
            credentials: record.credentials.clone(),
        }),
    }
}
