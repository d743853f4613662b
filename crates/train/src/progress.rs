//! [`Progress`]: an indicatif bar (epoch, step, loss, steps/s, scale) shown
//! only when stdout is a terminal and the run is not printing JSON.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over a run's steps, or nothing.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `total` steps, visible only on a terminal without `--json`.
    pub fn new(total: u64, json: bool) -> Progress {
        let visible = !json && std::io::stdout().is_terminal();
        let target = if visible { ProgressDrawTarget::stdout() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, {per_sec}, {msg} ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar }
    }

    /// Whether it draws anything.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Shows the current epoch (1-based) of `epochs`.
    pub fn epoch(&self, epoch: usize, epochs: usize) {
        self.bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    }

    /// Advances one step with its loss and loss scale.
    pub fn step(&self, loss: f64, scale: Option<f32>) {
        self.bar.inc(1);
        match scale {
            Some(s) => self.bar.set_message(format!("loss {loss:.4}, scale {s}")),
            None => self.bar.set_message(format!("loss {loss:.4}")),
        }
    }

    /// Prints a line to stderr without tearing the bar.
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
