//! Turning what a check ran into into an [`Outcome`] and a detail string.

use crate::wire::Outcome;
use std::error::Error as StdError;
use std::io;

/// A check that did not end `connected`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub outcome: Outcome,
    pub detail: String,
}

/// A check's result: the detail of a `connected` outcome, or why not.
pub(crate) type Checked = Result<String, Failure>;

impl Failure {
    pub fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        Failure {
            outcome,
            detail: detail.into(),
        }
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        Failure::new(Outcome::ProtocolError, detail)
    }

    /// Classifies an OS error.
    pub fn io(error: &io::Error) -> Self {
        Failure::new(outcome_of_io(error), error.to_string())
    }

    /// Classifies a library error by the first OS error in its chain of sources; an error
    /// without one is the library rejecting what it received, a protocol error.
    pub fn from_error(error: &(dyn StdError + 'static)) -> Self {
        let detail = chain(error);
        match find_io(error) {
            Some(io) => Failure::new(outcome_of_io(io), detail),
            None => Failure::protocol(detail),
        }
    }
}

/// The outcome an OS error stands for.
pub(crate) fn outcome_of_io(error: &io::Error) -> Outcome {
    use io::ErrorKind as Kind;
    match error.kind() {
        Kind::ConnectionRefused => return Outcome::Refused,
        Kind::ConnectionReset | Kind::ConnectionAborted | Kind::BrokenPipe => {
            return Outcome::Reset;
        }
        Kind::TimedOut => return Outcome::Timeout,
        _ => {}
    }
    match error.raw_os_error() {
        Some(
            libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
            | libc::EACCES
            | libc::EPERM
            | libc::EADDRNOTAVAIL
            | libc::EAFNOSUPPORT,
        ) => Outcome::Unreachable,
        Some(libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT) => Outcome::Unsupported,
        _ => Outcome::ProtocolError,
    }
}

fn find_io<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = error.source();
    }
    None
}

/// The messages of an error and its sources, joined with `: `, without repeats.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_to_the_documented_outcomes() {
        let cases = [
            (libc::ECONNREFUSED, Outcome::Refused),
            (libc::ECONNRESET, Outcome::Reset),
            (libc::EPIPE, Outcome::Reset),
            (libc::EHOSTUNREACH, Outcome::Unreachable),
            (libc::ENETUNREACH, Outcome::Unreachable),
            (libc::EACCES, Outcome::Unreachable),
            (libc::EPERM, Outcome::Unreachable),
            (libc::ETIMEDOUT, Outcome::Timeout),
            (libc::EPROTONOSUPPORT, Outcome::Unsupported),
            (libc::EINVAL, Outcome::ProtocolError),
        ];
        for (errno, outcome) in cases {
            let error = io::Error::from_raw_os_error(errno);
            assert_eq!(outcome_of_io(&error), outcome, "{error}");
        }
    }

    #[test]
    fn a_wrapped_os_error_is_found_in_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("failed to connect")]
        struct Wrapper(#[source] io::Error);
        let error = Wrapper(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        let failure = Failure::from_error(&error);
        assert_eq!(failure.outcome, Outcome::Refused);
        assert!(
            failure.detail.starts_with("failed to connect: "),
            "{}",
            failure.detail
        );
    }
}
