//! Draws the library's progress events: indicatif bars (bytes, rate, ETA) on a terminal, one
//! status line per pack otherwise, nothing with `-q` or `--json`.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Printer;
use crate::progress::{Reporter, Silent};

/// The reporter that fits how aibox was started.
pub fn reporter(printer: Printer) -> std::sync::Arc<dyn Reporter> {
    if printer.quiet || printer.json {
        std::sync::Arc::new(Silent)
    } else if std::io::stderr().is_terminal() {
        std::sync::Arc::new(Bars { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Mutex::new(Vec::new()) })
    } else {
        std::sync::Arc::new(Lines { printer })
    }
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<ProgressBar>>,
}

impl Reporter for Bars {
    fn start(&self, verb: &str, label: &str, bytes: u64) -> usize {
        let bar = self.multi.add(ProgressBar::new(bytes));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12.green.bold} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(verb.to_owned());
        bar.set_message(label.to_owned());
        let mut bars = self.bars.lock().expect("progress lock");
        bars.push(bar);
        bars.len() - 1
    }

    fn advance(&self, id: usize, bytes: u64) {
        if let Some(bar) = self.bars.lock().expect("progress lock").get(id) {
            bar.inc(bytes);
        }
    }

    fn finish(&self, id: usize) {
        if let Some(bar) = self.bars.lock().expect("progress lock").get(id) {
            bar.finish_and_clear();
        }
    }
}

struct Lines {
    printer: Printer,
}

impl Reporter for Lines {
    fn start(&self, verb: &str, label: &str, bytes: u64) -> usize {
        if bytes > 0 {
            self.printer.status(verb, format!("{label} ({})", super::human_bytes(bytes)));
        } else {
            self.printer.status(verb, label);
        }
        0
    }
    fn advance(&self, _: usize, _: u64) {}
    fn finish(&self, _: usize) {}
}
