//! `GET /v1/kinds`.

use axum::extract::State;

use crate::{Api, auth::Caller, error::Error, model};

/// The kinds this server runs.
#[utoipa::path(
    get,
    path = "/v1/kinds",
    operation_id = "listKinds",
    tag = "kinds",
    responses(
        (status = 200, description = "The kinds, by name.", body = model::KindList),
        (status = 401, description = "Missing or wrong bearer token.", body = model::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(api): State<Api>,
    Caller(_): Caller,
) -> Result<axum::Json<model::KindList>, Error> {
    let kinds = api
        .runtime()
        .kinds()
        .iter()
        .map(model::Kind::from)
        .collect();
    Ok(axum::Json(model::KindList { kinds }))
}
