//! The API's errors: one enum, one JSON shape (`{"error": {"code", "message"}}`), one place that
//! decides each status code, the one conversion from the doors' shared [`Refusal`], and axum's
//! rejections.

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use longrun::{TaskId, task::Status};
use longrun_surface::{InputError, Refusal};
use longrun_worker_hub::HubError;

use crate::model;

/// Everything a request can fail with. Messages say what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The body is not JSON.
    #[error("{0}")]
    MalformedJson(String),
    /// A query parameter, header or path segment is not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// No principal: a missing or refused bearer token; `challenge` is the
    /// `WWW-Authenticate` value.
    #[error("{message}")]
    Unauthenticated {
        /// What is wrong with the credentials.
        message: String,
        /// The `WWW-Authenticate` value.
        challenge: String,
    },
    /// No such task, it expired, or another principal owns it (which is not told apart).
    #[error("task {0} is unknown or has expired")]
    TaskNotFound(String),
    /// A server without tokens reached under another machine's name (DNS rebinding).
    #[error("{0}")]
    Forbidden(String),
    /// No such route.
    #[error("no route for {method} {path}: see /openapi.json for the endpoints")]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// The route exists, not with this method.
    #[error("{path} does not take {method}: see /openapi.json for the endpoints")]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// The task has already ended.
    #[error("task {id} has already ended ({status}); nothing was changed")]
    Ended {
        /// The task.
        id: TaskId,
        /// How it ended.
        status: Status,
    },
    /// The question was already answered.
    #[error("question `{key}` of task {id} was already answered; the first answer stands")]
    AlreadyAnswered {
        /// The task.
        id: TaskId,
        /// The question.
        key: String,
    },
    /// The question timed out before the answer came.
    #[error("question `{key}` of task {id} timed out before this answer arrived")]
    QuestionClosed {
        /// The task.
        id: TaskId,
        /// The question.
        key: String,
    },
    /// The task is stored but not running on this server yet (it is taken up after a restart).
    #[error("task {0} is not running on this server yet; try again shortly")]
    NotRunning(TaskId),
    /// The task's state does not allow the change.
    #[error("{0}")]
    Refused(String),
    /// The body, the input, an answer or another payload is above a size bound.
    #[error("{0}")]
    TooLarge(String),
    /// A body that does not say it is JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// JSON of the wrong shape: a missing field, an unknown field, a wrong type.
    #[error("{0}")]
    InvalidRequest(String),
    /// No kind of this name.
    #[error("unknown kind `{0}`: GET /v1/kinds lists the kinds this server runs")]
    UnknownKind(String),
    /// The input does not match the kind's schema or input type.
    #[error("{0}")]
    InvalidInput(String),
    /// The `Idempotency-Key` already started a task of another kind or with another input.
    #[error("{0}")]
    KeyReused(String),
    /// The principal holds as many event streams as it may.
    #[error("too many open event streams: at most {limit} per principal; close one and try again")]
    TooManyStreams {
        /// The bound.
        limit: usize,
    },
    /// The server is shutting down.
    #[error("the server is shutting down and takes no new requests")]
    ShuttingDown,
    /// The credentials cannot be checked right now (the OAuth issuer is unreachable).
    #[error("{0}")]
    Unavailable(String),
    /// Something failed on the server's side (the store); the details are in its log.
    #[error("{0}")]
    Internal(String),
    /// The worker protocol refused a call.
    #[error(transparent)]
    Worker(#[from] longrun_worker_hub::HubError),
}

impl Error {
    /// The HTTP status: the one place that decides it.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TaskNotFound(_) | Self::NoRoute { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Ended { .. }
            | Self::AlreadyAnswered { .. }
            | Self::QuestionClosed { .. }
            | Self::NotRunning(_)
            | Self::Refused(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidRequest(_)
            | Self::UnknownKind(_)
            | Self::InvalidInput(_)
            | Self::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ShuttingDown | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Worker(error) => match error {
                HubError::Invalid(_) | HubError::Protocol(_) => StatusCode::UNPROCESSABLE_ENTITY,
                HubError::UnknownKind(_) | HubError::UnknownWorker => StatusCode::NOT_FOUND,
                HubError::NotAllowed(_) | HubError::NotYours => StatusCode::FORBIDDEN,
                HubError::SchemaMismatch(_) | HubError::AssignmentGone => StatusCode::CONFLICT,
            },
        }
    }

    /// The stable, machine-readable code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthenticated { .. } => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TaskNotFound(_) | Self::NoRoute { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Ended { .. } => "already_ended",
            Self::AlreadyAnswered { .. } => "already_answered",
            Self::QuestionClosed { .. } => "question_closed",
            Self::NotRunning(_) => "not_running",
            Self::Refused(_) => "refused",
            Self::TooLarge(_) => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnknownKind(_) => "unknown_kind",
            Self::InvalidInput(_) => "invalid_input",
            Self::KeyReused(_) => "idempotency_key_reused",
            Self::TooManyStreams { .. } => "too_many_streams",
            Self::ShuttingDown => "shutting_down",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Worker(error) => match error {
                HubError::Invalid(_) => "invalid_request",
                HubError::Protocol(_) => "protocol_error",
                HubError::UnknownKind(_) => "unknown_kind",
                HubError::UnknownWorker => "unknown_worker",
                HubError::NotAllowed(_) | HubError::NotYours => "forbidden",
                HubError::SchemaMismatch(_) => "schema_mismatch",
                HubError::AssignmentGone => "assignment_gone",
            },
        }
    }

    /// The body, as every error response and every SSE `error` event carries it.
    pub(crate) fn body(&self) -> model::ErrorBody {
        model::ErrorBody {
            error: model::ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Self::Unauthenticated { challenge, .. } = &self
            && let Ok(challenge) = HeaderValue::from_str(challenge)
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<InputError> for Error {
    fn from(error: InputError) -> Self {
        Refusal::from(error).into()
    }
}

impl From<longrun::Error> for Error {
    fn from(error: longrun::Error) -> Self {
        Refusal::from(error).into()
    }
}

impl From<longrun::store::Error> for Error {
    fn from(error: longrun::store::Error) -> Self {
        Refusal::from(error).into()
    }
}

/// The one place a shared refusal becomes this door's error: a new refusal breaks the build
/// here, not a client.
#[deny(clippy::wildcard_enum_match_arm)]
impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::ShuttingDown => Self::ShuttingDown,
            Refusal::ForeignHost => Self::Forbidden(refusal.to_string()),
            Refusal::Unauthenticated { error, challenge } => Self::Unauthenticated {
                message: error.to_string(),
                challenge,
            },
            Refusal::AuthUnavailable => Self::Unavailable(refusal.to_string()),
            Refusal::NotFound(id) => Self::TaskNotFound(id),
            Refusal::Ended { id, status } => Self::Ended { id, status },
            Refusal::AlreadyAnswered { id, key } => Self::AlreadyAnswered { id, key },
            Refusal::QuestionClosed { id, key } => Self::QuestionClosed { id, key },
            Refusal::NotRunning(id) => Self::NotRunning(id),
            Refusal::Conflict(message) => Self::Refused(message),
            Refusal::UnknownKind(kind) => Self::UnknownKind(kind),
            Refusal::InvalidInput(message) => Self::InvalidInput(message),
            Refusal::SchemaViolation { .. } => {
                Self::InvalidInput(format!("{refusal} (GET /v1/kinds shows the schema)"))
            }
            Refusal::KeyReused(message) => Self::KeyReused(message),
            Refusal::TooLarge(message) => Self::TooLarge(message),
            Refusal::TooManyStreams { limit } => Self::TooManyStreams { limit },
            Refusal::Internal { .. } => Self::Internal(refusal.to_string()),
        }
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge(message),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(
                "send the body as JSON, with `Content-Type: application/json`".to_owned(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Self::InvalidRequest(message),
            StatusCode::BAD_REQUEST => Self::MalformedJson(message),
            // The body could not be read at all (the client went away, say).
            _ => Self::BadRequest(message),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use longrun::Error as E;
    use longrun::task::Status;

    use super::*;

    /// Every runtime error lands on the status the API promises.
    #[test]
    fn runtime_errors_map_to_statuses() {
        let id = TaskId::random();
        let cases: Vec<(longrun::Error, u16, &str)> = vec![
            (E::UnknownKind("k".into()), 422, "unknown_kind"),
            (
                E::InvalidInput {
                    kind: "k".into(),
                    message: "bad".into(),
                },
                422,
                "invalid_input",
            ),
            (
                E::TooLarge {
                    what: "the input",
                    size: 2,
                    limit: 1,
                },
                413,
                "too_large",
            ),
            (E::Unknown(id), 404, "not_found"),
            (
                E::Ended {
                    id,
                    status: Status::Completed,
                },
                409,
                "already_ended",
            ),
            (E::NotRunning(id), 409, "not_running"),
            (
                E::AlreadyAnswered {
                    id,
                    key: "k".into(),
                },
                409,
                "already_answered",
            ),
            (
                E::QuestionClosed {
                    id,
                    key: "k".into(),
                },
                409,
                "question_closed",
            ),
            (E::ShuttingDown, 503, "shutting_down"),
            (E::DuplicateKind("k".into()), 500, "internal"),
            (E::InvalidProgress(200.0), 500, "internal"),
            (
                E::Store(longrun::store::Error::NotFound(id)),
                404,
                "not_found",
            ),
            (
                E::Store(longrun::store::Error::Backend("disk on fire".into())),
                500,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            let shown = error.to_string();
            let error = Error::from(error);
            assert_eq!(error.status().as_u16(), status, "{shown}");
            assert_eq!(error.code(), code, "{shown}");
        }
        let refused = longrun::task::State::Ended(longrun::Outcome::Completed {
            output: serde_json::Value::Null,
        })
        .after(&longrun::event::Change::Detached)
        .unwrap_err();
        let error = Error::from(E::Refused(refused));
        assert_eq!(error.status(), StatusCode::CONFLICT);
        assert_eq!(error.code(), "refused");
    }

    #[test]
    fn store_failures_do_not_leak_details() {
        let error = Error::from(longrun::store::Error::Backend(
            "connect to 10.0.0.7 failed".into(),
        ));
        assert!(!error.to_string().contains("10.0.0.7"));
    }

    #[test]
    fn not_found_reads_the_same_for_every_cause() {
        let id = TaskId::random();
        let runtime = Error::from(E::Unknown(id)).to_string();
        let store = Error::from(longrun::store::Error::NotFound(id)).to_string();
        let other_owner = Error::TaskNotFound(id.to_string()).to_string();
        assert_eq!(runtime, other_owner);
        assert_eq!(store, other_owner);
    }
}
