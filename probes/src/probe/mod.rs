//! `netpol-probe probe`: tries every [`Target`](crate::wire::Target) of a batch concurrently and
//! reports what each *probe* saw as an [`Outcome`](crate::wire::Outcome).
//!
//! The whole check of a target (connect and exchange) runs under one deadline of the target's
//! `timeout_ms`, so a silently dropped edge costs its timeout and no more. Socket errors map to
//! outcomes the same way for every check:
//!
//! | error | outcome |
//! |---|---|
//! | `ECONNREFUSED` (TCP reset to the SYN, ICMP port unreachable, SCTP abort) | `refused` |
//! | the deadline passed | `timeout` |
//! | `ECONNRESET`, `EPIPE`, `ECONNABORTED` on an established connection | `reset` |
//! | `EHOSTUNREACH`, `ENETUNREACH`, `EACCES`/`EPERM` (a `prohibit` route, a rejecting rule) | `unreachable` |
//! | an answer that is not the expected protocol | `protocol_error` |
//! | no SCTP in the kernel, or a check the protocol cannot carry | `unsupported` |
//!
//! A target with a `host` is first resolved (`resolve`: one UDP `A` query to its `resolver`,
//! under its own deadline of `timeout_ms`); a resolution that fails in any way is
//! `dns_failure` and the target is not dialled. The check then dials the resolved address.

mod batch;
mod checks;
mod outcome;
mod resolve;
mod services;

pub use batch::{DEFAULT_CONCURRENCY, Error, Prober, read_targets};
pub use services::{DEFAULT_DNS_NAME, postgres_ready};
