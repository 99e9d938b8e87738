//! The one error type of the input module.

use std::fmt;
use std::path::PathBuf;

/// Why an input file could not be loaded.
///
/// Every variant names the file. [`Error::Invalid`] also names the document (for manifest
/// files, counted from 0 like [`crate::engine::Origin::document`]), the field path and the
/// line, so that its one-line message reads like
/// `policies/x.yaml: document 2: spec.ingress[0].ports[1].endPort: must be >= port (80) (line 14)`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The source's message gives the line and column.
    #[error("{}: {}invalid YAML", file.display(), DocumentPrefix(*document))]
    Syntax {
        file: PathBuf,
        document: Option<usize>,
        line: Option<usize>,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error(
        "{}: {}{}{message}{}",
        file.display(),
        DocumentPrefix(*document),
        FieldPrefix(field),
        LineSuffix(*line)
    )]
    Invalid {
        file: PathBuf,
        document: Option<usize>,
        /// Dotted path of the offending field, e.g. `spec.ingress[0].ports[1].endPort`;
        /// empty when the whole document is at fault.
        field: String,
        line: Option<usize>,
        message: String,
    },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no *.yaml or *.yml files in this directory", path.display())]
    EmptyDirectory { path: PathBuf },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bad field of a one-document harness file (a fixture's `steps.yaml`, a profile), read as
/// `file: field: message (line N)`.
///
/// The harness's own files share this shape with [`Error::Invalid`], less the document
/// number: each holds one YAML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}{}", file.display(), FieldPrefix(field), LineSuffix(usize::try_from(*line).ok()))]
pub struct FieldError {
    pub file: PathBuf,
    /// Path of the offending field, e.g. `[1].delete[0]`; empty when the whole file is at
    /// fault.
    pub field: String,
    /// 1-based; 0 when unknown.
    pub line: u64,
    pub message: String,
}

struct DocumentPrefix(Option<usize>);

impl fmt::Display for DocumentPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(index) => write!(f, "document {index}: "),
            None => Ok(()),
        }
    }
}

struct FieldPrefix<'a>(&'a str);

impl fmt::Display for FieldPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) if line > 0 => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

/// A validation problem inside one document, before the file is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub field: String,
    pub line: usize,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            line,
            message: message.into(),
        }
    }

    /// Attaches the file and document this problem was found in.
    pub fn in_file(self, file: impl Into<PathBuf>, document: Option<usize>) -> Error {
        Error::Invalid {
            file: file.into(),
            document,
            field: self.field,
            line: Some(self.line),
            message: self.message,
        }
    }
}

/// Result of validating one part of a document.
pub(crate) type Checked<T> = std::result::Result<T, Problem>;
