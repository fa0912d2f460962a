// A loopback port that nothing listens on: bound to port 0, then released. A server started on it right after
// gets a known URL; left unused, it is a backend that is down from the start.
import { createServer } from 'node:net';

export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
