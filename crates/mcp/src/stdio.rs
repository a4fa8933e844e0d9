//! The stdio transport: one JSON-RPC message per line on stdin and stdout, nothing else on
//! stdout. Requests are served concurrently (a blocking `tasks/result` holds up nothing else);
//! one writer owns stdout, so lines never interleave.
//!
//! The generation is chosen per message as over HTTP, without the headers: a request whose
//! `_meta` names a protocol version is a 2026-07-28 request; anything else belongs to the one
//! session `initialize` opens (a second `initialize` replaces it).

use std::sync::Arc;

use longrun_surface::Principal;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader},
    sync::mpsc,
    task::JoinSet,
};

use crate::{
    error::Error,
    jsonrpc::{self, Incoming, Request},
    legacy,
    modern::{self, Envelope},
    server::{Reply, STREAM_BUFFER, Server},
    session::Session,
    version::META_PROTOCOL_VERSION,
};

/// Serves until `input` ends; then stops what it runs for the client and returns once every
/// line written is flushed.
pub(crate) async fn serve<R, W>(
    server: Arc<Server>,
    principal: Principal,
    input: R,
    output: W,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let (lines, mut outgoing) = mpsc::channel::<Value>(STREAM_BUFFER);
    let writer = async move {
        let mut output = output;
        while let Some(message) = outgoing.recv().await {
            let mut line = message.to_string();
            line.push('\n');
            output.write_all(line.as_bytes()).await?;
            output.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let reader = async move {
        let mut input = BufReader::new(input).lines();
        let mut session: Option<Arc<Session>> = None;
        let mut running = JoinSet::new();
        let read = loop {
            let line = match input.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            if line.trim().is_empty() {
                continue;
            }
            while running.try_join_next().is_some() {}
            let message = match serde_json::from_str::<Value>(&line) {
                Ok(message) => message,
                Err(error) => {
                    let error = Error::Parse(format!("the line is not JSON: {error}"));
                    let _ = lines
                        .send(jsonrpc::error_response(&Value::Null, &error))
                        .await;
                    continue;
                }
            };
            match Incoming::parse(message) {
                Err((id, error)) => {
                    let _ = lines.send(jsonrpc::error_response(&id, &error)).await;
                }
                Ok(Incoming::Request(request)) => {
                    let modern = request
                        .meta()
                        .is_some_and(|meta| meta.contains_key(META_PROTOCOL_VERSION));
                    if !modern && request.method == "initialize" {
                        let answer = match legacy::initialize(&server, &principal, &request) {
                            Ok((opened, result)) => {
                                session = Some(opened);
                                jsonrpc::response(&request.id, result)
                            }
                            Err(error) => jsonrpc::error_response(&request.id, &error),
                        };
                        let _ = lines.send(answer).await;
                        continue;
                    }
                    let route = if modern {
                        Route::Modern(principal.clone())
                    } else {
                        match &session {
                            Some(session) => Route::Legacy(session.clone()),
                            None if request.method == "ping" => {
                                let _ = lines
                                    .send(jsonrpc::response(&request.id, serde_json::json!({})))
                                    .await;
                                continue;
                            }
                            None => {
                                let error = Error::InvalidRequest(
                                    "send `initialize` first (or use protocol 2026-07-28, with `_meta` on every request)".into(),
                                );
                                let _ = lines
                                    .send(jsonrpc::error_response(&request.id, &error))
                                    .await;
                                continue;
                            }
                        }
                    };
                    running.spawn(serve_request(server.clone(), route, request, lines.clone()));
                }
                Ok(Incoming::Notification { method, params }) => {
                    if let Some(session) = &session {
                        legacy::notify(&server, session, &method, &params);
                    }
                }
                Ok(Incoming::Response { id, outcome }) => {
                    if let Some(session) = session.clone() {
                        let server = server.clone();
                        running.spawn(async move {
                            legacy::respond(&server, &session, &id, outcome).await
                        });
                    }
                }
            }
        };
        // The client is gone: what runs for it stops (a plain call's task is cancelled when
        // its stream closes, as over HTTP).
        running.shutdown().await;
        read
    };
    let (read, written) = tokio::join!(reader, writer);
    read.and(written)
}

/// Which generation serves a request.
enum Route {
    Modern(Principal),
    Legacy(Arc<Session>),
}

/// Serves one request and writes its messages.
async fn serve_request(
    server: Arc<Server>,
    route: Route,
    request: Request,
    lines: mpsc::Sender<Value>,
) {
    let id = request.id.clone();
    let reply = match route {
        Route::Modern(principal) => match Envelope::parse(&request).and_then(|envelope| {
            envelope.check_version()?;
            Ok(envelope)
        }) {
            Ok(envelope) => modern::handle(&server, &principal, &envelope, request).await,
            Err(error) => Err(error),
        },
        Route::Legacy(session) => legacy::handle(&server, &session, request).await,
    };
    match reply {
        Ok(Reply::Result(result)) => {
            let _ = lines.send(jsonrpc::response(&id, result)).await;
        }
        Ok(Reply::Stream(mut messages)) => {
            while let Some(message) = messages.recv().await {
                if lines.send(message).await.is_err() {
                    return;
                }
            }
        }
        Err(error) => {
            let _ = lines.send(jsonrpc::error_response(&id, &error)).await;
        }
    }
}
