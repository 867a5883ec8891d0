/**
 * The watchdog restarts a socket's idle timer while progress moves, and only then: a socket
 * whose progress stops times out as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { ProgressWatchdog } from '../../../src/serve/progress-watchdog.ts';

test('idle timer restarted while progress changes, fires once it stops', { timeout: 20_000 }, async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.after(() => client.destroy());
  const [sock] = (await once(server, 'connection')) as [net.Socket];
  t.after(() => sock.destroy());

  const watchdog = new ProgressWatchdog(400); // samples every 100 ms
  t.after(() => watchdog.close());
  let progress = 0;
  let moving = true;
  const mover = setInterval(() => { if (moving) progress++; }, 50);
  t.after(() => clearInterval(mover));
  const watch = watchdog.watch(sock, () => progress);
  let timedOutAt = 0;
  const t0 = Date.now();
  sock.setTimeout(400, () => { timedOutAt = Date.now() - t0; });

  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(timedOutAt, 0, 'no timeout while progress moves (1.5 s > 400 ms)');
  moving = false;
  const stoppedAt = Date.now() - t0;
  await once(sock, 'timeout');
  assert.ok(timedOutAt >= stoppedAt, 'times out after progress stopped');
  watch[Symbol.dispose]();
  assert.equal(watchdog.size, 0);
});
