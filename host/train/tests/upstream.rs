//! The upstream LEK training examples (`$LEM_UPSTREAM/training`) read and
//! tokenize with the real Gemma 3 tokenizer exactly as ours do: the trainer
//! takes the published data format unchanged.

use lem_engine::tokenizer::Tokenizer;
use lem_train::data::{self, Example};
use std::path::PathBuf;

fn upstream() -> PathBuf {
    let dir = std::env::var_os("LEM_UPSTREAM")
        .expect("LEM_UPSTREAM is not set: set it to ../shared/lem-upstream (scripts/test does)");
    PathBuf::from(dir).join("training")
}

fn tokenizer() -> Tokenizer {
    let path = lem_engine::testing::installed("models/gemma-3-270m/tokenizer.json");
    Tokenizer::load(path.parent().expect("a directory")).unwrap()
}

#[test]
#[ignore = "needs scripts/setup and LEM_UPSTREAM"]
fn upstream_training_files_read_and_mask_like_ours() {
    let (dir, tokenizer) = (upstream(), tokenizer());
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
