//! The LEK experiment's plumbing end to end on a tiny random model (no
//! set-up needed): `lem run` builds a distilled-and-trained variant and an
//! abliterated one, each artifact once; a rerun builds and generates
//! nothing; a changed training flag rebuilds that adapter and that variant's
//! answers, nothing else; `kill -9` during distillation, training or
//! generation loses nothing a rerun does not finish exactly as an
//! uninterrupted run does; a bad variant fails before anything runs.

use lem_report::{FieldAgreement, Judged};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn lem(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lem"));
    c.args(args)
        .current_dir(dir)
        .env("LEM_HOME", dir.join("home"))
        .env("RAYON_NUM_THREADS", "1");
    c
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "lem failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Sizes of the work, so a kill can land in the middle of each step.
#[derive(Clone, Copy)]
struct Size {
    seeds: usize,
    distill_tokens: usize,
    iters: usize,
    items: usize,
}

const SMALL: Size = Size {
    seeds: 6,
    distill_tokens: 6,
    iters: 3,
    items: 2,
};

/// A tiny model, seeds, prompt lists, items and the config, in `dir`.
fn setup(dir: &Path, size: Size) -> PathBuf {
    let model = dir.join("tiny");
    if !model.exists() {
        lem_engine::testing::write_model_dir(&model, 7);
    }
    let words = lem_engine::testing::WORDS;
    let sentence = |i: usize, n: usize| -> String {
        (0..n)
            .map(|k| words[(i * 7 + k * 3) % words.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let seeds: Vec<String> = (0..size.seeds)
        .map(|i| {
            format!(
                "{{\"id\": \"S{i:03}\", \"prompt\": \"{}\"}}",
                sentence(i, 8)
            )
        })
        .collect();
    std::fs::write(dir.join("seeds.jsonl"), seeds.join("\n") + "\n").unwrap();
    for (name, offset) in [("harmful", 1), ("harmless", 2)] {
        let lines: Vec<String> = (0..8)
            .map(|i| {
                format!(
                    "{{\"id\": \"{name}-{i}\", \"prompt\": \"{}\"}}",
                    sentence(i * offset + offset, 6)
                )
            })
            .collect();
        std::fs::write(dir.join(format!("{name}.jsonl")), lines.join("\n") + "\n").unwrap();
    }
    let items: Vec<String> = (0..size.items)
        .map(|i| {
            format!(
                "{{\"id\": \"q{i}\", \"question\": \"{} {i}\", \"correct_answer\": \"{i}\"}}",
                sentence(i, 5)
            )
        })
        .collect();
    std::fs::write(dir.join("items.jsonl"), items.join("\n") + "\n").unwrap();
    let root = root();
    let config = format!(
        r#"out = "out"
kernels = ["none", "sandwich"]
kernel_text = "{root}/kernel/kernel.txt"
axioms = "{root}/kernel/axioms.json"
baseline = "lek"

[models]
tiny = "local:tiny"

[variants.lek]
from = "tiny"
kernels = ["none"]
distill = {{ kernel = "sandwich", seeds = "seeds.jsonl", max_tokens = {distill_tokens}, valid_fraction = 0.0 }}
train = [
  {{ data = "distilled", iters = {iters}, batch_size = 2, learning_rate = 1e-3, num_layers = -1 }},
]

[variants.abliterated]
from = "tiny"
kernels = ["none"]
abliterate = {{ harmful = "harmful.jsonl", harmless = "harmless.jsonl", max_tokens = 4 }}

[[benchmarks]]
name = "gsm8k"
data = "items.jsonl"

[generation]
batch_size = 2
max_tokens = 6

[margins]
"gsm8k/accuracy" = 0.5
"#,
        root = root.display(),
        distill_tokens = size.distill_tokens,
        iters = size.iters,
    );
    std::fs::write(dir.join("eval.toml"), config).unwrap();
    dir.join("eval.toml")
}

/// Every file under `dir` (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The artifact directories under `out/artifacts`.
fn artifacts(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("out/artifacts"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn variants_are_built_once_and_a_changed_flag_rebuilds_only_what_depends_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = setup(dir, SMALL);
    // A judge calibration for the report to show (as `lem judge calibrate
    // --out` writes one).
    let judged = [
        Judged::Scored {
            judge: 1.0,
            reference: 1.0,
        },
        Judged::Scored {
            judge: 0.0,
            reference: 1.0,
        },
        Judged::Scored {
            judge: 0.0,
            reference: 0.0,
        },
        Judged::Failed {
            kind: "judge-unparsable".into(),
        },
    ];
    let calibration = lem_report::Calibration {
        benchmark: "gsm8k".into(),
        judge: "local:tiny".into(),
        reference: "reference.json".into(),
        reference_model: "someone".into(),
        responses: "responses.jsonl".into(),
        judged: 4,
        skipped: 0,
        limit: None,
        unmatched_reference_fields: Vec::new(),
        unmatched_judge_metrics: Vec::new(),
        resamples: 200,
        seed: 1,
        fields: vec![FieldAgreement::compute("accuracy", &judged, 200, 1).unwrap()],
    };
    std::fs::write(
        dir.join("cal.json"),
        lem_report::calibration::to_json(&calibration).to_string(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "baseline = \"lek\"",
            "baseline = \"lek\"\njudge_calibration = [\"cal.json\"]",
        ),
    )
    .unwrap();

    // The dry run lists the three steps to build and the four runs.
    let plan = ok(lem(dir, &["run", "eval.toml", "--dry-run"])
        .output()
        .unwrap());
    for expected in [
        "lek",
        "distill",
        "train (stage 1 of 1)",
        "abliterate",
        "to build",
        "tiny+sandwich",
    ] {
        assert!(plan.contains(expected), "{expected} not in\n{plan}");
    }

    ok(lem(dir, &["run", "eval.toml"]).output().unwrap());
    let built = artifacts(dir);
    assert_eq!(built.len(), 3, "{built:?}");
    for prefix in ["abliterated-", "adapter-", "distill-"] {
        assert!(built.iter().any(|a| a.starts_with(prefix)), "{built:?}");
    }
    let first = files(&dir.join("out"));
    let run: serde_json::Value =
        serde_json::from_slice(&first["run.json"]).expect("run.json is JSON");
    // The report shows the judge's agreement in every format.
    let md = String::from_utf8_lossy(&first["report.md"]);
    assert!(md.contains("## Judge agreement: gsm8k"), "{md}");
    assert!(
        String::from_utf8_lossy(&first["report.html"]).contains("<section class=\"agreement\">")
    );
    let json: serde_json::Value = serde_json::from_slice(&first["report.json"]).unwrap();
    assert_eq!(json["judge_agreement"][0]["judge"], "local:tiny");
    // `lem report` on the run directory gives the report the run wrote:
    // run.json records its baseline (not the default one), margins and
    // calibrations.
    assert_eq!(run["report"]["baseline"], "lek");
    assert_eq!(run["report"]["margins"]["gsm8k/accuracy"], 0.5);
    for (format, file) in [("md", "report.md"), ("json", "report.json")] {
        let text = ok(lem(dir, &["report", "out", "--format", format])
            .output()
            .unwrap());
        assert_eq!(text, String::from_utf8_lossy(&first[file]), "{format}");
    }
    // --calibration adds another to the run's own.
    let two = ok(lem(dir, &["report", "out", "--calibration", "cal.json"])
        .output()
        .unwrap());
    assert_eq!(two.matches("## Judge agreement: gsm8k").count(), 2, "{two}");
    let chain = run["variants"]["lek"]["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0]["step"], "distill");
    assert_eq!(chain[1]["step"], "train (stage 1 of 1)");
    for step in chain {
        assert_eq!(step["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(
        chain[1]["inputs"]["data"]["distilled"], chain[0]["sha256"],
        "the adapter's key holds the distilled data's"
    );
    let abl = &run["variants"]["abliterated"]["chain"][0];
    assert!(
        abl["outputs"]["refusals_after"]["prompts"]
            .as_u64()
            .is_some()
    );
    for label in ["tiny", "tiny+sandwich", "lek", "abliterated"] {
        assert!(
            first.contains_key(&format!("responses/{label}/gsm8k.jsonl")),
            "{label} has no answers: {:?}",
            first.keys().collect::<Vec<_>>()
        );
    }

    // A rerun builds and generates nothing: every byte is the same.
    let plan = ok(lem(dir, &["run", "eval.toml", "--dry-run"])
        .output()
        .unwrap());
    assert!(
        plan.contains("built (reused)") && !plan.contains("to build"),
        "{plan}"
    );
    ok(lem(dir, &["run", "eval.toml"]).output().unwrap());
    assert_eq!(artifacts(dir), built);
    let second = files(&dir.join("out"));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(second[name] == *bytes, "{name} changed on a rerun");
    }

    // One more training step: that adapter is built again and the `lek`
    // answers made again (the old ones set aside); the distilled data, the
    // abliterated model and the other runs' answers are untouched.
    let config = std::fs::read_to_string(dir.join("eval.toml")).unwrap();
    std::fs::write(
        dir.join("eval.toml"),
        config.replace("iters = 3", "iters = 4"),
    )
    .unwrap();
    ok(lem(dir, &["run", "eval.toml"]).output().unwrap());
    let now = artifacts(dir);
    assert_eq!(now.len(), 4, "{now:?}");
    let new: Vec<_> = now.iter().filter(|a| !built.contains(a)).collect();
    assert!(new.len() == 1 && new[0].starts_with("adapter-"), "{now:?}");
    let third = files(&dir.join("out"));
    for (name, bytes) in &first {
        let kept = name.starts_with("artifacts/")
            || name.starts_with("responses/tiny")
            || name.starts_with("responses/abliterated/");
        if kept {
            assert!(third[name] == *bytes, "{name} changed");
        }
    }
    assert!(
        third.contains_key("superseded/lek-1/responses/gsm8k.jsonl"),
        "the old lek answers are kept aside"
    );
    assert_ne!(
        third["responses/lek/identity.json"],
        first["responses/lek/identity.json"]
    );
}

/// Runs `lem run` until `ready(dir)` holds, then kills it with SIGKILL;
/// returns whether it was still running (the kill landed mid-step).
fn kill_when(dir: &Path, ready: impl Fn(&Path) -> bool) -> bool {
    let mut child = lem(dir, &["run", "eval.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if ready(dir) {
            let running = child.try_wait().unwrap().is_none();
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return running;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("lem ended ({status}) before the moment to kill it");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "never ready");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn lines(path: &Path) -> usize {
    std::fs::File::open(path)
        .map(|f| std::io::BufReader::new(f).lines().count())
        .unwrap_or(0)
}

fn find(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("out/artifacts"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
}

/// Responses of one file keyed by item id, each id exactly once.
fn answers(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let previous = out.insert(id.clone(), v["response"].as_str().unwrap().to_string());
        assert!(
            previous.is_none(),
            "{id} answered twice in {}",
            path.display()
        );
    }
    out
}

/// An interrupted run, finished by a rerun, ends as an uninterrupted one:
/// the same distilled answers, adapter bytes, answers and report.
fn killed_run_finishes_as_uninterrupted(size: Size, ready: impl Fn(&Path) -> bool) {
    let reference = tempfile::tempdir().unwrap();
    setup(reference.path(), size);
    ok(lem(reference.path(), &["run", "eval.toml"])
        .output()
        .unwrap());

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir, size);
    assert!(kill_when(dir, ready), "the kill came after the run ended");
    ok(lem(dir, &["run", "eval.toml"]).output().unwrap());

    let (a, b) = (reference.path(), dir);
    assert_eq!(artifacts(a), artifacts(b));
    let distill = |d: &Path| find(d, "distill-").unwrap().join("responses.jsonl");
    assert_eq!(answers(&distill(a)), answers(&distill(b)));
    assert_eq!(answers(&distill(b)).len(), size.seeds);
    let adapter = |d: &Path| {
        std::fs::read(
            find(d, "adapter-")
                .unwrap()
                .join("adapter_model.safetensors"),
        )
        .unwrap()
    };
    assert!(adapter(a) == adapter(b), "the adapters differ");
    for label in ["tiny", "tiny+sandwich", "lek", "abliterated"] {
        let path = |d: &Path| d.join(format!("out/responses/{label}/gsm8k.jsonl"));
        let got = answers(&path(b));
        assert_eq!(got.len(), size.items, "{label}");
        assert_eq!(answers(&path(a)), got, "{label}");
    }
    let report = |d: &Path| std::fs::read_to_string(d.join("out/report.json")).unwrap();
    assert_eq!(report(a), report(b));
}

#[test]
fn a_run_killed_during_distillation_finishes_as_an_uninterrupted_run() {
    let size = Size {
        seeds: 40,
        distill_tokens: 24,
        ..SMALL
    };
    killed_run_finishes_as_uninterrupted(size, |dir| {
        find(dir, "distill-").is_some_and(|d| lines(&d.join("responses.jsonl")) >= 2)
    });
}

#[test]
fn a_run_killed_during_training_finishes_as_an_uninterrupted_run() {
    let size = Size {
        iters: 200,
        ..SMALL
    };
    killed_run_finishes_as_uninterrupted(size, |dir| {
        find(dir, "adapter-").is_some_and(|d| d.join("checkpoint.safetensors").is_file())
    });
}

#[test]
fn a_run_killed_during_generation_finishes_as_an_uninterrupted_run() {
    let size = Size { items: 60, ..SMALL };
    killed_run_finishes_as_uninterrupted(size, |dir| {
        lines(&dir.join("out/responses/lek/gsm8k.jsonl")) >= 2
    });
}

#[test]
fn bad_variants_fail_before_anything_runs_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = std::fs::read_to_string(setup(dir, SMALL)).unwrap();
    let cases = [
        // a variant built from an unknown model
        (
            "from = \"tiny\"\nkernels = [\"none\"]\ndistill",
            "from = \"no-such-model\"\nkernels = [\"none\"]\ndistill",
            "eval.toml:11:",
            "no-such-model",
        ),
        // a missing seed file
        (
            "seeds = \"seeds.jsonl\"",
            "seeds = \"missing.jsonl\"",
            "eval.toml:13:",
            "missing.jsonl",
        ),
        // a missing prompt file
        (
            "harmful = \"harmful.jsonl\"",
            "harmful = \"gone.jsonl\"",
            "eval.toml:21:",
            "gone.jsonl",
        ),
        // a training data directory without train.jsonl
        (
            "  { data = \"distilled\", iters",
            "  { data = \"distilled\" },\n  { data = \"nowhere\", resume = true, iters",
            "eval.toml:16:",
            "no train.jsonl",
        ),
        // a judge calibration that is not there
        (
            "baseline = \"lek\"",
            "baseline = \"lek\"\njudge_calibration = [\"nope.json\"]",
            "eval.toml:6:",
            "nope.json",
        ),
        // resume before any stage
        (
            "num_layers = -1 }",
            "num_layers = -1, resume = true }",
            "eval.toml:15:",
            "no adapter before it",
        ),
    ];
    for (from, to, at, what) in cases {
        assert!(config.contains(from), "{from}");
        std::fs::write(dir.join("eval.toml"), config.replace(from, to)).unwrap();
        let o = lem(dir, &["run", "eval.toml"]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{to}: succeeded");
        assert!(err.contains(at) && err.contains(what), "{to}: {err}");
        assert!(!dir.join("out").exists(), "{to}: something ran");
    }
}

/// The shipped experiment configs resolve: every model, file, kernel and
/// plugin they name is there, and `--dry-run` lists their variants' steps.
#[test]
#[ignore = "needs scripts/setup (the Qwen models) and $LEM_UPSTREAM (paper.toml's data)"]
fn the_shipped_experiment_configs_resolve() {
    for (config, steps) in [("quickstart.toml", 4), ("paper.toml", 4)] {
        let path = root().join("examples").join(config);
        let o = Command::new(env!("CARGO_BIN_EXE_lem"))
            .args(["run", path.to_str().unwrap(), "--dry-run"])
            .output()
            .unwrap();
        let out = ok(o);
        // The variants table: from its header to the runs table's.
        let listed = out
            .lines()
            .skip_while(|l| !l.starts_with("variant "))
            .skip(2)
            .take_while(|l| !l.starts_with("run "))
            .count();
        assert_eq!(listed, steps, "{config}:\n{out}");
        assert!(out.contains("lek") && out.contains("abliterated"), "{out}");
    }
}
