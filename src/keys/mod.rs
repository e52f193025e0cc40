//! Key material seen the way EC2 sees it, next to the keyring that loads the keys.
//! `ec2_fingerprint` ties a local key file to an AWS key pair.
// Issue 3 in progress: the EC2 backend and the host resolver that use this are not
// wired in yet; only the unit tests exercise it. Remove this allow when they are.
#![allow(dead_code)]

pub mod ec2_fingerprint;
