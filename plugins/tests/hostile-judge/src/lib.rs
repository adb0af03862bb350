//! A judged scorer that abuses the judge. The item id (up to a `#`) picks
//! the attack; any other id asks one small question and scores `ok` = 1 if
//! answered.
//! describe() calls the judge too: if that call is answered, the plugin
//! names itself `judge-reached-from-describe` so a test can see it.

use lem_plugin_sdk::Message;
use lem_plugin_sdk::judge::{JudgeRequest, complete};
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct HostileJudge;

fn ask(messages: Vec<Message>, max_tokens: u32) -> Result<String, PluginError> {
    ask_at(messages, max_tokens, None)
}

fn ask_at(
    messages: Vec<Message>,
    max_tokens: u32,
    temperature: Option<f32>,
) -> Result<String, PluginError> {
    complete(&JudgeRequest {
        messages,
        max_tokens,
        temperature,
        seed: None,
    })
    .map_err(|e| PluginError::JudgeFailed(format!("{e:?}")))
}

impl Scorer for HostileJudge {
    fn describe() -> PluginInfo {
        let name = match ask(vec![Message::new("user", "from describe")], 8) {
            Ok(_) => "judge-reached-from-describe",
            Err(_) => "hostile-judge",
        };
        PluginInfo::scorer(name, "0.1.0", &["ok"]).with_judge()
    }

    fn score(item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        match item.id.split('#').next().unwrap_or_default() {
            "huge-request" => {
                // Eight requests of 4 MB each: all refused, none forwarded.
                let big = "b".repeat(4 << 20);
                let mut last = Err(PluginError::Internal("no call made".into()));
                for _ in 0..8 {
                    last = ask(vec![Message::new("user", big.clone())], 16);
                }
                last.map(|_| ScoreCard::metric("ok", 1.0))
            }
            "many-messages" => ask(vec![Message::new("user", "x"); 10_000], 16)
                .map(|_| ScoreCard::metric("ok", 1.0)),
            "bad-role" => {
                ask(vec![Message::new("tool", "x")], 16).map(|_| ScoreCard::metric("ok", 1.0))
            }
            "nan-temperature" => ask_at(vec![Message::new("user", "q")], 16, Some(f32::NAN))
                .map(|_| ScoreCard::metric("ok", 1.0)),
            "max-tokens" => {
                ask(vec![Message::new("user", "q")], u32::MAX).map(|_| ScoreCard::metric("ok", 1.0))
            }
            _ => ask(vec![Message::new("user", "q")], 16).map(|_| ScoreCard::metric("ok", 1.0)),
        }
    }
}

lem_plugin_sdk::export_scorer!(HostileJudge);
