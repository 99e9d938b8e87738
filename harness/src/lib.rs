//! netpol-harness: proves, edge by edge, that a cluster's network does exactly what its
//! NetworkPolicies say.

pub mod backend;
pub mod engine;
pub mod report;
pub mod runner;
pub mod synth;
