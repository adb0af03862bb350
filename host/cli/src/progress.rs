//! The evaluation library's events as progress bars and lines on stderr.

use lem_eval::{Event, Sink, Task};
use std::collections::HashMap;
use std::sync::Mutex;

/// A progress bar for `total` steps of `what`.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what:<28} {{bar:30}} {{pos}}/{{len}} {{msg}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

/// One bar per task, failures and notices printed above the bars
/// (escaped: they carry plugin and model text).
#[derive(Default)]
pub struct Bars {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<Task, indicatif::ProgressBar>>,
    /// Every bar's title, when the command has one task.
    title: Option<&'static str>,
}

impl Bars {
    /// Bars titled by their task.
    pub fn new() -> Self {
        Bars::default()
    }

    /// Bars all titled `title`.
    pub fn titled(title: &'static str) -> Self {
        Bars {
            title: Some(title),
            ..Bars::default()
        }
    }

    fn with_bar(&self, task: &Task, f: impl FnOnce(&indicatif::ProgressBar)) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bar) = bars.get(task) {
            f(bar);
        }
    }

    fn print(&self, line: String) {
        self.multi.suspend(|| eprintln!("{line}"));
    }
}

impl Sink for Bars {
    fn event(&self, event: Event) {
        use crate::text::escape;
        match event {
            Event::Started { task, total } => {
                let title = self.title.map_or_else(|| task.to_string(), str::to_string);
                let bar = self.multi.add(progress_bar(total, &title));
                self.bars
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(task, bar);
            }
            Event::Advanced { task, status } => self.with_bar(&task, |bar| {
                bar.inc(1);
                if let Some(status) = status {
                    bar.set_message(status);
                }
            }),
            Event::Finished { task } => self.with_bar(&task, |bar| bar.finish_and_clear()),
            Event::ItemFailed {
                id,
                line: Some(line),
                stage,
                message,
                ..
            } => self.print(format!(
                "item `{}` (data line {line}): {stage} failed: {}",
                escape(&id),
                escape(&message)
            )),
            Event::ItemFailed {
                id,
                line: None,
                message,
                ..
            } => self.print(format!("item `{}`: {}", escape(&id), escape(&message))),
            Event::Notice(text) => self.print(escape(&text).into_owned()),
        }
    }
}
