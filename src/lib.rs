//! ec2-ssh-proxy as a library: the binary (`main.rs`) is a thin CLI over these modules, and
//! the integration tests in `tests/` drive modules such as the inventory directly (a binary
//! crate's modules cannot be imported from there).

pub mod auth;
pub mod ca;
pub mod cli;
pub mod client_keys;
pub mod config;
pub mod demo;
pub mod diaglog;
pub mod diagnose;
pub mod diagnosis;
pub mod front;
pub mod inventory;
pub mod keyring;
pub mod keys;
pub mod pins;
pub mod proxy;
pub mod relay;
pub mod resolve;
pub mod state;
pub mod target;
pub mod winners;
