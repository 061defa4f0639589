//! Redis key, group and consumer names (spec §2.1), identical to the originals.

use clamator_protocol::TransportError;

/// The command stream of a service: `<prefix>:cmds:<service>`.
///
/// ```
/// assert_eq!(clamator_over_redis::command_stream("app", "engine"), "app:cmds:engine");
/// ```
pub fn command_stream(key_prefix: &str, service: &str) -> String {
    format!("{key_prefix}:cmds:{service}")
}

/// The reply stream of a client instance: `<prefix>:replies:<instance_id>`.
///
/// ```
/// assert_eq!(clamator_over_redis::reply_stream("app", "i"), "app:replies:i");
/// ```
pub fn reply_stream(key_prefix: &str, instance_id: &str) -> String {
    format!("{key_prefix}:replies:{instance_id}")
}

/// The consumer group of a service: the service name itself.
///
/// ```
/// assert_eq!(clamator_over_redis::consumer_group_name("engine"), "engine");
/// ```
pub fn consumer_group_name(service: &str) -> String {
    service.to_owned()
}

/// The consumer name of a server instance in a service's group: `<service>:<instance_id>`.
///
/// ```
/// assert_eq!(clamator_over_redis::consumer_name("engine", "i"), "engine:i");
/// ```
pub fn consumer_name(service: &str, instance_id: &str) -> String {
    format!("{service}:{instance_id}")
}

/// The dead-letter stream of a service: `<prefix>:dead:<service>` (a Rust extension; the
/// originals have none).
///
/// ```
/// assert_eq!(clamator_over_redis::dead_letter_stream("app", "engine"), "app:dead:engine");
/// ```
pub fn dead_letter_stream(key_prefix: &str, service: &str) -> String {
    format!("{key_prefix}:dead:{service}")
}

/// The longest client id a server accepts in a `reply-to` (bytes).
pub const MAX_INSTANCE_ID_BYTES: usize = 256;

/// Characters that would make a key prefix a `SCAN MATCH` pattern.
const GLOB_CHARS: &[char] = &['*', '?', '[', ']', '\\'];

/// Checks a key prefix: not empty, and no glob characters (they would make the `SCAN`
/// patterns of `clamator inspect`, `dlq` and the dashboard match other applications' keys).
/// Servers and clients check it in `build()`.
///
/// ```
/// use clamator_over_redis::check_key_prefix;
/// assert!(check_key_prefix("app").is_ok());
/// assert!(check_key_prefix("").is_err());
/// assert!(check_key_prefix("app*").is_err());
/// ```
pub fn check_key_prefix(prefix: &str) -> Result<(), TransportError> {
    if prefix.is_empty() {
        return Err(TransportError::Config(
            "the key prefix must not be empty".into(),
        ));
    }
    if let Some(c) = prefix.chars().find(|c| GLOB_CHARS.contains(c)) {
        return Err(TransportError::Config(format!(
            "the key prefix {prefix:?} contains {c:?}: glob characters (* ? [ ] \\) are not allowed in a key prefix"
        )));
    }
    Ok(())
}

/// Checks an instance id: at most [`MAX_INSTANCE_ID_BYTES`] bytes (servers refuse to reply to
/// longer ones).
pub(crate) fn check_instance_id(id: &str) -> Result<(), TransportError> {
    if id.len() > MAX_INSTANCE_ID_BYTES {
        return Err(TransportError::Config(format!(
            "the instance id is {} bytes long; at most {MAX_INSTANCE_ID_BYTES} bytes are allowed",
            id.len()
        )));
    }
    Ok(())
}

/// Whether `key` is a reply stream of this prefix: `<prefix>:replies:<id>` with a non-empty
/// `id` of at most [`MAX_INSTANCE_ID_BYTES`] bytes. A server writes replies nowhere else.
pub(crate) fn is_reply_stream_of(key_prefix: &str, key: &[u8]) -> bool {
    key.strip_prefix(key_prefix.as_bytes())
        .and_then(|rest| rest.strip_prefix(b":replies:"))
        .is_some_and(|id| !id.is_empty() && id.len() <= MAX_INSTANCE_ID_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_streams_of_a_prefix() {
        assert!(is_reply_stream_of("app", b"app:replies:c1"));
        assert!(is_reply_stream_of("app", b"app:replies:host:1"));
        assert!(is_reply_stream_of("a:b", b"a:b:replies:x"));
        for bad in [
            &b"app:replies:"[..],
            b"app:cmds:svc",
            b"app:dead:svc",
            b"other:replies:c1",
            b"app:repliesX:c1",
            b"apps:replies:c1",
            b"app",
        ] {
            assert!(
                !is_reply_stream_of("app", bad),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("app:replies:{}", "x".repeat(MAX_INSTANCE_ID_BYTES + 1));
        assert!(!is_reply_stream_of("app", long.as_bytes()));
        let max = format!("app:replies:{}", "x".repeat(MAX_INSTANCE_ID_BYTES));
        assert!(is_reply_stream_of("app", max.as_bytes()));
    }

    #[test]
    fn key_prefixes() {
        assert!(check_key_prefix("app").is_ok());
        assert!(check_key_prefix("a:b-c.d").is_ok());
        for bad in ["", "a*", "a?", "a[b", "a]", "a\\b"] {
            assert!(check_key_prefix(bad).is_err(), "{bad}");
        }
    }
}
