// A transport that records what the cores hand it, for the core tests.
export function fakeTransport(reply) {
  const dispatchers = new Map();
  const sent = [];
  const notified = [];
  const transport = {
    started: false,
    async registerService(name, dispatch) { dispatchers.set(name, dispatch); },
    async send(env, opts) { sent.push({ env, opts }); return reply(env); },
    async notify(env) { notified.push(env); },
    async start() { this.started = true; },
    async stop() { this.started = false; },
  };
  return { transport, dispatchers, sent, notified };
}

export function recordingLogger() {
  const records = [];
  return {
    records,
    logger: {
      error: (msg, err, fields) => records.push({ level: 'error', msg, err, fields }),
      warn: (msg, err, fields) => records.push({ level: 'warn', msg, err, fields }),
    },
  };
}
