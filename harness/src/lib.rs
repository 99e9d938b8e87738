//! netpol-harness: proves, edge by edge, that a cluster's network does exactly what its
//! NetworkPolicies say.

pub mod engine;
pub mod synth;
