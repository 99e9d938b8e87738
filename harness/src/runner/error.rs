//! The one error type of the runner, and how each kind maps to an exit code.

use crate::backend::BackendError;
use std::path::PathBuf;

/// Why a run could not produce a conformance result.
///
/// Two kinds, kept apart because they mean different things to a user (see
/// [`Error::exit_code`]): *bad input* (a fixture cannot be read or is inconsistent) and
/// *infrastructure errors* (the harness could not test: a pod never became ready, the
/// positive control failed, a probe batch broke). A conformance failure is not an error: it
/// is a [`RunReport`](crate::report::RunReport) with failing edges.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid steps file", file.display())]
    StepsSyntax {
        file: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A bad field of a fixture's `steps.yaml`.
    #[error(transparent)]
    Steps(crate::input::FieldError),
    /// A fixture's topology, policy or intent file could not be loaded; the input error
    /// names the file, document and field.
    #[error(transparent)]
    Input(#[from] crate::input::Error),
    #[error(
        "{}: no fixture here (a fixture directory holds topology.yaml and policies/)",
        path.display()
    )]
    NoFixtures { path: PathBuf },
    #[error(
        "NETPOL_BACKEND=kube needs NETPOL_KUBE_CONTEXT: set it to the kubeconfig context to \
         test, so that a test run never picks a cluster by itself"
    )]
    KubeContextMissing,
    #[error("unknown backend {0:?}: expected local or kube")]
    UnknownBackend(String),
    /// Faults were asked for on a backend that cannot inject them, or a fault is unknown.
    #[error("{0}")]
    Faults(String),
    /// A backend call failed.
    #[error("failed to {action}")]
    Backend {
        action: String,
        #[source]
        source: BackendError,
    },
    /// The positive control failed: some server did not answer with no policy applied.
    #[error(
        "positive control failed: {} of {total} edges did not connect with no policy applied \
         ({}); the harness cannot certify a deny against a server that does not answer",
        failures.len(), examples(failures)
    )]
    Baseline { failures: Vec<String>, total: usize },
    /// A probe batch answered for fewer targets than it was given.
    #[error("probe batch from {pod} returned no result for {missing} of its targets")]
    MissingResults { pod: String, missing: usize },
    /// A probe batch did not finish long after its probes' timeouts.
    #[error("probe batch from {pod} did not finish within {seconds} s")]
    BatchStalled { pod: String, seconds: u64 },
    #[error("interrupted by Ctrl-C: the run stopped and its deployment is torn down")]
    Interrupted,
    /// The backend gave pods other addresses than the fixture's, and some `ipBlock` of the
    /// fixture's policies gives edges another verdict there even when rewritten for the new
    /// addresses (see `runner::readdress`): the plan does not hold here.
    #[error(
        "fixture {fixture}: the pods did not get the fixture's addresses ({}), and its ipBlock \
         peers, even rewritten for the new addresses, give {} edges another verdict ({}); run \
         it on a backend that honours the topology's `ip:` fields (the local backend does), or \
         make its ipBlocks select pods only (a block naming a bare address no pod has cannot \
         follow a pod that gets that address)",
        examples(moved), changed.len(), examples(changed)
    )]
    AddressDependent {
        fixture: String,
        moved: Vec<String>,
        changed: Vec<String>,
    },
}

/// The first few failures, for a one-line message.
fn examples(failures: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = failures[..failures.len().min(SHOWN)].join("; ");
    if failures.len() > SHOWN {
        text.push_str(&format!("; and {} more", failures.len() - SHOWN));
    }
    text
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code: every edge passed.
pub const EXIT_PASS: u8 = 0;
/// Exit code: some edges did not behave as the policies say.
pub const EXIT_CONFORMANCE: u8 = 1;
/// Exit code: the input (arguments or fixture) is invalid.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the harness could not test.
pub const EXIT_INFRASTRUCTURE: u8 = 3;
/// Exit code after Ctrl-C, as shells report a death by SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

impl Error {
    /// Whether this error is bad input rather than an infrastructure problem.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Read { .. }
                | Error::StepsSyntax { .. }
                | Error::Steps(_)
                | Error::Input(_)
                | Error::NoFixtures { .. }
                | Error::UnknownBackend(_)
                | Error::Faults(_)
                | Error::KubeContextMissing
        )
    }

    /// The message and every cause, joined by `: `, for places that show one line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted => EXIT_INTERRUPTED,
            e if e.is_bad_input() => EXIT_BAD_INPUT,
            _ => EXIT_INFRASTRUCTURE,
        }
    }
}
