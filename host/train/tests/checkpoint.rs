//! `--checkpoint`: a run stopped after any step and continued from its
//! checkpoint ends with the same adapter, byte for byte, as a run that was
//! never stopped; a checkpoint of another run is refused, naming the file
//! and what differs.
//!
//! A kill is simulated by copying the checkpoint as it is when a step's
//! `Step` event fires (the checkpoint is written before it) into a second
//! adapter directory, and continuing there with a fresh trainer.

use candle_core::Device;
use lem_engine::models::gemma3::Gemma3;
use lem_engine::models::{Model, ModelFiles};
use lem_engine::tokenizer::Tokenizer;
use lem_train::{TrainConfig, TrainError, TrainEvent, TrainSummary, Trainer, checkpoint};
use std::path::{Path, PathBuf};

mod common;
use common::write_data;

const ITERS: usize = 8;

fn load_dense(dir: &Path) -> Gemma3 {
    let files = ModelFiles::locate(dir).unwrap();
    match Model::load_with(&files, &Device::Cpu, 64, true).unwrap() {
        Model::Gemma3(m) => m,
        _ => unreachable!(),
    }
}

/// 8 train examples in batches of 2: 8 steps are two epochs, so a resumed
/// run must also replay the reshuffle at step 5. Saves every 3 steps and
/// validates every 4, so the schedule crosses the stop points.
fn config(dir: &Path, adapter: &str) -> TrainConfig {
    TrainConfig {
        save_every: 3,
        steps_per_eval: 4,
        steps_per_report: 2,
        checkpoint: true,
        ..common::config(&dir.join("data"), &dir.join(adapter), ITERS)
    }
}

fn trainer(dir: &Path, cfg: TrainConfig) -> Result<Trainer, TrainError> {
    Trainer::new(
        load_dense(&dir.join("model")),
        Tokenizer::load(&dir.join("model")).unwrap(),
        cfg,
    )
}

fn run(
    dir: &Path,
    cfg: TrainConfig,
    mut on_event: impl FnMut(&TrainEvent),
) -> Result<(Vec<TrainEvent>, TrainSummary), TrainError> {
    let mut t = trainer(dir, cfg)?;
    let mut events = Vec::new();
    let summary = t.train(&mut |e| {
        on_event(&e);
        events.push(e);
    })?;
    Ok((events, summary))
}

fn weights(adapter: &Path) -> Vec<u8> {
    std::fs::read(adapter.join("adapter_model.safetensors")).unwrap()
}

fn steps(events: &[TrainEvent]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step { iteration, .. } => Some(*iteration),
            _ => None,
        })
        .collect()
}

/// Copies the checkpoint as it is after each of `at` into `<dir>/killed-<step>/`.
fn copy_checkpoints(dir: &Path, adapter: &Path, at: &[usize]) -> impl FnMut(&TrainEvent) {
    let (dir, adapter, at) = (dir.to_owned(), adapter.to_owned(), at.to_vec());
    move |e| {
        if let TrainEvent::Step { iteration, .. } = e
            && at.contains(iteration)
        {
            let to = dir.join(format!("killed-{iteration}"));
            std::fs::create_dir_all(&to).unwrap();
            std::fs::copy(adapter.join(checkpoint::FILE), to.join(checkpoint::FILE)).unwrap();
        }
    }
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    lem_engine::testing::write_model_dir(&dir.join("model"), 5);
    write_data(&dir.join("data"));
    (tmp, dir)
}

#[test]
fn a_run_continued_from_its_checkpoint_ends_with_the_same_adapter() {
    let (_tmp, dir) = setup();

    // Uninterrupted, without and with checkpoints: the same adapter.
    let mut plain = config(&dir, "plain");
    plain.checkpoint = false;
    run(&dir, plain, |_| {}).unwrap();
    let stops = [3, 5, ITERS];
    let adapter = dir.join("whole");
    let (events, summary) = run(
        &dir,
        config(&dir, "whole"),
        copy_checkpoints(&dir, &adapter, &stops),
    )
    .unwrap();
    assert_eq!(steps(&events), (1..=ITERS).collect::<Vec<_>>());
    assert_eq!((summary.iterations, summary.resumed_at), (ITERS, 0));
    let whole = weights(&adapter);
    assert_eq!(
        whole,
        weights(&dir.join("plain")),
        "checkpointing changed the run"
    );
    assert!(
        !adapter.join(checkpoint::FILE).exists(),
        "the checkpoint is removed at the end"
    );
    assert!(!adapter.join("checkpoint.safetensors.tmp").exists());

    // Killed after step k, continued: the same bytes, only steps k+1.. run.
    for k in stops {
        let killed = format!("killed-{k}");
        let (events, summary) = run(&dir, config(&dir, &killed), |_| {}).unwrap();
        let resumed = events
            .iter()
            .position(|e| matches!(e, TrainEvent::Resumed { iteration, .. } if *iteration == k));
        assert_eq!(resumed, Some(1), "Started, then Resumed: {events:?}");
        assert_eq!(steps(&events), (k + 1..=ITERS).collect::<Vec<_>>());
        assert_eq!((summary.iterations, summary.resumed_at), (ITERS - k, k));
        assert!(
            events.iter().any(|e| matches!(
                e,
                TrainEvent::Saved {
                    iteration: ITERS,
                    ..
                }
            )),
            "after step {k}: the final adapter is saved"
        );
        // Nothing before the stop is reported again, except that a run
        // stopped after the last step's checkpoint evaluates and saves the
        // final adapter (it cannot know whether that happened).
        let evals: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Eval { iteration, .. } => Some(*iteration),
                _ => None,
            })
            .collect();
        let expected: Vec<usize> = (k + 1..=ITERS)
            .filter(|i| i % 4 == 0)
            .chain((k == ITERS).then_some(ITERS))
            .collect();
        assert_eq!(evals, expected, "after step {k}");
        assert!(summary.final_val_loss.is_some());
        let out = dir.join(&killed);
        assert_eq!(weights(&out), whole, "resumed after step {k}");
        assert!(!out.join(checkpoint::FILE).exists());
    }
}

#[test]
fn another_runs_checkpoint_is_refused_naming_the_file_and_the_difference() {
    let (_tmp, dir) = setup();
    let adapter = dir.join("first");
    run(
        &dir,
        config(&dir, "first"),
        copy_checkpoints(&dir, &adapter, &[3]),
    )
    .unwrap();
    let file = dir.join("killed-3").join(checkpoint::FILE);
    let before = std::fs::read(&file).unwrap();

    let refused = |cfg: TrainConfig| {
        let err = run(&dir, cfg, |_| {}).unwrap_err();
        assert!(matches!(err, TrainError::Checkpoint { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(
            err.contains("delete it") && err.contains("--adapter-path"),
            "{err}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), before, "the file is kept");
        err
    };

    let mut cfg = config(&dir, "killed-3");
    cfg.learning_rate = 2e-2;
    let err = refused(cfg);
    assert!(
        err.contains("learning_rate: checkpoint 0.01, this run 0.02"),
        "{err}"
    );

    let mut cfg = config(&dir, "killed-3");
    cfg.iters = 12;
    cfg.lora.rank = 2;
    let err = refused(cfg);
    assert!(
        err.contains("iters: checkpoint 8, this run 12") && err.contains("lora_rank"),
        "{err}"
    );

    let mut cfg = config(&dir, "killed-3");
    cfg.base_model_sha256 = Some("0".repeat(64));
    assert!(refused(cfg).contains("base_model_sha256: checkpoint null"));

    // Other data under the same name.
    let other = dir.join("other-data");
    write_data(&other);
    let train = std::fs::read_to_string(other.join("train.jsonl")).unwrap();
    let swapped: Vec<&str> = train.lines().rev().collect();
    std::fs::write(other.join("train.jsonl"), swapped.join("\n")).unwrap();
    let mut cfg = config(&dir, "killed-3");
    cfg.data = other;
    assert!(refused(cfg).contains("train_data_sha256"));

    // Not a checkpoint at all.
    std::fs::write(&file, b"not safetensors").unwrap();
    let err = run(&dir, config(&dir, "killed-3"), |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&file.display().to_string()) && err.contains("not a readable checkpoint"),
        "{err}"
    );

    // Without --checkpoint a checkpoint is neither used nor touched.
    std::fs::write(&file, &before).unwrap();
    let mut cfg = config(&dir, "killed-3");
    cfg.checkpoint = false;
    let (events, _) = run(&dir, cfg, |_| {}).unwrap();
    assert_eq!(steps(&events).len(), ITERS);
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn checkpoints_need_dropout_zero() {
    let (_tmp, dir) = setup();
    let mut cfg = config(&dir, "a");
    cfg.lora.dropout = 0.1;
    let err = trainer(&dir, cfg.clone()).err().unwrap();
    assert!(matches!(err, TrainError::BadConfig(_)), "{err:?}");
    assert!(
        err.to_string().contains("--checkpoint") && err.to_string().contains("--lora-dropout 0"),
        "{err}"
    );
    cfg.checkpoint = false;
    assert!(trainer(&dir, cfg).is_ok());
}
