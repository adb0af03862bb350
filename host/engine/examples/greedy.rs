use lem_engine::{Engine, Event, LoadOptions, Request, SamplingParams};
use std::path::Path;

fn main() {
    let text = std::env::args()
        .nth(1)
        .unwrap_or("<bos>The capital of France is".into());
    let n: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(32);
    let path = Path::new("/tmp/lemhome/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    let engine = Engine::load(path, &LoadOptions::default()).unwrap();
    let ids = engine.tokenizer().encode(&text).unwrap();
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: n,
        ..Default::default()
    };
    engine
        .generate(
            vec![Request {
                key: "a".into(),
                prompt: ids,
                params,
                ..Request::default()
            }],
            1,
            false,
            &mut |e| {
                if let Event::Done(d) = e {
                    println!("{:?}\n{:?}", d.tokens, d.text);
                }
            },
        )
        .unwrap();
}
