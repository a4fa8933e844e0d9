//! An upstream's question as the longrun task's `ctx.ask`, and the answer back (shapes in the
//! `gateway` module docs).

#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP Tasks still carry it.

use std::time::Duration;

use futures_util::{FutureExt, future::BoxFuture};
use longrun::{Context, error::AskError};
use rmcp::model::{CreateMessageRequestParams, ElicitRequestParams, SamplingMessageContentBlock};
use serde_json::{Value, json};

use crate::{
    error::RpcError,
    handlers::{Input, Responder},
};

/// How many variants of a key are tried when the upstream reuses one the task already asked.
const KEY_VARIANTS: usize = 100;

/// Answers a call's questions by asking the longrun task.
pub(crate) struct Asker {
    pub(crate) ctx: Context,
}

impl Responder for Asker {
    fn answer(&self, key: String, input: Input) -> BoxFuture<'static, Result<Value, RpcError>> {
        let ctx = self.ctx.clone();
        async move {
            let request = question(&input);
            let mut asked = Err(AskError::KeyReused(key.clone()));
            for n in 1..=KEY_VARIANTS {
                let key = if n == 1 {
                    key.clone()
                } else {
                    format!("{key}-{n}")
                };
                // No timeout of its own: the task's deadline and the upstream's TTL bound it.
                asked = ctx.ask(key, request.clone(), Duration::MAX).await;
                if !matches!(asked, Err(AskError::KeyReused(_))) {
                    break;
                }
            }
            match asked {
                Ok(answer) => reply(&input, answer),
                Err(error) => match input {
                    // The task is cancelled or the question timed out: nobody will answer.
                    Input::Elicit(_) => Ok(json!({"action": "cancel"})),
                    Input::Sample(_) => Err(RpcError::new(
                        RpcError::INTERNAL_ERROR,
                        format!("the sampling request was not answered: {error}"),
                    )),
                },
            }
        }
        .boxed()
    }
}

/// The request recorded with `ctx.ask`.
pub(crate) fn question(input: &Input) -> Value {
    match input {
        Input::Elicit(params) => {
            let mcp = json!({"method": Input::ELICIT, "params": params});
            match params {
                ElicitRequestParams::FormElicitationParams {
                    message,
                    requested_schema,
                    ..
                } => json!({"message": message, "schema": requested_schema, "mcp": mcp}),
                ElicitRequestParams::UrlElicitationParams { message, url, .. } => {
                    json!({"message": message, "url": url, "mcp": mcp})
                }
                _ => json!({"message": "the upstream server asks for input", "mcp": mcp}),
            }
        }
        Input::Sample(params) => json!({
            "message": sampling_prompt(params),
            "type": "string",
            "mcp": {"method": Input::SAMPLE, "params": params},
        }),
    }
}

/// What a person answering a sampling request reads: the last user message's text.
fn sampling_prompt(params: &CreateMessageRequestParams) -> String {
    let text = params
        .messages
        .iter()
        .rev()
        .find_map(|m| {
            m.content.iter().find_map(|part| match part {
                SamplingMessageContentBlock::Text(text) => Some(text.text.clone()),
                _ => None,
            })
        })
        .unwrap_or_default();
    format!("The upstream server asks a language model: {text}")
}

/// The upstream's result for `answer`.
pub(crate) fn reply(input: &Input, answer: Value) -> Result<Value, RpcError> {
    match input {
        Input::Elicit(params) => {
            if let Some(action) = answer.get("action").and_then(Value::as_str)
                && matches!(action, "accept" | "decline" | "cancel")
            {
                return Ok(answer);
            }
            let content = match answer {
                Value::Object(_) => answer,
                value => match params {
                    ElicitRequestParams::FormElicitationParams {
                        requested_schema, ..
                    } if requested_schema.properties.len() == 1 => {
                        let field = requested_schema
                            .properties
                            .keys()
                            .next()
                            .cloned()
                            .unwrap_or_default();
                        json!({ field: value })
                    }
                    // A URL elicitation has no content: any answer means "done".
                    ElicitRequestParams::UrlElicitationParams { .. } => {
                        return Ok(json!({"action": "accept"}));
                    }
                    _ => {
                        return Err(RpcError::new(
                            RpcError::INVALID_PARAMS,
                            format!(
                                "the answer {value} does not fill the form (give an object of its fields)"
                            ),
                        ));
                    }
                },
            };
            Ok(json!({"action": "accept", "content": content}))
        }
        Input::Sample(_) => match answer {
            Value::String(text) => Ok(json!({
                "role": "assistant",
                "content": {"type": "text", "text": text},
                "model": "longrun-answer",
                "stopReason": "endTurn",
            })),
            Value::Object(_) if answer.get("content").is_some() => Ok(answer),
            other => Err(RpcError::new(
                RpcError::INVALID_PARAMS,
                format!("the answer {other} is neither text nor a CreateMessageResult"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Input {
        Input::parse(
            Input::ELICIT,
            json!({"message": "Which one?", "requestedSchema": {"type": "object",
                "properties": {"interpretation": {"type": "string", "enum": ["a", "b"]}},
                "required": ["interpretation"]}}),
        )
        .expect("a valid elicitation")
    }

    #[test]
    fn an_elicitation_is_asked_with_its_message_and_schema() {
        let asked = question(&form());
        assert_eq!(asked["message"], "Which one?");
        assert_eq!(
            asked["schema"]["properties"]["interpretation"]["type"],
            "string"
        );
        assert_eq!(asked["mcp"]["method"], "elicitation/create");
    }

    #[test]
    fn answers_become_elicitation_results() {
        let input = form();
        for (answer, result) in [
            (
                json!({"interpretation": "a"}),
                json!({"action": "accept", "content": {"interpretation": "a"}}),
            ),
            (
                json!("b"),
                json!({"action": "accept", "content": {"interpretation": "b"}}),
            ),
            (json!({"action": "decline"}), json!({"action": "decline"})),
        ] {
            assert_eq!(reply(&input, answer).expect("an answer"), result);
        }
    }

    #[test]
    fn answers_become_sampling_results() {
        let input = Input::parse(
            Input::SAMPLE,
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Say hi"}}], "maxTokens": 5}),
        )
        .expect("a valid sampling request");
        assert!(
            question(&input)["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("Say hi"))
        );
        let result = reply(&input, json!("hi")).expect("an answer");
        assert_eq!(result["content"]["text"], "hi");
        let typed: rmcp::model::CreateMessageResult =
            serde_json::from_value(result).expect("a valid CreateMessageResult");
        assert_eq!(typed.model, "longrun-answer");
        assert!(reply(&input, json!(42)).is_err());
    }
}
