//! Subjects, stream names and headers: the wire of the NATS transport.
//!
//! | what | name |
//! |---|---|
//! | command subject | `<prefix>.cmds.<service>` |
//! | command stream (work queue) | `<prefix>_cmds_<service>` |
//! | durable pull consumer | `<service>` |
//! | reply subject (core NATS) | `<prefix>.replies.<client-id>` |
//! | dead-letter subject / stream | `<prefix>.dead.<service>` / `<prefix>_dead_<service>` |
//! | server status (core NATS request, every server answers) | `<prefix>.status` |

/// The default subject prefix.
pub const DEFAULT_KEY_PREFIX: &str = "clamator";

/// The request id (requests) or a fresh UUID (notifications): JetStream drops a second
/// publish with the same id within the stream's duplicate window.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
/// The subject the reply goes to (requests only): `<prefix>.replies.<client-id>`.
pub const HEADER_REPLY_TO: &str = "Clamator-Reply-To";
/// How long the caller waits, in milliseconds, from the time the stream stored the request.
pub const HEADER_TIMEOUT_MS: &str = "Clamator-Timeout-Ms";
/// On a dead letter: why it was dead-lettered.
pub const HEADER_DEAD_REASON: &str = "Clamator-Dead-Reason";
/// On a dead letter: how often it had been delivered.
pub const HEADER_DEAD_DELIVERIES: &str = "Clamator-Dead-Deliveries";
/// On a dead letter: the sequence it had in the command stream.
pub const HEADER_DEAD_SEQUENCE: &str = "Clamator-Dead-Sequence";

/// Whether `prefix` can be used: 1 to 64 ASCII letters, digits, `_` or `-` (it becomes a
/// subject token and part of stream names, which allow no `.`, `*`, `>` or spaces).
pub fn is_valid_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `id` can be a client id (a subject token): like a prefix, up to 128 bytes.
pub fn is_valid_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `<prefix>.cmds.<service>`.
pub fn command_subject(prefix: &str, service: &str) -> String {
    format!("{prefix}.cmds.{service}")
}

/// `<prefix>.status`: every running server answers a request there with its
/// [`ServerStatus`](crate::ServerStatus).
pub fn status_subject(prefix: &str) -> String {
    format!("{prefix}.status")
}

/// `<prefix>_cmds_<service>`.
pub fn command_stream(prefix: &str, service: &str) -> String {
    format!("{prefix}_cmds_{service}")
}

/// The durable consumer all servers of `service` share: `<service>`.
pub fn consumer_name(service: &str) -> String {
    service.to_owned()
}

/// `<prefix>.replies.<client-id>`.
pub fn reply_subject(prefix: &str, client_id: &str) -> String {
    format!("{prefix}.replies.{client_id}")
}

/// `<prefix>.dead.<service>`.
pub fn dead_letter_subject(prefix: &str, service: &str) -> String {
    format!("{prefix}.dead.{service}")
}

/// `<prefix>_dead_<service>`.
pub fn dead_letter_stream(prefix: &str, service: &str) -> String {
    format!("{prefix}_dead_{service}")
}

/// Whether `subject` is a reply subject of `prefix` (one client-id token after
/// `<prefix>.replies.`): a server publishes replies nowhere else.
pub fn is_reply_subject_of(prefix: &str, subject: &str) -> bool {
    subject
        .strip_prefix(prefix)
        .and_then(|s| s.strip_prefix(".replies."))
        .is_some_and(is_valid_client_id)
}

/// Whether a header carries metadata rather than the transport's own fields: every header but
/// `Nats-*` and `Clamator-*` (any case).
pub fn is_metadata_header(name: &str) -> bool {
    let starts = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    !(starts("nats-") || starts("clamator-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_are_checked() {
        assert!(is_reply_subject_of("p", "p.replies.abc-1"));
        assert!(!is_reply_subject_of("p", "p.replies.abc.def"));
        assert!(!is_reply_subject_of("p", "p.replies."));
        assert!(!is_reply_subject_of("p", "p.cmds.calc"));
        assert!(!is_reply_subject_of("p", "q.replies.abc"));
        assert!(!is_reply_subject_of("p", "$JS.API.STREAM.DELETE.x"));
        assert!(!is_reply_subject_of("p", "p.replies.*"));
        assert!(!is_reply_subject_of("p", "p.replies.>"));
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(is_valid_prefix("clamator"));
        assert!(is_valid_prefix("a_b-C9"));
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(65)] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn metadata_headers_exclude_the_transports_own() {
        assert!(is_metadata_header("traceparent"));
        assert!(!is_metadata_header("Nats-Msg-Id"));
        assert!(!is_metadata_header("clamator-reply-to"));
    }
}
