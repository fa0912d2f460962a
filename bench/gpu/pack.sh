#!/usr/bin/env bash
# Builds .device/, what bench/gpu/device-check.sh needs on a lent GPU machine that has no Node and no registry:
# Node 26 (the project's own `node` devDependency), the node_modules the backend, tsx and vitest load (webgpu's
# Dawn for linux-x64 only; wrangler, workerd, the peers and other large dev tools left out) and the Vulkan loader
# debs. About 46 MB: with the checkout just under the device tool's 64 MiB limit on what travels. Run here after
# `npm ci` and `npm run build:wasm`; carry `.device`, `wasm/build/kernels-relaxed.wasm` and
# `wasm/build/kernels-simd.wasm` (the whole of wasm/build, with xgrammar and the .wat texts, would not fit).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DEST=.device
rm -rf "$DEST" && mkdir -p "$DEST/gl"
[ -d wasm/build ] || { echo "pack: run npm run build:wasm first" >&2; exit 1; }

# stripped of its symbols (107 of 125 MB) and packed hard: the tree that travels is limited to 64 MiB
cp node_modules/node/bin/node "$DEST/node" && strip "$DEST/node" && xz -T0 -9 "$DEST/node"

# Dawn for linux-x64 without its symbol table (17.5 of 21.5 MB; the tree that travels is within a few hundred KB of
# the limit): appended to the tar from a staging folder under its own path
STAGE=$(mktemp -d)
mkdir -p "$STAGE/node_modules/webgpu/dist/linux-x64"
strip -o "$STAGE/node_modules/webgpu/dist/linux-x64/dawn.node" node_modules/webgpu/dist/linux-x64/dawn.node

# Not needed to run the backend, the benches and the WebGPU suites: the Workers toolchain, the peers, the
# AssemblyScript compiler, type packages, other platforms' Dawn builds.
tar --exclude='node_modules/wrangler' --exclude='node_modules/@cloudflare' --exclude='node_modules/miniflare' \
    --exclude='node_modules/workerd' --exclude='node_modules/node' --exclude='node_modules/onnxruntime-web' \
    --exclude='node_modules/onnxruntime-common' --exclude='node_modules/binaryen' --exclude='node_modules/assemblyscript' \
    --exclude='node_modules/typescript' --exclude='node_modules/openai' --exclude='node_modules/ai' \
    --exclude='node_modules/@ai-sdk' --exclude='node_modules/@img' --exclude='node_modules/sharp' \
    --exclude='node_modules/playwright-core' --exclude='node_modules/@types' --exclude='node_modules/protobufjs' \
    --exclude='node_modules/@protobufjs' --exclude='node_modules/fast-check' --exclude='node_modules/autocannon' \
    --exclude='node_modules/hdr-histogram-js' --exclude='node_modules/unenv' --exclude='node_modules/youch' \
    --exclude='node_modules/@speed-highlight' --exclude='node_modules/webgpu/dist/darwin-universal' \
    --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/webgpu/dist/win32-*' \
    --exclude='*.d.ts' --exclude='*.d.cts' --exclude='*.d.mts' --exclude='*.map' --exclude='*.md' \
    --exclude='node_modules/lightningcss*' --exclude='node_modules/zod/src' --exclude='node_modules/pako' \
    --exclude='node_modules/undici' --exclude='node_modules/@mlc-ai' --exclude='node_modules/blake3-wasm' \
    --exclude='node_modules/flatbuffers' --exclude='node_modules/webgpu/dist/linux-x64/dawn.node' \
    -cf "$STAGE/modules.tar" node_modules
tar -rf "$STAGE/modules.tar" -C "$STAGE" node_modules/webgpu/dist/linux-x64/dawn.node
xz -T0 -9e -c "$STAGE/modules.tar" > "$DEST/modules.tar.xz" && rm -rf "$STAGE"

# The fixture checkpoints the WGSL trunk and remote-prefill suites load (safetensors, configs, the reference prompt;
# not the GGUFs or llama.cpp's q8_0 logits, which those suites do not read): ../shared does not travel.
SHARED=${MOE_EDGE_SHARED:-$ROOT/../shared}
tar -cJf "$DEST/shared.tar.xz" -C "$SHARED" --exclude='*.gguf' --exclude='reference-q8_0.json' fixtures

# The Vulkan loader, which Dawn dlopens, and glvnd: NVIDIA's Vulkan ICD is libGLX_nvidia.so.0, which needs
# libGLdispatch (without it the loader finds no driver); the GL/EGL libraries as the device tool's recipe has them.
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
mkdir -p /tmp/amd64-lists/partial
apt-get $o update -qq
(cd "$DEST/gl" && apt-get $o download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 >/dev/null)
du -sh "$DEST" "$DEST"/*
