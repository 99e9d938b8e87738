//! Progress while a run goes, on stderr: a spinner per phase on a terminal (indicatif), plain
//! lines otherwise (CI logs).

use crate::runner::{Event, Observer, Phase};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// Shows a run's progress; an [`Observer`] to pass to [`run_fixture`](crate::runner::run_fixture).
pub struct Progress {
    fancy: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    fixture: String,
    phase: Option<(Phase, String)>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        Progress::with_terminal(std::io::stderr().is_terminal())
    }

    /// Spinners when `fancy`, plain lines otherwise.
    pub fn with_terminal(fancy: bool) -> Self {
        Progress {
            fancy,
            state: Mutex::new(State::default()),
        }
    }

    fn line(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event<'_>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match event {
            Event::FixtureStarted {
                fixture,
                pods,
                steps,
            } => {
                state.fixture = (*fixture).to_owned();
                self.line(&format!("{fixture}: {pods} pods, {steps} verified steps"));
            }
            Event::PhaseStarted { phase, step, edges } => {
                let label = match step {
                    Some(step) => format!("{} {phase} {step}", state.fixture),
                    None => format!("{} {phase}", state.fixture),
                };
                let label = if *edges > 0 {
                    format!("{label} ({edges} edges)")
                } else {
                    label
                };
                if self.fancy {
                    let bar = ProgressBar::new_spinner();
                    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} {msg}") {
                        bar.set_style(style);
                    }
                    bar.set_prefix(label.clone());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    state.bar = Some(bar);
                } else {
                    self.line(&format!("{label}: started"));
                }
                state.phase = Some((*phase, label));
            }
            Event::RoundFinished {
                round,
                matching,
                edges,
                elapsed,
            } => {
                let text = format!(
                    "round {round}: {matching}/{edges} edges as expected ({} ms)",
                    elapsed.as_millis()
                );
                match (&state.bar, &state.phase) {
                    (Some(bar), _) => bar.set_message(text),
                    (None, Some((_, label))) => self.line(&format!("{label}: {text}")),
                    (None, None) => self.line(&text),
                }
            }
            Event::PhaseFinished { elapsed, .. } => {
                let label = state
                    .phase
                    .take()
                    .map(|(_, label)| label)
                    .unwrap_or_default();
                let text = format!("{label}: done in {} ms", elapsed.as_millis());
                match state.bar.take() {
                    Some(bar) => {
                        bar.finish_with_message(format!("done in {} ms", elapsed.as_millis()))
                    }
                    None => self.line(&text),
                }
            }
            Event::Failed { message } => {
                let label = state
                    .phase
                    .take()
                    .map_or_else(|| state.fixture.clone(), |(_, label)| label);
                if let Some(bar) = state.bar.take() {
                    bar.abandon_with_message("failed");
                }
                self.line(&format!("{label}: failed: {message}"));
            }
        }
    }
}
