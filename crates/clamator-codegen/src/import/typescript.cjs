// clamator codegen import --ts: reads a TypeScript contract module (a `{service, methods}`
// object whose methods hold Zod `params` / `result` and `notification: true`), transpiles it
// with the `typescript` package, evaluates it with its imports resolved from the user's
// node_modules (then from the tools directory), and prints one JSON object on stdout:
// {"contracts": [{"service", "methods": [{"name", "notification", "params", "result"}]}]}.
// Schemas are zod-to-json-schema's output with the options of the original codegen
// (target jsonSchema7, $refStrategy "none"). `@clamator/protocol` is not on the npm registry:
// when it cannot be resolved, `defineContract` / `defineMethod` / `defineNotification` come
// from a shim that behaves like the originals (spec §5.1). Arguments: FILE[:EXPORT] TOOLS_DIR.
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');

function fail(message) {
  process.stderr.write(message + '\n');
  process.exit(2);
}

const [spec, toolsDir] = process.argv.slice(process.argv.length - 2);
const colon = spec.lastIndexOf(':');
const [file, exportName] = colon > 1 ? [spec.slice(0, colon), spec.slice(colon + 1)] : [spec, ''];
const entry = path.resolve(file);
if (!fs.existsSync(entry)) fail(`${file}: no such file`);
const tools = Module.createRequire(path.join(path.resolve(toolsDir), 'noop.js'));
function tool(name) {
  try {
    return tools(name);
  } catch (e) {
    fail(`${name} is not installed in ${toolsDir} (npm install --save-dev ${name}): ${e.message}`);
  }
}
const ts = tool('typescript');
const { zodToJsonSchema } = tool('zod-to-json-schema');

const SERVICE_RE = /^[a-z][a-z0-9-]*$/;
const METHOD_RE = /^[a-z][a-zA-Z0-9]*$/;
const shim = {
  defineMethod: (def) => def,
  defineNotification: (def) => ({ ...def, notification: true }),
  defineContract(service, methods) {
    if (!SERVICE_RE.test(service)) throw new Error(`invalid service name "${service}" (must match ^[a-z][a-z0-9-]*$)`);
    for (const [name, def] of Object.entries(methods)) {
      if (!METHOD_RE.test(name)) throw new Error(`invalid method name "${name}" (must match ^[a-z][a-zA-Z0-9]*$)`);
      if (def.notification && 'result' in def) throw new Error(`notification "${name}" must not include result`);
      if (!def.notification && def.result === undefined) throw new Error(`method "${name}" must include result schema`);
    }
    return { service, methods };
  },
};

const cache = new Map();
function load(filename) {
  if (cache.has(filename)) return cache.get(filename).exports;
  const source = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(source, {
    fileName: filename,
    reportDiagnostics: true,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true },
  });
  const errors = (out.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    fail(`${filename}: ${ts.flattenDiagnosticMessageText(errors[0].messageText, ' ')}`);
  }
  const mod = { exports: {} };
  cache.set(filename, mod);
  const local = Module.createRequire(filename);
  const req = (name) => {
    if (name.startsWith('.') || path.isAbsolute(name)) {
      const base = path.resolve(path.dirname(filename), name);
      for (const candidate of [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts')]) {
        if (candidate.endsWith('.ts') && fs.existsSync(candidate)) return load(candidate);
      }
      return local(name);
    }
    try {
      return local(name);
    } catch (e) {
      if (name === '@clamator/protocol') return shim;
      try {
        return tools(name);
      } catch {
        fail(`${filename}: cannot resolve import "${name}": ${e.message}`);
      }
    }
  };
  const fn = new Function('exports', 'require', 'module', '__filename', '__dirname', out.outputText);
  try {
    fn(mod.exports, req, mod, filename, path.dirname(filename));
  } catch (e) {
    fail(`${filename}: evaluating the module failed: ${e && e.message}`);
  }
  return mod.exports;
}

const exported = load(entry);
const isContract = (v) => v && typeof v === 'object' && typeof v.service === 'string' && v.methods && typeof v.methods === 'object';
let found;
if (exportName) {
  if (!(exportName in exported)) fail(`${file} has no export "${exportName}"`);
  if (!isContract(exported[exportName])) fail(`${file}:${exportName} is not a {service, methods} contract object`);
  found = [exported[exportName]];
} else {
  found = Object.values(exported).filter(isContract);
  if (!found.length) fail(`${file} exports no {service, methods} contract object`);
}
const schema = (zod, where) => {
  if (!zod || typeof zod !== 'object' || !zod._def) fail(`${where} is not a Zod schema`);
  return zodToJsonSchema(zod, { target: 'jsonSchema7', $refStrategy: 'none' });
};
const contracts = found.map((c) => ({
  service: c.service,
  methods: Object.entries(c.methods).map(([name, def]) => ({
    name,
    notification: def.notification === true,
    params: schema(def.params, `${c.service}.${name} params`),
    result: def.notification === true ? null : schema(def.result, `${c.service}.${name} result`),
  })),
}));
process.stdout.write(JSON.stringify({ contracts }) + '\n');
