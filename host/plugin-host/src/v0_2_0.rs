//! Bindings and host imports for contract version 0.2.0 (`wit/lem-plugin-0.2.0`).
//!
//! One module per released contract version (see `v0_1_0`); this one never
//! changes once released. Everything converts to and from the host's own
//! types: a judge request becomes a [`crate::JudgeRequest`] with its schema
//! and distributions flag, a [`crate::JudgeAnswer`] goes back whole, and a
//! plugin's metric descriptors become [`crate::MetricDescriptor`]s.

use crate::sandbox::HostState;
use wasmtime::component::{HasSelf, Linker};

/// The scorer world; its `types`, `log` and `judge` serve the other worlds too.
pub(crate) mod scorer {
    wasmtime::component::bindgen!({
        path: "../../wit/lem-plugin-0.2.0",
        world: "scorer",
    });
}

/// The kernel world.
pub(crate) mod kernel {
    wasmtime::component::bindgen!({
        path: "../../wit/lem-plugin-0.2.0",
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
        path: "../../wit/lem-plugin-0.2.0",
        world: "benchmark",
        with: {
            "lem:plugin/types": super::scorer::lem::plugin::types,
            "lem:plugin/log": super::scorer::lem::plugin::log,
        },
    });
}

use scorer::exports::lem::plugin::scorer_api;
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
    fn complete(
        &mut self,
        request: judge::JudgeRequest,
    ) -> Result<judge::JudgeAnswer, judge::JudgeError> {
        let request = crate::JudgeRequest {
            messages: request
                .messages
                .into_iter()
                .map(message_from_guest)
                .collect(),
            max_tokens: request.max_tokens,
            temperature: request.temperature.unwrap_or(0.0),
            seed: request.seed,
            response_format: request.response_format,
            distributions: request.value_distributions,
        };
        self.judge(request)
            .map(answer_to_guest)
            .map_err(|e| match e {
                crate::JudgeError::NotConfigured => judge::JudgeError::NotConfigured,
                crate::JudgeError::Failed(m) => judge::JudgeError::Failed(m),
                crate::JudgeError::BudgetExhausted => judge::JudgeError::BudgetExhausted,
                crate::JudgeError::Refused(m) => judge::JudgeError::Refused(m),
            })
    }
}

/// The whole answer, as the plugin sees it (the request key stays with the host).
fn answer_to_guest(a: crate::JudgeAnswer) -> judge::JudgeAnswer {
    judge::JudgeAnswer {
        text: a.text,
        finish_reason: a.finish_reason,
        prompt_tokens: a.prompt_tokens,
        completion_tokens: a.completion_tokens,
        cached: a.cached,
        constrained: a.constrained,
        distributions: a
            .distributions
            .into_iter()
            .map(|(field, values)| judge::FieldDistribution {
                field,
                values: values
                    .into_iter()
                    .map(|(value, probability)| judge::ValueProbability { value, probability })
                    .collect(),
            })
            .collect(),
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

pub(crate) fn item_to_guest(item: &crate::scorer::PluginItem) -> types::Item {
    types::Item {
        id: item.id.clone(),
        benchmark: item.benchmark.clone(),
        record: item.record.clone(),
    }
}

/// What `score` gets besides the item and response.
pub(crate) fn context_to_guest(
    messages: &[lem_core::ChatMessage],
    options: &[(String, String)],
) -> scorer_api::ScoreContext {
    scorer_api::ScoreContext {
        messages: messages.iter().map(message_to_guest).collect(),
        options: options.to_vec(),
    }
}

pub(crate) fn info_from_guest(i: types::PluginInfo) -> crate::PluginInfo {
    crate::PluginInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        metrics: i
            .metrics
            .into_iter()
            .map(|m| crate::MetricDescriptor {
                name: m.name,
                range: m.range.map(|r| [r.lo, r.hi]),
                higher_is_better: m.higher_is_better,
                unit: match m.unit {
                    types::MetricUnit::Number => lem_core::MetricUnit::Number,
                    types::MetricUnit::Percent => lem_core::MetricUnit::Percent,
                },
                described: true,
            })
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

/// A score card in the host's terms (the same shape in every version so far).
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
