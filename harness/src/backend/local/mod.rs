//! The local backend (stub while being written).
pub mod netns;
pub mod nft;
mod selector;

pub struct LocalBackend;
pub struct LocalConfig;
