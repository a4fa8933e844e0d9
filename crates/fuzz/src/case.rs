//! One fuzz input: an HTTP request for a door, or raw bytes for a parser; and how an input is
//! written to a finding's file and read back from a regression file.

use serde_json::{Value, json};

/// An HTTP request as the fuzzer builds it. Placeholders (`{task}`, `{asking}`, `{session}`)
/// stand for ids of the world the request runs in and are filled in when it runs, so a kept
/// regression still names a real task when it is replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpCase {
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A fuzz input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// A request to a door.
    Http(HttpCase),
    /// Bytes for a parser: a child's stdout, a config file.
    Bytes(Vec<u8>),
}

impl Input {
    pub(crate) fn http(case: HttpCase) -> Self {
        Self::Http(case)
    }

    /// The bytes of the file that keeps this input: JSON for a request, the bytes themselves
    /// for a parser.
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Http(case) => {
                let mut file = json!({
                    "method": case.method,
                    "uri": case.uri,
                    "headers": case.headers,
                });
                match std::str::from_utf8(&case.body) {
                    Ok(text) => file["body"] = text.into(),
                    Err(_) => file["body_hex"] = hex(&case.body).into(),
                }
                let mut text = serde_json::to_vec_pretty(&file).unwrap_or_default();
                text.push(b'\n');
                text
            }
        }
    }

    /// Reads a kept request back (the inverse of [`Input::encode`] for requests).
    pub(crate) fn decode_http(bytes: &[u8]) -> Result<Self, String> {
        let file: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let text = |key: &str| {
            file[key]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("`{key}` is missing"))
        };
        let headers = file["headers"]
            .as_array()
            .ok_or("`headers` is missing")?
            .iter()
            .map(|pair| {
                Ok((
                    pair[0].as_str().ok_or("a header has no name")?.to_owned(),
                    pair[1].as_str().ok_or("a header has no value")?.to_owned(),
                ))
            })
            .collect::<Result<_, String>>()?;
        let mut body = match (file["body"].as_str(), file["body_hex"].as_str()) {
            (Some(body), _) => body.as_bytes().to_vec(),
            (None, Some(body)) => unhex(body)?,
            (None, None) => Vec::new(),
        };
        // `"body_fill": ["@FILL@", "x", 3145728]`: the marker in the body stands for the text
        // repeated so many times, so that a kept input over a size limit is a small file.
        if let [marker, text, times] = file["body_fill"].as_array().map_or(&[][..], Vec::as_slice)
            && let (Some(marker), Some(text), Some(times)) =
                (marker.as_str(), text.as_str(), times.as_u64())
        {
            let times = usize::try_from(times).map_err(|e| e.to_string())?;
            body = String::from_utf8_lossy(&body)
                .replacen(marker, &text.repeat(times), 1)
                .into_bytes();
        }
        Ok(Self::http(HttpCase {
            method: text("method")?,
            uri: text("uri")?,
            headers,
            body,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("`body_hex` is not hex at {at}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_its_file() {
        for body in [b"{\"a\":1}".to_vec(), vec![0xff, 0x00, b'{']] {
            let input = Input::http(HttpCase {
                method: "POST".into(),
                uri: "/v1/tasks?x=%zz".into(),
                headers: vec![("authorization".into(), "Bearer t".into())],
                body,
            });
            assert_eq!(Input::decode_http(&input.encode()), Ok(input));
        }
    }
}
