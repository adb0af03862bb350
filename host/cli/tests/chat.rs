//! `lem chat` with real and replaced chat templates.

use std::path::PathBuf;
use std::process::{Command, Output};

fn lem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(args)
        .output()
        .expect("run lem")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Qwen2.5-Coder-0.5B-Instruct as `scripts/setup` installs it, with the
/// Qwen 3 tokenizer files beside it.
fn qwen() -> PathBuf {
    lem_engine::testing::installed("models/qwen2.5-coder-0.5b-instruct/tokenizer_config.json")
}

/// The Qwen 3 template calls `startswith`, `split`, `strip` and friends,
/// which lem's renderer once lacked: `lem chat` failed before generating.
#[test]
#[ignore = "needs scripts/setup"]
fn chat_answers_on_qwen_with_the_qwen3_template() {
    qwen();
    let out = lem(&[
        "chat",
        "--model",
        "qwen2.5-coder-0.5b-instruct",
        "--temperature",
        "0",
        "--max-tokens",
        "12",
        "--threads",
        "2",
        "What is 2 + 3? Answer with the number only.",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains('5'), "answer: {answer:?}");
}

fn tiny_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    lem_engine::testing::write_model_dir(dir.path(), 7);
    dir
}

#[test]
fn a_chat_template_file_replaces_the_configs() {
    let model = tiny_model();
    let template = model.path().join("mine.jinja");
    // Renders the user text upper-cased with a Python string method.
    std::fs::write(
        &template,
        "{{ bos_token }} {% for m in messages %}user: {{ m.content.upper() }} <end> {% endfor %}assistant: ",
    )
    .unwrap();
    let out = lem(&[
        "chat",
        "--model",
        model.path().to_str().unwrap(),
        "--chat-template",
        template.to_str().unwrap(),
        "--max-tokens",
        "3",
        "--temperature",
        "0",
        "kind",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_template_that_cannot_render_names_file_line_construct_and_the_way_out() {
    let model = tiny_model();
    let template = model.path().join("broken.jinja");
    std::fs::write(
        &template,
        "{{ bos_token }}\n{% for m in messages %}{{ m.content.casefold_twice() }}{% endfor %}",
    )
    .unwrap();
    let out = lem(&[
        "chat",
        "--model",
        model.path().to_str().unwrap(),
        "--chat-template",
        template.to_str().unwrap(),
        "kind",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for want in [
        "broken.jinja, line 2",
        "casefold_twice",
        "--chat-template FILE",
    ] {
        assert!(err.contains(want), "stderr lacks `{want}`: {err}");
    }
}
