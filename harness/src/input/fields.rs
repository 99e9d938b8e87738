//! Typed, path-tracking access to a [`Node`] tree: the strict reading every input format
//! shares (unknown fields rejected, types checked, each error naming its field path).

use super::error::{Checked, Problem};
use super::yaml::{Node, Value};

/// `parent.key`, or `key` at the root.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn at(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A mapping being read field by field. Unknown fields are rejected up front, as
/// `kubectl apply --validate=strict` does, so that a misspelt field is reported as such
/// rather than as a missing one.
pub(crate) struct Object<'a> {
    path: String,
    line: usize,
    entries: Vec<(&'a str, &'a Node)>,
}

impl<'a> Object<'a> {
    /// Reads `node` as a mapping whose keys are all among `known`. `null` reads as an empty
    /// mapping, as the API server decodes a JSON `null` object into its zero value.
    pub fn new(node: &'a Node, path: &str, known: &[&str]) -> Checked<Self> {
        let entries = entries(node, path)?;
        if let Some((key, value)) = entries.iter().find(|(key, _)| !known.contains(key)) {
            return Err(Problem::new(
                join(path, key),
                value.line,
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        }
        Ok(Object {
            path: path.to_owned(),
            line: node.line,
            entries,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn line(&self) -> usize {
        self.line
    }

    /// A problem with field `key`, at the line of its value (or of the mapping when the
    /// field is absent).
    pub fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        let line = self
            .entries
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(self.line, |(_, n)| n.line);
        Problem::new(self.field_path(key), line, message)
    }

    /// The path of field `key` of this mapping.
    pub fn field_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Field `key`; an explicit `null` counts as absent, as in the API server.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        let (_, node) = self.entries.iter().find(|(k, _)| *k == key)?;
        Some(*node).filter(|node| node.value != Value::Null)
    }

    /// Field `key`, which must be present and not `null`.
    pub fn required(&self, key: &str) -> Checked<&'a Node> {
        self.get(key).ok_or_else(|| {
            Problem::new(self.field_path(key), self.line, "required field is missing")
        })
    }

    /// Field `key` as a string.
    pub fn string(&self, key: &str) -> Checked<Option<&'a str>> {
        let path = self.field_path(key);
        self.get(key).map(|node| string(node, &path)).transpose()
    }

    /// Field `key` as a string that must be present.
    pub fn required_string(&self, key: &str) -> Checked<&'a str> {
        let path = self.field_path(key);
        string(self.required(key)?, &path)
    }

    /// Field `key` as a list of nodes (absent: empty), with each element's path.
    pub fn list(&self, key: &str) -> Checked<Vec<(String, &'a Node)>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(node) => list(node, &path),
        }
    }
}

/// The problem "expected X, found Y" at `path`.
pub(crate) fn expected(node: &Node, path: &str, what: &str) -> Problem {
    Problem::new(
        path,
        node.line,
        format!("expected {what}, found {}", node.kind()),
    )
}

pub(crate) fn string<'a>(node: &'a Node, path: &str) -> Checked<&'a str> {
    match &node.value {
        Value::Str(s) => Ok(s),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            Err(expected(node, path, "a string (quote the value)"))
        }
        _ => Err(expected(node, path, "a string")),
    }
}

pub(crate) fn list<'a>(node: &'a Node, path: &str) -> Checked<Vec<(String, &'a Node)>> {
    match &node.value {
        Value::Seq(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, n)| (at(path, i), n))
            .collect()),
        _ => Err(expected(node, path, "a list")),
    }
}

pub(crate) fn boolean(node: &Node, path: &str) -> Checked<bool> {
    match node.value {
        Value::Bool(b) => Ok(b),
        _ => Err(expected(node, path, "true or false")),
    }
}

/// One entry of a string-to-string mapping: key, value, and the line of the value.
pub(crate) struct StringEntry<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub line: usize,
}

/// A mapping of strings to strings (labels, `matchLabels`), in document order.
pub(crate) fn string_map<'a>(node: &'a Node, path: &str) -> Checked<Vec<StringEntry<'a>>> {
    entries(node, path)?
        .into_iter()
        .map(|(key, value)| {
            Ok(StringEntry {
                key,
                value: string(value, &join(path, key))?,
                line: value.line,
            })
        })
        .collect()
}

/// A port number from 1 to 65535.
pub(crate) fn port_number(node: &Node, path: &str) -> Checked<u16> {
    match node.value {
        Value::Int(n) => u16::try_from(n)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| Problem::new(path, node.line, "must be between 1 and 65535")),
        _ => Err(expected(node, path, "a port number")),
    }
}

/// The entries of a mapping with string keys (`null`: none).
fn entries<'a>(node: &'a Node, path: &str) -> Checked<Vec<(&'a str, &'a Node)>> {
    match &node.value {
        Value::Null => Ok(Vec::new()),
        Value::Map(entries) => entries
            .iter()
            .map(|(key, value)| match &key.value {
                Value::Str(key) => Ok((key.as_str(), value)),
                _ => Err(Problem::new(
                    path,
                    key.line,
                    format!("keys must be strings, found {}", key.kind()),
                )),
            })
            .collect(),
        _ => Err(expected(node, path, "a mapping")),
    }
}

/// The string field `key` of `node` if `node` is a mapping that has one, without checking
/// anything else (to tell a `List` from a single object).
pub(crate) fn peek_string<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    entries
        .iter()
        .find_map(|(k, v)| match (&k.value, &v.value) {
            (Value::Str(k), Value::Str(v)) if k == key => Some(v.as_str()),
            _ => None,
        })
}
