//! The trainer on a tiny random-weight Gemma 3 written by the test: the loss
//! falls, the prompt carries no gradient, adapters round-trip exactly, and a
//! fused model computes what base + adapter computes.

use candle_core::{Device, Tensor, Var};
use lem_engine::adapter::Adapter;
use lem_engine::models::gemma3::Gemma3;
use lem_engine::models::{Model, ModelFiles};
use lem_engine::testing::max_abs_diff as max_diff;
use lem_engine::tokenizer::Tokenizer;
use lem_train::data::{self, Batch, Example};
use lem_train::{Backward, TrainConfig, TrainEvent, Trainer};
use std::path::Path;

mod common;
use common::{config, write_data};

fn load_dense(dir: &Path) -> Gemma3 {
    let files = ModelFiles::locate(dir).unwrap();
    match Model::load_with(&files, &Device::Cpu, 64, true).unwrap() {
        Model::Gemma3(m) => m,
        _ => unreachable!(),
    }
}

fn logits(model: &Gemma3, ids: &[u32]) -> Tensor {
    let mut cache = model.new_cache(64).unwrap();
    model.prefill(ids, &mut cache).unwrap()
}

fn train(dir: &Path, cfg: TrainConfig) -> (Trainer, Vec<TrainEvent>) {
    let model = load_dense(&dir.join("model"));
    let tokenizer = Tokenizer::load(&dir.join("model")).unwrap();
    let mut trainer = Trainer::new(model, tokenizer, cfg).unwrap();
    let mut events = Vec::new();
    trainer.train(&mut |e| events.push(e)).unwrap();
    (trainer, events)
}

#[test]
fn loss_falls_adapters_round_trip_and_fuse_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lem_engine::testing::write_model_dir(&dir.join("model"), 11);
    write_data(&dir.join("data"));
    let (trainer, events) = train(dir, config(&dir.join("data"), &dir.join("adapter"), 30));

    let losses: Vec<f32> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Report { train_loss, .. } => Some(*train_loss),
            _ => None,
        })
        .collect();
    assert_eq!(losses.len(), 6, "{events:?}");
    assert!(
        losses[5] < losses[0] * 0.7,
        "training loss did not fall: {losses:?}"
    );
    let vals: Vec<f32> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Eval { val_loss, .. } => Some(*val_loss),
            _ => None,
        })
        .collect();
    assert_eq!(vals.len(), 3, "evals at 10, 20, 30");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrainEvent::Saved { iteration: 30, .. }))
    );

    // Save → load → identical logits.
    let ids = [1u32, 4, 30, 10, 3, 5, 17];
    let trained = logits(trainer.model(), &ids);
    let mut reloaded = load_dense(&dir.join("model"));
    let adapter = Adapter::load(&dir.join("adapter"), &Device::Cpu).unwrap();
    assert_eq!(adapter.modules.len(), 2 * 7);
    adapter.apply(&mut reloaded).unwrap();
    let d = max_diff(&trained, &logits(&reloaded, &ids));
    assert!(d < 1e-6, "a reloaded adapter changes logits by {d}");
    let base = logits(&load_dense(&dir.join("model")), &ids);
    assert!(
        max_diff(&trained, &base) > 1e-3,
        "the adapter changes nothing"
    );

    // Fused = base + adapter.
    let mut model = load_dense(&dir.join("model"));
    let report =
        lem_train::fuse::fuse(&mut model, &adapter, &dir.join("model"), &dir.join("fused"))
            .unwrap();
    assert_eq!(report.fused_modules, 14);
    let fused = load_dense(&dir.join("fused"));
    let d = max_diff(&trained, &logits(&fused, &ids));
    assert!(d < 1e-4, "fused logits differ from base + adapter by {d}");
    // The fused directory is a model the engine loads whole, tokenizer included.
    lem_engine::Engine::load(&dir.join("fused"), &Default::default()).unwrap();
    // A second fuse into the same place is refused and leaves it intact.
    let err = lem_train::fuse::fuse(
        &mut load_dense(&dir.join("model")),
        &adapter,
        &dir.join("model"),
        &dir.join("fused"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not empty"), "{err}");
    assert!(dir.join("fused/model.safetensors").is_file());
}

#[test]
fn with_mask_prompt_the_prompt_carries_no_gradient() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lem_engine::testing::write_model_dir(&dir.join("model"), 5);
    let tokenizer = Tokenizer::load(&dir.join("model")).unwrap();
    let example = data::parse_example(
        r#"{"messages":[{"role":"user","content":"why be kind"},{"role":"assistant","content":"because we care"}]}"#,
    )
    .unwrap();
    let (masked, _) = data::tokenize(
        std::slice::from_ref(&example),
        &tokenizer,
        true,
        64,
        64,
        Path::new("t"),
    )
    .unwrap();
    let (unmasked, _) =
        data::tokenize(&[example], &tokenizer, false, 64, 64, Path::new("t")).unwrap();
    let m = &masked[0];
    // "<bos> user: why be kind <end> assistant:" is the prompt (7 tokens);
    // "because we care <end>" is learned.
    assert_eq!(m.ids.len(), 11);
    assert_eq!(m.supervised.iter().filter(|s| **s).count(), 4);
    assert!(m.supervised[..7].iter().all(|s| !s));
    assert_eq!(unmasked[0].supervised.iter().filter(|s| **s).count(), 10);

    // The gradient of the loss in the hidden states: zero at every position
    // that predicts a prompt token, non-zero where the answer is predicted.
    let model = load_dense(&dir.join("model"));
    let batch = Batch::new(&[m]);
    let ids = Tensor::from_slice(&batch.ids, (1, batch.len), &Device::Cpu).unwrap();
    let hidden = Var::from_tensor(
        &model
            .forward_train(&ids, 0, false)
            .unwrap()
            .squeeze(0)
            .unwrap(),
    )
    .unwrap();
    let from = Tensor::from_slice(&batch.from, batch.from.len(), &Device::Cpu).unwrap();
    let h = hidden.as_tensor().index_select(&from, 0).unwrap();
    let out =
        lem_train::loss::output_loss(&h, &model.output_weight().unwrap(), &batch.targets, true)
            .unwrap();
    let grads = out.loss.backward().unwrap();
    let g = grads.get(hidden.as_tensor()).unwrap();
    let norms: Vec<f32> = g.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
    for (p, n) in norms.iter().enumerate() {
        let predicts_answer = p + 1 < m.ids.len() && m.supervised[p + 1];
        if predicts_answer {
            assert!(
                *n > 0.0,
                "position {p} predicts an answer token but has no gradient"
            );
        } else {
            assert_eq!(
                *n, 0.0,
                "position {p} predicts a prompt token but has gradient {n}"
            );
        }
    }
}

#[test]
fn checkpointed_and_plain_steps_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lem_engine::testing::write_model_dir(&dir.join("model"), 2);
    write_data(&dir.join("data"));
    let mut plain = config(&dir.join("data"), &dir.join("a"), 3);
    plain.steps_per_report = 1;
    let mut ckpt = plain.clone();
    ckpt.grad_checkpoint = true;
    ckpt.adapter_path = dir.join("b");
    let loss_of = |events: &[TrainEvent]| -> Vec<f32> {
        events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Step { loss, .. } => Some(*loss),
                _ => None,
            })
            .collect()
    };
    let (_, a) = train(dir, plain);
    let (_, b) = train(dir, ckpt);
    let (a, b) = (loss_of(&a), loss_of(&b));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4, "plain {a:?} vs checkpointed {b:?}");
    }
}

#[test]
fn the_hand_written_backward_matches_autograd() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lem_engine::testing::write_model_dir(&dir.join("model"), 6);
    write_data(&dir.join("data"));
    for checkpoint in [false, true] {
        // Three steps first, so that every B is non-zero and A has gradients too.
        let mut cfg = config(&dir.join("data"), &dir.join("adapter"), 3);
        cfg.grad_checkpoint = checkpoint;
        let (trainer, _) = train(dir, cfg);
        let (examples, _) = trainer
            .load_examples(&dir.join("data/train.jsonl"))
            .unwrap();
        let batch = Batch::new(&examples[..3].iter().collect::<Vec<_>>());
        let (loss_t, taped) = trainer.gradients(&batch, Backward::Taped).unwrap();
        let (loss_a, auto) = trainer.gradients(&batch, Backward::Autograd).unwrap();
        assert!(
            (loss_t - loss_a).abs() < 1e-5,
            "losses {loss_t} vs {loss_a}"
        );
        let vars = trainer.lora().vars();
        assert_eq!(
            vars.len(),
            2 * 7 * 2,
            "A and B on 7 projections of 2 blocks"
        );
        for v in &vars {
            let (t, a) = (
                taped.get(v.as_tensor()).unwrap(),
                auto.get(v.as_tensor()).unwrap(),
            );
            let scale = lem_engine::testing::max_abs(a);
            assert!(scale > 0.0, "a zero gradient proves nothing");
            let d = max_diff(t, a);
            assert!(
                d < 1e-4 * scale.max(1.0),
                "checkpoint {checkpoint}: gradients differ by {d} (scale {scale})"
            );
        }
    }
}

#[test]
fn bad_data_and_mismatched_adapters_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lem_engine::testing::write_model_dir(&dir.join("model"), 1);
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(
        data_dir.join("train.jsonl"),
        "{\"text\": \"we care\"}\n{\"messages\": \"oops\"}\n",
    )
    .unwrap();
    let model = load_dense(&dir.join("model"));
    let tokenizer = Tokenizer::load(&dir.join("model")).unwrap();
    let mut trainer =
        Trainer::new(model, tokenizer, config(&data_dir, &dir.join("adapter"), 1)).unwrap();
    let err = trainer.train(&mut |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("train.jsonl:2:") && err.contains("not a chat example"),
        "{err}"
    );
    assert!(
        !dir.join("adapter").exists(),
        "nothing is written on bad data"
    );

    // Over-long examples are truncated and counted.
    let long = vec!["care"; 80].join(" ");
    let (t, report) = data::tokenize(
        &[Example::Text(long)],
        &Tokenizer::load(&dir.join("model")).unwrap(),
        true,
        16,
        64,
        Path::new("t"),
    )
    .unwrap();
    assert_eq!((t[0].ids.len(), report.truncated), (16, 1));

    // An adapter for another model is refused, naming the module.
    write_data(&data_dir);
    let (trainer, _) = train(dir, config(&data_dir, &dir.join("adapter"), 1));
    let mut adapter = trainer.adapter();
    let pair = adapter
        .modules
        .remove("model.layers.2.mlp.up_proj")
        .unwrap();
    adapter
        .modules
        .insert("model.layers.9.mlp.up_proj".into(), pair);
    let err = adapter
        .apply(&mut load_dense(&dir.join("model")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.layers.9.mlp.up_proj"), "{err}");
    let mut wrong = trainer.adapter();
    let pair = wrong.modules.get_mut("model.layers.2.mlp.up_proj").unwrap();
    pair.b = Tensor::zeros((5, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = wrong
        .apply(&mut load_dense(&dir.join("model")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("trained on another model"), "{err}");
}

#[test]
fn a_second_run_resumes_from_the_first_runs_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    lem_engine::testing::write_model_dir(&dir.join("model"), 4);
    write_data(&dir.join("data"));
    let (first, _) = train(dir, config(&dir.join("data"), &dir.join("stage1"), 10));
    let mut cfg = config(&dir.join("data"), &dir.join("stage2"), 1);
    cfg.resume_adapter_file = Some(dir.join("stage1/adapter_model.safetensors"));
    let second = Trainer::new(
        load_dense(&dir.join("model")),
        Tokenizer::load(&dir.join("model")).unwrap(),
        cfg.clone(),
    )
    .unwrap();
    let (examples, _) = second.load_examples(&dir.join("data/valid.jsonl")).unwrap();
    let batch = Batch::new(&examples.iter().collect::<Vec<_>>());
    assert_eq!(
        first.batch_loss(&batch).unwrap(),
        second.batch_loss(&batch).unwrap()
    );
    // A different rank cannot resume it.
    cfg.lora.rank = 2;
    let err = Trainer::new(
        load_dense(&dir.join("model")),
        Tokenizer::load(&dir.join("model")).unwrap(),
        cfg,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("rank 4, this run 2"), "{err}");
}
