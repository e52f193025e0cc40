//! Paths in the config: `~` expansion and the XDG base directories.

use std::path::PathBuf;

/// "~" and "~/..." become $HOME and $HOME/...; other paths (and "~user") are left alone.
pub fn expand_tilde(p: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (p, home) {
        ("~", Some(home)) => PathBuf::from(home),
        (p, Some(home)) if p.starts_with("~/") => PathBuf::from(home).join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

/// $XDG_STATE_HOME/ec2-ssh-proxy, else ~/.local/state/ec2-ssh-proxy.
pub fn default_state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", "~/.local/state").join("ec2-ssh-proxy")
}

/// The XDG base directory spec says relative values are invalid and must be ignored.
pub(super) fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| expand_tilde(fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expansion() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(expand_tilde("~"), home);
        assert_eq!(expand_tilde("~/.ssh"), home.join(".ssh"));
        assert_eq!(expand_tilde("~bob/x"), PathBuf::from("~bob/x"));
        assert_eq!(expand_tilde("/abs"), PathBuf::from("/abs"));
    }
}
