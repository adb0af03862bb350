use super::*;
use candle_core::IndexOp;
use lem_engine::DeviceKind;
use lem_engine::testing::{
    max_abs, max_abs_diff, seeded_matrix, write_model_dir, write_tiny_llama_gguf,
};

fn tiny_gemma(dir: &Path) -> BaseModel {
    let path = dir.join("gemma");
    write_model_dir(&path, 3);
    BaseModel::load(&path, None, DeviceKind::Cpu).expect("tiny gemma loads")
}

fn tiny_qwen(dir: &Path) -> BaseModel {
    let path = dir.join("qwen.gguf");
    write_tiny_llama_gguf(&path, "qwen2", 5);
    BaseModel::load(&path, None, DeviceKind::Cpu).expect("tiny qwen loads")
}

/// A unit vector of width `n` from `seed`.
fn unit_vector(n: usize, seed: u64) -> Vec<f32> {
    let v = seeded_matrix(1, n, seed)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

/// Every written matrix, dense, with the scale its output gets: (name, W, g).
fn writers(model: &mut impl TrainableModel) -> (Tensor, Vec<(String, Tensor, Option<Tensor>)>) {
    let w = model.residual_writers();
    let e = w.embedding.to_dtype(DType::F32).unwrap();
    let p = w
        .projections
        .into_iter()
        .map(|p| (p.name, p.linear.dense_weight().unwrap(), p.scale))
        .collect();
    (e, p)
}

/// After orthogonalising, nothing written into the stream has a component
/// along r, and every component orthogonal to r is what it was.
fn check_orthogonalize(model: &mut impl TrainableModel, expect_scales: bool) {
    let hidden = model.hidden_size();
    let r = unit_vector(hidden, 11);
    let rt = Tensor::from_slice(&r, (hidden, 1), &Device::Cpu).unwrap();
    let (e0, p0) = writers(model);
    let edited = orthogonalize(model, &r).unwrap();
    let (e1, p1) = writers(model);
    assert_eq!(edited, 1 + p1.len());
    assert_eq!(p1.len(), 2 * model.num_layers());
    // The embedding: E r = 0, and E v unchanged for v ⊥ r.
    assert!(max_abs(&e1.matmul(&rt).unwrap()) < 1e-5);
    let v = unit_vector(hidden, 23);
    let dot: f32 = v.iter().zip(&r).map(|(a, b)| a * b).sum();
    let v: Vec<f32> = v.iter().zip(&r).map(|(a, b)| a - dot * b).collect();
    let vt = Tensor::from_slice(&v, (hidden, 1), &Device::Cpu).unwrap();
    assert!(max_abs_diff(&e1.matmul(&vt).unwrap(), &e0.matmul(&vt).unwrap()) < 1e-5);
    assert!(max_abs_diff(&e0, &e1) > 1e-3, "the embedding changed");
    for ((name, w0, _), (_, w1, g)) in p0.iter().zip(&p1) {
        assert_eq!(g.is_some(), expect_scales, "{name}");
        // What reaches the stream is g ⊙ (W x) (up to the norm's 1/rms).
        let g = g
            .clone()
            .unwrap_or_else(|| Tensor::ones(hidden, DType::F32, &Device::Cpu).unwrap());
        let gr = (rt.squeeze(1).unwrap() * &g).unwrap().unsqueeze(0).unwrap();
        assert!(
            max_abs(&gr.matmul(w1).unwrap()) < 1e-5,
            "{name}: rᵀ(g ⊙ W) ≠ 0"
        );
        // Every component of the output orthogonal to u = g ⊙ r (u = r
        // without a post-norm) is unchanged: vᵀ W is the same for v ⊥ u.
        let u = (&gr
            / gr.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .sqrt()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64)
            .unwrap();
        let v = unit_vector(hidden, 31);
        let vt = Tensor::from_slice(&v, (1, hidden), &Device::Cpu).unwrap();
        let along = vt.matmul(&u.t().unwrap()).unwrap();
        let v_perp = (&vt - along.matmul(&u).unwrap()).unwrap();
        assert!(
            max_abs_diff(&v_perp.matmul(w1).unwrap(), &v_perp.matmul(w0).unwrap()) < 1e-5,
            "{name}: the part orthogonal to r changed"
        );
    }
}

#[test]
fn orthogonalizing_a_gemma3_removes_r_from_everything_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let Model::Gemma3(mut m) = tiny_gemma(dir.path()).model else {
        panic!("gemma3")
    };
    check_orthogonalize(&mut m, true);
}

#[test]
fn orthogonalizing_a_qwen2_removes_r_from_everything_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let Model::Llama(mut m) = tiny_qwen(dir.path()).model else {
        panic!("llama")
    };
    check_orthogonalize(&mut m, false);
}

#[test]
fn a_direction_from_two_blobs_is_their_offset() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let n = 64;
    let d = unit_vector(n, 77);
    let mut blob = |offset: f32| -> Vec<Vec<f32>> {
        (0..40)
            .map(|_| {
                (0..n)
                    .map(|j| {
                        // Roughly normal noise: the sum of three uniforms.
                        let z: f32 = (0..3).map(|_| rng.random_range(-1.0f32..1.0)).sum();
                        0.3 * z + 0.5 + offset * d[j]
                    })
                    .collect()
            })
            .collect()
    };
    let (h, l) = (blob(2.0), blob(0.0));
    let refs = as_refs;
    let dir = refusal_direction(&refs(&h), &refs(&l)).unwrap();
    let cos: f32 = dir.r.iter().zip(&d).map(|(a, b)| a * b).sum();
    assert!(cos > 0.95, "cos {cos}");
    assert!((dir.norm - 2.0).abs() < 0.5, "norm {}", dir.norm);
    // The projection separates them well; along a random direction it does not.
    assert!(separation(&dir.r, &refs(&h), &refs(&l)) > 3.0);
    let other = unit_vector(n, 5);
    assert!(
        separation(&other, &refs(&h), &refs(&l)).abs() < separation(&dir.r, &refs(&h), &refs(&l))
    );
    // Identical means: no direction, a typed error.
    assert!(refusal_direction(&refs(&h), &refs(&h)).is_err());
}

#[test]
fn the_split_holds_out_every_fourth_and_layers_are_the_middle() {
    let (fit, held) = split(10);
    assert_eq!(held, vec![3, 7]);
    assert_eq!(fit, vec![0, 1, 2, 4, 5, 6, 8, 9]);
    assert_eq!(candidate_layers(24), (5..=19).collect::<Vec<_>>());
    assert_eq!(candidate_layers(2), vec![1]);
    assert_eq!(candidate_layers(1), vec![0]);
    assert_eq!("auto".parse::<LayerChoice>(), Ok(LayerChoice::Auto));
    assert_eq!("7".parse::<LayerChoice>(), Ok(LayerChoice::Fixed(7)));
    assert!("x".parse::<LayerChoice>().is_err());
}

#[test]
fn refusal_markers_match_refusals_only() {
    assert!(refuses("I'm sorry, but I can't help with that."));
    assert!(refuses("I can\u{2019}t assist with this request."));
    assert!(refuses("As an AI, I must decline."));
    assert!(!refuses("Sure! Here is a recipe for pancakes."));
}

#[test]
fn residuals_are_the_stream_at_every_block_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_qwen(dir.path());
    let Model::Llama(m) = &base.model else {
        panic!("llama")
    };
    let ids = [1u32, 7, 42, 99];
    let res = m.residuals(&ids).unwrap();
    assert_eq!(res.len(), m.num_layers() + 1);
    // The last one, normed, is what the whole training forward returns.
    let t = Tensor::from_slice(&ids, (1, 4), &Device::Cpu).unwrap();
    let full = m.forward_train(&t, 0, false).unwrap().i((0, 3)).unwrap();
    let normed = m
        .final_norm_train(&res[m.num_layers()].unsqueeze(0).unwrap())
        .unwrap()
        .squeeze(0)
        .unwrap();
    assert!(max_abs_diff(&full, &normed) < 1e-5);
}

fn write_prompts(path: &Path, prefix: &str, n: usize) -> PromptFile {
    let text: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\": \"{prefix}{i}\", \"prompt\": \"{prefix} question number {i} please\"}}\n"
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
    PromptFile::read(path).unwrap()
}

#[test]
fn abliterating_a_tiny_qwen2_writes_a_model_that_loads_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_qwen(dir.path());
    let harmful = write_prompts(&dir.path().join("h.jsonl"), "harm", 8);
    let harmless = write_prompts(&dir.path().join("l.jsonl"), "fine", 8);
    let tokenizer = base.tokenizer_files(None).unwrap();
    let out = dir.path().join("out");
    let config = AbliterateConfig {
        layer: LayerChoice::Auto,
        max_tokens: 4,
    };
    let report = abliterate(
        base,
        &harmful,
        &harmless,
        tokenizer,
        &out,
        &config,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.num_layers, 2);
    assert_eq!(report.layer, 1);
    assert_eq!(report.layer_scores.len(), 1);
    assert_eq!(report.harmful.held_out, vec!["harm3", "harm7"]);
    assert_eq!(report.refusals_before.prompts, 2);
    assert_eq!(report.kl.len(), 2);
    assert!(report.kl_mean.is_finite() && report.kl_mean >= -1e-9);
    assert_eq!(report.edited_matrices, 1 + 2 * 2);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("abliterate.json")).unwrap())
            .unwrap();
    assert_eq!(json["layer"], 1);
    assert_eq!(json["harmful"]["sha256"], harmful.sha256);
    // The written model loads, and its embedding has no component along r.
    let again = BaseModel::load(&out, None, DeviceKind::Cpu).unwrap();
    assert_eq!(again.num_layers(), 2);
    // A second run refuses to overwrite it.
    std::fs::create_dir(dir.path().join("again")).unwrap();
    let base = tiny_qwen(&dir.path().join("again"));
    let tokenizer = base.tokenizer_files(None).unwrap();
    let err = abliterate(
        base,
        &harmful,
        &harmless,
        tokenizer,
        &out,
        &config,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn bad_prompt_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    std::fs::write(&p, "{\"id\": \"a\", \"prompt\": \"x\"}\nnot json\n").unwrap();
    assert!(matches!(
        PromptFile::read(&p),
        Err(TrainError::BadExample { line: 2, .. })
    ));
    std::fs::write(&p, "{\"id\": \"a\", \"prompt\": \"x\"}\n").unwrap();
    assert!(matches!(
        PromptFile::read(&p),
        Err(TrainError::BadData { .. })
    ));
}
