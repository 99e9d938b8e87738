//! The conformance suite: one trial per edge per verified step of every fixture, named
//! `fixture::step::src->dst:port/PROTOCOL::verdict` (see `netpol_harness::runner::suite` for
//! the environment variables).
//!
//! `--list` only plans (no backend). Otherwise the trials libtest-mimic would run are
//! computed first, the suite runs once for them (deploying only the pods they involve) when
//! the first trial asks, and every trial looks up its edge's result.

use libtest_mimic::{Arguments, Failed, Trial};
use netpol_harness::report::progress::Progress;
use netpol_harness::runner::suite::{Suite, SuiteFixture, SuiteResults, load_trial};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// The suite and, once the first selected trial ran it, its results.
struct Shared {
    suite: Suite,
    selected: BTreeSet<String>,
    results: OnceLock<SuiteResults>,
}

impl Shared {
    fn results(&self) -> &SuiteResults {
        self.results.get_or_init(|| {
            for warning in self.suite.lint_warnings() {
                eprintln!("warning: {warning}");
            }
            self.suite
                .run_selected(&self.selected, &Progress::with_terminal(false))
        })
    }
}

fn main() {
    let args = Arguments::from_args();
    let suite = Suite::from_env();
    let names = suite.trial_names();
    // The trials libtest-mimic will run, by its own filter rules.
    let selected: BTreeSet<String> = if args.list {
        BTreeSet::new()
    } else {
        names
            .iter()
            .filter(|name| !args.is_filtered_out(&Trial::test(name.as_str(), || Ok(()))))
            .cloned()
            .collect()
    };
    let shared = Arc::new(Shared {
        suite,
        selected,
        results: OnceLock::new(),
    });
    let mut trials = Vec::with_capacity(names.len());
    for fixture in &shared.suite.fixtures {
        match fixture {
            SuiteFixture::Planned { fixture, plan } => {
                for edge in plan.edges() {
                    let shared = Arc::clone(&shared);
                    let (fixture, name) = (fixture.name.clone(), edge.trial.clone());
                    trials.push(Trial::test(edge.trial.clone(), move || {
                        shared
                            .results()
                            .verdict(&fixture, &name)
                            .map_err(Failed::from)
                    }));
                }
            }
            SuiteFixture::Invalid { name, message } => {
                let message = message.clone();
                trials.push(Trial::test(load_trial(name), move || Err(message.into())));
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
