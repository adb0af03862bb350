//! Waits in host calls are bounded by the call's time limit.
//!
//! The guest-time deadline is an epoch interrupt: it fires only while wasm
//! runs. A plugin that blocks inside a WASI call — a granted clock's sleep, a
//! poll on a granted socket, or a sleep against the frozen clock of a plugin
//! granted nothing (the sleep itself is real time) — never returns to wasm,
//! so the deadline never fires and the host waits as long as the plugin
//! likes. Here `wasi:io/poll`'s `poll` and `pollable.block`, through which
//! every such wait goes, are replaced by the same waits raced against what is
//! left of the call's time; when time runs out the call ends as a timeout.

use crate::sandbox::HostState;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};

/// The version of `wasi:io` that wasmtime-wasi links (imports of any 0.2.x
/// resolve to it).
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

/// Shadows the linker's blocking waits with bounded ones. Call after
/// `wasmtime_wasi::p2::add_to_linker_sync`.
pub(crate) fn bound_waits(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: wasmtime::StoreContextMut<'_, HostState>,
         (pollables,): (Vec<Resource<DynPollable>>,)| {
            let left = store.data().time_left();
            let table = store.data_mut().table();
            // The timer is made inside the runtime `in_tokio` provides.
            let waited = wasmtime_wasi::runtime::in_tokio(async move {
                tokio::time::timeout(left, table.poll(pollables)).await
            });
            match waited {
                Ok(ready) => ready.map(|r| (r,)),
                Err(_) => Err(expired(store.data_mut())),
            }
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: wasmtime::StoreContextMut<'_, HostState>,
         (pollable,): (Resource<DynPollable>,)| {
            let left = store.data().time_left();
            let table = store.data_mut().table();
            let waited = wasmtime_wasi::runtime::in_tokio(async move {
                tokio::time::timeout(left, table.block(pollable)).await
            });
            match waited {
                Ok(done) => done,
                Err(_) => Err(expired(store.data_mut())),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn expired(state: &mut HostState) -> wasmtime::Error {
    state.wall_expired = true;
    wasmtime::format_err!("the call's time ran out while it waited in a host call")
}
