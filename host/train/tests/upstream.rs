//! The upstream LEK training examples (`$LEM_UPSTREAM/training`) read and
//! tokenize with the real Gemma 3 tokenizer exactly as ours do: the trainer
//! takes the published data format unchanged.

use lem_engine::tokenizer::Tokenizer;
use lem_train::data::{self, Example};
use std::path::PathBuf;

fn upstream() -> Option<PathBuf> {
    match std::env::var_os("LEM_UPSTREAM") {
        Some(dir) => Some(PathBuf::from(dir).join("training")),
        None if std::env::var_os("CI").is_some() => panic!("CI must set LEM_UPSTREAM"),
        None => {
            eprintln!("SKIPPED: LEM_UPSTREAM is not set");
            None
        }
    }
}

fn tokenizer() -> Option<Tokenizer> {
    let dir = lem_core::lem_home().join("models/gemma-3-270m");
    if dir.join("tokenizer.json").is_file() {
        return Some(Tokenizer::load(&dir).unwrap());
    }
    if std::env::var_os("CI").is_some() {
        panic!("the default model is not installed; .ci/run must run scripts/setup");
    }
    eprintln!("SKIPPED: the Gemma 3 tokenizer is not installed; run scripts/setup");
    None
}

#[test]
fn upstream_training_files_read_and_mask_like_ours() {
    let (Some(dir), Some(tokenizer)) = (upstream(), tokenizer()) else {
        return;
    };
    for name in ["valid.jsonl", "test.jsonl"] {
        let path = dir.join(name);
        let examples = data::read_examples(&path).unwrap();
        assert!(examples.len() > 200, "{name}: {}", examples.len());
        assert!(
            examples
                .iter()
                .all(|e| matches!(e, Example::Chat(m) if m.len() >= 2))
        );
        let (tokens, report) =
            data::tokenize(&examples, &tokenizer, true, 2048, 262_144, &path).unwrap();
        assert_eq!(tokens.len() + report.dropped, examples.len());
        for t in &tokens {
            // The answer is learned and ends the turn; the prompt is not.
            let first = t.supervised.iter().position(|s| *s).unwrap();
            assert!(first > 4, "the prompt carries loss");
            assert!(t.supervised[first..].iter().all(|s| *s));
            if t.ids.len() < 2048 {
                let end = tokenizer
                    .id_to_token(*t.ids.iter().rev().nth(1).unwrap())
                    .unwrap();
                assert_eq!(end, "<end_of_turn>", "the answer ends its turn");
            }
        }
    }
}
