/**
 * A real nginx for client tests and benchmarks: its own prefix (config, pid, logs, temp
 * paths) in a temp folder, one process (`master_process off`, `daemon off`) on an ephemeral
 * loopback port, stopped by PID. nginx cannot listen on port 0, so a free port is picked first
 * and the start is retried if another process takes it in between.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface Nginx extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` (no trailing slash); files are under `/`. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly prefix: string;
  /** Parsed access log: one entry per finished request (aborted ones included). */
  accessLog(): Promise<Array<{ request: string; status: number; bytesSent: number }>>;
  stop(): Promise<void>;
}

export interface StartNginxOptions {
  /** Folder served at `/`. */
  readonly root: string;
  /** Extra directives inside `server { }`. */
  readonly serverExtra?: string;
}

export async function startNginx(options: StartNginxOptions): Promise<Nginx> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce(options, await freePort());
    } catch (err) {
      lastError = err;
      if (!/Address already in use|bind\(\)/.test((err as Error).message)) throw err;
    }
  }
  throw lastError;
}

async function startOnce(options: StartNginxOptions, port: number): Promise<Nginx> {
  const prefix = await mkdtemp(path.join(os.tmpdir(), 'ferry-nginx-'));
  for (const d of ['tmp/body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi', 'logs']) await mkdir(path.join(prefix, d), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  const errorLog = path.join(prefix, 'logs', 'error.log');
  const accessLogPath = path.join(prefix, 'logs', 'access.log');
  await writeFile(conf, `
daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 1024; }
http {
  log_format ferry '$status $body_bytes_sent "$request"';
  access_log ${accessLogPath} ferry;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  keepalive_timeout 30s;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${options.root};
    ${options.serverExtra ?? ''}
  }
}
`);
  const child: ChildProcess = spawn(NGINX_BIN, ['-p', prefix, '-c', conf, '-e', errorLog], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = once(child, 'exit');
  let dead = false;
  void exited.then(() => { dead = true; });
  const stop = async (): Promise<void> => {
    if (!dead && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => { if (!dead && child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); }, 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(prefix, { recursive: true, force: true });
  };
  // Bounded wait for the listening socket (nginx has no readiness event to wait on).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (dead) {
      const log = await readFile(errorLog, 'utf8').catch(() => '');
      await rm(prefix, { recursive: true, force: true });
      throw new Error(`nginx exited at start: ${stderr}${log}`);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen on ${port} within 10 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    prefix,
    async accessLog() {
      const text = await readFile(accessLogPath, 'utf8').catch(() => '');
      return text.split('\n').filter((l) => l !== '').map((l) => {
        const m = /^(\d+) (\d+) "(.*)"$/.exec(l);
        return { status: Number(m?.[1] ?? 0), bytesSent: Number(m?.[2] ?? 0), request: m?.[3] ?? l };
      });
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}
