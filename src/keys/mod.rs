//! Key material seen the way EC2 sees it, next to the keyring that loads the keys.
//! `ec2_fingerprint` ties a local key file to an AWS key pair.

pub mod ec2_fingerprint;
pub mod links;
