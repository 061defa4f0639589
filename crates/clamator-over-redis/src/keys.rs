//! Redis key, group and consumer names (spec §2.1), identical to the originals.

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
