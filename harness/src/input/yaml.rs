//! A YAML stream split into documents, each read into a small tree of [`Node`]s that keeps
//! the line every value came from.
//!
//! The input formats are validated by walking this tree rather than by deriving
//! `Deserialize` on the input types: that way every error carries the full field path
//! (`spec.ingress[0].ports[1].endPort`), the document index and a line number, and strict
//! checks such as unknown fields are written once.

use super::error::{Error, Result};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use serde_saphyr::granit_parser::{Event, Parser};
use std::fmt;
use std::path::Path;

/// A YAML value, after serde-saphyr resolved tags, anchors and scalar types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; duplicate keys are rejected by the parser.
    Map(Vec<(Node, Node)>),
}

/// A value and the (1-based) line it starts on, relative to the whole file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: usize,
}

impl Node {
    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<ValueOnly>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value.0,
            line: usize::try_from(spanned.referenced.line()).unwrap_or(0),
        })
    }
}

/// The value of a node without its location; [`Node`] wraps it in a `Spanned`.
struct ValueOnly(Value);

impl<'de> Deserialize<'de> for ValueOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(ValueOnly)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// One YAML document of a stream: its index in the stream and its root node
/// (`None` for an empty document).
#[derive(Debug)]
pub(crate) struct Document {
    pub index: usize,
    pub root: Option<Node>,
}

/// A YAML syntax error: the document it is in and the line, when known.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub document: usize,
    pub line: Option<usize>,
    pub source: Box<serde_saphyr::Error>,
}

/// Splits `text` into its documents and reads each one.
///
/// Empty documents are kept (with `root: None`) so that indices count every document of
/// the file, as a user counting `---` separators would.
pub(crate) fn documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let starts = document_starts(text)?;
    let mut documents = Vec::with_capacity(starts.len());
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(text.len());
        let root = parse_document(text, start, end).map_err(|source| SyntaxError {
            document: index,
            line: source
                .location()
                .and_then(|l| usize::try_from(l.line()).ok()),
            source: Box::new(source),
        })?;
        documents.push(Document { index, root });
    }
    Ok(documents)
}

/// Reads the document at `text[start..end]`. The lines before it are replaced by empty
/// lines, so that the parser's line numbers (in nodes and errors) count from the top of
/// the file.
fn parse_document(
    text: &str,
    start: usize,
    end: usize,
) -> Result<Option<Node>, serde_saphyr::Error> {
    let before = text.get(..start).unwrap_or_default();
    let mut padded = "\n".repeat(before.matches('\n').count());
    padded.push_str(text.get(start..end).unwrap_or_default());
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<Option<Node>>(&padded, options).map_err(reword)
}

/// Rewords the one parser message that speaks to the library's user rather than ours.
fn reword(error: serde_saphyr::Error) -> serde_saphyr::Error {
    match &error {
        serde_saphyr::Error::DuplicateMappingKey { key, location } => {
            let key = key
                .as_deref()
                .map(|k| format!(" {k:?}"))
                .unwrap_or_default();
            <serde_saphyr::Error as de::Error>::custom(format!(
                "duplicate key{key} at line {}, column {} (remove one of them)",
                location.line(),
                location.column()
            ))
        }
        _ => error,
    }
}

/// Byte offsets where each document of the stream starts (the first one at 0).
fn document_starts(text: &str) -> Result<Vec<usize>, SyntaxError> {
    let mut starts = vec![0];
    let mut parser = Parser::new_from_str(text);
    let mut seen_first = false;
    while let Some(event) = parser.next_event() {
        let (event, span) = match event {
            Ok(ok) => ok,
            Err(scan) => {
                // Let serde-saphyr describe the error in the document it is in, so that all
                // syntax errors read the same way.
                let document = starts.len() - 1;
                let source = match parse_document(text, starts[document], text.len()) {
                    Err(source) => source,
                    Ok(_) => <serde_saphyr::Error as de::Error>::custom(scan.info()),
                };
                return Err(SyntaxError {
                    document,
                    line: source
                        .location()
                        .and_then(|l| usize::try_from(l.line()).ok())
                        .or(Some(scan.marker().line())),
                    source: Box::new(source),
                });
            }
        };
        if let Event::DocumentStart(..) = event {
            if seen_first {
                let offset = span.start.byte_offset().unwrap_or(span.start.index());
                starts.push(offset.min(text.len()));
            }
            seen_first = true;
        }
    }
    Ok(starts)
}

/// Reads a whole file as UTF-8 text.
pub(crate) fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// The root of a file that must hold exactly one non-empty YAML document.
pub(crate) fn single_document(text: &str, file: &Path) -> Result<Node> {
    let documents = documents(text).map_err(|e| Error::Syntax {
        file: file.to_owned(),
        document: (e.document > 0).then_some(e.document),
        line: e.line,
        source: e.source,
    })?;
    let mut roots = documents
        .into_iter()
        .filter_map(|d| d.root.map(|root| (d.index, root)));
    let Some((_, root)) = roots.next() else {
        return Err(Error::Invalid {
            file: file.to_owned(),
            document: None,
            field: String::new(),
            line: None,
            message: "the file is empty".to_owned(),
        });
    };
    if let Some((index, extra)) = roots.next() {
        return Err(Error::Invalid {
            file: file.to_owned(),
            document: Some(index),
            field: String::new(),
            line: Some(extra.line),
            message: "expected a single YAML document (remove the `---` separator)".to_owned(),
        });
    }
    Ok(root)
}
