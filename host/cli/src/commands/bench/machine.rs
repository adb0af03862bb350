//! The machine a figure was measured on, for every bench's output.

/// The CPU's model name, its core count and the kernels lem runs on it.
pub fn describe() -> String {
    let cpu = lem_engine::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores; {}", lem_engine::cpu_kernels())
}
