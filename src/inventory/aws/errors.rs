//! EC2 API failures as the one-line reasons a diagnosis shows.

use super::super::{InventoryError, Scope};

pub(super) fn classify_code(
    code: &str,
    message: &str,
    action: &str,
    scope: &Scope,
) -> InventoryError {
    let scope = scope.clone();
    match code {
        "UnauthorizedOperation"
        | "AccessDenied"
        | "AccessDeniedException"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "OptInRequired" => {
            InventoryError::AccessDenied {
                action: format!("ec2:{action}"),
                scope,
                // EC2 appends a long encoded authorization message; the first sentence says it.
                message: first_sentence(message, code),
            }
        }
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => {
            InventoryError::Throttled { scope }
        }
        _ if code.ends_with(".NotFound") || code == "InvalidAMIID.Unavailable" => {
            InventoryError::NotFound {
                what: not_found_what(code, message),
                scope,
            }
        }
        "AuthFailure.NoCredentials" | "MissingAuthenticationToken" => {
            InventoryError::NoCredentials {
                account: scope.account,
            }
        }
        _ => InventoryError::Other(format!(
            "{action} in {scope}: {code}: {}",
            first_sentence(message, "")
        )),
    }
}

/// "The image id '[ami-1]' does not exist" -> "image ami-1", from the code when possible.
fn not_found_what(code: &str, message: &str) -> String {
    let id = message
        .split(|c: char| c.is_whitespace() || "'[]\",".contains(c))
        .find(|w| w.starts_with("i-") || w.starts_with("ami-") || w.starts_with("snap-"))
        .unwrap_or("");
    let kind = match code {
        c if c.starts_with("InvalidInstanceID") => "instance",
        c if c.starts_with("InvalidAMIID") => "image",
        c if c.starts_with("InvalidSnapshot") => "snapshot",
        c if c.starts_with("InvalidKeyPair") => "key pair",
        _ => code,
    };
    if id.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {id}")
    }
}

fn first_sentence(message: &str, fallback: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let cut = line
        .find(". Encoded authorization failure message")
        .unwrap_or(line.len());
    let sentence = line[..cut].trim();
    if sentence.is_empty() {
        fallback.to_string()
    } else {
        sentence.to_string()
    }
}

pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

/// The innermost cause, which says what happened ("Connection refused").
pub(super) fn last_cause(chain: &[String]) -> String {
    chain
        .iter()
        .rev()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default()
}

/// The SDK reports a chain that found no credentials as a request construction failure
/// whose causes say so; there is no typed variant to match.
pub(super) fn mentions_credentials(chain: &[String]) -> bool {
    chain.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s.contains("no credentials")
            || s.contains("credentials provider")
            || s.contains("failed to load credentials")
            || s.contains("could not load credentials")
            || s.contains("profile file")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_become_variants() {
        let scope = Scope::new("222222222222", "us-east-1");
        let denied = classify_code(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation. Encoded authorization failure message: abc",
            "DescribeImages",
            &scope,
        );
        assert_eq!(
            denied.to_string(),
            "access denied to ec2:DescribeImages in account 222222222222 (us-east-1): You are not authorized to perform this operation"
        );
        assert_eq!(
            classify_code("RequestLimitExceeded", "", "DescribeInstances", &scope),
            InventoryError::Throttled {
                scope: scope.clone()
            }
        );
        assert_eq!(
            classify_code(
                "InvalidAMIID.NotFound",
                "The image id '[ami-0123456789abcdef0]' does not exist",
                "DescribeImages",
                &scope
            )
            .to_string(),
            "image ami-0123456789abcdef0 not found in account 222222222222 (us-east-1)"
        );
        assert_eq!(
            classify_code(
                "InvalidInstanceID.NotFound",
                "The instance ID 'i-0123abcd' does not exist",
                "DescribeInstances",
                &scope
            )
            .to_string(),
            "instance i-0123abcd not found in account 222222222222 (us-east-1)"
        );
    }
}
