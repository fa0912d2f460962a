// Prints the WebGPU adapter the backend's webgpu device would open (bench/gpu/device-check.sh's first line of
// evidence that Dawn found the GPU, not a software rasteriser), as one JSON line.
//   npx tsx bench/gpu/adapter.ts
import { acquireGpu } from '../../gpu-backend/devices/webgpu/adapter';

const gpu = await acquireGpu();
if (!gpu) {
  console.log(JSON.stringify({ adapter: null, why: 'no hardware WebGPU adapter (Dawn found none, or only a software one)' }));
  process.exit(1);
}
const l = gpu.device.limits;
console.log(JSON.stringify({
  adapter: gpu.description,
  dot4I8Packed: gpu.dot4,
  features: [...gpu.device.features].sort(),
  maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
  maxBufferSize: l.maxBufferSize,
  maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
  maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
}));
gpu.device.destroy();
