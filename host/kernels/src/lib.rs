//! lem's CPU kernels: the inner loops that decide decode and training speed,
//! on plain slices.
//!
//! Why a crate of its own: these loops are the only code in lem written per
//! instruction set (x86-64 AVX-512 VNNI and AVX2, aarch64 NEON with `sdot`
//! and `i8mm`), and every path must be tested on the architecture it runs
//! on. With no dependency but `half`, this crate cross-compiles for
//! `aarch64-unknown-linux-gnu` in seconds and its tests run under
//! `qemu-aarch64` (`scripts/test-aarch64`, run by CI), so a Mac or Graviton
//! user never gets a kernel no machine has run. The engine wraps them in
//! candle ops and shares the work out on candle's thread pool.
//!
//! - [`q8_0`]: `x·Wᵀ` for a few rows of `x` against a Q8_0 weight, the bulk
//!   of every decoded token; [`q8_0::Kernel`] is the instruction-set choice
//!   every product here shares.
//! - [`q4_1`]: the same against a Q4_1 weight (SmolLM2's GGUF).
//! - [`q4_k`], [`q6_k`]: against Q4_K and Q6_K weights (Qwen2.5's Q4_K_M
//!   GGUFs), for prompts as well as decoding: tiles of four weight rows by
//!   four input rows, whose input is quantized to Q8_K ([`q8_k`]).
//! - [`math`]: `exp`, `tanh` and the GELU gate, in loops compiled for the
//!   CPU's vector width ([`simd_kernel!`]).
//! - [`tune`]: how far ahead the products prefetch the weight, measured on
//!   this CPU.

pub mod math;
pub mod q4_1;
pub mod q4_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_k;
mod quad;
pub mod tune;

/// The CPU this process runs on, as its vendor names it (`/proc/cpuinfo`'s
/// `model name`, or on macOS `machdep.cpu.brand_string`), so a speed figure
/// can say where it was measured. `None` where neither says.
pub fn cpu_model() -> Option<String> {
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        // x86 says `model name`; many aarch64 kernels say only `CPU part`.
        for key in ["model name", "Model", "Hardware"] {
            let found = info.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_string())
            });
            if found.is_some() {
                return found;
            }
        }
    }
    #[cfg(target_os = "macos")]
    {
        let out = std::process::Command::new("sysctl")
            .args(["-n", "machdep.cpu.brand_string"])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !s.is_empty() {
            return Some(s);
        }
    }
    None
}
