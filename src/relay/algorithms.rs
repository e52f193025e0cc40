//! The ciphers the proxy offers to clients and prefers towards hosts.
//!
//! Every byte is decrypted and encrypted again in the proxy, so the cipher decides most of
//! its CPU cost. russh's default order puts chacha20-poly1305 first and does not offer
//! aes128-gcm at all; with AES instructions (every current EC2 instance type, x86 and
//! Graviton) AES-GCM in aws-lc is several times cheaper per byte. OpenSSH's sshd accepts
//! all of these by default, and its client chooses from what we offer.

use std::borrow::Cow;

use russh::{cipher, Preferred};

/// Most preferred first. Authenticated encryption first; no CBC, no `none`.
pub const CIPHERS: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// russh's defaults (key exchange, host key and MAC orders) with our cipher order.
pub fn preferred() -> Preferred {
    Preferred {
        cipher: Cow::Borrowed(CIPHERS),
        ..Preferred::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_gcm_is_preferred_and_every_offer_is_one_russh_implements() {
        let offered: Vec<&str> = CIPHERS.iter().map(|c| c.as_ref()).collect();
        assert_eq!(offered[0], "aes128-gcm@openssh.com");
        assert_eq!(offered[1], "aes256-gcm@openssh.com");
        for name in &offered {
            assert!(
                cipher::ALL_CIPHERS.iter().any(|n| n.as_ref() == *name),
                "{name} is not implemented by russh"
            );
        }
    }

    #[test]
    fn nothing_weak_is_offered() {
        for name in CIPHERS.iter().map(|c| c.as_ref()) {
            assert!(!name.ends_with("-cbc"), "{name}");
            assert!(name != "none" && name != "clear", "{name}");
        }
    }

    #[test]
    fn the_preference_carries_the_cipher_order_and_keeps_russh_defaults_otherwise() {
        let p = preferred();
        assert_eq!(p.cipher.as_ref(), CIPHERS);
        assert_eq!(p.kex, Preferred::default().kex);
        assert_eq!(p.mac, Preferred::default().mac);
    }
}
