// Where xgrammar's compiled WASM module comes from: the Worker entry imports wasm/build/xgrammar.wasm (workerd only
// instantiates pre-compiled modules), Node compiles the file (load-node.ts). Unset: structured output is refused.
let source: (() => Promise<WebAssembly.Module>) | null = null;

export function provideXgrammarWasm(load: () => Promise<WebAssembly.Module> | WebAssembly.Module): void {
  let cached: Promise<WebAssembly.Module> | null = null;
  source = () => (cached ??= Promise.resolve(load()));
}

export function xgrammarWasm(): (() => Promise<WebAssembly.Module>) | null {
  return source;
}
