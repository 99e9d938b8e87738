//! `netpol-probe serve`: the agent's servers for the ports of the app a probe pod stands in for.
//!
//! Every server names the pod it runs in (its *identity*, `namespace/name`) so that a probe can
//! prove which pod it reached:
//!
//! | check | what the server does |
//! |---|---|
//! | `http` | HTTP/1.1; `GET /` answers 200 with an [`IdentityBody`](crate::wire::IdentityBody), `GET /healthz` answers 200 once every listener is bound (503 before) |
//! | `websocket` | accepts the upgrade, sends the identity as the first text message, echoes messages |
//! | `tcp` | writes the identity and a newline, closes |
//! | `udp` | answers each datagram with the identity |
//! | `sctp` | one-to-one SCTP: writes the identity and a newline, closes; skipped with a warning when the kernel has no SCTP |
//!
//! `postgres`, `redis` and `dns` ports are skipped: real servers serve them
//! ([`crate::servers`]).

mod config;
mod handlers;
mod http;
mod run;

pub use config::{Error as ConfigError, ServeConfig, load_spec, parse_port, transport_of};
pub use run::{Error, Server};
