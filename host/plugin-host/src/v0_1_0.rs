//! Bindings and host imports for contract version 0.1.0 (`wit/lem-plugin-0.1.0`).
//!
//! One module per released contract version: a new version adds a sibling
//! module and the capability files match on it; this one never changes.
//! Everything here converts to and from the host's own types (the newest
//! contract's shape), so a 0.1.0 plugin's judge request has no schema and
//! its metrics have no descriptors.

use crate::sandbox::HostState;
use wasmtime::component::{HasSelf, Linker};

/// The scorer world; its `types`, `log` and `judge` serve the other worlds too.
pub(crate) mod scorer {
    wasmtime::component::bindgen!({
        path: "../../wit/lem-plugin-0.1.0",
        world: "scorer",
    });
}

/// The kernel world.
pub(crate) mod kernel {
    wasmtime::component::bindgen!({
        path: "../../wit/lem-plugin-0.1.0",
        world: "kernel",
        with: {
            "lem:plugin/types": super::scorer::lem::plugin::types,
            "lem:plugin/log": super::scorer::lem::plugin::log,
        },
    });
}

/// The benchmark world.
pub(crate) mod benchmark {
    wasmtime::component::bindgen!({
        path: "../../wit/lem-plugin-0.1.0",
        world: "benchmark",
        with: {
            "lem:plugin/types": super::scorer::lem::plugin::types,
            "lem:plugin/log": super::scorer::lem::plugin::log,
        },
    });
}

use scorer::lem::plugin::{judge, log, types};

impl types::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        HostState::log(self, level, message);
    }
}

impl judge::Host for HostState {
    fn complete(&mut self, request: judge::JudgeRequest) -> Result<String, judge::JudgeError> {
        let request = crate::JudgeRequest {
            messages: request
                .messages
                .into_iter()
                .map(message_from_guest)
                .collect(),
            max_tokens: request.max_tokens,
            temperature: request.temperature.unwrap_or(0.0),
            seed: request.seed,
            // 0.1.0 has neither: its requests keep their digests.
            response_format: None,
            distributions: false,
        };
        self.judge(request).map(|a| a.text).map_err(|e| match e {
            crate::JudgeError::NotConfigured => judge::JudgeError::NotConfigured,
            crate::JudgeError::Failed(m) => judge::JudgeError::Failed(m),
            crate::JudgeError::BudgetExhausted => judge::JudgeError::BudgetExhausted,
            e @ crate::JudgeError::Refused(_) => judge::JudgeError::Failed(e.to_string()),
        })
    }
}

/// Adds this version's host imports (`log`, `judge`) to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    scorer::Scorer::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

pub(crate) fn message_from_guest(m: types::Message) -> lem_core::ChatMessage {
    lem_core::ChatMessage {
        role: m.role,
        content: m.content,
    }
}

pub(crate) fn message_to_guest(m: &lem_core::ChatMessage) -> types::Message {
    types::Message {
        role: m.role.clone(),
        content: m.content.clone(),
    }
}

pub(crate) fn info_from_guest(i: types::PluginInfo) -> crate::PluginInfo {
    crate::PluginInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        // 0.1.0 names its metrics only.
        metrics: i
            .metrics
            .into_iter()
            .map(crate::runtime::MetricDescriptor::named)
            .collect(),
        needs_judge: i.needs_judge,
    }
}

/// The plugin's error, its message cut to `max_error_bytes`.
pub(crate) fn plugin_error(e: types::PluginError, limits: &lem_core::Limits) -> crate::CallError {
    use crate::CallErrorKind as K;
    let (kind, message) = match e {
        types::PluginError::InvalidInput(m) => (K::InvalidInput, m),
        types::PluginError::JudgeFailed(m) => (K::JudgeFailed, m),
        types::PluginError::JudgeUnparsable(m) => (K::JudgeUnparsable, m),
        types::PluginError::Internal(m) => (K::Internal, m),
    };
    crate::CallError::new(kind, crate::bound::cut(message, limits.max_error_bytes))
}

/// A score card in the host's terms.
pub(crate) fn score_card_from_guest(card: types::ScoreCard) -> crate::scorer::GuestScoreCard {
    crate::scorer::GuestScoreCard {
        metrics: card
            .metrics
            .into_iter()
            .map(|m| (m.name, m.value))
            .collect(),
        details: card.details,
    }
}
