//! `longrun-dashboard`: the web dashboard `longrun serve` shows at `/`.
//!
//! The dashboard is plain HTML, CSS and JavaScript modules under `assets/`, embedded in the
//! binary with `include_str!`: no CDN, no build step, it works offline. It speaks only the
//! public `/v1` API (tasks, kinds, answers, cancel, and the SSE streams), with the bearer token
//! the user typed when the server asks for one, so it sees exactly what that principal sees.
//!
//! [`router`] serves `/` (the page) and `/assets/{file}`; merge it with the API's router:
//!
//! ```
//! use longrun_surface::{Auth, Limits, Surface};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let surface = Surface::new(longrun::Runtime::new(Default::default()), Auth::Anonymous, Limits::default());
//! let app: axum::Router = longrun_dashboard::router(surface);
//! # let _ = app;
//! # }
//! ```

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use longrun_surface::Surface;

/// One embedded file: its name under `/assets/`, content type and content.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page itself, served at `/`.
const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
};

/// Everything under `/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/api.js"),
    },
    Asset {
        name: "forms.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/forms.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../assets/favicon.svg"),
    },
];

/// The dashboard's routes: `GET /` and `GET /assets/{file}`. It has no fallback, so merging it
/// into a router that has one (the API's) keeps that fallback for every other path.
///
/// The page passes the doors' DNS-rebinding guard ([`Surface::check_host`]): on a server
/// without tokens, a page reached under another machine's name is refused, so a site the user
/// merely visits cannot load it from this machine and drive the API from it.
pub fn router(surface: Surface) -> Router {
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }),
        )
        .route("/assets/{file}", get(asset))
        .route_layer(middleware::from_fn_with_state(surface, guard))
}

/// The DNS-rebinding guard, answered in plain text: the dashboard's own error shape.
async fn guard(
    State(surface): State<Surface>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    match surface.check_host(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => (StatusCode::FORBIDDEN, refusal.to_string()).into_response(),
    }
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => serve(asset, &headers),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// Answers with the asset, or 304 when the browser's copy is current. File names carry no
/// content hash, so browsers must revalidate (`no-cache`); the ETag makes that a cheap 304.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = etag(asset.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// A strong ETag from the content (64-bit FNV-1a): stable for one build, changes with the file.
fn etag(body: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use tower::ServiceExt as _;

    use super::*;

    fn surface(auth: longrun_surface::Auth) -> Surface {
        let runtime = longrun::Runtime::new(Default::default());
        Surface::new(runtime, auth, longrun_surface::Limits::default())
    }

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1:7700");
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router(surface(longrun_surface::Auth::Anonymous))
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    /// DNS rebinding: on a server without tokens, a page reached under another machine's name
    /// is not served; with tokens, the name does not matter (the API needs a token anyway).
    #[tokio::test]
    async fn foreign_names_are_refused_without_tokens() {
        for (host, origin) in [
            ("evil.example", None),
            ("127.0.0.1:7700", Some("http://evil.example")),
        ] {
            for path in ["/", "/assets/app.js"] {
                let mut request = Request::get(path).header(header::HOST, host);
                if let Some(origin) = origin {
                    request = request.header(header::ORIGIN, origin);
                }
                let response = router(surface(longrun_surface::Auth::Anonymous))
                    .oneshot(request.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host} {path}");
            }
        }
        let tokens = longrun_surface::Auth::Tokens(Default::default());
        let request = Request::get("/").header(header::HOST, "longrun.example.com");
        let response = router(surface(tokens))
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn index_is_html_and_revalidated() {
        let response = get("/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("/assets/app.js"), "{body}");
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        for (path, content_type) in [
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/style.css", "text/css; charset=utf-8"),
            ("/assets/favicon.svg", "image/svg+xml"),
        ] {
            let response = get(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
        }
        assert_eq!(
            get("/assets/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn a_matching_etag_gets_304() {
        let first = get("/assets/api.js", None).await;
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(
            get("/assets/api.js", Some(&tag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/assets/api.js", Some("\"other\"")).await.status(),
            StatusCode::OK
        );
    }

    /// Every module the page imports is served: a missing one breaks the page silently.
    #[test]
    fn every_import_is_embedded() {
        for asset in ASSETS.iter().filter(|asset| asset.name.ends_with(".js")) {
            for line in asset
                .body
                .lines()
                .filter(|line| line.starts_with("import "))
            {
                let name = line
                    .rsplit_once("'./")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(name, _)| name)
                    .unwrap_or_else(|| panic!("unparsed import in {}: {line}", asset.name));
                assert!(
                    ASSETS.iter().any(|other| other.name == name),
                    "{} imports {name}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
