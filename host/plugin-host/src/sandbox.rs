//! The store a plugin call runs in: deny-all WASI, memory limiter, fuel,
//! a guest-time deadline, bounded stderr and logs.

use crate::error::{CallError, CallErrorKind};
use crate::judge::{Judge, JudgeCall};
use crate::policy::{Grants, Limits, Policy};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

/// How often the engine's epoch advances.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Judge calls allowed per scoring call.
const MAX_JUDGE_CALLS: usize = 8;

/// Bytes of one log line kept.
const MAX_LOG_LINE: usize = 2048;

/// The host side of one call.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    limiter: MemoryCap,
    judge: Arc<dyn Judge>,
    /// Whether the judge may be called now (not from `describe()`).
    pub(crate) judge_allowed: bool,
    pub(crate) judge_calls: Vec<JudgeCall>,
    limits: Limits,
    /// Set when a wait in a host call ran into the call's time limit.
    pub(crate) wall_expired: bool,
    plugin: String,
    started: Instant,
    host_time: Duration,
    timeout: Duration,
    log_lines: usize,
    max_log_lines: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// Guest time so far: wall time minus time spent in host calls.
    fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    /// What is left of this call's time budget, for waits in host calls.
    pub(crate) fn time_left(&self) -> Duration {
        self.timeout.saturating_sub(self.guest_time())
    }

    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub(crate) fn log(&mut self, level: tracing::Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > self.max_log_lines {
            if self.log_lines == self.max_log_lines + 1 {
                tracing::warn!(plugin = %self.plugin, "log limit reached; further lines from this call are dropped");
            }
            return;
        }
        // Escaped here: log lines reach people's terminals.
        let mut message: String = if message.chars().any(char::is_control) {
            message
                .chars()
                .flat_map(|c| {
                    if c.is_control() {
                        c.escape_default().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect()
        } else {
            message
        };
        if message.len() > MAX_LOG_LINE {
            let cut = (0..=MAX_LOG_LINE)
                .rev()
                .find(|&i| message.is_char_boundary(i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        match level {
            tracing::Level::ERROR => tracing::error!(plugin = %self.plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin = %self.plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin = %self.plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin = %self.plugin, "{message}"),
            tracing::Level::TRACE => tracing::trace!(plugin = %self.plugin, "{message}"),
        }
    }

    /// One judge call from the plugin: refused from `describe()`, over the
    /// per-item budget, or when the request is too large (then only its
    /// sha256 is kept, for the audit trail); otherwise forwarded with
    /// `max_tokens` clamped. The request itself is not kept here: the judge
    /// backend keeps the one copy it needs.
    pub(crate) fn judge(
        &mut self,
        mut request: crate::JudgeRequest,
    ) -> Result<crate::JudgeAnswer, crate::JudgeError> {
        if !self.judge_allowed {
            return Err(crate::JudgeError::Refused(
                "describe() may not call the judge".into(),
            ));
        }
        if self.judge_calls.len() >= MAX_JUDGE_CALLS {
            return Err(crate::JudgeError::BudgetExhausted);
        }
        let limits = &self.limits;
        // The schema counts toward the size: it is sent to the judge too.
        let bytes = request.size_bytes();
        let refusal = if request.messages.len() > limits.max_judge_messages {
            Some(format!(
                "judge request of {} messages refused; the limit is {} (`max_judge_messages`)",
                request.messages.len(),
                limits.max_judge_messages
            ))
        } else if bytes > limits.max_judge_request_bytes {
            Some(format!(
                "judge request of {bytes} bytes refused; the limit is {} (`max_judge_request_bytes`)",
                limits.max_judge_request_bytes
            ))
        } else if let Some(m) = request
            .messages
            .iter()
            .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
        {
            Some(format!(
                "judge request refused: role `{}` is not one of system, user, assistant",
                crate::bound::preview(&m.role)
            ))
        } else if !(0.0..=2.0).contains(&request.temperature) {
            // NaN fails this too.
            Some(format!(
                "judge request refused: temperature {} is not between 0 and 2",
                request.temperature
            ))
        } else if let Some(schema) = &request.response_format
            && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(schema)
        {
            // Checked after the size, so this parse is bounded.
            Some(format!(
                "judge request refused: its response format is not JSON ({e})"
            ))
        } else {
            None
        };
        request.max_tokens = request.max_tokens.min(limits.max_judge_tokens);
        let request_sha256 = request.sha256();
        if let Some(reason) = refusal {
            drop(request);
            let answer = Err(crate::JudgeError::Refused(reason));
            self.judge_calls.push(JudgeCall {
                request_sha256,
                forwarded: false,
                answer: answer.clone(),
            });
            return answer;
        }
        let began = Instant::now();
        let answer = self.judge.complete(&request);
        self.host_time += began.elapsed();
        self.judge_calls.push(JudgeCall {
            request_sha256,
            forwarded: true,
            answer: answer.clone(),
        });
        answer
    }

    /// The guest's stderr so far, lossily decoded and trimmed.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }
}

/// Builds a fresh store for one call under `policy`.
pub(crate) fn new_store(
    engine: &Engine,
    plugin: &str,
    policy: &Policy,
    judge: Arc<dyn Judge>,
) -> Result<Store<HostState>, CallError> {
    let limits = &policy.limits;
    let stderr = MemoryOutputPipe::new(limits.max_stderr_bytes);
    let wasi = wasi_ctx(&policy.grants, stderr.clone()).map_err(|e| {
        CallError::new(
            CallErrorKind::Internal,
            format!("cannot set up the sandbox: {e}"),
        )
    })?;
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        stderr,
        limiter: MemoryCap {
            memory_bytes: limits.memory_bytes,
            hit: false,
        },
        judge,
        judge_allowed: false,
        judge_calls: Vec::new(),
        limits: limits.clone(),
        wall_expired: false,
        plugin: plugin.to_string(),
        started: Instant::now(),
        host_time: Duration::ZERO,
        timeout: limits.timeout(),
        log_lines: 0,
        max_log_lines: limits.max_log_lines,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store
        .set_fuel(limits.fuel.unwrap_or(u64::MAX))
        .map_err(|e| CallError::new(CallErrorKind::Internal, e.to_string()))?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        if state.guest_time() > state.timeout {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    Ok(store)
}

/// One call in a fresh store: instantiate, start the clock, run `call`; any
/// failure on the way becomes a [`CallError`]. Kernels and benchmarks use
/// this; scorers keep a live instance instead (see `Scorer::instance`).
pub(crate) fn call_fresh<B, R>(
    engine: &Engine,
    plugin: &str,
    policy: &Policy,
    instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<B>,
    call: impl FnOnce(&B, &mut Store<HostState>) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    let mut store = new_store(engine, plugin, policy, std::sync::Arc::new(crate::NoJudge))?;
    let bindings = instantiate(&mut store).map_err(|e| classify(&store, e, &policy.limits))?;
    start_call(&mut store);
    call(&bindings, &mut store).map_err(|e| classify(&store, e, &policy.limits))
}

/// Starts the clock for a call (store set-up does not count).
pub(crate) fn start_call(store: &mut Store<HostState>) {
    let state = store.data_mut();
    state.started = Instant::now();
    state.host_time = Duration::ZERO;
    state.wall_expired = false;
}

/// Deny-all WASI, opened up only by `grants`.
fn wasi_ctx(grants: &Grants, stderr: MemoryOutputPipe) -> std::io::Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    // stdin closed and stdout discarded are the builder's defaults.
    b.stderr(stderr);
    b.envs(&grants.env.iter().collect::<Vec<_>>());
    if !grants.clocks {
        b.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
    }
    if !grants.random {
        b.secure_random(wasmtime_wasi::Deterministic::new(vec![0x5e; 64]));
        b.insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa7; 64]));
        b.insecure_random_seed(0);
    }
    if grants.network {
        // wasmtime-wasi allows no TCP or UDP until told to: a grant of the
        // network must say so, or it grants nothing.
        b.inherit_network()
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(true);
    } else {
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        b.socket_addr_check(|_, _| Box::pin(async { false }));
    }
    for dir in &grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&dir.host, &dir.guest, perms).map_err(|e| {
            std::io::Error::other(format!(
                "cannot grant directory {}: {e}",
                dir.host.display()
            ))
        })?;
    }
    Ok(b.build())
}

/// Clocks that always read the Unix epoch: time does not pass for a plugin
/// that was not granted a clock.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Caps linear memory and tables; remembers whether the cap was hit so the
/// error can say so.
struct MemoryCap {
    memory_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} MiB reached (asked for {} MiB)",
                self.memory_bytes >> 20,
                desired >> 20
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Turns a wasmtime error from a call into a [`CallError`].
pub(crate) fn classify(
    store: &Store<HostState>,
    error: wasmtime::Error,
    limits: &Limits,
) -> CallError {
    let mut e = classify_unbounded(store, error, limits);
    e.message = crate::bound::cut(e.message, limits.max_error_bytes);
    e
}

fn classify_unbounded(
    store: &Store<HostState>,
    error: wasmtime::Error,
    limits: &Limits,
) -> CallError {
    let state = store.data();
    if state.wall_expired {
        return CallError::new(
            CallErrorKind::Timeout,
            format!(
                "timed out after {} ms (waiting in a host call, e.g. a sleep)",
                limits.timeout_ms
            ),
        );
    }
    let stderr = state.stderr_text();
    let with_stderr = |message: String| {
        if stderr.is_empty() {
            message
        } else {
            format!("{message}; plugin stderr: {stderr}")
        }
    };
    if state.limiter.hit {
        return CallError::new(
            CallErrorKind::MemoryLimit,
            format!("memory limit of {} MiB reached", limits.memory_bytes >> 20),
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::new(
            CallErrorKind::OutOfFuel,
            format!(
                "fuel budget of {} exhausted",
                limits.fuel.unwrap_or(u64::MAX)
            ),
        ),
        Some(Trap::Interrupt) => CallError::new(
            CallErrorKind::Timeout,
            format!("timed out after {} ms", limits.timeout_ms),
        ),
        Some(Trap::StackOverflow) => CallError::new(
            CallErrorKind::StackOverflow,
            with_stderr("wasm stack overflow".into()),
        ),
        Some(trap) => CallError::new(
            CallErrorKind::Trap,
            with_stderr(format!("wasm trap: {trap}")),
        ),
        None => CallError::new(CallErrorKind::Trap, with_stderr(format!("{error:#}"))),
    }
}
