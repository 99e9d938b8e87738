//! Real servers for the ports the agent does not serve itself, and the agent as a child
//! process: for the local backend (which runs each pod in a network namespace) and for tests.
//!
//! | function | binary | apt package |
//! |---|---|---|
//! | [`start_postgres`] (and [`PostgresTemplate`] to initdb once) | `/usr/lib/postgresql/15/bin/postgres` | `postgresql` |
//! | [`start_redis`] | `redis-server` | `redis-server` |
//! | [`start_dnsmasq`] | `dnsmasq` | `dnsmasq` |
//! | [`start_agent`] | `netpol-probe serve` | (this crate) |
//!
//! Every start function takes an optional network namespace name: the child enters
//! `/run/netns/NAME` between fork and exec (`setns`, so root is needed), and the readiness
//! check runs from inside the same namespace. Each waits until the server really answers (a
//! `SELECT 1`, a `PING`, a DNS query, the agent's ready file) and returns a [`ServerGuard`]
//! that stops the process group when dropped ([`stop_all`] stops many at once). The functions
//! are async and independent, so the servers of many pods can start concurrently
//! (`futures::future::try_join_all`).
//!
//! Each server gets a fresh working directory (data, sockets, pid and log files), removed
//! when its guard is dropped: under the options' `parent_dir` when given, so that a caller
//! can remove what a killed process left by removing one directory it owns, else under
//! [`base_dir`] (`/dev/shm` when roomy).
//!
//! Every server (and initdb) dies with the thread that started it: the child sets
//! `PR_SET_PDEATHSIG` to SIGKILL, so a harness killed with SIGKILL leaves no server running
//! outside its namespaces. The signal fires when the forking *thread* exits, not only the
//! process: servers that must outlive the calling thread are started through a
//! [`Launcher`], which forks them on a thread of its own.

mod agent;
mod dnsmasq;
mod launcher;
mod postgres;
mod process;
mod redis;

pub use agent::{AgentOptions, find_agent_binary, start_agent};
pub use dnsmasq::{DnsmasqOptions, start_dnsmasq};
pub use launcher::Launcher;
pub use postgres::{POSTGRES_BIN_DIR, PostgresOptions, PostgresTemplate, start_postgres};
pub use process::{Error, ServerGuard, WorkDir, base_dir, stop_all};
pub use redis::{RedisOptions, start_redis};
