/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON read field by field */
import type { Test } from 'tap';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { createDevCertificate, type DevCertificate } from '../../../shared/registry/dev-certificate.js';
import { service } from '../../../services/registry/app.js';
import { testService, type TestService } from '../../helpers/service.js';

export const DIGIPOST = '984661185';
export const EBOKS = '922020175';
export const PRINT = '986044280';
export const AGENCY = '974760673';
export const OTHER_AGENCY = '889640782';

let certs: DevCertificate[] | undefined;
/** Two valid provider certificates, made once per test file (RSA key generation costs ~100 ms). */
export function devCerts(): [DevCertificate, DevCertificate] {
  certs ??= [createDevCertificate({ commonName: 'Digipost', orgnr: DIGIPOST }), createDevCertificate({ commonName: 'e-Boks', orgnr: EBOKS })];
  return certs as [DevCertificate, DevCertificate];
}

/** An array whose first eight elements destructure as strings (tests ask for what they use). */
export type Ids = string[] & [string, string, string, string, string, string, string, string];

/** Synthetic valid personIds, distinct per call within a file. */
let next = 0;
export function personIds(n: number): Ids {
  const ids = syntheticPersonIdList(n, 1000 + next);
  next += n;
  return ids as Ids;
}

export interface Registry extends TestService {
  admin: string;
  lookupAll: string;
  provider(orgnr: string): Promise<string>;
  citizen(pid: string, acr?: string): Promise<string>;
  inject(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, token: string | undefined, payload?: unknown, headers?: Record<string, string>): Promise<{ statusCode: number; json: any; headers: Record<string, unknown>; body: string }>;
}

/** A registry on a fresh database with Digipost, e-Boks (digital) and a print provider onboarded. */
export async function registry(t: Test, opts: Parameters<typeof testService>[2] = {}): Promise<Registry> {
  const svc = await testService(t, service, opts);
  const admin = await svc.token({ org: '991825827', scope: SCOPES.admin });
  const lookupAll = await svc.token({ org: AGENCY, scope: `${SCOPES.lookup} ${SCOPES.lookupContact} ${SCOPES.lookupDigitalPost}` });
  const inject: Registry['inject'] = async (method, url, token, payload, headers = {}) => {
    const res = await svc.app.inject({
      method,
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      ...(payload === undefined ? {} : typeof payload === 'string' ? { payload } : { payload: payload as object }),
    });
    let json: unknown;
    try {
      json = res.json();
    } catch {
      json = undefined;
    }
    return { statusCode: res.statusCode, json, headers: res.headers, body: res.body };
  };
  const [digipost, eboks] = devCerts();
  for (const p of [
    { orgnr: DIGIPOST, name: 'Digipost', kind: 'digital', certificate: digipost.certPem },
    { orgnr: EBOKS, name: 'e-Boks', kind: 'digital', certificate: eboks.der.toString('base64') },
    { orgnr: PRINT, name: 'Print', kind: 'print' },
  ]) {
    const res = await inject('POST', '/v1/admin/providers', admin, p);
    if (res.statusCode !== 201) throw new Error(`provider setup failed: ${res.body}`);
  }
  return {
    ...svc,
    admin,
    lookupAll,
    inject,
    provider: (orgnr) => svc.token({ org: orgnr, scope: SCOPES.provider }),
    citizen: (pid, acr = 'idporten-loa-substantial') => svc.token({ pid, acr }),
  };
}

/** Imports persons through the admin API; returns the summary. */
export async function importLines(r: Registry, records: object[]): Promise<any> {
  const res = await r.inject('POST', '/v1/admin/persons/import', r.admin, records.map((x) => JSON.stringify(x)).join('\n'), { 'content-type': 'application/x-ndjson' });
  if (res.statusCode !== 200) throw new Error(`import failed: ${res.body}`);
  return res.json;
}

export const monthsAgo = (months: number, from = new Date()): string => {
  const d = new Date(from);
  d.setUTCMonth(d.getUTCMonth() - months);
  return d.toISOString();
};
