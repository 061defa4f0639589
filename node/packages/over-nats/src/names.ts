/** `<prefix>.cmds.<service>`: the subject a service's requests are published to. */
export function commandSubject(prefix: string, service: string): string {
  return `${prefix}.cmds.${service}`;
}

/** `<prefix>_cmds_<service>`: the work-queue stream that keeps them. */
export function commandStream(prefix: string, service: string): string {
  return `${prefix}_cmds_${service}`;
}

/** `<prefix>.replies.<instanceId>`: the subject a client's replies come to. */
export function replySubject(prefix: string, instanceId: string): string {
  return `${prefix}.replies.${instanceId}`;
}

/** `<prefix>_dead_<service>`: the stream of a service's dead letters. */
export function deadLetterStream(prefix: string, service: string): string {
  return `${prefix}_dead_${service}`;
}
