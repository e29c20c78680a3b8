//! Request extractors whose failures are [`ApiError`]s, so every rejection has the JSON error
//! shape and a stable code.

use std::str::FromStr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// A JSON body.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// Parses an id from a path segment or body field. A malformed id is a 400 that says what was
/// expected; a well-formed unknown id is left to become a 404 at the store.
pub fn parse_id<T>(text: &str) -> Result<T, ApiError>
where
    T: FromStr<Err = karya_core::id::ParseIdError>,
{
    text.parse::<T>()
        .map_err(|err| ApiError::new(ErrorCode::InvalidParameter, err.to_string()))
}

/// The signed-in caller; a request without one is refused as unauthenticated.
pub struct Caller(pub crate::auth::Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<crate::auth::Principal>() {
            Some(principal) => Ok(Caller(principal.clone())),
            None => Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "sign in or send an API token (Authorization: Bearer …)",
            )),
        }
    }
}
