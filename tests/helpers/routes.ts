import type { App } from '../../shared/app/create-app.js';

export interface Operation {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The OpenAPI path, e.g. /v1/deliveries/{id}/ack */
  path: string;
}

/**
 * The service's documented operations whose path starts with `prefix`, read from its OpenAPI
 * document: a test that walks them covers a route added later without anyone listing it.
 */
export function documentedOperations(app: App, prefix: string): Operation[] {
  const doc = app.swagger() as { paths?: Record<string, Record<string, unknown>> };
  const out: Operation[] = [];
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    if (!path.startsWith(prefix)) continue;
    for (const method of Object.keys(ops)) {
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) out.push({ method: method.toUpperCase() as Operation['method'], path });
    }
  }
  return out;
}

/** The concrete URL of `path` with every `{param}` replaced by `params[param]`. */
export function fillPath(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`no value for path parameter ${name} of ${path}`);
    return encodeURIComponent(v);
  });
}
