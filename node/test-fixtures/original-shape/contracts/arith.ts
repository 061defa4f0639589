// The interop `arith` contract written as a TypeScript team writes it with the original DSL
// (only the package name changed: `@clamator-rs/protocol`). `generated/arith.ts` is what
// `clamator codegen --ts-contract-import '../contracts/{service}.js'` writes for it, in the
// original @clamator/codegen shape (scripts/codegen.sh keeps it current).
import { z } from 'zod';
import { defineContract, defineMethod } from '@clamator-rs/protocol';

const AddParams = z.object({ a: z.number(), b: z.number() });
const AddResult = z.object({ sum: z.number() });

export const arithContract = defineContract('arith', {
  add: defineMethod({ params: AddParams, result: AddResult }),
  divide: defineMethod({ params: AddParams, result: z.object({ q: z.number() }) }),
  echoText: defineMethod({ params: z.object({ text: z.string() }), result: z.object({ text: z.string() }) }),
  slowAdd: defineMethod({ params: z.object({ a: z.number(), b: z.number(), sleepMs: z.number().int().min(0) }), result: AddResult }),
});
