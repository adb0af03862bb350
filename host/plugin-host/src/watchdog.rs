//! Waits in host calls are bounded by the call's time limit.
//!
//! The guest-time deadline is an epoch interrupt: it fires only while wasm
//! runs. A plugin that blocks inside a WASI call — a granted clock's sleep, a
//! poll on a granted socket, or a sleep against the frozen clock of a plugin
//! granted nothing (the sleep itself is real time) — never returns to wasm,
//! so the deadline never fires and the host waits as long as the plugin
//! likes. Here the waits of `wasi:io` — `poll`, `pollable.block`, and the
//! streams' `blocking-*` methods (a granted file or socket) — are replaced
//! by the same waits raced against what is left of the call's time; when
//! time runs out the call ends as a timeout. (Opening a file is not a wait
//! here: grant directories without FIFOs or devices.)

use crate::sandbox::HostState;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamResult};
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    self, Host as _, HostInputStream as _, HostOutputStream as _,
};

/// The version of `wasi:io` that wasmtime-wasi links (imports of any 0.2.x
/// resolve to it).
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";
const WASI_IO_STREAMS: &str = "wasi:io/streams@0.2.12";

/// Runs `$wait` (an async use of `$table`, the call's resource table) for
/// at most the call's time left.
macro_rules! bounded {
    ($store:ident, |$table:ident| $wait:expr) => {{
        let left = $store.data().time_left();
        let $table = $store.data_mut().table();
        // The timer is made inside the runtime `in_tokio` provides.
        let waited =
            wasmtime_wasi::runtime::in_tokio(
                async move { tokio::time::timeout(left, $wait).await },
            );
        match waited {
            Ok(done) => done,
            Err(_) => return Err(expired($store.data_mut())),
        }
    }};
}

/// A stream result as the component model wants it.
type Lowered<T> = (Result<T, streams::StreamError>,);

fn lower<T>(
    store: &mut StoreContextMut<'_, HostState>,
    result: StreamResult<T>,
) -> wasmtime::Result<Lowered<T>> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        // A trap stays a trap; a stream error goes to the guest as one.
        Err(e) => Ok((Err(store.data_mut().table().convert_stream_error(e)?),)),
    }
}

/// Shadows the linker's blocking waits with bounded ones. Call after
/// `wasmtime_wasi::p2::add_to_linker_sync`.
pub(crate) fn bound_waits(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, HostState>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let ready = bounded!(store, |table| table.poll(pollables));
            ready.map(|r| (r,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, HostState>, (pollable,): (Resource<DynPollable>,)| {
            bounded!(store, |table| table.block(pollable))
        },
    )?;
    let mut io = linker.instance(WASI_IO_STREAMS)?;
    io.func_wrap(
        "[method]input-stream.blocking-read",
        |mut store: StoreContextMut<'_, HostState>,
         (stream, len): (Resource<DynInputStream>, u64)| {
            let read = bounded!(store, |table| table.blocking_read(stream, len));
            lower(&mut store, read)
        },
    )?;
    io.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut store: StoreContextMut<'_, HostState>,
         (stream, len): (Resource<DynInputStream>, u64)| {
            let skipped = bounded!(store, |table| table.blocking_skip(stream, len));
            lower(&mut store, skipped)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: StoreContextMut<'_, HostState>,
         (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let written = bounded!(store, |table| table.blocking_write_and_flush(stream, bytes));
            lower(&mut store, written)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: StoreContextMut<'_, HostState>,
         (stream, len): (Resource<DynOutputStream>, u64)| {
            let written = bounded!(store, |table| table
                .blocking_write_zeroes_and_flush(stream, len));
            lower(&mut store, written)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: StoreContextMut<'_, HostState>, (stream,): (Resource<DynOutputStream>,)| {
            let flushed = bounded!(store, |table| table.blocking_flush(stream));
            lower(&mut store, flushed)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut store: StoreContextMut<'_, HostState>,
         (dest, src, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            let spliced = bounded!(store, |table| table.blocking_splice(dest, src, len));
            lower(&mut store, spliced)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn expired(state: &mut HostState) -> wasmtime::Error {
    state.wall_expired = true;
    wasmtime::format_err!("the call's time ran out while it waited in a host call")
}
