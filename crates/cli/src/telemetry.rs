//! Traces: the runtime's spans of a task's life (target [`longrun_runtime`'s `TRACE_TARGET`])
//! exported over OTLP/HTTP (protobuf) when `[telemetry] otlp_endpoint` is set.
//!
//! Spans are batched on the server's tokio runtime and sent by reqwest; an unreachable
//! collector costs dropped spans (the SDK logs it), never a slower task. At shutdown the batch
//! is flushed; spans of tasks still running then are not closed, so they are not exported (a
//! re-run after the restart opens a new `task` span in the same trace).

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource, runtime,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::Level;
use tracing_subscriber::{Layer, Registry, filter::Targets};

use crate::config::Telemetry;

/// The collector's traces path, added to an endpoint given as a bare base URL (as the
/// `OTEL_EXPORTER_OTLP_ENDPOINT` convention does).
const TRACES_PATH: &str = "/v1/traces";

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter, running; [`Exporter::shutdown`] flushes what is batched.
pub(crate) struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Starts the exporter `config` asks for; `None` without `otlp_endpoint`. Must run inside
    /// the tokio runtime (the batch is sent from a task on it).
    pub(crate) fn start(config: &Telemetry) -> anyhow::Result<Option<Self>> {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(None);
        };
        let endpoint = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .with_context(|| format!("cannot set up the OTLP exporter for {endpoint}"))?;
        let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
        let service = config
            .service_name
            .as_deref()
            .unwrap_or("longrun")
            .to_owned();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        Ok(Some(Self { provider }))
    }

    /// The layer that turns the runtime's task spans into exported spans; every other span
    /// and event is left to the log layer.
    pub(crate) fn layer(&self) -> Box<dyn Layer<Registry> + Send + Sync> {
        let tracer = self.provider.tracer("longrun");
        let only_tasks = Targets::new().with_target(longrun::trace::TRACE_TARGET, Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(only_tasks)
            .boxed()
    }

    /// Sends what is batched and stops. The SDK blocks while it flushes, so it runs off the
    /// async workers.
    pub(crate) async fn shutdown(self) {
        let provider = self.provider;
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not flush the last spans"),
            Err(error) => tracing::warn!(%error, "the span exporter's shutdown failed"),
        }
    }
}

/// The traces URL of `endpoint`: a base URL (no path, or `/`) gets [`TRACES_PATH`].
fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let endpoint = endpoint.trim();
    // Plain HTTP only: the exporter's client is built without TLS (a collector usually runs
    // beside the server, and forwards over TLS itself).
    let Some(rest) = endpoint.strip_prefix("http://") else {
        anyhow::bail!(
            "[telemetry] otlp_endpoint `{endpoint}` is not an http:// URL: give the OTLP/HTTP \
             collector's address, e.g. http://127.0.0.1:4318 (https is not supported)"
        );
    };
    Ok(match rest.find('/') {
        None => format!("{endpoint}{TRACES_PATH}"),
        Some(at) if &rest[at..] == "/" => {
            format!("{}{TRACES_PATH}", endpoint.trim_end_matches('/'))
        }
        Some(_) => endpoint.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        let url = |text: &str| traces_url(text).unwrap();
        assert_eq!(
            url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            url("http://c:4318/otlp/v1/traces"),
            "http://c:4318/otlp/v1/traces"
        );
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("https://collector:4318").is_err());
    }
}
