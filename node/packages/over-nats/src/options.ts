/** Where NATS is: `natsUrl` (comma-separated URLs of one cluster), else `$NATS_URL`, else `nats://127.0.0.1:4222`. */
export function natsUrl(url: string | string[] | undefined): string {
  const given = Array.isArray(url) ? url.join(',') : url;
  return given ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
}
