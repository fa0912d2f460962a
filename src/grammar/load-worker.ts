// The Worker's source of xgrammar's WASM: wasm/build/xgrammar.wasm imported as a compiled module (wrangler's
// CompiledWasm rule), since workerd refuses to compile WASM bytes at run time.
import xgrammarModule from '../../wasm/build/xgrammar.wasm';
import { provideXgrammarWasm } from './wasm-source';

export function provideXgrammarWasmToWorker(): void {
  provideXgrammarWasm(() => xgrammarModule);
}
