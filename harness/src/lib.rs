//! netpol-harness: proves, edge by edge, that a cluster's network does exactly what its
//! NetworkPolicies say.

pub mod backend;
pub mod certify;
pub mod cli;
pub mod engine;
pub mod input;
pub mod report;
pub mod runner;
pub mod synth;
