//! Reading the harness's input files into the engine's [`model`](crate::engine::model):
//! the topology, NetworkPolicy manifests and a fixture's intent.
//!
//! Everything here validates strictly and never panics: a file either becomes model values
//! with every API default applied, or an [`Error`] whose one-line message names the file,
//! the document (for manifests, counted from 0), the field path and the line, e.g.
//! `policies/x.yaml: document 2: spec.ingress[0].ports[1].endPort: must be >= port (80) (line 14)`.
//!
//! - [`load_topology`]: the topology file (see [`topology`] for its format, the implied
//!   namespace label and how pod IPs are assigned);
//! - [`load_policies`]: NetworkPolicy manifests from files and directories (see [`policy`]
//!   for the validation and defaulting rules, and the choices made where the API server
//!   leaves room: the `default` namespace, CIDRs with host bits);
//! - [`load_intent`]: the intent file (see [`intent`]);
//! - [`render_topology`] and [`render_policies`]: the way back, model values as YAML the
//!   readers accept.
//!
//! YAML is read with serde-saphyr into a small tree that keeps line numbers; each format is
//! then checked by walking that tree, so that every error knows its field path.
//!
//! # Known limitations
//!
//! - A manifest's `metadata.labels` are checked and its `metadata.annotations` accepted
//!   unchecked, but neither is kept: the model has no place for them. TODO: add them to `NetworkPolicy` if a backend needs
//!   to apply manifests with their labels.
//! - The items of a `kind: List` share their document's index; their field paths start with
//!   `items[N]`.
//! - For a value reached through a YAML alias, the line is that of the alias, not of the
//!   anchor.
//! - The intent file names ports by number only, not by container port name.

mod error;
mod fields;
pub mod intent;
pub(crate) mod names;
pub mod policy;
mod render;
pub mod topology;
mod yaml;

pub use error::{Error, FieldError, Result};
pub use intent::{find_pod, load_intent, parse_intent, parse_port_protocol};
pub use policy::{DEFAULT_NAMESPACE, load_policies, parse_policies};
pub use render::{render_policies, render_policy, render_topology};
pub use topology::{load_topology, parse_topology};
