//! Compiles every plugin under `plugins/` to a wasm32-wasip2 component and
//! generates the table of the ones that ship inside `lem`.
//!
//! The guests are built by a nested cargo with its own target directory
//! (`target/plugins`), so it never waits on the lock of the build that runs
//! this script.
//!
//! Nothing here picks a contract version: each guest's bindings do (the
//! SDK's crate-root modules are `wit/lem-plugin-0.1.0`, its `v0_2_0` module
//! `wit/lem-plugin-0.2.0`, and a guest with raw bindings names its folder),
//! and the host reads the version from the built component's exports.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = crate_dir.join("../..").canonicalize().unwrap();
    let plugins_dir = root.join("plugins");
    for watched in [
        "plugins",
        "wit",
        "benchmarks",
        "examples",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    // (directory name, package name, shipped?) for every guest crate.
    let mut guests = Vec::new();
    for (dir, shipped) in [
        (plugins_dir.clone(), true),
        (plugins_dir.join("tests"), false),
        (root.join("examples"), false),
    ] {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let manifest = path.join("Cargo.toml");
            if path.file_name().is_some_and(|n| n == "sdk") || !manifest.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&manifest).unwrap();
            if !text.contains("cdylib") {
                continue;
            }
            let package = package_name(&text)
                .unwrap_or_else(|| panic!("no package name in {}", manifest.display()));
            let short = path.file_name().unwrap().to_string_lossy().into_owned();
            guests.push((short, package, shipped));
        }
    }

    let target_dir = root.join("target").join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "wasm",
            "--quiet",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    for (_, package, _) in &guests {
        cmd.args(["-p", package]);
    }
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins for wasm32-wasip2 failed (see above). \
             If the target is missing: `rustup target add wasm32-wasip2`."
        );
    }

    let out_dir = target_dir.join("wasm32-wasip2").join("wasm");
    let mut table = String::from(
        "/// Shipped plugins: (name, component bytes).\npub static PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for (short, package, shipped) in &guests {
        let wasm = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
        assert!(
            wasm.exists(),
            "expected {} after the plugin build",
            wasm.display()
        );
        if *shipped {
            table.push_str(&format!(
                "    ({short:?}, include_bytes!({:?})),\n",
                wasm.display().to_string()
            ));
        }
    }
    table.push_str("];\n");
    table.push_str(&format!(
        "/// Where the guests were built.\npub const TEST_PLUGIN_DIR: &str = {:?};\n",
        out_dir.display().to_string()
    ));
    table.push_str(&format!(
        "/// The shipped benchmarks directory of this source tree.\npub const BENCHMARKS_DIR: &str = {:?};\n",
        root.join("benchmarks").display().to_string()
    ));
    table.push_str("/// Shipped benchmark manifests: (name, TOML text).\npub static MANIFESTS: &[(&str, &str)] = &[\n");
    let mut manifests: Vec<_> = std::fs::read_dir(root.join("benchmarks"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    manifests.sort();
    for path in manifests {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        table.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    let generated = Path::new(&std::env::var_os("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(generated, table).unwrap();
}

fn package_name(cargo_toml: &str) -> Option<String> {
    cargo_toml.lines().find_map(|l| {
        l.trim()
            .strip_prefix("name = ")
            .map(|v| v.trim_matches('"').to_string())
    })
}
