//! Tests of the NetworkPolicy engine: table cases with sentence names (including the
//! upstream e2e suite's x/y/z model), explanations, lint findings, and property tests that
//! compare the engine with a deliberately simple reference implementation.

mod builders;
mod cases;
mod explain;
mod lint;
mod properties;
mod reference;
