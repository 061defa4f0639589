//! Credentials out of URLs, for logs, errors and `Debug`.

/// `url` with the password (or a token) of its authority replaced by `***`; URLs without
/// credentials come back unchanged. Only the authority is looked at (an `@` in a path stays).
///
/// ```
/// use clamator_protocol::transport::redact_url;
/// assert_eq!(redact_url("redis://app:s3cret@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(redact_url("rediss://:s3cret@db"), "rediss://:***@db");
/// assert_eq!(redact_url("nats://t0ken@host:4222"), "nats://***@host:4222");
/// assert_eq!(redact_url("nats://host:4222/a@b"), "nats://host:4222/a@b");
/// assert_eq!(redact_url("redis://localhost:6379"), "redis://localhost:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{}{}", &url[..scheme_end], masked, &rest[at..])
}
