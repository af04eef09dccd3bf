//! The routing-relevant view of a request body: the system prompt, the user turns, and whether it
//! carries images, tools or a JSON-output demand. Both dialects (OpenAI content parts and Ollama
//! `images`) read into the same view; the body itself is left untouched.

use serde_json::{Map, Value};

/// What the analysis reads from one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptView<'a> {
    pub system: Vec<&'a str>,
    /// User turns in order; the last is the one being answered.
    pub user_turns: Vec<&'a str>,
    pub has_images: bool,
    pub has_tools: bool,
    pub wants_json: bool,
}

impl<'a> PromptView<'a> {
    /// The client app's own background request (Open WebUI's title, tag, follow-up and query
    /// generation: its task templates start with `### Task:`), if this is one: routed like any
    /// prompt, but not an answer a user rates.
    pub fn background_task(&self) -> Option<&'static str> {
        let last = self.user_turns.last()?.trim_start();
        last.starts_with("### Task:").then_some("open-webui task")
    }

    /// A view of a bare prompt (for `/admin/explain?prompt=`).
    pub fn from_prompt(prompt: &'a str) -> Self {
        PromptView {
            user_turns: vec![prompt],
            ..PromptView::default()
        }
    }

    /// Reads a chat (`messages`) or generation (`prompt`, `system`, `images`) body.
    pub fn from_body(body: &'a Map<String, Value>) -> Self {
        let mut view = PromptView::default();
        if let Some(Value::Array(messages)) = body.get("messages") {
            for message in messages {
                view.read_message(message);
            }
        }
        if let Some(Value::String(prompt)) = body.get("prompt") {
            view.user_turns.push(prompt);
        }
        if let Some(Value::Array(prompts)) = body.get("prompt") {
            view.user_turns
                .extend(prompts.iter().filter_map(Value::as_str));
        }
        if let Some(Value::String(system)) = body.get("system") {
            view.system.push(system);
        }
        if body
            .get("images")
            .and_then(Value::as_array)
            .is_some_and(|i| !i.is_empty())
        {
            view.has_images = true;
        }
        view.has_tools = body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty());
        view.wants_json = wants_json(body);
        view
    }

    fn read_message(&mut self, message: &'a Value) {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let target = match role {
            "system" | "developer" => Some(&mut self.system),
            "user" => Some(&mut self.user_turns),
            _ => None,
        };
        if message
            .get("images")
            .and_then(Value::as_array)
            .is_some_and(|i| !i.is_empty())
        {
            self.has_images = true;
        }
        match message.get("content") {
            Some(Value::String(text)) => {
                if let Some(target) = target {
                    target.push(text);
                }
            }
            Some(Value::Array(parts)) => {
                let mut texts = Vec::new();
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("image_url") | Some("input_image") | Some("image") => {
                            self.has_images = true
                        }
                        _ => {
                            if let Some(text) = part.get("text").and_then(Value::as_str) {
                                texts.push(text);
                            }
                        }
                    }
                }
                if let Some(target) = target {
                    target.extend(texts);
                }
            }
            _ => {}
        }
    }
}

fn wants_json(body: &Map<String, Value>) -> bool {
    let openai = body
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "json_object" || t == "json_schema");
    let ollama = match body.get("format") {
        Some(Value::String(f)) => f == "json",
        Some(Value::Object(_)) => true,
        _ => false,
    };
    openai || ollama
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn openai_parts_images_tools_and_json() {
        let body = obj(json!({
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]},
                {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": "And its colour?"}
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_object"}
        }));
        let view = PromptView::from_body(&body);
        assert_eq!(view.system, vec!["You are terse."]);
        assert_eq!(
            view.user_turns,
            vec!["What is in this picture?", "And its colour?"]
        );
        assert!(view.has_images && view.has_tools && view.wants_json);
    }

    #[test]
    fn ollama_images_and_generate_fields() {
        let chat =
            obj(json!({"messages": [{"role": "user", "content": "hi", "images": ["AAAA"]}]}));
        assert!(PromptView::from_body(&chat).has_images);
        let generate = obj(json!({"prompt": "Once", "system": "Be kind", "format": "json"}));
        let view = PromptView::from_body(&generate);
        assert_eq!(view.user_turns, vec!["Once"]);
        assert_eq!(view.system, vec!["Be kind"]);
        assert!(view.wants_json && !view.has_images && !view.has_tools);
    }
}
