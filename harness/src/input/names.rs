//! Kubernetes name syntax, as `k8s.io/apimachinery/pkg/util/validation` defines it.
//!
//! Each check returns the reason a value is invalid, written as the end of a sentence that
//! starts with the field path.

/// A DNS-1123 label: at most 63 lowercase alphanumerics or `-`, starting and ending with an
/// alphanumeric (namespace names).
pub(crate) fn dns1123_label(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 63 || !is_dns_label(value) {
        return Err(format!(
            "{value:?} is not a valid DNS-1123 label (at most 63 characters: lowercase letters, \
             digits and '-', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels (object
/// names such as `metadata.name`).
pub(crate) fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 || !value.split('.').all(is_dns_label) {
        return Err(format!(
            "{value:?} is not a valid DNS-1123 subdomain (at most 253 characters: lowercase \
             letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The name part of a qualified name (and a non-empty label value): at most 63
/// alphanumerics, `-`, `_` or `.`, starting and ending with an alphanumeric.
fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// A label key: an optional DNS-1123 subdomain prefix and `/`, then a name of at most 63
/// alphanumerics, `-`, `_` or `.`, starting and ending with an alphanumeric.
pub(crate) fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix)
            .map_err(|_| format!("label key {key:?} has an invalid prefix {prefix:?}"))?;
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "{key:?} is not a valid label key (an optional DNS subdomain prefix and '/', then at \
             most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` or `.`, starting and ending
/// with an alphanumeric.
pub(crate) fn label_value(value: &str) -> Result<(), String> {
    if !value.is_empty() && !is_qualified_name_part(value) {
        return Err(format!(
            "{value:?} is not a valid label value (empty, or at most 63 letters, digits, '-', \
             '_' or '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// An `IANA_SVC_NAME` (a container port name): at most 15 lowercase alphanumerics or `-`,
/// with at least one letter, no `-` at either end and no `--`.
pub(crate) fn port_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 15
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.iter().any(u8::is_ascii_lowercase)
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !name.contains("--");
    if !valid {
        return Err(format!(
            "{name:?} is not a valid port name (IANA_SVC_NAME: at most 15 lowercase letters, \
             digits and '-', with at least one letter, no '-' at either end and no '--')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_follow_the_qualified_name_syntax() {
        for ok in [
            "app",
            "kubernetes.io/metadata.name",
            "app.kubernetes.io/name",
            "a_b-c.d",
            "A",
        ] {
            assert!(label_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-app",
            "app-",
            "a/b/c",
            "Example.com/x",
            "/x",
            "x/",
            &"a".repeat(64),
        ] {
            assert!(label_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_values_may_be_empty() {
        for ok in ["", "v1", "meeting-app", "a.b_c"] {
            assert!(label_value(ok).is_ok(), "{ok}");
        }
        for bad in ["-x", "x_", "a b", "é", &"a".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_names_are_iana_service_names() {
        for ok in ["http", "serve-80-tcp", "a", "h2c", "abcdefghijklmno"] {
            assert!(port_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "80",
            "-http",
            "http-",
            "ht--tp",
            "HTTP",
            "abcdefghijklmnop",
            "a_b",
        ] {
            assert!(port_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains_and_labels() {
        assert!(dns1123_subdomain("frontend-policy.v1").is_ok());
        assert!(dns1123_subdomain("Frontend").is_err());
        assert!(dns1123_label("meeting-app").is_ok());
        assert!(dns1123_label("a.b").is_err());
    }
}
