//! A contract 0.2.0 scorer that reports what reached it. The item id (up to
//! a `#`) picks what it does:
//!
//! - `judge`: asks the judge with a small schema and distributions, and
//!   returns the whole answer in its details;
//! - `bad-schema`: asks with a schema that is not JSON, and returns the
//!   judge's error in its details;
//! - `huge-schema`: asks with a 300 KiB schema and a short message, and
//!   returns the judge's error in its details;
//! - anything else: `messages` and `options` are how many it got; the
//!   details list them.

use lem_plugin_sdk::v0_2_0::judge::{JudgeRequest, complete};
use lem_plugin_sdk::v0_2_0::scorer::{
    Item, Message, MetricDescriptor, PluginError, PluginInfo, ScoreCard, ScoreContext, Scorer,
};
use serde_json::json;

struct ContractV2;

fn ask(schema: String) -> serde_json::Value {
    let answer = complete(&JudgeRequest {
        messages: vec![Message::new("user", "grade it")],
        max_tokens: 16,
        temperature: None,
        seed: Some(7),
        response_format: Some(schema),
        value_distributions: true,
    });
    match answer {
        Ok(a) => json!({
            "text": a.text,
            "finish_reason": a.finish_reason,
            "constrained": a.constrained,
            "cached": a.cached,
            "distributions": a.distributions.iter().map(|d| {
                (d.field.clone(), json!(d.values.iter().map(|v| json!([v.value, v.probability])).collect::<Vec<_>>()))
            }).collect::<serde_json::Map<_, _>>(),
        }),
        Err(e) => json!({ "error": e.reason() }),
    }
}

impl Scorer for ContractV2 {
    fn describe() -> PluginInfo {
        PluginInfo::scorer(
            "contract-v2",
            "0.2.0",
            [
                MetricDescriptor::new("messages").range(0.0, 64.0),
                MetricDescriptor::new("options").lower_is_better(),
                MetricDescriptor::new("answered").percent(),
            ],
        )
        .with_description("reports what reached it")
        .with_judge()
    }

    fn score(
        item: Item,
        _response: String,
        context: ScoreContext,
    ) -> Result<ScoreCard, PluginError> {
        let schema = r#"{"type":"object","properties":{"x":{"type":"integer","minimum":1,"maximum":10}},"required":["x"],"additionalProperties":false}"#;
        let asked = match item.id.split('#').next().unwrap_or_default() {
            "judge" => Some(ask(schema.to_string())),
            "bad-schema" => Some(ask("{not json".to_string())),
            "huge-schema" => Some(ask(format!("\"{}\"", "s".repeat(300 << 10)))),
            _ => None,
        };
        let details = json!({
            "options": context.options.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "messages": context.messages.iter().map(|m| json!([m.role, m.content])).collect::<Vec<_>>(),
            "judge": asked,
        });
        let answered = details["judge"]["text"].is_string();
        Ok(ScoreCard::metric("messages", context.messages.len() as f64)
            .and("options", context.options.len() as f64)
            .and("answered", f64::from(u8::from(answered)))
            .with_details(details))
    }
}

lem_plugin_sdk::v0_2_0::export_scorer!(ContractV2);
