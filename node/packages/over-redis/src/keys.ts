/** `<prefix>:cmds:<service>`: the stream a service's requests are added to. */
export function commandStream(prefix: string, service: string): string {
  return `${prefix}:cmds:${service}`;
}

/** `<prefix>:replies:<instanceId>`: the stream a client's replies are added to. */
export function replyStream(prefix: string, instanceId: string): string {
  return `${prefix}:replies:${instanceId}`;
}

/** The consumer group of a service's servers: the service name. */
export function consumerGroupName(service: string): string {
  return service;
}

/** A server's consumer in its service's group: `<service>:<instanceId>`. */
export function consumerName(service: string, instanceId: string): string {
  return `${service}:${instanceId}`;
}
