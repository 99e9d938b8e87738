//! Integration tests of the agent against real servers on loopback and in throwaway network
//! namespaces. One test binary, so the helpers in `common` are shared and linked once.

mod agent_checks;
mod batch;
mod common;
mod negative_outcomes;
mod real_servers;
mod serve_binary;
mod server_lifetime;
