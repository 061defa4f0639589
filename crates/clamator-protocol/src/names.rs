//! Service and method name rules (spec §1.4).
//!
//! * service: `^[a-z][a-z0-9-]*$`
//! * method: `^[a-z][a-zA-Z0-9]*$` (camelCase, no hyphens, no underscores)
//!
//! The wire method string is `<service>.<method>`, split on the first dot.

/// The pattern a service name must match, as written in error messages.
pub const SERVICE_PATTERN: &str = "^[a-z][a-z0-9-]*$";
/// The pattern a method name must match, as written in error messages.
pub const METHOD_PATTERN: &str = "^[a-z][a-zA-Z0-9]*$";

/// Whether `name` is a valid service name (`^[a-z][a-z0-9-]*$`).
///
/// ```
/// use clamator_protocol::is_valid_service;
/// assert!(is_valid_service("excavator-engine"));
/// assert!(!is_valid_service("Arith"));
/// ```
pub fn is_valid_service(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// Whether `name` is a valid method name (`^[a-z][a-zA-Z0-9]*$`).
///
/// ```
/// use clamator_protocol::is_valid_method;
/// assert!(is_valid_method("echoText"));
/// assert!(!is_valid_method("echo_text"));
/// ```
pub fn is_valid_method(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z')) && bytes.all(|b| b.is_ascii_alphanumeric())
}

/// Converts a Rust `snake_case` identifier to the camelCase wire name
/// (`echo_text` → `echoText`), the inverse of the codegen's `camelToSnake`.
///
/// ```
/// assert_eq!(clamator_protocol::snake_to_camel("slow_add"), "slowAdd");
/// ```
pub fn snake_to_camel(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len());
    let mut upper = false;
    for c in ident.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_rule() {
        for ok in ["a", "arith", "a-b", "svc-2", "x9"] {
            assert!(is_valid_service(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "-a", "a_b", "aB", "a.b", "é"] {
            assert!(!is_valid_service(bad), "{bad}");
        }
    }

    #[test]
    fn method_rule() {
        for ok in ["a", "add", "echoText", "x9Y"] {
            assert!(is_valid_method(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "b-c", "b.c", "a_b", "é"] {
            assert!(!is_valid_method(bad), "{bad}");
        }
    }

    #[test]
    fn camel() {
        assert_eq!(snake_to_camel("echo_text"), "echoText");
        assert_eq!(snake_to_camel("add"), "add");
        assert_eq!(snake_to_camel("a_b_c"), "aBC");
        assert_eq!(snake_to_camel("_private"), "private");
    }
}
